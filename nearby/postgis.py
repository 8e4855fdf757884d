"""Every SQL statement of nearby: schema, bulk load, search and streaming reads.

Values are always bound as query parameters, never formatted into SQL text.
Spherical functions run with ``use_spheroid => false`` and their distances are
converted to the model sphere of :mod:`nearby.geo`, so that this backend and
Redis measure alike.
"""

import csv
import io
import logging
from collections.abc import Iterable
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Connection
from sqlalchemy import Engine
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import InterfaceError
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import ProgrammingError

from nearby import geo
from nearby import models
from nearby.errors import BackendUnavailable
from nearby.errors import SchemaMissing
from nearby.errors import UnknownCategory
from nearby.geo import Hit

log = logging.getLogger(__name__)

# undefined_table, undefined_function, undefined_object
MISSING_OBJECT_CODES = {"42P01", "42883", "42704"}

TOUCH_FUNCTION_SQL = text(
    """
    CREATE OR REPLACE FUNCTION nearby_touch_updated_at() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        NEW.updated_at := now();
        RETURN NEW;
    END
    $$
    """
)

TOUCH_TRIGGER_SQL = text(
    """
    CREATE OR REPLACE TRIGGER profiles_touch_updated_at
    BEFORE INSERT OR UPDATE ON profiles
    FOR EACH ROW EXECUTE FUNCTION nearby_touch_updated_at()
    """
)

COPY_SQL = (
    "COPY profiles (name, city, country, occupation, email, location, categories) "
    "FROM STDIN WITH (FORMAT csv)"
)

CENTER_SQL = "ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography"

SEARCH_SQL = text(
    f"""
    SELECT id, name, city,
           ST_Y(location::geometry) AS lat,
           ST_X(location::geometry) AS lon,
           ST_Distance(location, {CENTER_SQL}, false) AS distance_pg
    FROM profiles
    WHERE categories @> ARRAY[CAST(:category AS text)]
      AND ST_DWithin(location, {CENTER_SQL}, :radius_pg, false)
    ORDER BY distance_pg, id
    LIMIT :limit
    """
)

CATEGORY_EXISTS_SQL = text(
    "SELECT EXISTS (SELECT 1 FROM profiles "
    "WHERE categories @> ARRAY[CAST(:category AS text)])"
)

STREAM_SQL = text(
    """
    SELECT id, name, city,
           ST_X(location::geometry) AS lon,
           ST_Y(location::geometry) AS lat,
           categories
    FROM profiles
    """
)

CATEGORY_COUNTS_SQL = text(
    """
    SELECT category, count(*) AS members
    FROM profiles, unnest(categories) AS category
    GROUP BY category
    ORDER BY category
    """
)


@dataclass(frozen=True, slots=True)
class StreamedProfile:
    """The fields of a profile that the Redis indexes hold."""

    id: int
    name: str
    city: str | None
    lon: float
    lat: float
    categories: list[str]


def ensure_schema(engine: Engine) -> None:
    """Create PostGIS, the profiles table, its indexes and trigger when missing.

    Raises:
        BackendUnavailable: PostgreSQL is unreachable.
        SchemaMissing: the PostGIS extension is not installed on the server and
            cannot be created (the message says which package provides it).
    """
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
    except (OperationalError, InterfaceError) as exc:
        raise BackendUnavailable("postgis", _first_line(exc)) from exc
    except DBAPIError as exc:
        raise SchemaMissing(
            "PostGIS is not available on this PostgreSQL server (install "
            "postgresql-15-postgis-3, or run as a role that may CREATE EXTENSION): "
            f"{_first_line(exc)}"
        ) from exc

    with engine.begin() as conn:
        models.metadata.create_all(conn)
        conn.execute(TOUCH_FUNCTION_SQL)
        conn.execute(TOUCH_TRIGGER_SQL)


def drop_schema(engine: Engine) -> None:
    """Drop the profiles table (and so every row it holds)."""
    with engine.begin() as conn:
        models.metadata.drop_all(conn)


def count_profiles(conn: Connection) -> int:
    """Return the number of rows of the profiles table."""
    return conn.execute(text("SELECT count(*) FROM profiles")).scalar_one()


def analyze(conn: Connection) -> None:
    """Refresh the planner's statistics of the profiles table."""
    conn.execute(text("ANALYZE profiles"))


