"""Celery glue: the refresh task and the beat schedule that runs it.

The task only opens connections and calls :func:`nearby.refresh.refresh`;
the lock that keeps two refreshes from writing at once lives there, so a manual
``python worker.py refresh`` honours it too.
"""

import logging
from dataclasses import asdict

from celery import Celery

from config import Settings
from nearby import refresh
from nearby.db import make_engine
from nearby.db import make_redis

log = logging.getLogger(__name__)

REFRESH_TASK = "nearby.refresh"


def create_celery(settings: Settings) -> Celery:
    """Return the Celery app whose beat runs the refresh every interval."""
    app = Celery("nearby", broker=settings.celery_broker_url)
    interval_s = float(settings.refresh_interval_seconds)
    app.conf.update(
        task_ignore_result=True,
        broker_connection_retry_on_startup=True,
        timezone="UTC",
        worker_prefetch_multiplier=1,
        beat_schedule={
            "refresh-indexes": {
                "task": REFRESH_TASK,
                "schedule": interval_s,
                # A run still queued when the next one is due is dropped.
                "options": {"expires": interval_s},
            }
        },
    )
    connections = {}

    @app.task(name=REFRESH_TASK)
    def refresh_indexes() -> dict:
        """Bring the Redis indexes up to date; return the refresh report."""
        if not connections:
            connections["engine"] = make_engine(settings.database_url, pool_size=1)
            connections["redis"] = make_redis(settings.redis_url, timeout_s=30)

        report = refresh.refresh(
            connections["engine"],
            connections["redis"],
            batch_size=settings.refresh_batch_size,
            lock_ttl_s=settings.refresh_lock_seconds,
        )
        return asdict(report)

    return app
