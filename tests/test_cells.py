"""The geohash cells of PostGIS's search key, and the triggers that keep it.

Geohashes of points are PostGIS's own (``ST_GeoHash``); points inside a
circle come from the independent spherical formulas of ``tests/spherical.py``.
"""

import dataclasses
import random

import pytest
from sqlalchemy import create_engine
from sqlalchemy import text

from nearby import cells
from nearby import geo
from nearby import loader
from nearby import postgis
from tests import spherical

GEOHASH_SQL = text(
    "SELECT ST_GeoHash(ST_SetSRID(ST_MakePoint(x, y), 4326), :precision) "
    "FROM unnest(CAST(:lons AS float8[]), CAST(:lats AS float8[])) AS t(x, y)"
)

KEY_SQL = text(
    "SELECT category, geohash, profile_id, ST_X(location::geometry), "
    "ST_Y(location::geometry) FROM profile_categories ORDER BY 3, 1"
)


def postgis_geohashes(engine, points, precision) -> list[str]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                GEOHASH_SQL,
                {
                    "precision": precision,
                    "lons": [lon for lon, _ in points],
                    "lats": [lat for _, lat in points],
                },
            ).scalars()
        )


def boundary_points(rnd: random.Random, count: int) -> list[tuple[float, float]]:
    """Points on cell boundaries of coarse and fine precisions, and the corners."""
    points = [(180.0, 90.0), (-180.0, -90.0), (0.0, 0.0), (-180.0, 45.0)]
    points += [(1e-300, -1e-300), (-1e-300, 1e-300), (180.0, -90.0)]
    for _ in range(count):
        bits = rnd.randint(1, 23)
        points.append(
            (
                rnd.randint(-(2**bits), 2**bits) * 180.0 / 2**bits,
                rnd.randint(-(2**bits), 2**bits) * 90.0 / 2**bits,
            )
        )
    return points


@pytest.mark.parametrize("precision", [1, 4, cells.STORED_PRECISION, 12])
def test_geohash_is_postgis_geohash(engine, precision):
    rnd = random.Random(precision)
    points = [(rnd.uniform(-180, 180), rnd.uniform(-90, 90)) for _ in range(2000)]
    points += boundary_points(rnd, 2000)

    expected = postgis_geohashes(engine, points, precision)

    got = [cells.geohash(lon, lat, precision) for lon, lat in points]
    mismatches = [
        (point, want, have)
        for point, want, have in zip(points, expected, got, strict=True)
        if want != have
    ]
    assert mismatches == []


def in_cover(cover: cells.Cover, geohash: str) -> bool:
    if cover.whole_globe:
        return True
    return any(
        low <= geohash < high for low, high in zip(cover.low, cover.high, strict=True)
    )


CENTRES = [
    (2.35, 48.85),
    (-0.1, 51.5),
    (179.999, -16.5),
    (-180.0, 65.0),
    (180.0, 0.0),
    (0.0, 0.0),
    (12.0, 89.9),
    (-45.0, -89.99),
    (100.0, 84.0),
    (-73.99, 40.73),
]
RADII_M = [1.0, 30.0, 1_000.0, 10_000.0, 50_000.0, 400_000.0, 3_000_000.0, 9.9e6]


@pytest.mark.parametrize("radius_m", RADII_M)
def test_cover_holds_every_point_of_the_circle(engine, radius_m):
    rnd = random.Random(int(radius_m))
    points, circles = [], []
    for lon, lat in CENTRES:
        cover = cells.cover(lon, lat, radius_m)
        # The rim and the inside, by the independent destination formula.
        for bearing in range(0, 360, 3):
            points.append(spherical.destination(lon, lat, bearing, radius_m))
            circles.append(cover)
        for _ in range(300):
            reach = radius_m * rnd.random() ** 0.5
            points.append(spherical.destination(lon, lat, rnd.uniform(0, 360), reach))
            circles.append(cover)

    geohashes = postgis_geohashes(engine, points, cells.STORED_PRECISION)

    missed = [
        point
        for point, cover, geohash in zip(points, circles, geohashes, strict=True)
        if not in_cover(cover, geohash)
    ]
    assert missed == []


