"""Every query shape, filter, format and edge, as a table run on both backends.

One scene of hand-placed profiles serves every case. Each case's expected
answer is computed here from the scene, by a reading of the contract written
independently of nearby: distances from tests/spherical.py, box membership by
modular longitude arithmetic, the order (distance, id), pages by ``limit``.
"""

import base64
import hashlib
import json
import math
import random
from dataclasses import dataclass

import pytest
from sqlalchemy import text

from nearby.app import create_app
from nearby.query import parse_nearby
from tests import spherical

DEV = "developers"
PY = "python-developer"
DESIGN = "designers"
POLAR = "polar-researchers"

NEAREST_MAX_M = 1_000_000.0
UNITS_M = {"m": 1.0, "km": 1000.0, "mi": spherical.MILE_M, "ft": spherical.FEET_M}
PARIS = (2.3522, 48.8566)
SUVA = (178.4419, -18.1416)
SVALBARD = (15.6356, 78.2232)
MID_ATLANTIC = (-30.0, 0.0)


def _near(center, bearing, metres):
    return spherical.destination(*center, bearing, metres)


def _scene():
    """(name, lon, lat, categories) of every profile of the scene."""
    profiles = [
        ("at-paris-centre", *PARIS, [DEV, PY]),
        ("paris-same-spot-a", *_near(PARIS, 30, 700), [DEV]),
        ("paris-same-spot-b", *_near(PARIS, 30, 700), [DEV, PY]),
        ("paris-same-spot-c", *_near(PARIS, 30, 700), [DEV]),
        ("paris-designer", *_near(PARIS, 200, 1500), [DESIGN]),
        ("paris-designer-dev", *_near(PARIS, 250, 2500), [DESIGN, DEV]),
        ("lyon", 4.8357, 45.7640, [DEV]),
        ("london", -0.1276, 51.5072, [DEV, PY]),
        ("new-york", -74.0060, 40.7128, [DEV]),
        ("sydney", 151.2093, -33.8688, [DEV, DESIGN]),
        ("suva", *SUVA, [DEV]),
        ("taveuni-east", -179.95, -16.8, [DEV]),
        ("antimeridian-plus", 180.0, -17.0, [DEV]),
        ("antimeridian-minus", -180.0, -17.5, [DEV]),
        ("svalbard", *SVALBARD, [DEV, POLAR]),
        ("north-of-redis", 20.0, 86.0, [POLAR]),
        ("south-pole-station", 0.0, -89.9, [POLAR]),
    ]
    profiles += [
        (
            "atlantic-just-in-reach",
            *_near(MID_ATLANTIC, 90, NEAREST_MAX_M - 100),
            [DEV],
        ),
        (
            "atlantic-just-out-of-reach",
            *_near(MID_ATLANTIC, 0, NEAREST_MAX_M + 100),
            [DEV],
        ),
    ]
    for number in range(12):
        profiles.append(
            (
                f"paris-ring-{number}",
                *_near(PARIS, number * 30, 3000 + 137 * number),
                [DEV],
            )
        )
    return profiles


SCENE = _scene()


@dataclass(frozen=True)
class Case:
    """A query and what the contract says it returns."""

    params: dict
    pages: int = 1


def _center(params) -> tuple[float, float]:
    if "bbox" in params:
        west, south, east, north = (float(v) for v in params["bbox"].split(","))
        span = (east - west) % 360 or (360.0 if east != west else 0.0)
        lon = west + span / 2
        return (lon + 180) % 360 - 180, (south + north) / 2
    return float(params["lon"]), float(params["lat"])


def _in_box(bbox: str, lon: float, lat: float) -> bool:
    west, south, east, north = (float(v) for v in bbox.split(","))
    if not south <= lat <= north:
        return False
    span = east - west if east >= west else east - west + 360
    return span >= 360 or (lon - west) % 360 <= span


def _expected(params, ids) -> list[tuple[int, float]]:
    """(id, distance in metres) of every result, all pages, in order.

    A search without radius or box pages on, nearest first, out to the
    greatest radius."""
    wanted = set(params["category"].split(","))
    center = _center(params)
    rows = []
    for pid, (_, lon, lat, categories) in zip(ids, SCENE, strict=True):
        if not wanted & set(categories):
            continue
        distance_m = spherical.distance_m(*center, lon, lat)
        if "bbox" in params:
            inside = _in_box(params["bbox"], lon, lat)
        elif "radius" in params:
            unit_m = UNITS_M[params.get("unit", "km")]
            inside = distance_m <= float(params["radius"]) * unit_m
        else:
            inside = distance_m <= NEAREST_MAX_M
        if inside:
            rows.append((distance_m, pid))
    rows.sort()
    return [(pid, distance_m) for distance_m, pid in rows]


