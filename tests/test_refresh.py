"""A refresh leaves Redis holding exactly the valid profiles of each category."""

import random
import threading
import time

import pytest
from sqlalchemy import text

from nearby import geoindex
from nearby.errors import LockLost
from nearby.refresh import full_refresh
from tests import spherical
from tests.truth import searchable_members

CATEGORIES = ["developers", "python-developer", "designers", "nurses", "go-developer"]


def _random_profiles(count: int, seed: int = 7):
    rng = random.Random(seed)
    return [
        (
            f"person {n}",
            rng.uniform(-180, 180),
            rng.uniform(-84, 84),
            rng.sample(CATEGORIES, rng.randint(1, 3)),
        )
        for n in range(count)
    ]


def test_refresh_indexes_exactly_the_profiles_of_each_category(
    db, redis_client, place, refresh
):
    place(*_random_profiles(1200))

    report = refresh()

    assert report.ran
    assert report.profiles == 1200
    for category in CATEGORIES:
        expected = searchable_members(db, category)
        key = geoindex.geo_key(category)
        members = {int(m) for m in redis_client.zrange(key, 0, -1)}
        assert members == set(expected)
        sample = sorted(expected)[:50]
        for pid, position in zip(
            sample, redis_client.geopos(key, *sample), strict=True
        ):
            assert spherical.distance_m(*expected[pid], *position) < 1.0
    assert report.members == sum(len(searchable_members(db, c)) for c in CATEGORIES)


def test_profiles_beyond_redis_latitudes_are_counted_not_indexed(
    redis_client, place, refresh
):
    north, ok, south = place(
        ("north", 0.0, 85.06, ["developers"]),
        ("ok", 0.0, 85.05, ["developers"]),
        ("south", 0.0, -89.0, ["developers", "nurses"]),
    )

    report = refresh()

    assert report.skipped_latitude == 2
    members = redis_client.zrange(geoindex.geo_key("developers"), 0, -1)
    assert members == [str(ok)]
    assert redis_client.smembers(geoindex.beyond_key("developers")) == {
        str(north),
        str(south),
    }
    assert redis_client.smembers(geoindex.beyond_key("nurses")) == {str(south)}
    assert redis_client.smembers(geoindex.CATEGORIES_KEY) == {"developers", "nurses"}


def test_invalid_category_values_are_counted_not_indexed(db, redis_client, refresh):
    with db.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO profiles (name, location, categories) VALUES "
                "('x', 'SRID=4326;POINT(1 1)', ARRAY['Python Dev', NULL, 'developers'])"
            )
        )

    report = refresh()

    assert report.skipped_category == 2
    assert redis_client.smembers(geoindex.CATEGORIES_KEY) == {"developers"}


def test_vanished_categories_and_profiles_leave_the_index(
    db, redis_client, place, refresh, client
):
    gone, kept = place(
        ("gone", 1.0, 1.0, ["nurses", "developers"]),
        ("kept", 1.0, 1.0, ["developers"]),
    )
    refresh()
    with db.begin() as conn:
        conn.execute(text("DELETE FROM profiles WHERE id = :id"), {"id": gone})

    refresh()

    assert redis_client.zrange(geoindex.geo_key("developers"), 0, -1) == [str(kept)]
    assert not redis_client.exists(geoindex.geo_key("nurses"))
    assert not redis_client.exists(geoindex.info_key("nurses"))
    response = client.get(
        "/nearby/redis",
        query_string={"lat": 1, "lon": 1, "radius": 5, "category": "nurses"},
    )
    assert response.status_code == 404


def test_refresh_leaves_no_temporary_keys_and_no_expiry(redis_client, place, refresh):
    place(*_random_profiles(300))
    redis_client.set(
        geoindex.geo_key("stale") + geoindex.TMP_SUFFIX, "left by a dead run"
    )

    report = refresh()

    assert report.temporary_keys_removed == 1
    assert list(redis_client.scan_iter(match=geoindex.TMP_PATTERN)) == []
    assert redis_client.ttl(geoindex.geo_key("developers")) == -1
    assert redis_client.ttl(geoindex.info_key("developers")) == -1


def test_a_refresh_skips_while_another_holds_the_lock(db, redis_client, place, refresh):
    place(("dev", 1.0, 1.0, ["developers"]))
    lock = geoindex.refresh_lock(redis_client, 30)
    assert lock.acquire()

    try:
        report = refresh()
    finally:
        lock.release()

    assert not report.ran
    assert not redis_client.exists(geoindex.META_KEY)


def test_categories_lists_both_counts(client, place, refresh):
    place(
        ("a", 1.0, 1.0, ["developers", "nurses"]),
        ("b", 1.0, 1.0, ["developers"]),
        ("c", 1.0, 89.0, ["developers"]),
    )
    refresh()

    body = client.get("/categories").get_json()

    assert body["count"] == 2
    assert sorted(body["categories"], key=lambda c: c["name"]) == [
        {"name": "developers", "postgis": 3, "redis": 2},
        {"name": "nurses", "postgis": 1, "redis": 1},
    ]
    assert body["index"]["built"] is True


def test_queries_during_a_rebuild_never_see_an_empty_index(
    db, redis_client, settings, place, refresh, client
):
    center = (2.35, 48.85)
    crowd = [
        (f"p{n}", *spherical.destination(*center, n % 360, 10 + n), ["developers"])
        for n in range(3000)
    ]
    place(*crowd)
    refresh()
    params = {
        "lat": center[1],
        "lon": center[0],
        "radius": 50,
        "category": "developers",
    }
    stop = threading.Event()
    errors = []

    def rebuild():
        try:
            while not stop.is_set():
                full_refresh(db, redis_client, batch_size=200)
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)

    worker = threading.Thread(target=rebuild)
    worker.start()
    counts = []
    try:
        while len(counts) < 300:
            response = client.get("/nearby/redis", query_string=params)
            assert response.status_code == 200
            counts.append(response.get_json()["count"])
    finally:
        stop.set()
        worker.join()

    assert errors == []
    assert set(counts) == {50}
    assert int(redis_client.hget(geoindex.META_KEY, "profiles")) == 3000


@pytest.mark.parametrize("batch_size", [1, 7, 5000])
def test_batch_size_does_not_change_the_index(db, redis_client, place, batch_size):
    place(*_random_profiles(100, seed=3))

    report = full_refresh(db, redis_client, batch_size=batch_size)

    assert report.profiles == 100
    for category in CATEGORIES:
        members = {
            int(m) for m in redis_client.zrange(geoindex.geo_key(category), 0, -1)
        }
        assert members == set(searchable_members(db, category))


def test_a_refresh_that_lost_its_lock_stops_without_touching_the_index(
    db, redis_client, place, refresh
):
    first = place(("first", 1.0, 1.0, ["developers"]))
    refresh()
    meta_before = redis_client.hgetall(geoindex.META_KEY)
    place(*_random_profiles(3000))
    outcome = []

    def slow_refresh():
        try:
            outcome.append(full_refresh(db, redis_client, batch_size=5))
        except Exception as exc:  # the assertion below names it
            outcome.append(exc)

    worker = threading.Thread(target=slow_refresh)
    worker.start()
    deadline = time.monotonic() + 10
    while not list(redis_client.scan_iter(match=geoindex.TMP_PATTERN)):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    redis_client.set(geoindex.LOCK_KEY, "a token of another refresh")
    worker.join()

    assert isinstance(outcome[0], LockLost)
    assert redis_client.hgetall(geoindex.META_KEY) == meta_before
    live = redis_client.zrange(geoindex.geo_key("developers"), 0, -1)
    assert live == [str(pid) for pid in first]