def copy_profiles(dbapi_connection, rows: Iterable[tuple]) -> int:
    """Insert ``rows`` with one COPY, inside the caller's transaction.

    Each row is ``(name, city, country, occupation, email, lon, lat,
    categories)``; ``categories`` is a list of valid slugs. Returns the number
    of rows copied. The caller owns the batch size: everything in ``rows`` is
    buffered once as CSV text before it is sent.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    count = 0
    for name, city, country, occupation, email, lon, lat, categories in rows:
        writer.writerow(
            (
                name,
                city,
                country,
                occupation,
                email,
                f"SRID=4326;POINT({lon!r} {lat!r})",
                "{" + ",".join(categories) + "}",
            )
        )
        count += 1

    buffer.seek(0)
    with dbapi_connection.cursor() as cursor:
        cursor.copy_expert(COPY_SQL, buffer)
    return count


def search(
    engine: Engine,
    *,
    lon: float,
    lat: float,
    radius_m: float,
    category: str,
    limit: int,
) -> list[Hit]:
    """Return up to ``limit`` profiles of ``category`` within ``radius_m``.

    Nearest first, ties by id; distances on the model sphere. The GiST index
    on location answers ``ST_DWithin``, the GIN index the category test.

    Raises:
        UnknownCategory: no profile has ``category``.
        BackendUnavailable: PostgreSQL is unreachable or the query timed out.
        SchemaMissing: the profiles table does not exist.
    """
    params = {
        "lon": lon,
        "lat": lat,
        "radius_pg": radius_m * geo.MODEL_TO_POSTGIS,
        "category": category,
        "limit": limit,
    }
    with connect(engine) as conn:
        rows = conn.execute(SEARCH_SQL, params).all()
        if not rows and not category_exists(conn, category):
            raise UnknownCategory(category)

    return [
        Hit(
            id=row.id,
            name=row.name,
            city=row.city,
            lon=row.lon,
            lat=row.lat,
            distance_m=row.distance_pg * geo.POSTGIS_TO_MODEL,
        )
        for row in rows
    ]


@contextmanager
def connect(engine: Engine) -> Iterator[Connection]:
    """Open a connection, turning driver failures into nearby's 503 errors.

    Raises:
        BackendUnavailable: PostgreSQL is unreachable, or a statement timed out.
        SchemaMissing: the profiles table (or PostGIS) does not exist.
    """
    try:
        with engine.connect() as conn:
            yield conn
    except (OperationalError, InterfaceError) as exc:
        raise BackendUnavailable("postgis", _first_line(exc)) from exc
    except ProgrammingError as exc:
        if getattr(exc.orig, "pgcode", None) in MISSING_OBJECT_CODES:
            raise SchemaMissing(
                f"the profiles table is missing: {_first_line(exc)}"
            ) from exc
        raise


def category_exists(conn: Connection, category: str) -> bool:
    """Tell whether any profile holds ``category``."""
    return conn.execute(CATEGORY_EXISTS_SQL, {"category": category}).scalar_one()


def category_counts(conn: Connection) -> Iterator[tuple[str, int]]:
    """Yield ``(category, members)`` for every category, in name order.

    Streams from a server-side cursor; it reads the whole table.
    """
    result = conn.execution_options(stream_results=True, yield_per=1000).execute(
        CATEGORY_COUNTS_SQL
    )
    for row in result:
        yield row.category, row.members


def stream_profiles(
    conn: Connection, batch_size: int
) -> Iterator[list[StreamedProfile]]:
    """Yield every profile in batches of at most ``batch_size``.

    A server-side cursor feeds the batches, so memory stays bounded by one
    batch whatever the size of the table.
    """
    result = conn.execution_options(stream_results=True, yield_per=batch_size).execute(
        STREAM_SQL
    )
    for partition in result.partitions(batch_size):
        yield [
            StreamedProfile(
                id=row.id,
                name=row.name,
                city=row.city,
                lon=row.lon,
                lat=row.lat,
                categories=row.categories,
            )
            for row in partition
        ]


def ping(engine: Engine) -> None:
    """Run ``SELECT 1``.

    Raises:
        BackendUnavailable: PostgreSQL did not answer.
    """
    with connect(engine) as conn:
        conn.execute(text("SELECT 1"))


def _first_line(exc: BaseException) -> str:
    message = str(getattr(exc, "orig", None) or exc).strip()
    return message.splitlines()[0] if message else type(exc).__name__