CASES = {
    "radius-nearest-first": Case({"lon": PARIS[0], "lat": PARIS[1], "radius": 5}),
    "radius-in-metres": Case(
        {"lon": PARIS[0], "lat": PARIS[1], "radius": 3300, "unit": "m"}
    ),
    "radius-in-miles": Case(
        {"lon": PARIS[0], "lat": PARIS[1], "radius": 2, "unit": "mi"}
    ),
    "radius-in-feet": Case(
        {"lon": PARIS[0], "lat": PARIS[1], "radius": 12000, "unit": "ft"}
    ),
    "radius-most-of-the-globe": Case(
        {"lon": PARIS[0], "lat": PARIS[1], "radius": 19500, "limit": 1000}
    ),
    "radius-paged-through-ties": Case(
        {"lon": PARIS[0], "lat": PARIS[1], "radius": 5, "limit": 1}, pages=20
    ),
    "radius-paged-by-three": Case(
        {"lon": PARIS[0], "lat": PARIS[1], "radius": 5, "limit": 3}, pages=10
    ),
    "radius-across-the-antimeridian": Case({"lon": 179.9, "lat": -17.2, "radius": 200}),
    "radius-from-minus-180": Case({"lon": -180, "lat": -17.2, "radius": 60}),
    "radius-from-plus-180": Case({"lon": 180, "lat": -17.2, "radius": 60}),
    "nearest-three": Case({"lon": PARIS[0], "lat": PARIS[1], "limit": 3}),
    "nearest-paged": Case({"lon": PARIS[0], "lat": PARIS[1], "limit": 4}, pages=8),
    "nearest-far-away-only": Case({"lon": -65.0, "lat": 40.0, "limit": 5}),
    "nearest-at-the-edge-of-reach": Case(
        {"lon": MID_ATLANTIC[0], "lat": MID_ATLANTIC[1], "limit": 5}
    ),
    "nearest-none-within-reach": Case({"lon": -140.0, "lat": 0.0, "limit": 5}),
    "nearest-across-the-antimeridian": Case({"lon": 179.99, "lat": -17.0, "limit": 4}),
    "nearest-in-miles": Case({"lon": 2.0, "lat": 48.0, "limit": 2, "unit": "mi"}),
    "box-around-paris": Case({"bbox": "2.30,48.82,2.40,48.90"}),
    "box-paged": Case({"bbox": "2.30,48.82,2.40,48.90", "limit": 5}, pages=10),
    "box-over-europe": Case({"bbox": "-5,40,10,55"}),
    "box-across-the-antimeridian": Case({"bbox": "178,-20,-179,-15"}),
    "box-east-edge-at-180": Case({"bbox": "179.5,-18,180,-16"}),
    "box-west-edge-at-minus-180": Case({"bbox": "-180,-18,-179.5,-16"}),
    "box-whole-width": Case({"bbox": "-180,-60,180,60", "limit": 1000}),
    "box-in-feet": Case({"bbox": "2.30,48.82,2.40,48.90", "unit": "ft"}),
    "categories-any-of-two": Case(
        {"lon": PARIS[0], "lat": PARIS[1], "radius": 4, "category": f"{PY},{DESIGN}"}
    ),
    "categories-overlapping-each-once": Case(
        {"lon": PARIS[0], "lat": PARIS[1], "radius": 4, "category": f"{DEV},{PY}"}
    ),
    "categories-nearest-paged": Case(
        {"lon": PARIS[0], "lat": PARIS[1], "limit": 2, "category": f"{DESIGN},{PY}"},
        pages=6,
    ),
    "categories-in-a-box": Case({"bbox": "-1,45,5,52", "category": f"{PY},{DESIGN}"}),
}


@pytest.fixture(params=["redis", "postgis", "auto"])
def endpoint(request):
    return {"redis": "/nearby/redis", "postgis": "/nearby/postgis", "auto": "/nearby"}[
        request.param
    ]


@pytest.fixture
def scene(place, refresh):
    """The scene's ids, placed and indexed."""
    ids = place(*SCENE)
    refresh()
    return ids


def _pages(client, endpoint, params, pages):
    """Return up to ``pages`` pages of results, and the cursor after them."""
    results, cursor = [], None
    for _ in range(pages):
        query = dict(params) | ({"cursor": cursor} if cursor else {})
        response = client.get(endpoint, query_string=query)
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        assert body["count"] == len(body["results"])
        results.append(body["results"])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    return results, cursor


