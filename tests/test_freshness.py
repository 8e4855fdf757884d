"""Every change other applications make with SQL reaches Redis, incrementally."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from nearby import geoindex
from nearby.db import make_engine
from nearby.db import make_redis
from nearby.errors import BackendUnavailable
from nearby.errors import IndexBuildLost
from nearby.refresh import refresh
from nearby.verify import verify
from tests import spherical
from tests.truth import searchable_members

ROOT = Path(__file__).resolve().parent.parent
CATEGORIES = ["developers", "python-developer", "nurses", "designers"]


def _sql(engine, statement: str, **params) -> None:
    with engine.begin() as conn:
        conn.execute(text(statement), params)


def _redis_members(client, category: str) -> dict[int, tuple[float, float]]:
    key = geoindex.geo_key(category)
    ids = [int(m) for m in client.zrange(key, 0, -1)]
    positions = client.geopos(key, *ids) if ids else []
    return dict(zip(ids, positions, strict=True))


def _assert_redis_matches_postgis(engine, client) -> None:
    for category in CATEGORIES:
        expected = searchable_members(engine, category)
        held = _redis_members(client, category)
        assert set(held) == set(expected), category
        for pid, (lon, lat) in expected.items():
            assert spherical.distance_m(lon, lat, *held[pid]) < 1.0, (category, pid)


@pytest.fixture
def indexed(db, redis_client, place, settings):
    """Profiles indexed by a first (full) refresh; returns their ids by name."""
    names = ["ada", "bob", "cy", "dee", "bulk1", "bulk2", "bulk3"]
    ids = place(
        ("ada", 2.35, 48.85, ["developers", "python-developer"]),
        ("bob", 2.36, 48.86, ["developers"]),
        ("cy", 2.37, 48.87, ["nurses"]),
        ("dee", 2.38, 48.88, ["designers", "developers"]),
        ("bulk1", 2.30, 48.80, ["nurses"]),
        ("bulk2", 2.31, 48.81, ["nurses"]),
        ("bulk3", 2.32, 48.82, ["designers"]),
    )
    first = refresh(db, redis_client, batch_size=settings.refresh_batch_size)
    assert first.kind == "full"
    return dict(zip(names, ids, strict=True))


def test_sql_writes_reach_redis_in_one_incremental_refresh(
    db, redis_client, settings, indexed, client
):
    _sql(
        db,
        "INSERT INTO profiles (name, city, location, categories) VALUES "
        "('eve', 'Lyon', 'SRID=4326;POINT(4.83 45.76)', ARRAY['developers'])",
    )
    _sql(
        db,
        "UPDATE profiles SET location = 'SRID=4326;POINT(13.40 52.52)' WHERE id = :id",
        id=indexed["bob"],
    )
    _sql(
        db,
        "UPDATE profiles SET categories = ARRAY['nurses', 'designers'] WHERE id = :id",
        id=indexed["ada"],
    )
    _sql(db, "DELETE FROM profiles WHERE id = :id", id=indexed["dee"])
    _sql(db, "DELETE FROM profiles WHERE name LIKE 'bulk%'")

    report = refresh(db, redis_client, batch_size=settings.refresh_batch_size)

    assert report.kind == "incremental"
    assert report.profiles == 7
    _assert_redis_matches_postgis(db, redis_client)
    assert not redis_client.exists(geoindex.geo_key("python-developer"))
    assert not redis_client.sismember(geoindex.CATEGORIES_KEY, "python-developer")
    berlin = client.get(
        "/nearby/redis",
        query_string={
            "lat": 52.52,
            "lon": 13.40,
            "radius": 1,
            "category": "developers",
        },
    ).get_json()
    assert [r["id"] for r in berlin["results"]] == [indexed["bob"]]
    gone = client.get(
        "/nearby/redis",
        query_string={
            "lat": 48.85,
            "lon": 2.35,
            "radius": 1,
            "category": "python-developer",
        },
    )
    assert gone.status_code == 404
    assert verify(db, redis_client, sample=10).ok


def test_an_incremental_refresh_reads_only_the_change_log(
    db, redis_client, settings, indexed
):
    _sql(
        db,
        "UPDATE profiles SET city = 'Paris 5e' WHERE id = :id",
        id=indexed["cy"],
    )

    report = refresh(db, redis_client, batch_size=settings.refresh_batch_size)

    assert report.kind == "incremental"
    assert (report.changes, report.profiles) == (1, 1)
    info = redis_client.hget(geoindex.info_key("nurses"), indexed["cy"])
    assert "Paris 5e" in info


def test_truncate_makes_the_next_refresh_a_full_rebuild(db, redis_client, indexed):
    _sql(db, "TRUNCATE profiles")

    report = refresh(db, redis_client)

    assert report.kind == "full"
    assert "TRUNCATE" in report.reason
    assert redis_client.smembers(geoindex.CATEGORIES_KEY) == set()
    assert verify(db, redis_client).ok


def test_a_recreated_change_log_makes_the_next_refresh_a_full_rebuild(
    db, redis_client, indexed
):
    _sql(db, "DELETE FROM profiles WHERE id = :id", id=indexed["cy"])
    _sql(db, "TRUNCATE profile_changes")

    report = refresh(db, redis_client)

    assert report.kind == "full"
    assert report.reason == "the change log was recreated"
    _assert_redis_matches_postgis(db, redis_client)


def test_a_change_committed_after_a_refresh_read_is_applied_by_the_next(
    db, redis_client, settings, indexed
):
    writer = make_engine(settings.database_url).connect()
    transaction = writer.begin()
    writer.execute(
        text(
            "UPDATE profiles SET location = 'SRID=4326;POINT(-0.13 51.5)' "
            "WHERE id = :id"
        ),
        {"id": indexed["cy"]},
    )

    during = refresh(db, redis_client)
    transaction.commit()
    writer.close()
    after = refresh(db, redis_client)

    assert during.kind == after.kind == "incremental"
    assert during.profiles == 0
    assert after.profiles == 1
    (lon, lat) = redis_client.geopos(geoindex.geo_key("nurses"), indexed["cy"])[0]
    assert spherical.distance_m(-0.13, 51.5, lon, lat) < 1.0
    _assert_redis_matches_postgis(db, redis_client)


def test_two_refreshes_at_once_do_the_work_once(db, redis_client, place, indexed):
    place(*[(f"n{n}", 2.0 + n / 1000, 48.0, ["nurses"]) for n in range(2000)])
    barrier = threading.Barrier(2)
    reports = []

    def run():
        barrier.wait()
        reports.append(refresh(db, redis_client, batch_size=50))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(report.ran for report in reports) == [False, True]
    _assert_redis_matches_postgis(db, redis_client)
    assert verify(db, redis_client).ok


def test_verify_names_the_drift(db, redis_client, indexed):
    redis_client.zrem(geoindex.geo_key("nurses"), indexed["cy"])
    redis_client.geoadd(
        geoindex.geo_key("developers"), (10.0, 10.0, str(indexed["bob"])), xx=True
    )

    report = verify(db, redis_client, sample=10)

    assert not report.ok
    text_of = "\n".join(report.drift)
    assert "nurses: PostGIS has" in text_of
    assert f"nurses: 1 members missing in Redis, e.g. [{indexed['cy']}]" in text_of
    assert f"developers: 1 members moved in Redis, e.g. [{indexed['bob']}]" in text_of


def test_a_failed_refresh_keeps_the_index_and_says_so(
    settings, db, redis_client, indexed, client
):
    dead = make_engine("postgresql+psycopg2://nearby:nearby@127.0.0.1:1/nearby")

    with pytest.raises(BackendUnavailable):
        refresh(dead, redis_client)
    health = client.get("/health").get_json()
    answer = client.get(
        "/nearby/redis",
        query_string={"lat": 48.85, "lon": 2.35, "radius": 20, "category": "nurses"},
    )

    assert health["status"] == "degraded"
    assert "postgis is unavailable" in health["index"]["last_failure"]["error"]
    assert answer.status_code == 200
    assert answer.get_json()["count"] == 3
    assert int(answer.headers["X-Index-Age"]) >= 0


def _environment(settings, **extra) -> dict[str, str]:
    return (
        os.environ
        | {
            "DATABASE_URL": settings.database_url,
            "REDIS_URL": settings.redis_url,
            "CELERY_BROKER_URL": settings.celery_broker_url,
        }
        | extra
    )


def test_a_refresh_killed_mid_rebuild_leaves_queries_answering(
    settings, db, redis_client, place, indexed, client
):
    place(*[(f"k{n}", -60 + n / 500, 10.0, ["designers"]) for n in range(20_000)])
    params = {"lat": 48.85, "lon": 2.35, "radius": 20, "category": "nurses"}
    before = client.get("/nearby/redis", query_string=params).get_json()["count"]
    env = _environment(settings, REFRESH_BATCH_SIZE="100", REFRESH_LOCK_SECONDS="2")
    victim = subprocess.Popen(
        [sys.executable, "worker.py", "refresh", "--full"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    counts = []
    deadline = time.monotonic() + 60
    while not list(redis_client.scan_iter(match=geoindex.TMP_PATTERN)):
        assert time.monotonic() < deadline and victim.poll() is None
        counts.append(
            client.get("/nearby/redis", query_string=params).get_json()["count"]
        )
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    for _ in range(50):
        counts.append(
            client.get("/nearby/redis", query_string=params).get_json()["count"]
        )
    time.sleep(2.5)
    done = subprocess.run(
        [sys.executable, "worker.py", "refresh"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert set(counts) == {before}
    assert done.returncode == 0, done.stderr
    assert list(redis_client.scan_iter(match=geoindex.TMP_PATTERN)) == []
    assert redis_client.zcard(geoindex.geo_key("designers")) == 20_002
    assert verify(db, redis_client).ok


def test_celery_beat_applies_a_change_without_a_manual_call(
    settings, db, redis_client, indexed, tmp_path
):
    broker = make_redis(settings.celery_broker_url)
    broker.flushdb()
    env = _environment(settings, REFRESH_INTERVAL_SECONDS="1")
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "worker",
            "worker",
            "--beat",
            "--pool",
            "solo",
            "--schedule",
            str(tmp_path / "beat-schedule"),
            "--loglevel",
            "INFO",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _sql(
            db,
            "INSERT INTO profiles (name, location, categories) VALUES "
            "('late', 'SRID=4326;POINT(2.35 48.85)', ARRAY['astronauts'])",
        )
        deadline = time.monotonic() + 60
        while not redis_client.exists(geoindex.geo_key("astronauts")):
            assert time.monotonic() < deadline, "beat did not refresh within 60 s"
            assert worker.poll() is None, "the worker died"
            time.sleep(0.2)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        broker.flushdb()

    assert redis_client.hget(geoindex.META_KEY, "kind") == "incremental"


def test_an_empty_point_is_counted_and_does_not_stop_the_refresh(
    db, redis_client, indexed
):
    _sql(
        db,
        "INSERT INTO profiles (name, location, categories) VALUES "
        "('nowhere', 'SRID=4326;POINT EMPTY', ARRAY['developers'])",
    )

    report = refresh(db, redis_client)

    assert report.kind == "incremental"
    assert report.skipped_latitude == 1
    _assert_redis_matches_postgis(db, redis_client)


def test_an_incremental_refresh_does_not_vouch_for_an_emptied_redis(
    redis_client, indexed
):
    redis_client.flushdb()

    with pytest.raises(IndexBuildLost):
        geoindex.write_meta(
            redis_client, {"kind": "incremental"}, replaces_existing=True
        )

    assert not redis_client.exists(geoindex.META_KEY)
