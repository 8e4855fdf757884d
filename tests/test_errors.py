"""Every bad request and failing dependency gets a JSON error, never a 500."""

import socket
import threading
import time

import pytest
from sqlalchemy.engine import make_url

from nearby import geoindex
from nearby.app import create_app
from nearby.db import PING_AFTER_IDLE_S

GOOD = {"lat": "48.85", "lon": "2.35", "radius": "5", "category": "developers"}
ENDPOINTS = ["/nearby/redis", "/nearby/postgis"]


def _with(**changes):
    params = dict(GOOD)
    for name, value in changes.items():
        if value is None:
            params.pop(name)
        else:
            params[name] = value
    return params


BOX = {"bbox": "2,48,3,49", "lat": "48.5", "category": "developers"}


def _box(**changes):
    params = {"bbox": "2,48,3,49", "category": "developers"}
    params.update(changes)
    return params


BAD_REQUESTS = [
    pytest.param(_with(lat=None), "lat", id="lat-missing"),
    pytest.param(_with(lon=None), "lon", id="lon-missing"),
    pytest.param(_with(category=None), "category", id="category-missing"),
    pytest.param(_with(lat="abc"), "lat", id="lat-not-a-number"),
    pytest.param(_with(lat="NaN"), "lat", id="lat-nan"),
    pytest.param(_with(lon="inf"), "lon", id="lon-inf"),
    pytest.param(_with(lon="-Infinity"), "lon", id="lon-minus-infinity"),
    pytest.param(_with(radius="1e400"), "radius", id="radius-overflows"),
    pytest.param(_with(lat="0x10"), "lat", id="lat-hex"),
    pytest.param(_with(lat="1_0"), "lat", id="lat-underscore"),
    pytest.param(_with(lat=" 5"), "lat", id="lat-space"),
    pytest.param(_with(lat="\u0663"), "lat", id="lat-arabic-digit"),
    pytest.param(_with(lat=""), "lat", id="lat-empty"),
    pytest.param(_with(lat="90.0001"), "lat", id="lat-above-90"),
    pytest.param(_with(lat="-90.5"), "lat", id="lat-below-minus-90"),
    pytest.param(_with(lon="180.01"), "lon", id="lon-above-180"),
    pytest.param(_with(lon="-181"), "lon", id="lon-below-minus-180"),
    pytest.param(_with(radius="0"), "radius", id="radius-zero"),
    pytest.param(_with(radius="-3"), "radius", id="radius-negative"),
    pytest.param(_with(radius="4.9e-324", unit="ft"), "radius", id="radius-underflow"),
    pytest.param(_with(unit="yd"), "unit", id="unit-unknown"),
    pytest.param(_with(unit="KM"), "unit", id="unit-upper-case"),
    pytest.param(_with(limit="0"), "limit", id="limit-zero"),
    pytest.param(_with(limit="1001"), "limit", id="limit-too-large"),
    pytest.param(_with(limit="2.5"), "limit", id="limit-fraction"),
    pytest.param(_with(limit="ten"), "limit", id="limit-word"),
    pytest.param(_with(category="Python"), "category", id="category-upper-case"),
    pytest.param(_with(category="py--dev"), "category", id="category-double-hyphen"),
    pytest.param(_with(category="-py"), "category", id="category-leading-hyphen"),
    pytest.param(_with(category="py_dev"), "category", id="category-underscore"),
    pytest.param(_with(category="a" * 65), "category", id="category-too-long"),
    pytest.param(_with(category=""), "category", id="category-empty"),
    pytest.param(_with(category="caf\u00e9"), "category", id="category-non-ascii"),
    pytest.param(_with(radius_km="5"), "radius_km", id="unknown-parameter"),
    pytest.param(_with(category="developers,"), "category", id="category-list-empty"),
    pytest.param(_with(category="a,B"), "category", id="category-list-bad-slug"),
    pytest.param(
        _with(category=",".join(f"c{n}" for n in range(21))),
        "category",
        id="category-list-too-long",
    ),
    pytest.param(BOX, "lat", id="bbox-with-lat"),
    pytest.param(_box(bbox="1,2,3"), "bbox", id="bbox-three-numbers"),
    pytest.param(_box(bbox="1,2,3,4,5"), "bbox", id="bbox-five-numbers"),
    pytest.param(_box(bbox="1,2,x,4"), "bbox", id="bbox-not-a-number"),
    pytest.param(_box(bbox="1,2,nan,4"), "bbox", id="bbox-nan"),
    pytest.param(_box(bbox="-181,2,3,4"), "bbox", id="bbox-west-below-minus-180"),
    pytest.param(_box(bbox="1,2,3,91"), "bbox", id="bbox-north-above-90"),
    pytest.param(_box(bbox="1,5,3,4"), "bbox", id="bbox-south-above-north"),
    pytest.param(_box(bbox=""), "bbox", id="bbox-empty"),
    pytest.param(_box(bbox="1,2,3,4", radius="5"), "radius", id="bbox-with-radius"),
    pytest.param(_with(lat=None, lon=None), "lat", id="no-centre-and-no-bbox"),
    pytest.param(_with(cursor="!!"), "cursor", id="cursor-not-base64"),
    pytest.param(_with(cursor="abcd"), "cursor", id="cursor-not-ours"),
    pytest.param(_with(cursor="W10"), "cursor", id="cursor-empty-list"),
    pytest.param(_with(cursor="a" * 300), "cursor", id="cursor-too-long"),
    pytest.param(_with(format="xml"), "format", id="format-unknown"),
]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize(("params", "param"), BAD_REQUESTS)
def test_bad_parameter_is_a_400_naming_it(client, endpoint, params, param):
    response = client.get(endpoint, query_string=params)

    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "bad_parameter"
    assert error["param"] == param
    assert param in error["message"]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_repeated_parameter_is_a_400(client, endpoint):
    response = client.get(f"{endpoint}?lat=1&lat=2&lon=2&radius=5&category=developers")

    assert response.status_code == 400
    assert response.get_json()["error"]["param"] == "lat"
    assert "once" in response.get_json()["error"]["message"]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize(
    ("name", "value"),
    [("lat", "-90"), ("lat", "90"), ("lon", "-180"), ("lon", "180"), ("limit", "1000")],
)
def test_bounds_themselves_are_accepted(client, place, refresh, endpoint, name, value):
    place(("dev", 0.0, 0.0, ["developers"]))
    refresh()
    params = _with(**{name: value})
    if endpoint == "/nearby/redis" and name == "lat":
        params["lat"] = "85.05112878" if value == "90" else "-85.05112878"

    response = client.get(endpoint, query_string=params)

    assert response.status_code == 200, response.get_json()


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_unknown_category_is_a_404(client, place, refresh, endpoint):
    place(("dev", 2.35, 48.85, ["developers"]))
    refresh()

    response = client.get(endpoint, query_string=_with(category="astronauts"))

    assert response.status_code == 404
    error = response.get_json()["error"]
    assert error["code"] == "unknown_category"
    assert error["param"] == "category"