@pytest.mark.parametrize("name", CASES)
def test_case_matches_the_contract(client, endpoint, scene, name):
    case = CASES[name]
    params = {"category": DEV} | case.params
    unit_m = UNITS_M[params.get("unit", "km")]
    limit = int(params.get("limit", 50))
    expected = _expected(params, scene)

    pages, cursor = _pages(client, endpoint, params, case.pages)

    got = [result for page in pages for result in page]
    seen = expected[: case.pages * limit]
    assert [result["id"] for result in got] == [pid for pid, _ in seen]
    for result, (_, distance_m) in zip(got, seen, strict=True):
        assert result["distance"] * unit_m == pytest.approx(
            distance_m, abs=0.01, rel=1e-9
        )
    assert all(len(page) == limit for page in pages[:-1])
    assert (cursor is None) == (len(expected) <= case.pages * limit)


def test_every_case_has_results_but_the_empty_ones(scene):
    empty = {"nearest-none-within-reach"}
    for name, case in CASES.items():
        params = {"category": DEV} | case.params
        assert bool(_expected(params, scene)) == (name not in empty), name


BACKENDS = ["/nearby/redis", "/nearby/postgis"]


def _get(client, path, **params):
    response = client.get(path, query_string=params)
    return response.status_code, response.get_json(), response.headers


BEYOND_REDIS = {
    "centre-beyond": ({"lon": 20.0, "lat": 86.0, "radius": 50}, "lat"),
    "radius-reaching-beyond": (
        {"lon": SVALBARD[0], "lat": SVALBARD[1], "radius": 1000},
        "radius",
    ),
    "nearest-reaching-beyond": ({"lon": SVALBARD[0], "lat": SVALBARD[1]}, "lat"),
    "box-reaching-beyond": ({"bbox": "0,75,30,88"}, "bbox"),
    "box-centred-beyond": ({"bbox": "0,85.5,30,88"}, "bbox"),
}


@pytest.mark.parametrize("name", BEYOND_REDIS)
def test_searches_beyond_redis_latitudes_go_to_postgis(client, scene, name):
    params, param = BEYOND_REDIS[name]
    params = params | {"category": POLAR}
    expected = [pid for pid, _ in _expected(params, scene)][:50]

    redis_status, redis_body, _ = _get(client, "/nearby/redis", **params)
    postgis_status, postgis_body, _ = _get(client, "/nearby/postgis", **params)
    auto_status, auto_body, auto_headers = _get(client, "/nearby", **params)

    assert redis_status == 400
    assert redis_body["error"]["code"] == "beyond_redis_latitude"
    assert redis_body["error"]["param"] == param
    assert "/nearby/postgis" in redis_body["error"]["message"]
    assert postgis_status == auto_status == 200
    assert [r["id"] for r in postgis_body["results"]] == expected
    assert _id(scene, "north-of-redis") in expected
    assert auto_body == postgis_body
    assert auto_headers["X-Backend"] == "postgis"
    assert "beyond_redis_latitude" in auto_headers["X-Backend-Reason"]


@pytest.mark.parametrize(
    "name", ["radius-reaching-beyond", "nearest-reaching-beyond", "box-reaching-beyond"]
)
def test_redis_serves_areas_reaching_beyond_where_the_category_has_no_one(
    client, scene, name
):
    params = BEYOND_REDIS[name][0] | {"category": DEV}
    expected = [pid for pid, _ in _expected(params, scene)][:50]

    status, body, headers = _get(client, "/nearby", **params)

    assert status == 200
    assert headers["X-Backend"] == "redis"
    assert [r["id"] for r in body["results"]] == expected
    assert expected


def _id(scene, name) -> int:
    return scene[[profile[0] for profile in SCENE].index(name)]


def _cluster(db, center, count, spread_m, category, seed=7):
    """Insert ``count`` profiles within ``spread_m`` of ``center`` in one
    statement; return [(id, lon, lat)]."""
    rng = random.Random(seed)
    points = [
        _near(center, rng.uniform(0, 360), spread_m * math.sqrt(rng.random()))
        for _ in range(count)
    ]
    with db.begin() as conn:
        ids = conn.execute(
            text(
                "INSERT INTO profiles (name, location, categories) "
                "SELECT 'cluster', "
                "ST_SetSRID(ST_MakePoint(lon, lat), 4326)::geography, "
                "ARRAY[CAST(:category AS text)] "
                "FROM unnest(CAST(:lons AS float8[]), CAST(:lats AS float8[])) "
                "WITH ORDINALITY AS t(lon, lat, n) ORDER BY n RETURNING id"
            ),
            {
                "category": category,
                "lons": [lon for lon, _ in points],
                "lats": [lat for _, lat in points],
            },
        ).scalars()
        return [(pid, lon, lat) for pid, (lon, lat) in zip(ids, points, strict=True)]


