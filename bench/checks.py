"""Answers of the endpoints checked against a computation of the suite's own.

The expected ids and their order come from a direct SQL query with its own
``ORDER BY`` (:data:`TRUTH_SQL`), not from the service's statements; the
expected distances from :func:`great_circle_m`, written here: the angle
between the two points' unit vectors, from the atan2 of their cross and dot
products (not nearby's haversine), on the sphere of radius
:data:`SPHERE_RADIUS_M` that the API contract names.

An answer passes when its ids are those of the query, in its order, with
distances within :data:`DISTANCE_TOLERANCE_M` and exact coordinates, names
and cities. Two exceptions come from the contract: a profile within
:data:`DISTANCE_TOLERANCE_M` of the radius may be in or out (Redis's rounded
positions), and profiles whose distances differ by less than
:data:`TIE_TOLERANCE_M` may be in either order (two sums of floating-point
terms).
"""

import math
from dataclasses import dataclass

from sqlalchemy import Connection
from sqlalchemy import text

SPHERE_RADIUS_M = 6372797.560856
WGS84_A_M = 6378137.0
WGS84_B_M = WGS84_A_M * (1 - 1 / 298.257223563)
POSTGIS_SPHERE_M = (2 * WGS84_A_M + WGS84_B_M) / 3
"""Radius of the sphere of PostGIS's ``use_spheroid => false`` functions."""

DISTANCE_TOLERANCE_M = 1.0
TIE_TOLERANCE_M = 1e-3
COORDINATE_TOLERANCE_DEG = 1e-9
TRUTH_EXTRA_ROWS = 50
"""Rows read past the page, so that members at the radius can be told apart."""

TRUTH_SQL = text(
    """
    SELECT id, name, city, ST_X(location::geometry) AS lon,
           ST_Y(location::geometry) AS lat,
           ST_Distance(location, centre, false) AS distance_pg
    FROM profiles,
         LATERAL (SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography
                  AS centre) AS c
    WHERE :category = ANY(categories)
      AND ST_DWithin(location, centre, :within_pg, false)
    ORDER BY ST_Distance(location, centre, false), id
    LIMIT :rows
    """
)


@dataclass(frozen=True)
class Truth:
    """A profile the query should find: where it is and how far (metres)."""

    id: int
    name: str
    city: str | None
    lon: float
    lat: float
    sql_m: float
    suite_m: float


def great_circle_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Return the great-circle distance in metres between two points in degrees."""
    a = _unit_vector(lon1, lat1)
    b = _unit_vector(lon2, lat2)
    cross = (
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    )
    dot = a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
    return SPHERE_RADIUS_M * math.atan2(math.hypot(*cross), dot)


def _unit_vector(lon: float, lat: float) -> tuple[float, float, float]:
    phi = math.radians(lat)
    lam = math.radians(lon)
    return (math.cos(phi) * math.cos(lam), math.cos(phi) * math.sin(lam), math.sin(phi))


def truth(
    conn: Connection, category: str, lon: float, lat: float, radius_m: float, limit: int
) -> list[Truth]:
    """Return the profiles of ``category`` nearest the centre, out to just
    past ``radius_m``: the page of ``limit`` and :data:`TRUTH_EXTRA_ROWS` more."""
    params = {
        "category": category,
        "lon": lon,
        "lat": lat,
        "within_pg": (radius_m + 2 * DISTANCE_TOLERANCE_M)
        * POSTGIS_SPHERE_M
        / SPHERE_RADIUS_M,
        "rows": limit + TRUTH_EXTRA_ROWS,
    }
    return [
        Truth(
            id=row.id,
            name=row.name,
            city=row.city,
            lon=row.lon,
            lat=row.lat,
            sql_m=row.distance_pg * SPHERE_RADIUS_M / POSTGIS_SPHERE_M,
            suite_m=great_circle_m(lon, lat, row.lon, row.lat),
        )
        for row in conn.execute(TRUTH_SQL, params)
    ]


def compare(
    body: dict,
    expected: list[Truth],
    *,
    radius_m: float,
    limit: int,
    unit_m: float,
    backend: str,
) -> list[str]:
    """Return what is wrong with the answer ``body`` (empty when it is right).

    ``expected`` is :func:`truth` for the same query.
    """
    problems = []
    results = body.get("results", [])
    if body.get("backend") != backend:
        problems.append(f"backend {body.get('backend')!r}, not {backend!r}")
    if body.get("count") != len(results):
        problems.append(f"count {body.get('count')} for {len(results)} results")
    if len(results) > limit:
        problems.append(f"{len(results)} results for limit {limit}")

    known = {row.id: row for row in expected}
    for result in results:
        row = known.get(result["id"])
        if row is None:
            problems.append(f"id {result['id']} is not a member within the radius")
            continue
        distance_m = result["distance"] * unit_m
        if abs(distance_m - row.suite_m) > DISTANCE_TOLERANCE_M:
            problems.append(
                f"id {row.id}: distance {distance_m:.3f} m, expected "
                f"{row.suite_m:.3f} m"
            )
        if (
            abs(result["lon"] - row.lon) > COORDINATE_TOLERANCE_DEG
            or abs(result["lat"] - row.lat) > COORDINATE_TOLERANCE_DEG
        ):
            problems.append(f"id {row.id}: position differs from PostGIS's")
        if result["name"] != row.name or result["city"] != row.city:
            problems.append(f"id {row.id}: name or city differs from PostGIS's")
    if problems:
        return problems

    page = [row for row in expected if row.sql_m <= radius_m][:limit]
    cut_m = page[-1].suite_m if len(page) == limit else math.inf
    got = [known[result["id"]] for result in results]

    def excused(row: Truth) -> bool:
        at_radius = abs(row.suite_m - radius_m) <= DISTANCE_TOLERANCE_M
        at_cut = abs(row.suite_m - cut_m) <= TIE_TOLERANCE_M
        return at_radius or at_cut

    page_ids = {row.id for row in page}
    got_ids = {row.id for row in got}
    for row in page:
        if row.id not in got_ids and not excused(row):
            problems.append(f"id {row.id} at {row.suite_m:.1f} m is missing")
    for row in got:
        if row.id not in page_ids and not excused(row):
            problems.append(f"id {row.id} at {row.suite_m:.1f} m should not be there")

    shared_page = [row for row in page if row.id in got_ids]
    shared_got = [row for row in got if row.id in page_ids]
    for want, have in zip(shared_page, shared_got, strict=True):
        if want.id != have.id and abs(want.suite_m - have.suite_m) > TIE_TOLERANCE_M:
            problems.append(
                f"order: id {have.id} at {have.suite_m:.3f} m where id {want.id} at "
                f"{want.suite_m:.3f} m belongs"
            )
            break
    return problems
