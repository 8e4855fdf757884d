"""``python worker.py refresh`` and the beat schedule of the Celery app."""

import os
import subprocess
import sys
from pathlib import Path

from nearby import geoindex
from nearby.tasks import REFRESH_TASK
from nearby.tasks import create_celery

ROOT = Path(__file__).resolve().parent.parent


def _run_worker(settings, *args, **env):
    environment = os.environ | {
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "CELERY_BROKER_URL": settings.celery_broker_url,
    }
    return subprocess.run(
        [sys.executable, "worker.py", *args],
        cwd=ROOT,
        env=environment | env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_refresh_command_builds_the_index_and_says_what_it_did(
    settings, place, redis_client
):
    ids = place(
        ("a", 2.35, 48.85, ["developers", "python-developer"]),
        ("b", 2.36, 48.86, ["developers"]),
        ("c", 0.0, 88.0, ["developers"]),
    )

    done = _run_worker(settings, "refresh")

    assert done.returncode == 0, done.stderr
    assert "2 categories, 3 members from 3 profiles" in done.stdout
    assert "skipped 1 beyond" in done.stdout
    members = redis_client.zrange(geoindex.geo_key("developers"), 0, -1)
    assert sorted(map(int, members)) == ids[:2]


def test_refresh_command_reports_an_unreachable_database(settings, db):
    done = _run_worker(
        settings,
        "refresh",
        DATABASE_URL="postgresql+psycopg2://nearby:nearby@127.0.0.1:1/nearby",
    )

    assert done.returncode == 1
    assert "refresh failed: postgis is unavailable" in done.stderr
    assert "Traceback" not in done.stderr


def test_bad_settings_stop_the_worker_with_a_message(settings):
    done = _run_worker(settings, "refresh", REFRESH_BATCH_SIZE="0")

    assert done.returncode == 2
    assert "REFRESH_BATCH_SIZE" in done.stderr
    assert "Traceback" not in done.stderr


def test_beat_runs_the_refresh_every_interval(settings):
    app = create_celery(settings.model_copy(update={"refresh_interval_seconds": 42}))

    (entry,) = app.conf.beat_schedule.values()

    assert entry["task"] == REFRESH_TASK
    assert entry["schedule"] == 42
    assert REFRESH_TASK in app.tasks