@pytest.mark.parametrize("path", BACKENDS)
def test_nearest_among_thousands_close_by(client, db, refresh, path):
    members = _cluster(db, PARIS, 3000, 300, DEV)
    refresh()
    expected = sorted(
        (spherical.distance_m(*PARIS, lon, lat), pid) for pid, lon, lat in members
    )[:7]

    status, body, _ = _get(
        client, path, category=DEV, lon=PARIS[0], lat=PARIS[1], limit=7, unit="m"
    )

    assert status == 200
    assert [r["id"] for r in body["results"]] == [pid for _, pid in expected]
    for result, (distance_m, _) in zip(body["results"], expected, strict=True):
        assert result["distance"] == pytest.approx(distance_m, abs=0.01)
    assert body["next_cursor"] is not None


@pytest.fixture
def client_with(settings, db, redis_client):
    """Make a client of an app whose settings differ from the tests' ones."""
    apps = []

    def make(**changes):
        app = create_app(settings.model_copy(update=changes))
        apps.append(app)
        return app.test_client()

    yield make
    for app in apps:
        app.extensions["nearby"].engine.dispose()


@pytest.fixture
def capped_client(client_with):
    """A client of an app that lets a radius or box cover at most 100 members."""
    return client_with(max_scan_members=100)


AREAS = {
    "radius": {"lon": PARIS[0], "lat": PARIS[1], "radius": 5},
    "bbox": {"bbox": "2.2,48.7,2.5,49.0"},
}


@pytest.mark.parametrize("path", BACKENDS)
@pytest.mark.parametrize("shape", AREAS)
def test_area_holding_more_than_the_cap_is_refused(
    capped_client, db, refresh, path, shape
):
    _cluster(db, PARIS, 101, 3000, DEV)
    refresh()

    status, body, _ = _get(capped_client, path, category=DEV, **AREAS[shape])

    assert status == 400
    assert body["error"]["code"] == "area_too_large"
    assert body["error"]["param"] == shape
    assert "100" in body["error"]["message"]


@pytest.mark.parametrize("path", BACKENDS)
@pytest.mark.parametrize("shape", AREAS)
def test_area_holding_the_cap_is_served(capped_client, db, refresh, path, shape):
    _cluster(db, PARIS, 100, 3000, DEV)
    _cluster(db, (2.0, 45.0), 500, 3000, DEV, seed=8)
    refresh()

    status, body, _ = _get(
        capped_client, path, category=DEV, limit=1000, **AREAS[shape]
    )

    assert status == 200
    assert body["count"] == 100


@pytest.mark.parametrize("path", BACKENDS)
def test_nearest_is_not_capped(capped_client, db, refresh, path):
    _cluster(db, PARIS, 300, 3000, DEV)
    refresh()

    status, body, _ = _get(
        capped_client, path, category=DEV, lon=PARIS[0], lat=PARIS[1], limit=200
    )

    assert status == 200
    assert body["count"] == 200


@pytest.mark.parametrize("path", BACKENDS)
def test_cursor_of_another_query_is_refused(client, scene, path):
    params = {"lon": PARIS[0], "lat": PARIS[1], "radius": 5, "limit": 2}
    _, first, _ = _get(client, path, category=DEV, **params)

    status, body, _ = _get(
        client,
        path,
        category=DEV,
        **(params | {"radius": 6}),
        cursor=first["next_cursor"],
    )

    assert status == 400
    assert body["error"]["param"] == "cursor"
    assert "another query" in body["error"]["message"]


@pytest.mark.parametrize("path", BACKENDS)
def test_cursor_survives_a_change_of_limit_unit_and_format(client, scene, path):
    params = {"category": DEV, "lon": PARIS[0], "lat": PARIS[1]}
    expected = [pid for pid, _ in _expected(params | {"radius": 5}, scene)]
    _, first, _ = _get(client, path, **params, radius=5, limit=2)

    status, second, _ = _get(
        client,
        path,
        **params,
        radius=5000,
        unit="m",
        limit=5,
        format="geojson",
        cursor=first["next_cursor"],
    )

    assert status == 200
    second = {"results": second["features"]}
    assert [r["id"] for r in first["results"] + second["results"]] == expected[:7]
    assert len(expected) > 7