def test_redis_before_the_first_refresh_is_a_503(client, place):
    place(("dev", 2.35, 48.85, ["developers"]))

    response = client.get("/nearby/redis", query_string=GOOD)

    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "index_not_ready"
    assert response.headers["Retry-After"].isdigit()


def test_unknown_route_and_method_are_json(client):
    missing = client.get("/nearby/elsewhere")
    wrong_method = client.post("/nearby/redis", query_string=GOOD)

    assert missing.status_code == 404
    assert missing.get_json()["error"]["code"] == "not_found"
    assert wrong_method.status_code == 405
    assert wrong_method.get_json()["error"]["code"] == "method_not_allowed"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def silent_server():
    """A TCP server on loopback that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted = []
    stop = threading.Event()

    def serve():
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    server.close()


def _timed_get(app, endpoint):
    started = time.monotonic()
    response = app.test_client().get(endpoint, query_string=GOOD)
    return response, time.monotonic() - started


@pytest.mark.parametrize(
    ("endpoint", "setting"),
    [("/nearby/redis", "redis_url"), ("/nearby/postgis", "database_url")],
)
def test_unreachable_backend_is_a_fast_503(settings, endpoint, setting):
    port = _closed_port()
    urls = {
        "redis_url": f"redis://127.0.0.1:{port}/0",
        "database_url": f"postgresql+psycopg2://nearby:nearby@127.0.0.1:{port}/nearby",
    }
    app = create_app(settings.model_copy(update={setting: urls[setting]}))

    response, seconds = _timed_get(app, endpoint)

    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "backend_unavailable"
    assert response.headers["Retry-After"].isdigit()
    assert seconds < 1.0
    assert str(port) not in response.get_json()["error"]["message"]


def test_silent_redis_is_a_503_within_a_second(settings, silent_server):
    app = create_app(
        settings.model_copy(
            update={"redis_url": f"redis://127.0.0.1:{silent_server}/0"}
        )
    )

    response, seconds = _timed_get(app, "/nearby/redis")

    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "backend_unavailable"
    assert seconds < 1.0


def test_health_reports_each_dependency(settings, client, place, refresh):
    place(("dev", 2.35, 48.85, ["developers"]))
    before = client.get("/health")
    refresh()
    after = client.get("/health")
    down = (
        create_app(
            settings.model_copy(
                update={"redis_url": f"redis://127.0.0.1:{_closed_port()}/0"}
            )
        )
        .test_client()
        .get("/health")
    )

    assert before.status_code == 503
    assert before.headers["Retry-After"].isdigit()
    assert before.get_json()["index"]["built"] is False
    assert after.status_code == 200
    assert after.get_json()["index"]["built"] is True
    assert 0 <= after.get_json()["index"]["age_seconds"] < 60
    assert down.status_code == 503
    assert down.get_json()["redis"]["ok"] is False
    assert down.get_json()["postgis"]["ok"] is True
    assert down.get_json()["index"]["built"] is None


def test_missing_table_is_a_503(settings, engine, client):
    with engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE profiles RENAME TO profiles_away")
    try:
        response = client.get("/nearby/postgis", query_string=GOOD)
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE profiles_away RENAME TO profiles")

    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "schema_missing"


def test_error_reply_from_redis_is_a_503(client, place, refresh, redis_client):
    place(("dev", 2.35, 48.85, ["developers"]))
    refresh()
    redis_client.set(geoindex.geo_key("developers"), "not a GEO set")

    response = client.get("/nearby/redis", query_string=GOOD)

    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "backend_unavailable"


@pytest.fixture
def reader_without_privileges(settings, engine):
    """A database URL for a role that may connect but not read profiles."""
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP ROLE IF EXISTS nearby_test_noperm")
        conn.exec_driver_sql("CREATE ROLE nearby_test_noperm LOGIN PASSWORD 'noperm'")
    url = make_url(settings.database_url).set(
        username="nearby_test_noperm", password="noperm"
    )
    yield url.render_as_string(hide_password=False)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP ROLE nearby_test_noperm")


def test_refused_query_is_a_503_and_health_says_so(
    settings, db, reader_without_privileges, caplog
):
    app = create_app(
        settings.model_copy(update={"database_url": reader_without_privileges})
    )

    response = app.test_client().get("/nearby/postgis", query_string=GOOD)
    health = app.test_client().get("/health")

    assert response.status_code == 503
    message = response.get_json()["error"]["message"]
    assert message.startswith("postgis is unavailable")
    assert "permission denied" not in message
    assert "permission denied" in caplog.text
    assert health.status_code == 503
    assert health.get_json()["postgis"]["ok"] is False
    assert "permission denied" in health.get_json()["postgis"]["error"]


def test_missing_column_is_a_503_and_health_says_so(engine, client):
    with engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE profiles RENAME COLUMN city TO town")
    try:
        response = client.get("/nearby/postgis", query_string=GOOD)
        health = client.get("/health")
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE profiles RENAME COLUMN town TO city")

    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "schema_missing"
    assert health.status_code == 503
    assert health.get_json()["postgis"]["ok"] is False


@pytest.fixture
def freezable_proxy(settings):
    """A TCP relay to the test PostgreSQL that can stop relaying on demand.

    Yields ``(url, freeze)``: the database URL through the relay, and an Event
    that, once set, makes the relay hold every byte, as a server that stopped
    answering would (its connections stay open).
    """
    target = make_url(settings.database_url)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.1)
    freeze = threading.Event()
    stop = threading.Event()
    sockets = []

    def pump(source, sink):
        source.settimeout(0.1)
        while not stop.is_set():
            if freeze.is_set():
                time.sleep(0.05)
                continue
            try:
                data = source.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            # Bytes read just before the freeze wait for the thaw too.
            while freeze.is_set() and not stop.is_set():
                time.sleep(0.05)
            try:
                sink.sendall(data)
            except OSError:
                return

    def serve():
        while not stop.is_set():
            try:
                client_side, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            server_side = socket.create_connection((target.host, target.port))
            sockets.extend([client_side, server_side])
            for source, sink in (
                (client_side, server_side),
                (server_side, client_side),
            ):
                threading.Thread(target=pump, args=(source, sink), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    port = listener.getsockname()[1]
    url = target.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)
    yield url, freeze
    stop.set()
    for sock in sockets:
        sock.close()
    listener.close()


@pytest.mark.parametrize(
    "idle_s", [0.0, PING_AFTER_IDLE_S + 0.2], ids=["trusted", "pinged"]
)
def test_postgis_that_stops_answering_is_a_503_within_the_deadline(
    settings, db, place, freezable_proxy, idle_s
):
    url, freeze = freezable_proxy
    place(("dev", 2.35, 48.85, ["developers"]))
    app = create_app(settings.model_copy(update={"database_url": url}))
    warm = app.test_client().get("/nearby/postgis", query_string=GOOD)
    freeze.set()
    time.sleep(idle_s)

    response, seconds = _timed_get(app, "/nearby/postgis")
    health = app.test_client().get("/health")

    assert warm.status_code == 200
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "backend_unavailable"
    assert seconds < settings.query_deadline_seconds + 0.5
    assert health.status_code == 503
    assert health.get_json()["postgis"]["ok"] is False