@pytest.mark.parametrize(
    ("lon", "lat", "radius_m", "finest_cell_m"),
    [(2.35, 48.85, 10_000.0, 40_000.0), (2.35, 48.85, 1_000.0, 5_000.0)],
)
def test_cover_is_a_few_ranges_of_cells_near_the_radius(
    lon, lat, radius_m, finest_cell_m
):
    cover = cells.cover(lon, lat, radius_m)

    assert 1 <= len(cover.low) <= cells.MAX_CELLS
    precision = len(cover.low[0])
    lat_cell_m = (
        spherical.SPHERE_RADIUS_M * 3.141592653589793 / 2 ** (5 * precision // 2)
    )
    assert lat_cell_m <= finest_cell_m


def test_cover_of_a_circle_past_a_quarter_of_the_globe_is_the_globe():
    assert cells.cover(10.0, 10.0, 10_100_000.0).whole_globe


# The triggers


def key_rows(engine) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(KEY_SQL)]


def expected_rows(engine, profiles: dict[int, tuple[float, float, list[str]]]):
    ids = sorted(profiles)
    points = [profiles[i][:2] for i in ids]
    hashes = dict(
        zip(
            ids,
            postgis_geohashes(engine, points, cells.STORED_PRECISION),
            strict=True,
        )
    )
    return sorted(
        (
            (category, hashes[i], i, profiles[i][0], profiles[i][1])
            for i in ids
            for category in set(profiles[i][2])
        ),
        key=lambda row: (row[2], row[0]),
    )


def test_every_write_to_profiles_reaches_the_search_key(db, place):
    paris, lyon = (2.35, 48.85), (4.83, 45.76)
    first, second, third = place(
        ("Ada", *paris, ["developers", "python-developer"]),
        ("Bob", *lyon, ["sales", "sales"]),
        ("Cy", *paris, ["developers"]),
    )
    profiles = {
        first: (*paris, ["developers", "python-developer"]),
        second: (*lyon, ["sales"]),
        third: (*paris, ["developers"]),
    }
    assert key_rows(db) == expected_rows(db, profiles)

    with db.begin() as conn:
        conn.execute(
            text(
                "UPDATE profiles SET categories = '{developers,go-developer}', "
                "location = ST_SetSRID(ST_MakePoint(4.83, 45.76), 4326)::geography "
                "WHERE id = :id"
            ),
            {"id": first},
        )
        conn.execute(
            text("UPDATE profiles SET name = 'Bo' WHERE id = :id"), {"id": second}
        )
        conn.execute(text("DELETE FROM profiles WHERE id = :id"), {"id": third})
    profiles[first] = (*lyon, ["developers", "go-developer"])
    del profiles[third]
    assert key_rows(db) == expected_rows(db, profiles)

    with db.begin() as conn:
        conn.execute(text("TRUNCATE profiles"))
    assert key_rows(db) == []


def test_a_bulk_load_and_a_new_search_key_hold_every_profile(db):
    loader.load_fake(db, 3_000, seed=11, batch_size=1_000, workers=0)
    with db.connect() as conn:
        profiles = {
            row.id: (row.lon, row.lat, list(row.categories))
            for row in conn.execute(
                text(
                    "SELECT id, ST_X(location::geometry) AS lon, "
                    "ST_Y(location::geometry) AS lat, categories FROM profiles"
                )
            )
        }
    expected = expected_rows(db, profiles)
    assert len(expected) > len(profiles)
    assert key_rows(db) == expected

    # A database of an older nearby, without the key, gets it filled.
    with db.begin() as conn:
        conn.execute(text("DROP TABLE profile_categories"))
    postgis.ensure_schema(db)
    postgis.create_secondary_indexes(db)
    assert key_rows(db) == expected


def test_values_no_search_asks_for_pass_and_empty_points_keep_their_category(db):
    long_category = "x" * 3000
    with db.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO profiles (name, location, categories) VALUES "
                "('x', 'SRID=4326;POINT(1 1)', "
                "ARRAY['Python Dev', NULL, 'nurses', :long]), "
                "('y', 'SRID=4326;POINT EMPTY', ARRAY['nurses'])"
            ),
            {"long": long_category},
        )

    rows = key_rows(db)
    assert [(row[0], row[1] == "") for row in rows] == [
        ("Python Dev", False),
        ("nurses", False),
        ("nurses", True),
    ]


def test_an_update_of_other_fields_leaves_the_search_key_alone(db, place):
    (first,) = place(("Ada", 2.35, 48.85, ["developers", "nurses"]))
    versions_sql = text("SELECT xmin::text FROM profile_categories ORDER BY category")
    with db.connect() as conn:
        before = list(conn.execute(versions_sql).scalars())

    with db.begin() as conn:
        conn.execute(
            text("UPDATE profiles SET name = 'Ada L', email = 'a@l' WHERE id = :id"),
            {"id": first},
        )
    with db.connect() as conn:
        after = list(conn.execute(versions_sql).scalars())

    assert len(before) == 2
    assert after == before


