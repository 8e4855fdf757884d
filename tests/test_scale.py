"""/nearby/redis and /nearby/postgis agree on random requests over a million profiles.

The profiles are the loader's, of a fixed seed (the ``scale_data`` fixture;
``NEARBY_SCALE_PROFILES`` sets how many). :data:`REQUESTS` requests, drawn
with a fixed seed, centre where profiles live (on profiles drawn at random,
some near the antimeridian) and on random points, and mix every shape:
circles of 100 m to 400 km, nearest searches of every limit, boxes from a few
hundred metres to the whole world, some across the antimeridian. They ask for
one category or several, drawn from the smallest, the median and the largest
ones (large boxes mostly for crowds: several large categories, or a family with
its specialties, which share profiles, so that some pass MAX_SCAN_MEMBERS); in
every unit; and on a good share follow ``next_cursor`` for one to three more
pages, the cursors of Redis and of PostGIS in turn, each given to both.

Agreement: the same status and error code; the same ids in the same order,
distances within 1 m of each other; the same ``next_cursor``. The one
exemption is a profile within 1 m of the area's boundary (a circle, a box's
edges), where rounding may put it on either side: one backend may return it
and the other not. Such profiles are left out of both answers before they are
compared, and a full page may end earlier by as many results as it lost that
way (its cursor then differs, and the next page starts from one of the two).

One difference of status is known, and allowed only as it is documented: Redis
refuses (``area_too_large``) a box whose search rectangle, which encloses it,
holds more than MAX_SCAN_MEMBERS profiles, while PostGIS counts the box's own
and serves it. By counts made here, the box must then hold no more than the
cap and the rectangle more; such boxes are listed in the summary and must stay
rare.

On a sample of requests every result is also checked against
:mod:`tests.spherical` (its distance from the centre, and that it lies in the
area), and on a smaller one the first page against the nearest members
computed here from every member of the categories. The run prints a summary:
the seconds of the load, the refresh and the requests, what was compared, and
each backend's latencies.
"""

import math
import random
import statistics
import time
from dataclasses import dataclass
from dataclasses import field

import pytest
from sqlalchemy import text

from nearby import taxonomy
from nearby.app import create_app
from tests import spherical
from tests import truth

pytestmark = pytest.mark.scale

REQUESTS = 1000
SEED = 20240611
TOLERANCE_M = 1.0
NEAREST_MAX_M = 1_000_000.0
"""The default greatest radius of a nearest search, KNN_MAX_RADIUS_KM."""
DEFAULT_LIMIT = 50
MAX_SCAN_MEMBERS = 50_000
"""The default MAX_SCAN_MEMBERS: most profiles a radius or a box may hold."""
STATEMENT_TIMEOUT_S = 0.8
"""The default STATEMENT_TIMEOUT_MS, in seconds, which the summary counts
requests against; this suite runs with a longer one."""
MAX_CATEGORIES = 20

UNITS_M = {"m": 1.0, "km": 1000.0, "mi": spherical.MILE_M, "ft": spherical.FEET_M}
LIMITS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, None]
CENTRE_PROFILES = 4000
ANTIMERIDIAN_LON = 175.0
"""Profiles east or west of this longitude centre the antimeridian's requests."""
LARGE_BOX_DEG = 40.0
"""Boxes this wide or wider ask, mostly, for many members of large categories."""
REDIS_SAFE_LAT = 85.0
"""Random centres stay within this latitude, which Redis can search around."""

PAGING_SHARE = 0.4
INDEPENDENT_SHARE = 0.25
EXHAUSTIVE_SHARE = 0.1
EXHAUSTIVE_MAX_MEMBERS = 6000
"""Exhaustive checks read every member of categories this large at most."""


@dataclass(frozen=True)
class Request:
    """One drawn request: its query string and the area it asks for.

    ``center`` is ``(lon, lat)``; ``radius_m`` bounds a circle or a nearest
    search; ``box`` is ``(west, south, east, north)``.
    """

    params: dict
    center: tuple[float, float]
    categories: tuple[str, ...]
    limit: int
    pages: int
    radius_m: float | None = None
    box: tuple[float, float, float, float] | None = None


