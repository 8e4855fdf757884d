"""Both endpoints on hand-placed profiles, against expected values computed here.

Every case runs on /nearby/redis (after a refresh) and /nearby/postgis.
"""

import pytest

from nearby import geoindex
from nearby.app import create_app
from tests import spherical

PARIS = (2.3522, 48.8566)
UNITS_M = {"m": 1.0, "km": 1000.0, "mi": spherical.MILE_M, "ft": spherical.FEET_M}


@pytest.fixture(params=["redis", "postgis"])
def backend(request, client, refresh):
    """Run a test on each backend; ``search`` refreshes Redis first."""

    class Backend:
        name = request.param

        def search(self, **params):
            if self.name == "redis":
                refresh()
            response = client.get(f"/nearby/{self.name}", query_string=params)
            assert response.status_code == 200, response.get_json()
            return response.get_json()

    return Backend()


def _around(center, *offsets, category="developers"):
    """Profiles at (bearing, metres) offsets from ``center``, named p0, p1..."""
    profiles = []
    for number, (bearing, metres) in enumerate(offsets):
        lon, lat = spherical.destination(*center, bearing, metres)
        profiles.append((f"p{number}", lon, lat, [category]))
    return profiles


def _expected(center, profiles, ids, radius_m):
    rows = [
        (spherical.distance_m(*center, lon, lat), pid)
        for pid, (_, lon, lat, _) in zip(ids, profiles, strict=True)
    ]
    return sorted(row for row in rows if row[0] <= radius_m)


def test_radius_search_returns_nearest_first_with_distances(backend, place):
    profiles = _around(PARIS, (0, 0), (90, 1000), (0, 4900), (180, 5100), (45, 2500))
    ids = place(*profiles)
    expected = _expected(PARIS, profiles, ids, 5000)

    body = backend.search(lon=PARIS[0], lat=PARIS[1], radius=5, category="developers")

    assert [r["id"] for r in body["results"]] == [pid for _, pid in expected]
    assert body["count"] == 4
    for result, (distance_m, _) in zip(body["results"], expected, strict=True):
        assert result["distance"] * 1000 == pytest.approx(distance_m, abs=1.0)
    assert body["results"][0]["distance"] == pytest.approx(0, abs=1e-3)
    assert body["backend"] == backend.name


def test_results_carry_the_profile_fields_and_exact_coordinates(backend, place):
    (pid,) = place(("Ada", 2.35, 48.86, ["developers"]))

    body = backend.search(lon=2.35, lat=48.86, radius=1, category="developers")

    assert body["results"] == [
        {
            "id": pid,
            "name": "Ada",
            "city": "Ada city",
            "lat": 48.86,
            "lon": 2.35,
            "distance": pytest.approx(0, abs=1e-6),
        }
    ]
    assert body["center"] == {"lat": 48.86, "lon": 2.35}
    assert body["radius"] == 1
    assert body["unit"] == "km"
    assert body["categories"] == ["developers"]


@pytest.mark.parametrize("unit", ["m", "km", "mi", "ft"])
def test_units_convert_radius_and_distances_exactly(backend, place, unit):
    profiles = _around(PARIS, (10, 800), (200, 1900), (300, 3100))
    ids = place(*profiles)
    radius = 2000 / UNITS_M[unit]
    expected = _expected(PARIS, profiles, ids, 2000)

    body = backend.search(
        lon=PARIS[0], lat=PARIS[1], radius=radius, unit=unit, category="developers"
    )

    assert [r["id"] for r in body["results"]] == [pid for _, pid in expected]
    for result, (distance_m, _) in zip(body["results"], expected, strict=True):
        assert result["distance"] * UNITS_M[unit] == pytest.approx(distance_m, abs=1.0)
    assert body["unit"] == unit


def test_other_categories_are_left_out(backend, place):
    ids = place(
        ("dev", 2.3522, 48.8566, ["developers", "python-developer"]),
        ("designer", 2.3522, 48.8566, ["designers"]),
    )

    body = backend.search(lon=2.3522, lat=48.8566, radius=1, category="developers")

    assert [r["id"] for r in body["results"]] == [ids[0]]


def test_profiles_at_one_spot_come_out_by_id(backend, place):
    ids = place(*[(f"same{n}", 13.405, 52.52, ["developers"]) for n in range(7)])
    farther = place(("next", 13.406, 52.52, ["developers"]))

    first = backend.search(lon=13.405, lat=52.52, radius=1, category="developers")
    cut = backend.search(
        lon=13.405, lat=52.52, radius=1, category="developers", limit=3
    )

    assert [r["id"] for r in first["results"]] == ids + farther
    assert [r["id"] for r in cut["results"]] == ids[:3]