@pytest.fixture
def writer_role(db):
    """A login role with privileges on profiles alone, as another application."""
    with db.begin() as conn:
        conn.execute(text("DROP ROLE IF EXISTS nearby_test_writer"))
        conn.execute(text("CREATE ROLE nearby_test_writer LOGIN PASSWORD 'writer'"))
        conn.execute(
            text(
                "GRANT SELECT, INSERT, UPDATE, DELETE ON profiles TO nearby_test_writer"
            )
        )
        conn.execute(
            text("GRANT USAGE ON SEQUENCE profiles_id_seq TO nearby_test_writer")
        )
    url = db.url.set(username="nearby_test_writer", password="writer")
    writer = create_engine(url)
    yield writer
    writer.dispose()
    with db.begin() as conn:
        conn.execute(text("DROP OWNED BY nearby_test_writer"))
        conn.execute(text("DROP ROLE nearby_test_writer"))


def test_a_writer_with_privileges_on_profiles_alone_can_write(db, writer_role):
    with writer_role.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO profiles (name, location, categories) VALUES "
                "('w', 'SRID=4326;POINT(3 3)', '{nurses}')"
            )
        )
        conn.execute(text("UPDATE profiles SET location = 'SRID=4326;POINT(4 4)'"))
        conn.execute(text("DELETE FROM profiles"))

    assert key_rows(db) == []
    with db.connect() as conn:
        logged = conn.execute(
            text("SELECT count(*) FROM profile_changes WHERE profile_id IS NOT NULL")
        ).scalar()
    assert logged == 3


def test_writes_go_through_without_the_search_key_which_health_reports(
    db, client, place
):
    with db.begin() as conn:
        conn.execute(text("DROP TABLE profile_categories"))
    try:
        (first,) = place(("Ada", 2.35, 48.85, ["developers"]))
        with db.begin() as conn:
            conn.execute(
                text("UPDATE profiles SET categories = '{nurses}' WHERE id = :id"),
                {"id": first},
            )
        health = client.get("/health")
        search = client.get(
            "/nearby/postgis",
            query_string={"category": "nurses", "lat": 48.85, "lon": 2.35, "radius": 5},
        )
    finally:
        postgis.ensure_schema(db)
        postgis.create_secondary_indexes(db)

    assert health.status_code == 503
    assert health.get_json()["postgis"]["ok"] is False
    assert search.status_code == 503
    assert search.get_json()["error"]["code"] == "schema_missing"
    assert [row[0] for row in key_rows(db)] == ["nurses"]


def test_circles_around_a_pole_are_searched_without_the_search_key():
    near_pole = geo.Search(
        shape=geo.Shape.RADIUS,
        categories=("nurses",),
        lon=0.0,
        lat=89.99,
        radius_m=5_000.0,
        limit=10,
        max_scan=100,
    )
    elsewhere = dataclasses.replace(near_pole, lat=60.0)

    assert postgis.search_statement(near_pole)[0] is postgis.AREA_SQL[False, False]
    assert postgis.search_statement(elsewhere)[0] is postgis.KEYED_AREA_SQL[False]


def test_a_write_mends_the_key_of_a_profile_written_with_triggers_off(db, place):
    (first,) = place(("Ada", 40.0, 40.0, ["nurses"]))
    with db.begin() as conn:
        conn.execute(text("ALTER TABLE profiles DISABLE TRIGGER profiles_key_updated"))
        conn.execute(
            text(
                "UPDATE profiles SET location = 'SRID=4326;POINT(40 40.001)', "
                "categories = '{nurses,welder}' WHERE id = :id"
            ),
            {"id": first},
        )
        conn.execute(
            text("ALTER TABLE profiles ENABLE ALWAYS TRIGGER profiles_key_updated")
        )
    with db.begin() as conn:
        conn.execute(
            text(
                "UPDATE profiles SET location = 'SRID=4326;POINT(40 40.002)' "
                "WHERE id = :id"
            ),
            {"id": first},
        )

    expected = expected_rows(db, {first: (40.0, 40.002, ["nurses", "welder"])})
    assert key_rows(db) == expected
