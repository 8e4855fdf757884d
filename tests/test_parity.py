"""/nearby/redis and /nearby/postgis agree on random queries over seeded data.

Agreement means the same ids in the same order and distances within 1 m,
save for profiles within 1 m of the radius, of the last distance of a full
page, or of each other, where rounding may tip the order either way.
"""

import random

import pytest
from sqlalchemy import text

from nearby import loader
from tests import spherical

PROFILES = 20_000
QUERIES = 100
TOLERANCE_M = 1.0
UNITS_M = {"m": 1.0, "km": 1000.0, "mi": spherical.MILE_M, "ft": spherical.FEET_M}


@pytest.fixture
def seeded(db, refresh):
    """Profiles to centre queries on, from a seeded data set indexed in Redis."""
    loader.load_fake(db, PROFILES, seed=11)
    refresh()
    with db.connect() as conn:
        return conn.execute(
            text(
                "SELECT ST_X(location::geometry), ST_Y(location::geometry), "
                "categories FROM profiles ORDER BY id LIMIT 2000"
            )
        ).all()


EDGE_CENTRES = [
    (180.0, 0.0),
    (-180.0, -16.5),
    (180.0, 60.0),
    (0.0, 85.05112878),
    (120.0, -85.05112878),
    (-179.999, 85.0),
]


def _query(rng, centres):
    """A query near a profile (one of its categories, mostly), or at an edge."""
    lon, lat, categories = rng.choice(centres)
    kind = rng.random()
    if kind < 0.2:
        categories = rng.choice(centres)[2]
    if kind < 0.6:
        lon = min(180, max(-180, lon + rng.uniform(-0.05, 0.05)))
        lat = min(85, max(-85, lat + rng.uniform(-0.05, 0.05)))
        radius_m = rng.choice([500, 2000, 10_000, 50_000, 200_000])
    elif kind < 0.8:
        lon, lat = rng.choice(EDGE_CENTRES)
        radius_m = rng.choice([200_000, 2_000_000, 10_000_000])
    else:
        radius_m = rng.choice([2_000_000, 8_000_000, 15_000_000, 20_037_000])

    unit = rng.choice(list(UNITS_M))
    return {
        "lon": lon,
        "lat": lat,
        "radius": radius_m / UNITS_M[unit],
        "unit": unit,
        "category": rng.choice(categories),
        "limit": rng.choice([5, 50, 200, 1000]),
    }


def _results_m(client, endpoint, params):
    response = client.get(endpoint, query_string=params)
    assert response.status_code == 200, response.get_json()
    unit_m = UNITS_M[params["unit"]]
    return [
        (r["id"], r["distance"] * unit_m, r["lon"], r["lat"])
        for r in response.get_json()["results"]
    ]


def _settled_cut_m(radius_m, limit, *answers):
    """The distance below which no 1 m rounding can change an answer."""
    cut = radius_m - TOLERANCE_M
    for results in answers:
        if len(results) == limit:
            cut = min(cut, results[-1][1] - TOLERANCE_M)
    return cut


def test_both_backends_agree_on_random_queries(client, seeded):
    centres = seeded
    rng = random.Random(5)
    compared = 0

    for _ in range(QUERIES):
        params = _query(rng, centres)
        radius_m = params["radius"] * UNITS_M[params["unit"]]
        from_redis = _results_m(client, "/nearby/redis", params)
        from_postgis = _results_m(client, "/nearby/postgis", params)

        for pid, distance_m, lon, lat in from_redis + from_postgis:
            independent = spherical.distance_m(params["lon"], params["lat"], lon, lat)
            assert distance_m == pytest.approx(independent, abs=TOLERANCE_M), pid
            assert distance_m <= radius_m + TOLERANCE_M
        cut = _settled_cut_m(radius_m, params["limit"], from_redis, from_postgis)
        redis_settled = [row for row in from_redis if row[1] < cut]
        postgis_settled = [row for row in from_postgis if row[1] < cut]
        assert {r[0] for r in redis_settled} == {r[0] for r in postgis_settled}, params
        for a, b in zip(redis_settled, postgis_settled, strict=True):
            assert a[0] == b[0] or abs(a[1] - b[1]) < TOLERANCE_M, params
        compared += len(redis_settled)

    assert compared > 20 * QUERIES, compared
