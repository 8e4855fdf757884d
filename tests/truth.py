"""What PostGIS holds, read with plain SQL written here, for expected values."""

from sqlalchemy import text

REDIS_MAX_LATITUDE = 85.0511287
"""Greatest latitude of a profile that Redis holds (it never finds members at
its own limit, 85.05112878)."""


def searchable_members(engine, category: str) -> dict[int, tuple[float, float]]:
    """Return id -> (lon, lat) of the profiles of ``category`` Redis can hold."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT id, ST_X(location::geometry), ST_Y(location::geometry) "
                "FROM profiles WHERE categories @> ARRAY[CAST(:c AS text)] "
                "AND abs(ST_Y(location::geometry)) <= :max_lat"
            ),
            {"c": category, "max_lat": REDIS_MAX_LATITUDE},
        )
        return {row[0]: (row[1], row[2]) for row in rows}