def test_limit_keeps_the_nearest(backend, place):
    profiles = _around(
        PARIS, *[(bearing, 100 * (bearing + 1)) for bearing in range(20)]
    )
    ids = place(*profiles)

    body = backend.search(
        lon=PARIS[0], lat=PARIS[1], radius=50, category="developers", limit=5
    )

    assert [r["id"] for r in body["results"]] == ids[:5]


def test_search_crosses_the_antimeridian(backend, place):
    center = (179.995, -16.5)
    east = spherical.destination(*center, 90, 2000)
    west = spherical.destination(*center, 270, 3000)
    far = spherical.destination(*center, 90, 9000)
    ids = place(
        ("east", *east, ["developers"]),
        ("west", *west, ["developers"]),
        ("far", *far, ["developers"]),
    )

    body = backend.search(lon=center[0], lat=center[1], radius=5, category="developers")

    assert east[0] < -179.9
    assert [r["id"] for r in body["results"]] == ids[:2]
    assert body["results"][0]["distance"] * 1000 == pytest.approx(
        spherical.distance_m(*center, *east), abs=1.0
    )


def test_centre_on_the_far_side_of_the_antimeridian(backend, place):
    ids = place(("fiji", 179.99, -16.5, ["developers"]))

    body = backend.search(lon=-179.99, lat=-16.5, radius=10, category="developers")

    assert [r["id"] for r in body["results"]] == ids
    assert body["results"][0]["distance"] * 1000 == pytest.approx(
        spherical.distance_m(-179.99, -16.5, 179.99, -16.5), abs=1.0
    )


def test_radius_covering_most_of_the_globe(backend, place):
    points = [
        (-122.4, 37.8),
        (151.2, -33.9),
        (139.7, 35.7),
        (-58.4, -34.6),
        (2.3, 48.9),
    ]
    ids = place(
        *[(f"c{n}", lon, lat, ["developers"]) for n, (lon, lat) in enumerate(points)]
    )
    center = (0.0, 0.0)
    expected = sorted(
        (spherical.distance_m(*center, lon, lat), pid)
        for pid, (lon, lat) in zip(ids, points, strict=True)
    )

    body = backend.search(lon=0, lat=0, radius=19000, category="developers")

    assert [r["id"] for r in body["results"]] == [pid for _, pid in expected]
    for result, (distance_m, _) in zip(body["results"], expected, strict=True):
        assert result["distance"] * 1000 == pytest.approx(distance_m, abs=1.0)


def test_empty_answer_for_a_known_category_far_away(backend, place):
    place(("tokyo", 139.7, 35.7, ["developers"]))

    body = backend.search(lon=2.35, lat=48.86, radius=10, category="developers")

    assert body["count"] == 0
    assert body["results"] == []


def test_postgis_serves_centres_beyond_redis_latitudes(client, place):
    ids = place(
        ("north", 10.0, 86.2, ["developers"]), ("near", 10.0, 85.5, ["developers"])
    )

    response = client.get(
        "/nearby/postgis",
        query_string={"lat": 86, "lon": 10, "radius": 100, "category": "developers"},
    )

    body = response.get_json()
    assert response.status_code == 200
    assert [r["id"] for r in body["results"]] == ids
    assert body["results"][0]["distance"] * 1000 == pytest.approx(
        spherical.distance_m(10, 86, 10, 86.2), abs=1.0
    )


def test_redis_points_centres_beyond_its_latitudes_to_postgis(client, place, refresh):
    place(("north", 10.0, 86.2, ["developers"]))
    refresh()

    response = client.get(
        "/nearby/redis",
        query_string={"lat": 86, "lon": 10, "radius": 100, "category": "developers"},
    )

    error = response.get_json()["error"]
    assert response.status_code == 400
    assert error["param"] == "lat"
    assert "/nearby/postgis" in error["message"]


@pytest.mark.parametrize("center_lon", [180.0, -180.0])
def test_longitude_180_and_minus_180_are_one_meridian(backend, place, center_lon):
    points = [
        (179.0, 0.0),
        (-179.5, 0.0),
        (-176.17, -13.28),
        (180.0, 2.0),
        (-180.0, -3.0),
    ]
    ids = place(
        *[(f"m{n}", lon, lat, ["developers"]) for n, (lon, lat) in enumerate(points)]
    )
    expected = sorted(
        (spherical.distance_m(center_lon, 0.0, lon, lat), pid)
        for pid, (lon, lat) in zip(ids, points, strict=True)
    )

    body = backend.search(lon=center_lon, lat=0, radius=2000, category="developers")

    assert [r["id"] for r in body["results"]] == [pid for _, pid in expected]