@dataclass
class Tally:
    """What the run saw, for its assertions and its summary."""

    requests: int = 0
    pages: int = 0
    nonempty: int = 0
    statuses: dict = field(default_factory=dict)
    follow_pages: int = 0
    deepest_page: int = 0
    cursors_equal: int = 0
    cursors_given: dict = field(default_factory=lambda: {"redis": 0, "postgis": 0})
    exempt: int = 0
    rectangle_refusals: list = field(default_factory=list)
    independent: int = 0
    exhaustive: int = 0
    seconds: dict = field(default_factory=lambda: {"redis": [], "postgis": []})
    mismatches: list = field(default_factory=list)


@dataclass(frozen=True)
class Row:
    """One result, its distance in metres."""

    id: int
    distance_m: float
    lon: float
    lat: float


@dataclass(frozen=True)
class Answer:
    """One backend's answer to one page; ``code`` is an error's."""

    status: int
    code: str | None
    rows: list[Row]
    next_cursor: str | None
    center: dict | None


@pytest.fixture(scope="module")
def scale_client(scale_data):
    """A test client of the app on the scale database and Redis database."""
    app = create_app(scale_data.settings)
    yield app.test_client()
    services = app.extensions["nearby"]
    services.engine.dispose()
    services.redis.close()


@pytest.fixture(scope="module")
def places(scale_data):
    """Profiles to centre requests on, and the categories by size.

    The profiles are drawn by id, which runs from 1: the load recreated the
    table.
    """
    rng = random.Random(SEED)
    ids = rng.sample(range(1, scale_data.profiles + 1), CENTRE_PROFILES)
    point = "ST_X(location::geometry), ST_Y(location::geometry), categories"
    with scale_data.engine.connect() as conn:
        drawn = conn.execute(
            text(f"SELECT {point} FROM profiles WHERE id = ANY(:ids) ORDER BY id"),
            {"ids": ids},
        ).all()
        antimeridian = conn.execute(
            text(
                f"SELECT {point} FROM profiles "
                "WHERE abs(ST_X(location::geometry)) >= :lon ORDER BY id"
            ),
            {"lon": ANTIMERIDIAN_LON},
        ).all()
        sizes = conn.execute(
            text(
                "SELECT category, count(*) FROM profiles, unnest(categories) "
                "AS category GROUP BY category ORDER BY count(*), category"
            )
        ).all()

    names = [name for name, _ in sizes]
    groups = {
        "small": names[: len(names) // 4],
        "median": names[2 * len(names) // 5 : 3 * len(names) // 5],
        "large": names[-len(names) // 20 :],
    }
    return drawn, antimeridian, groups, dict(sizes)


def test_both_backends_agree_on_a_million_profiles(
    scale_data, scale_client, places, capsys
):
    started = time.perf_counter()
    drawn, antimeridian, groups, sizes = places
    draws = random.Random(SEED + 1)
    choices = random.Random(SEED + 2)
    tally = Tally()

    for _ in range(REQUESTS):
        request = _draw(draws, drawn, antimeridian, groups)
        _run(scale_client, scale_data.engine, request, choices, sizes, tally)

    test_s = time.perf_counter() - started
    with capsys.disabled():
        print("\n" + _summary(scale_data, tally, test_s))
    assert not tally.mismatches, "\n".join(tally.mismatches[:20])
    assert len(tally.rectangle_refusals) <= 0.01 * REQUESTS, tally.rectangle_refusals
    assert tally.nonempty >= 0.7 * REQUESTS, tally.nonempty
    assert tally.follow_pages >= 0.1 * REQUESTS, tally.follow_pages
    assert min(tally.cursors_given.values()) >= 0.02 * REQUESTS, tally.cursors_given
    assert tally.deepest_page >= 4
    assert tally.statuses.get("200", 0) >= 0.9 * REQUESTS, tally.statuses
    assert tally.independent >= 0.1 * REQUESTS
    assert tally.exhaustive >= 10


# Drawing requests


def _draw(rng, drawn, antimeridian, groups) -> Request:
    where = rng.random()
    if where < 0.8:
        lon, lat, own = rng.choice(drawn)
        if rng.random() < 0.6:
            lon, lat = spherical.destination(
                lon, lat, rng.uniform(0, 360), rng.uniform(0, 3000)
            )
    elif where < 0.9:
        lon, lat, own = rng.choice(antimeridian)
    else:
        (lon, lat), own = _random_point(rng), []
    categories = _categories(rng, own, groups)
    unit = rng.choice(list(UNITS_M))
    limit = rng.choice(LIMITS)
    pages = 1 + rng.randint(1, 3) if rng.random() < PAGING_SHARE else 1

    params = {"category": ",".join(categories), "unit": unit}
    if limit is not None:
        params["limit"] = limit
    common = {
        "categories": tuple(dict.fromkeys(categories)),
        "limit": limit or DEFAULT_LIMIT,
        "pages": pages,
    }

    shape = rng.random()
    if shape < 0.45:
        radius_m = 10 ** rng.uniform(2, math.log10(400_000))
        params |= {"lon": lon, "lat": lat, "radius": radius_m / UNITS_M[unit]}
        return Request(params, (lon, lat), radius_m=radius_m, **common)
    if shape < 0.75:
        params |= {"lon": lon, "lat": lat}
        return Request(params, (lon, lat), radius_m=NEAREST_MAX_M, **common)
    box = _box(rng, lon, lat)
    if _box_span(box) >= LARGE_BOX_DEG and rng.random() < 0.7:
        categories = _crowd(rng, groups["large"])
        params["category"] = ",".join(categories)
        common["categories"] = tuple(categories)
    params["bbox"] = ",".join(repr(edge) for edge in box)
    return Request(params, _box_center(box), box=box, **common)


def _random_point(rng) -> tuple[float, float]:
    """Return ``(lon, lat)`` drawn uniformly on the sphere within Redis's reach."""
    top = math.sin(math.radians(REDIS_SAFE_LAT))
    return rng.uniform(-180, 180), math.degrees(math.asin(rng.uniform(-top, top)))


def _categories(rng, own, groups) -> list[str]:
    """One category or several: the centre's own, and from each size group."""

    def pick():
        group = rng.choice(["small", "median", "large"])
        return rng.choice(groups[group])

    if rng.random() < 0.6:
        if own and rng.random() < 0.7:
            return [rng.choice(own)]
        return [pick()]

    count = rng.randint(2, 4)
    chosen = list(own) if own and rng.random() < 0.3 else []
    if own and not chosen:
        chosen = [rng.choice(own)]
    while len(chosen) < count:
        chosen.append(pick())
    if rng.random() < 0.05:
        chosen.append(chosen[0])
    rng.shuffle(chosen)
    return chosen


def _crowd(rng, large) -> list[str]:
    """Categories with many members: large ones, or families with specialties.

    A family's profiles hold its specialties too, so that one family and its
    commonest specialties have many more members than profiles; two families
    have both.
    """
    kind = rng.random()
    if kind < 0.3:
        return rng.sample(large, rng.randint(2, 4))

    families = [f for f in taxonomy.FAMILIES if f.slug in large]
    first, second = rng.sample(families, 2)
    if kind < 0.8:
        return [first.slug, *first.specialties[: rng.randint(8, MAX_CATEGORIES - 1)]]
    return [first.slug, *first.specialties[:9], second.slug, *second.specialties[:9]]


def _box(rng, lon, lat) -> tuple[float, float, float, float]:
    """Return ``(west, south, east, north)`` of a box around a centre.

    Mostly small, some across the antimeridian, a few large or the world.
    """
    size = rng.random()
    if size < 0.08:
        return (-180.0, -90.0, 180.0, 90.0)
    if size < 0.12:
        half_width = rng.uniform(20, 170)
        half_height = rng.uniform(10, 60)
    else:
        half_width = 10 ** rng.uniform(-2.5, 0.7)
        half_height = half_width * rng.uniform(0.3, 1.5)
        if abs(lon) >= ANTIMERIDIAN_LON and rng.random() < 0.7:
            half_width = max(half_width, 180 - abs(lon) + rng.uniform(0.01, 2))

    west = lon - half_width
    east = lon + half_width
    west = round(west + 360 if west < -180 else west, 6)
    east = round(east - 360 if east > 180 else east, 6)
    south = round(max(-90.0, lat - half_height), 6)
    north = round(min(90.0, lat + half_height), 6)
    return (west, south, east, north)


def _box_span(box) -> float:
    west, _, east, _ = box
    return east - west if west <= east else east - west + 360


def _box_center(box) -> tuple[float, float]:
    west, south, east, north = box
    lon = west + _box_span(box) / 2
    return (lon - 360 if lon >= 180 else lon), (south + north) / 2


# Running and comparing


def _run(client, engine, request, rng, sizes, tally) -> None:
    """Ask both backends for each page of ``request``; record any disagreement.

    Pages after the first follow Redis's cursor and PostGIS's in turn, given
    to both backends. When only one backend gives a next cursor, the page
    after it is asked for too, so that what the other one left out is compared.
    """
    tally.requests += 1
    cursor = None
    page = 0
    while True:
        page += 1
        params = request.params | ({"cursor": cursor} if cursor else {})
        redis_answer = _get(client, "redis", params, tally)
        postgis_answer = _get(client, "postgis", params, tally)
        tally.pages += 1
        tally.deepest_page = max(tally.deepest_page, page)
        if page > 1:
            tally.follow_pages += 1
        else:
            status = _status(redis_answer, postgis_answer)
            tally.statuses[status] = tally.statuses.get(status, 0) + 1
            tally.nonempty += bool(redis_answer.rows or postgis_answer.rows)

        if _refused_for_the_rectangle(engine, request, redis_answer, postgis_answer):
            tally.rectangle_refusals.append(params)
            return
        problem = _disagreement(request, redis_answer, postgis_answer, tally)
        if problem is None and rng.random() < INDEPENDENT_SHARE:
            problem = _independent_problem(request, redis_answer, postgis_answer)
            tally.independent += redis_answer.status == 200
        if (
            problem is None
            and page == 1
            and redis_answer.status == 200
            and sum(sizes[name] for name in request.categories)
            <= EXHAUSTIVE_MAX_MEMBERS
            and rng.random() < EXHAUSTIVE_SHARE
        ):
            problem = _exhaustive_problem(engine, request, redis_answer)
            tally.exhaustive += 1
        if problem is not None:
            tally.mismatches.append(f"{problem}: page {page} of {params}")
            return

        cursors = {
            name: answer.next_cursor
            for name, answer in (("redis", redis_answer), ("postgis", postgis_answer))
            if answer.next_cursor is not None
        }
        if not cursors or (page >= request.pages and len(cursors) == 2):
            return
        given = "redis" if page % 2 else "postgis"
        if given not in cursors:
            (given,) = cursors
        cursor = cursors[given]
        tally.cursors_given[given] += 1


def _get(client, backend, params, tally) -> Answer:
    started = time.perf_counter()
    response = client.get(f"/nearby/{backend}", query_string=params)
    tally.seconds[backend].append(time.perf_counter() - started)

    body = response.get_json()
    if response.status_code != 200:
        return Answer(response.status_code, body["error"]["code"], [], None, None)
    unit_m = UNITS_M[params["unit"]]
    rows = [
        Row(r["id"], r["distance"] * unit_m, r["lon"], r["lat"])
        for r in body["results"]
    ]
    return Answer(200, None, rows, body["next_cursor"], body["center"])


def _status(redis_answer, postgis_answer) -> str:
    statuses = [
        f"{answer.status} {answer.code}" if answer.code else str(answer.status)
        for answer in (redis_answer, postgis_answer)
    ]
    return statuses[0] if statuses[0] == statuses[1] else " / ".join(statuses)


def _refused_for_the_rectangle(engine, request, redis_answer, postgis_answer) -> bool:
    """Tell whether Redis refused a box that PostGIS served, a known difference.

    Redis counts the members of its search rectangle, which encloses the box
    (and, for a wide box, a good deal more); PostGIS counts those in the box.
    Counted here, the box must hold at most :data:`MAX_SCAN_MEMBERS` profiles
    and the rectangle more.
    """
    if not (
        request.box is not None
        and redis_answer.code == "area_too_large"
        and postgis_answer.status == 200
    ):
        return False
    members = {}
    for category in request.categories:
        members |= truth.searchable_members(engine, category)
    in_box = sum(_inside(request, lon, lat, None) for lon, lat in members.values())
    in_rectangle = sum(
        _in_redis_rectangle(request, lon, lat) for lon, lat in members.values()
    )
    return in_box <= MAX_SCAN_MEMBERS < in_rectangle


def _in_redis_rectangle(request, lon, lat) -> bool:
    """Tell whether a point lies in Redis's search rectangle around the box.

    As nearby.geoindex documents it: the rectangle is centred on the box's
    centre, as tall as the box and as wide as the box's parallel nearest the
    equator, 1 m more on every side; Redis keeps a point within half the
    height of the centre along the meridian, and within half the width of
    the centre's meridian along the great circle through the point's
    latitude.
    """
    west, south, east, north = request.box
    center_lon, center_lat = request.center
    widest_lat = 0.0 if south <= 0 <= north else min(abs(south), abs(north))
    half_width_m = (
        spherical.SPHERE_RADIUS_M
        * math.radians(_box_span(request.box) / 2)
        * math.cos(math.radians(widest_lat))
        + TOLERANCE_M
    )
    half_height_m = (
        spherical.SPHERE_RADIUS_M * math.radians((north - south) / 2) + TOLERANCE_M
    )
    along_meridian_m = spherical.SPHERE_RADIUS_M * math.radians(abs(lat - center_lat))
    along_parallel_m = spherical.distance_m(lon, lat, center_lon, lat)
    return along_meridian_m <= half_height_m and along_parallel_m <= half_width_m


def _disagreement(request, redis_answer, postgis_answer, tally) -> str | None:
    """Tell how the two answers of one page differ beyond what rounding allows."""
    if (redis_answer.status, redis_answer.code) != (
        postgis_answer.status,
        postgis_answer.code,
    ):
        return (
            f"statuses differ: redis {redis_answer.status} {redis_answer.code}, "
            f"postgis {postgis_answer.status} {postgis_answer.code}"
        )
    if redis_answer.status != 200:
        return None

    for name, answer in (("redis", redis_answer), ("postgis", postgis_answer)):
        keys = [(row.distance_m, row.id) for row in answer.rows]
        if keys != sorted(keys):
            return f"{name} results are not nearest first, ties by id"
        if len(answer.rows) > request.limit:
            return f"{name} returned {len(answer.rows)} results, over the limit"

    redis_ids = {row.id for row in redis_answer.rows}
    postgis_ids = {row.id for row in postgis_answer.rows}
    one_sided = [
        row
        for row in redis_answer.rows + postgis_answer.rows
        if (row.id in redis_ids) != (row.id in postgis_ids)
    ]
    exempt = {row.id for row in one_sided if _boundary_m(request, row) <= TOLERANCE_M}
    tally.exempt += len(exempt)
    redis_kept = [row for row in redis_answer.rows if row.id not in exempt]
    postgis_kept = [row for row in postgis_answer.rows if row.id not in exempt]

    common = min(len(redis_kept), len(postgis_kept))
    for a, b in zip(redis_kept[:common], postgis_kept[:common], strict=True):
        if a.id != b.id:
            return (
                f"ids differ: redis {a.id} at {a.distance_m} m, postgis {b.id} at "
                f"{b.distance_m} m"
            )
        if abs(a.distance_m - b.distance_m) > TOLERANCE_M:
            return f"distances of {a.id} differ: {a.distance_m} m, {b.distance_m} m"
    for shorter, longer, answer in (
        (redis_kept, postgis_kept, redis_answer),
        (postgis_kept, redis_kept, postgis_answer),
    ):
        lost = len(answer.rows) - len(shorter)
        extra = len(longer) - len(shorter)
        if extra > 0 and (len(answer.rows) < request.limit or extra > lost):
            ids = [row.id for row in longer[common:]]
            return f"one backend lacks results {ids[:10]}"

    cursors = (redis_answer.next_cursor, postgis_answer.next_cursor)
    if None not in cursors and cursors[0] != cursors[1] and not exempt:
        return f"next_cursor differs: redis {cursors[0]}, postgis {cursors[1]}"
    tally.cursors_equal += None not in cursors and cursors[0] == cursors[1]
    return None


def _boundary_m(request, row) -> float:
    """Return how far a result lies from the edge of the request's area."""
    if request.box is None:
        distance_m = spherical.distance_m(*request.center, row.lon, row.lat)
        return abs(distance_m - request.radius_m)

    west, south, east, north = request.box
    parallels = [
        math.radians(abs(row.lat - edge)) * spherical.SPHERE_RADIUS_M
        for edge in (south, north)
    ]
    meridians = []
    for edge in (west, east):
        delta = math.radians(row.lon - edge)
        if math.cos(delta) > 0:
            across = abs(math.sin(delta)) * math.cos(math.radians(row.lat))
            meridians.append(spherical.SPHERE_RADIUS_M * math.asin(min(1.0, across)))
    return min(parallels + meridians)


def _independent_problem(request, *answers) -> str | None:
    """Check each result's distance and place against spherical geometry."""
    if answers[0].status != 200:
        return None
    lon, lat = request.center
    for name, answer in zip(("redis", "postgis"), answers, strict=True):
        if answer.center != {"lon": pytest.approx(lon), "lat": pytest.approx(lat)}:
            return f"{name} centre is {answer.center}, not ({lon}, {lat})"
        for row in answer.rows:
            distance_m = spherical.distance_m(lon, lat, row.lon, row.lat)
            if abs(row.distance_m - distance_m) > TOLERANCE_M:
                return (
                    f"{name} distance of {row.id} is {row.distance_m} m, "
                    f"not {distance_m} m"
                )
            if not _inside(request, row.lon, row.lat, distance_m - TOLERANCE_M):
                return f"{name} result {row.id} at {row.lon}, {row.lat} is outside"
    return None


def _inside(request, lon, lat, distance_m) -> bool:
    """Tell whether a point, ``distance_m`` from the centre, is in the area."""
    if request.box is None:
        return distance_m <= request.radius_m
    west, south, east, north = request.box
    if not south <= lat <= north:
        return False
    longitudes = (180.0, -180.0) if abs(lon) == 180 else (lon,)
    if west <= east:
        return any(west <= x <= east for x in longitudes)
    return any(x >= west or x <= east for x in longitudes)


def _exhaustive_problem(engine, request, answer) -> str | None:
    """Compare a first page with the nearest members of every one in the area."""
    members = {}
    for category in request.categories:
        members |= truth.searchable_members(engine, category)
    lon, lat = request.center
    expected = []
    for pid, (member_lon, member_lat) in members.items():
        distance_m = spherical.distance_m(lon, lat, member_lon, member_lat)
        if _inside(request, member_lon, member_lat, distance_m - TOLERANCE_M):
            expected.append((distance_m, pid))
    expected.sort()

    got = [row.id for row in answer.rows]
    settled = [
        pid
        for distance_m, pid in expected[: request.limit]
        if _boundary_m(request, Row(pid, distance_m, *members[pid])) > TOLERANCE_M
    ]
    missing = [pid for pid in settled if pid not in got]
    if missing:
        return f"results lack members {missing[:10]} of the area"
    stray = set(got) - {pid for _, pid in expected}
    if stray:
        return f"results {sorted(stray)[:10]} are no members of the area"
    in_order = set(settled)
    if [pid for pid in got if pid in in_order] != settled:
        return "results are not in the order of their distances"
    return None


def _summary(scale_data, tally, test_s) -> str:
    def latency(backend):
        seconds = sorted(tally.seconds[backend])
        p99 = seconds[min(len(seconds) - 1, int(0.99 * len(seconds)))]
        slow = sum(second > STATEMENT_TIMEOUT_S for second in seconds)
        return (
            f"{backend} median {1000 * statistics.median(seconds):.1f} ms, "
            f"p99 {1000 * p99:.0f} ms, max {1000 * seconds[-1]:.0f} ms, "
            f"{slow} over {STATEMENT_TIMEOUT_S} s"
        )

    def took(seconds):
        return "reused" if seconds is None else f"{seconds:.1f} s"

    return (
        f"scale: {scale_data.profiles:,} profiles of seed {scale_data.seed}; "
        f"load {took(scale_data.load_s)}, refresh {took(scale_data.refresh_s)}, "
        f"test {test_s:.1f} s\n"
        f"scale: {tally.requests} requests, {tally.pages} pages "
        f"({tally.follow_pages} followed by cursor, up to page "
        f"{tally.deepest_page}), {tally.nonempty} non-empty, statuses "
        f"{tally.statuses}, {tally.cursors_equal} equal cursors, cursors given "
        f"{tally.cursors_given}, "
        f"{tally.exempt} boundary exemptions, {tally.independent} pages checked "
        f"against spherical geometry, {tally.exhaustive} against every member\n"
        f"scale: {len(tally.rectangle_refusals)} boxes refused by Redis alone for "
        f"its rectangle: {tally.rectangle_refusals}\n"
        f"scale: {latency('redis')}; {latency('postgis')}"
    )