@pytest.mark.parametrize(("first", "second"), [BACKENDS, BACKENDS[::-1]])
def test_a_cursor_of_one_backend_pages_on_the_other(client, scene, first, second):
    params = {
        "category": DEV,
        "lon": PARIS[0],
        "lat": PARIS[1],
        "radius": 5,
        "limit": 3,
    }
    expected = [pid for pid, _ in _expected(params, scene)]
    _, page1, _ = _get(client, first, **params)

    _, page2, _ = _get(client, second, **params, cursor=page1["next_cursor"])

    assert [r["id"] for r in page1["results"] + page2["results"]] == expected[:6]


@pytest.mark.parametrize("path", BACKENDS)
def test_pages_stop_at_the_result_window(client_with, db, refresh, path):
    client = client_with(max_result_window=1000)
    _cluster(db, PARIS, 1001, 2000, DEV)
    refresh()
    params = {"category": DEV, "lon": PARIS[0], "lat": PARIS[1], "limit": 1000}
    _, first, _ = _get(client, path, **params)

    status, body, _ = _get(client, path, **params, cursor=first["next_cursor"])

    assert status == 400
    assert body["error"]["param"] == "cursor"
    assert "1000 results" in body["error"]["message"]
    assert first["count"] == 1000


@pytest.mark.parametrize("path", BACKENDS)
def test_the_page_that_reaches_the_result_window_ends_there(
    client_with, db, refresh, path
):
    client = client_with(max_result_window=1000)
    cluster = _cluster(db, PARIS, 1001, 2000, DEV)
    refresh()
    params = {"category": DEV, "lon": PARIS[0], "lat": PARIS[1], "limit": 600}
    nearest = sorted(
        (spherical.distance_m(*PARIS, lon, lat), pid) for pid, lon, lat in cluster
    )
    _, first, _ = _get(client, path, **params)

    _, second, _ = _get(client, path, **params, cursor=first["next_cursor"])
    status, third, _ = _get(client, path, **params, cursor=second["next_cursor"])

    ids = [hit["id"] for hit in first["results"] + second["results"]]
    assert first["count"] == 600
    assert second["count"] == 400
    assert set(ids) == {pid for _, pid in nearest[:1000]}
    assert status == 400
    assert third["error"]["param"] == "cursor"


GEOJSON_ASKS = [
    pytest.param({"format": "geojson"}, {}, id="format"),
    pytest.param({}, {"Accept": "application/geo+json"}, id="accept"),
    pytest.param(
        {},
        {"Accept": "text/html;q=0.9, application/geo+json"},
        id="accept-among-others",
    ),
]


@pytest.mark.parametrize("path", ["/nearby/redis", "/nearby/postgis", "/nearby"])
@pytest.mark.parametrize(("params", "headers"), GEOJSON_ASKS)
def test_geojson_is_a_feature_collection_of_points(
    client, scene, path, params, headers
):
    query = {"category": DEV, "lon": PARIS[0], "lat": PARIS[1], "radius": 5, "limit": 4}
    expected = _expected(query, scene)[:4]
    by_id = dict(zip(scene, SCENE, strict=True))

    response = client.get(path, query_string=query | params, headers=headers)

    assert response.status_code == 200
    assert response.mimetype == "application/geo+json"
    body = response.get_json(force=True)
    assert body["type"] == "FeatureCollection"
    assert [feature["id"] for feature in body["features"]] == [p for p, _ in expected]
    for feature, (pid, distance_m) in zip(body["features"], expected, strict=True):
        name, lon, lat, _ = by_id[pid]
        assert feature["type"] == "Feature"
        assert feature["geometry"] == {"type": "Point", "coordinates": [lon, lat]}
        assert feature["properties"]["name"] == name
        assert feature["properties"]["distance"] * 1000 == pytest.approx(
            distance_m, abs=0.01
        )
    assert body["next_cursor"] is not None


def test_format_json_wins_over_accept(client, scene):
    response = client.get(
        "/nearby/redis",
        query_string={"category": DEV, "lon": 2.35, "lat": 48.85, "format": "json"},
        headers={"Accept": "application/geo+json"},
    )

    assert response.mimetype == "application/json"
    assert "results" in response.get_json()


def test_redis_answers_say_the_index_age_and_how_long_to_cache(client, scene, settings):
    status, body, headers = _get(client, "/nearby/redis", category=DEV, lon=2, lat=48)

    assert status == 200
    assert headers["X-Backend"] == "redis" == body["backend"]
    age_s = int(headers["X-Index-Age"])
    assert 0 <= age_s <= 5
    max_age_s = int(headers["Cache-Control"].removeprefix("max-age="))
    assert settings.refresh_interval_seconds - age_s - 1 <= max_age_s
    assert max_age_s <= settings.refresh_interval_seconds