@pytest.mark.parametrize("center_lat", [85.05112878, -85.05112878])
def test_centre_at_the_redis_latitude_limit_reaches_far_profiles(
    backend, place, center_lat
):
    points = [(-43.2, -22.9), (-99.1, 19.4), (34.76, -0.09), (10.0, 84.0)]
    ids = place(
        *[(f"f{n}", lon, lat, ["developers"]) for n, (lon, lat) in enumerate(points)]
    )
    expected = sorted(
        (spherical.distance_m(0.0, center_lat, lon, lat), pid)
        for pid, (lon, lat) in zip(ids, points, strict=True)
        if spherical.distance_m(0.0, center_lat, lon, lat) <= 14_000_000
    )

    body = backend.search(lon=0, lat=center_lat, radius=14000, category="developers")

    assert len(expected) >= 3
    assert [r["id"] for r in body["results"]] == [pid for _, pid in expected]
    for result, (distance_m, _) in zip(body["results"], expected, strict=True):
        assert result["distance"] * 1000 == pytest.approx(distance_m, abs=1.0)


@pytest.mark.parametrize(
    ("center", "profile"),
    [
        pytest.param(
            (180.0, 30.0), (-180.0, 30.0), id="longitude-180-beside-minus-180"
        ),
        pytest.param(
            (-180.0, 30.0), (180.0, 30.0), id="longitude-minus-180-beside-180"
        ),
        pytest.param((45.0, 1e-12), (45.0, 0.0), id="a-hair-north-of-the-equator"),
        pytest.param((1e-13, 45.0), (0.0, 45.0), id="a-hair-east-of-greenwich"),
    ],
)
def test_nearest_around_a_hair_from_a_profile_finds_it_first(
    backend, place, center, profile
):
    lon, lat = profile
    neighbours = [
        (f"n{east}{north}", lon + east, lat + north, ["developers"])
        for east in (-1, 0, 1)
        for north in (-1, 0, 1)
        if east or north
    ]
    [pid, *_] = place(("here", lon, lat, ["developers"]), *neighbours)

    body = backend.search(lon=center[0], lat=center[1], limit=3, category="developers")

    assert body["results"][0]["id"] == pid
    assert body["results"][0]["distance"] == pytest.approx(0, abs=1e-6)
    assert body["count"] == 3


SCAN_CAP = 100
TWO_CATEGORIES = ["developers", "python-developer"]


@pytest.fixture
def capped_client(settings, db, redis_client):
    """A client of an app that refuses areas holding over SCAN_CAP profiles."""
    app = create_app(settings.model_copy(update={"max_scan_members": SCAN_CAP}))
    yield app.test_client()
    services = app.extensions["nearby"]
    services.engine.dispose()
    services.redis.close()


SCAN_AREAS = [
    pytest.param({"lon": PARIS[0], "lat": PARIS[1], "radius": 10}, id="radius"),
    pytest.param({"bbox": "2.2,48.75,2.5,48.95"}, id="bbox"),
]


def _in_two_categories(count):
    """``count`` profiles within 5 km of Paris, each of both TWO_CATEGORIES."""
    return [
        (f"p{n}", *spherical.destination(*PARIS, 7 * n, 50 * n), TWO_CATEGORIES)
        for n in range(count)
    ]


@pytest.mark.parametrize("endpoint", ["/nearby/redis", "/nearby/postgis"])
@pytest.mark.parametrize("area", SCAN_AREAS)
def test_a_profile_of_several_categories_counts_once_toward_the_scan_cap(
    capped_client, place, refresh, endpoint, area
):
    ids = place(*_in_two_categories(SCAN_CAP // 2 + 10))
    refresh()

    response = capped_client.get(
        endpoint,
        query_string=area | {"category": ",".join(TWO_CATEGORIES), "limit": SCAN_CAP},
    )

    assert response.status_code == 200, response.get_json()
    assert sorted(r["id"] for r in response.get_json()["results"]) == ids


@pytest.mark.parametrize("endpoint", ["/nearby/redis", "/nearby/postgis"])
@pytest.mark.parametrize("area", SCAN_AREAS)
def test_an_area_over_the_scan_cap_is_refused(
    capped_client, place, refresh, endpoint, area
):
    place(*_in_two_categories(SCAN_CAP + 1))
    refresh()

    response = capped_client.get(
        endpoint, query_string=area | {"category": ",".join(TWO_CATEGORIES)}
    )

    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "area_too_large"


def test_redis_that_lost_its_scripts_still_answers(
    client, place, refresh, redis_client
):
    profiles = _around(PARIS, (0, 0), (90, 1000), (0, 7000))
    ids = place(*profiles)
    refresh()
    query = {"lon": PARIS[0], "lat": PARIS[1], "radius": 5, "category": "developers"}
    first = client.get("/nearby/redis", query_string=query)

    redis_client.script_flush()
    again = client.get("/nearby/redis", query_string=query)
    third = client.get("/nearby/redis", query_string=query)

    expected = [pid for _, pid in _expected(PARIS, profiles, ids, 5000)]
    for response in (first, again, third):
        assert response.status_code == 200
        assert [r["id"] for r in response.get_json()["results"]] == expected
    assert redis_client.script_exists(
        redis_client.register_script(geoindex.SEARCH_SCRIPT).sha
    ) == [True]
