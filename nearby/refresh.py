"""The sync of PostGIS into the Redis GEO indexes; it knows nothing of Celery.

A full refresh streams every profile from a server-side cursor, writes each
of its categories into temporary keys with pipelined GEOADD and HSET in
batches of ``batch_size`` rows, then swaps each category in atomically (see
:mod:`nearby.geoindex`). Its memory holds one batch and a counter pair per
category, whatever the size of the table.

Profiles that Redis cannot hold are counted, logged and left out of Redis:
those beyond its latitude limit (PostGIS and /nearby/postgis still have them)
and category values that are not valid slugs, which no query can ask for.
"""

import logging
import time
from dataclasses import asdict
from dataclasses import dataclass

import redis
from sqlalchemy import Engine

from nearby import geo
from nearby import geoindex
from nearby import postgis
from nearby.category import is_category
from nearby.errors import LockLost

log = logging.getLogger(__name__)

LOCK_TTL_SECONDS = 60
"""Expiry of the refresh lock; each batch renews it, so only a refresh stalled
this long loses it, and a killed one blocks the next for at most this long."""


@dataclass
class RefreshReport:
    """What one refresh did; durations in seconds."""

    ran: bool = True
    profiles: int = 0
    members: int = 0
    categories: int = 0
    categories_removed: int = 0
    skipped_latitude: int = 0
    skipped_category: int = 0
    temporary_keys_removed: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        """Return a one-line account of the refresh for logs and the CLI."""
        if not self.ran:
            return "skipped: another refresh holds the lock"
        return (
            f"{self.categories} categories, {self.members} members from "
            f"{self.profiles} profiles; skipped {self.skipped_latitude} beyond "
            f"Redis's latitude limit and {self.skipped_category} invalid category "
            f"values; removed {self.categories_removed} vanished categories; "
            f"{self.seconds:.2f} s"
        )


def full_refresh(
    engine: Engine, client: redis.Redis, *, batch_size: int = 5000
) -> RefreshReport:
    """Rebuild every category's index from PostGIS and swap it in.

    Skips (``ran`` false) when another refresh holds the lock. Any failure
    leaves the indexes in service as they were; temporary keys of a failed
    build expire, and the next refresh deletes them first.

    Raises:
        BackendUnavailable: PostgreSQL or Redis failed during the refresh.
        SchemaMissing: the profiles table does not exist.
    """
    with geoindex.translate_errors():
        lock = geoindex.refresh_lock(client, LOCK_TTL_SECONDS)
        if not lock.acquire():
            log.info("refresh: another refresh holds the lock; skipping this one")
            return RefreshReport(ran=False)

        try:
            return _build(engine, client, lock, batch_size)
        finally:
            _release(lock)


def _build(engine, client, lock, batch_size) -> RefreshReport:
    started = time.monotonic()
    report = RefreshReport()
    report.temporary_keys_removed = geoindex.delete_temporary_keys(client)
    build = geoindex.IndexBuild(client)
    log.info("refresh: full rebuild started (batch %d rows)", batch_size)

    with postgis.connect(engine) as conn:
        for batch in postgis.stream_profiles(conn, batch_size):
            _renew(lock)
            build.add_batch(_members(batch, build, report))
            report.profiles += len(batch)
            log.debug("refresh: %d profiles read", report.profiles)

    report.categories_removed = build.swap(lambda: _renew(lock))
    report.categories = len(build.counts)
    report.seconds = time.monotonic() - started
    meta = {key: value for key, value in asdict(report).items() if key != "ran"}
    geoindex.write_meta(client, meta | {"kind": "full"})

    if report.skipped_latitude or report.skipped_category:
        log.warning(
            "refresh: left %d profiles beyond latitude %.8f and %d invalid "
            "category values out of Redis",
            report.skipped_latitude,
            geo.REDIS_MAX_LATITUDE,
            report.skipped_category,
        )
    log.info("refresh: done: %s", report.summary())
    return report


def _members(batch, build: geoindex.IndexBuild, report: RefreshReport):
    for profile in batch:
        reachable = geo.within_redis_latitude(profile.lat)
        if not reachable:
            report.skipped_latitude += 1
            log.debug("refresh: profile %d at latitude %s", profile.id, profile.lat)

        for category in dict.fromkeys(profile.categories):
            if category is None or not is_category(category):
                report.skipped_category += 1
                log.debug("refresh: profile %d category %r", profile.id, category)
            elif not reachable:
                build.count_only(category)
            else:
                report.members += 1
                yield (
                    category,
                    profile.id,
                    profile.name,
                    profile.city,
                    profile.lon,
                    profile.lat,
                )


def _renew(lock) -> None:
    try:
        lock.reacquire()
    except redis.exceptions.LockError as exc:
        raise LockLost(
            "the refresh lock expired and another refresh may hold it; this one "
            "stopped without touching the live index"
        ) from exc


def _release(lock) -> None:
    try:
        lock.release()
    except redis.exceptions.LockError:
        log.warning("refresh: the lock expired before the refresh ended")