def test_postgis_answers_are_not_cached(client, scene):
    status, body, headers = _get(client, "/nearby/postgis", category=DEV, lon=2, lat=48)

    assert status == 200
    assert headers["X-Backend"] == "postgis" == body["backend"]
    assert headers["Cache-Control"] == "no-cache"
    assert "X-Index-Age" not in headers


def test_nearby_uses_postgis_until_the_index_is_built(client, place):
    (pid,) = place(("only", *PARIS, [DEV]))

    status, body, headers = _get(client, "/nearby", category=DEV, lon=2.35, lat=48.85)

    assert status == 200
    assert headers["X-Backend"] == "postgis" == body["backend"]
    assert headers["X-Backend-Reason"].startswith("index_not_ready")
    assert [r["id"] for r in body["results"]] == [pid]


def test_nearby_uses_redis_once_the_index_is_built(client, scene):
    status, body, headers = _get(client, "/nearby", category=DEV, lon=2.35, lat=48.85)

    assert status == 200
    assert headers["X-Backend"] == "redis" == body["backend"]
    assert "X-Backend-Reason" not in headers


def test_nearby_uses_postgis_for_a_category_newer_than_the_index(client, scene, place):
    (pid,) = place(("newcomer", *PARIS, ["astronomers"]))

    status, body, headers = _get(
        client, "/nearby", category="astronomers", lon=2.35, lat=48.85
    )

    assert status == 200
    assert headers["X-Backend"] == "postgis"
    assert headers["X-Backend-Reason"].startswith("unknown_category")
    assert [r["id"] for r in body["results"]] == [pid]


def test_nearby_uses_postgis_when_redis_is_down(client_with, scene):
    client = client_with(redis_url="redis://127.0.0.1:1/0")

    status, body, headers = _get(client, "/nearby", category=DEV, lon=2.35, lat=48.85)

    assert status == 200
    assert headers["X-Backend"] == "postgis"
    assert headers["X-Backend-Reason"].startswith("backend_unavailable")
    assert body["count"] > 0


def test_nearby_answers_404_for_a_category_no_one_has(client, scene):
    status, body, _ = _get(client, "/nearby", category="astronauts", lon=2, lat=48)

    assert status == 404
    assert body["error"]["code"] == "unknown_category"


@pytest.mark.parametrize("path", ["/nearby/redis", "/nearby/postgis", "/nearby"])
def test_any_unknown_category_of_several_is_a_404_naming_it(client, scene, path):
    status, body, _ = _get(
        client, path, category=f"{DEV},astronauts", lon=2.35, lat=48.85
    )

    assert status == 404
    assert "astronauts" in body["error"]["message"]


@pytest.mark.parametrize("path", BACKENDS)
def test_whole_degree_coordinates_stay_decimals_and_page(client, place, refresh, path):
    ids = place(
        ("null-island", 0.0, 0.0, [DEV]),
        ("null-island-twin", 0.0, 0.0, [DEV]),
        ("one-east", 1.0, 0.0, [DEV]),
    )
    refresh()
    params = {"category": DEV, "lon": 0, "lat": 0, "radius": 200, "limit": 1}

    pages, cursor = _pages(client, path, params, 4)

    results = [result for page in pages for result in page]
    assert [result["id"] for result in results] == ids
    assert cursor is None
    assert all(type(result["lon"]) is float for result in results)
    assert all(type(result["lat"]) is float for result in results)


@pytest.mark.parametrize("lat", [85.05112878, -85.05112878])
def test_a_profile_at_the_redis_limit_itself_is_served_by_postgis(
    client, place, refresh, lat
):
    inside, at_limit = place(
        ("just-inside", 20.0, math.copysign(85.0511287, lat), ["limit"]),
        ("at-limit", 20.0, lat, ["limit"]),
    )
    refresh()
    params = {"category": "limit", "lon": 20, "lat": math.copysign(84, lat)}

    redis_status, redis_body, _ = _get(client, "/nearby/redis", **params, radius=200)
    status, body, headers = _get(client, "/nearby", **params, radius=200)

    assert redis_status == 400
    assert redis_body["error"]["code"] == "beyond_redis_latitude"
    assert status == 200
    assert headers["X-Backend"] == "postgis"
    assert sorted(r["id"] for r in body["results"]) == [inside, at_limit]


@pytest.mark.parametrize("path", BACKENDS)
@pytest.mark.parametrize("center_lon", [180.0, -180.0])
def test_longitudes_180_and_minus_180_are_one_point_ordered_by_id(
    client, place, refresh, path, center_lon
):
    ids = place(
        ("east", 180.0, 0.0, [DEV]),
        ("west", -180.0, 0.0, [DEV]),
        ("near", 179.9, 0, [DEV]),
    )
    refresh()
    params = {"category": DEV, "lon": center_lon, "lat": 0, "limit": 1}

    pages, _ = _pages(client, path, params, 3)

    results = [result for page in pages for result in page]
    assert [result["id"] for result in results] == ids
    assert [result["distance"] for result in results[:2]] == [0.0, 0.0]


@pytest.mark.parametrize(("first", "second"), [BACKENDS, BACKENDS[::-1]])
def test_pages_across_backends_keep_every_profile_near_the_antipode(
    client, place, refresh, first, second
):
    spot = (10.5, 20.25)
    antipode = (spot[0] - 180, -spot[1])
    profiles = [(f"tie-{n}", *spot, [DEV]) for n in range(4)]
    profiles += [
        (f"nearer-{n}", *_near(spot, 90, 0.01 * (n + 1)), [DEV]) for n in range(4)
    ]
    ids = place(*profiles)
    refresh()
    expected = sorted(
        (spherical.distance_m(*antipode, lon, lat), pid)
        for pid, (_, lon, lat, _) in zip(ids, profiles, strict=True)
    )
    params = {"category": DEV, "lon": antipode[0], "lat": antipode[1]}
    params |= {"radius": 20030, "limit": 3}

    _, page1, _ = _get(client, first, **params)
    _, page2, _ = _get(client, second, **params, cursor=page1["next_cursor"])
    _, page3, _ = _get(client, first, **params, cursor=page2["next_cursor"])

    got = [r["id"] for page in (page1, page2, page3) for r in page["results"]]
    assert got == [pid for _, pid in expected]


@pytest.mark.parametrize("path", BACKENDS)
def test_an_unknown_category_is_a_404_before_the_area_is_counted(
    capped_client, db, refresh, path
):
    _cluster(db, PARIS, 150, 3000, DEV)
    refresh()

    status, body, _ = _get(
        capped_client, path, category=f"astronauts,{DEV}", **AREAS["bbox"]
    )

    assert status == 404
    assert "astronauts" in body["error"]["message"]


def test_nearby_serves_a_box_that_only_redis_rectangle_overfills(
    client_with, db, refresh
):
    client = client_with(max_scan_members=100)
    _cluster(db, (10.0, 65.0), 90, 20000, DEV)
    _cluster(db, (27.0, 65.0), 60, 20000, DEV, seed=9)
    refresh()
    params = {"category": DEV, "bbox": "0,0,20,70", "limit": 1000}
    _, postgis_body, _ = _get(client, "/nearby/postgis", **params)
    redis_status, _, _ = _get(client, "/nearby/redis", **params)

    status, body, headers = _get(client, "/nearby", **params)

    assert postgis_body["count"] <= 100
    assert redis_status == 400
    assert status == 200
    assert headers["X-Backend"] == "postgis"
    assert headers["X-Backend-Reason"].startswith("area_too_large")
    assert body["results"] == postgis_body["results"]


@pytest.mark.parametrize(
    "accept",
    ["application/geo+json;q=0", "application/json, application/geo+json;q=0.1", "*/*"],
)
def test_accept_quality_values_decide_the_format(client, scene, accept):
    response = client.get(
        "/nearby/postgis",
        query_string={"category": DEV, "lon": 2.35, "lat": 48.85},
        headers={"Accept": accept},
    )

    assert response.mimetype == "application/json"


@pytest.mark.parametrize("path", ["/nearby", "/nearby/redis", "/categories", "/health"])
def test_options_is_a_json_405(client, path):
    response = client.options(path)

    assert response.status_code == 405
    assert response.get_json()["error"]["code"] == "method_not_allowed"


def test_backend_reason_is_ascii(client, scene):
    params = {"category": POLAR, "lon": 20.0, "lat": 89.0}

    response = client.get("/nearby", query_string=params)

    assert response.status_code == 200
    response.headers["X-Backend-Reason"].encode("ascii")


@pytest.mark.parametrize("path", BACKENDS)
def test_a_cursor_pages_on_with_the_radius_in_another_unit(client, scene, path):
    params = {"category": DEV, "lon": PARIS[0], "lat": PARIS[1], "limit": 2}
    _, first, _ = _get(client, path, **params, radius=1000, unit="m")

    status, _, _ = _get(
        client,
        path,
        **params,
        radius=1000 / spherical.FEET_M,
        unit="ft",
        cursor=first["next_cursor"],
    )

    assert status == 200


@pytest.mark.parametrize("path", BACKENDS)
def test_a_forged_cursor_is_refused(client, scene, path):
    params = {
        "category": DEV,
        "lon": PARIS[0],
        "lat": PARIS[1],
        "radius": 5,
        "limit": 2,
    }
    _, first, _ = _get(client, path, **params)
    raw = base64.urlsafe_b64decode(first["next_cursor"] + "==")
    forged = raw[:16] + json.dumps([2, 1, 2**40, PARIS[0], PARIS[1]]).encode()
    cursor = base64.urlsafe_b64encode(forged).rstrip(b"=").decode()

    status, body, _ = _get(client, path, **params, cursor=cursor)

    assert status == 400
    assert body["error"]["param"] == "cursor"


SIGNED_PAYLOADS = {
    "offset-text": ["x", 7, PARIS[0], PARIS[1]],
    "offset-null": [None, 7, PARIS[0], PARIS[1]],
    "offset-fraction": [1.5, 7, PARIS[0], PARIS[1]],
    "offset-zero": [0, 7, PARIS[0], PARIS[1]],
    "offset-negative": [-5, 7, PARIS[0], PARIS[1]],
    "offset-huge-negative": [-99999999999, 7, PARIS[0], PARIS[1]],
    "offset-true": [True, 7, PARIS[0], PARIS[1]],
    "id-text": [2, "abc", PARIS[0], PARIS[1]],
    "id-true": [2, True, PARIS[0], PARIS[1]],
    "id-past-bigint": [2, 2**63, PARIS[0], PARIS[1]],
    "id-negative": [2, -1, PARIS[0], PARIS[1]],
    "lon-null": [2, 7, None, PARIS[1]],
    "lon-text": [2, 7, "a", PARIS[1]],
    "lon-list": [2, 7, [1], PARIS[1]],
    "lat-object": [2, 7, PARIS[0], {}],
    "lon-off-the-globe": [2, 7, 180.5, PARIS[1]],
    "lat-off-the-globe": [2, 7, PARIS[0], -90.01],
    "too-few-fields": [2, 7, PARIS[0]],
}


def _signed_cursor(app, params: dict, fields: list) -> str:
    """Sign ``fields`` as a cursor of ``params`` with the app's own key, as
    someone who knows the key could."""
    key = app.extensions["nearby"].settings.cursor_key
    digest = parse_nearby(params).digest()
    payload = json.dumps([2, *fields]).encode()
    mac = hashlib.blake2b(digest + payload, key=key, digest_size=16).digest()
    return base64.urlsafe_b64encode(mac + payload).rstrip(b"=").decode()


@pytest.mark.parametrize("path", [*BACKENDS, "/nearby"])
@pytest.mark.parametrize("fields", SIGNED_PAYLOADS.values(), ids=SIGNED_PAYLOADS)
def test_a_signed_cursor_that_names_no_result_is_a_400(
    app, client, scene, path, fields
):
    params = {"category": DEV, "lon": PARIS[0], "lat": PARIS[1], "radius": 5}
    cursor = _signed_cursor(
        app, {key: str(value) for key, value in params.items()}, fields
    )

    status, body, _ = _get(client, path, **params, limit=2, cursor=cursor)

    assert status == 400
    assert body["error"]["code"] == "bad_parameter"
    assert body["error"]["param"] == "cursor"


@pytest.mark.parametrize("path", BACKENDS)
def test_a_cursor_signed_outside_the_service_that_names_a_result_pages_on(
    app, client, scene, path
):
    params = {"category": DEV, "lon": PARIS[0], "lat": PARIS[1], "radius": 5}
    everything = [pid for pid, _ in _expected(params, scene)]
    _, first, _ = _get(client, path, **params, limit=3)
    last = first["results"][-1]
    cursor = _signed_cursor(
        app,
        {key: str(value) for key, value in params.items()},
        [3, last["id"], last["lon"], last["lat"]],
    )

    status, body, _ = _get(client, path, **params, limit=50, cursor=cursor)

    assert status == 200
    assert [hit["id"] for hit in body["results"]] == everything[3:]


@pytest.mark.parametrize("path", [*BACKENDS, "/nearby"])
def test_a_radius_too_large_to_measure_is_a_400(client, scene, path):
    status, body, _ = _get(
        client, path, category=DEV, lon=PARIS[0], lat=PARIS[1], radius="1e308"
    )

    assert status == 400
    assert body["error"]["param"] == "radius"
    assert "too large" in body["error"]["message"]
