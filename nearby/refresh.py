"""The sync of PostGIS into the Redis GEO indexes; it knows nothing of Celery.

Every write to the profiles table, by any application, leaves a row in the
change log ``profile_changes`` (filled by triggers, see
:mod:`nearby.postgis`): the id of each inserted, updated or deleted profile
and the categories it had before; a TRUNCATE, or a bulk load that bypasses the
triggers, leaves a marker that asks for a full rebuild.

An incremental refresh reads, in one REPEATABLE READ snapshot, the change rows
visible to it, the current rows of the profiles they name, applies them to
Redis, and deletes exactly those change rows before it commits. A change
whose transaction commits later, whatever its ``updated_at`` or its place in
the log, was not visible to that snapshot, so it is neither applied nor
deleted: the next refresh finds it. Applying is idempotent, so a refresh that
dies after writing Redis but before committing loses nothing either: the next
one applies the same rows again.

A full rebuild streams every profile from a server-side cursor into temporary
keys, swaps each category in atomically (see :mod:`nearby.geoindex`), and
deletes the change rows its snapshot saw. It runs when asked
(``python worker.py refresh --full``) and whenever there is no trustworthy
starting point: no index in Redis, an index of another key layout, an index
built from another change log (the log was recreated), a marker, or a full
rebuild that started and never finished (it is done again, from the start,
after deleting the temporary keys the dead one left).

Either kind holds one batch of rows and a counter pair per category in memory,
whatever the size of the table. Profiles Redis cannot hold are counted, logged
and left out of its GEO sets: those beyond its latitude limit (PostGIS and
/nearby/postgis still have them) and category values that are not valid slugs,
which no query can ask for.
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
from nearby.errors import NearbyError

log = logging.getLogger(__name__)

FLUSH_BATCHES = 10
"""A full rebuild writes to Redis once this many batches' members wait."""

LOCK_TTL_SECONDS = 60
"""Expiry of the refresh lock; each batch renews it, so only a refresh stalled
this long loses it, and a killed one blocks the next for at most this long."""


@dataclass
class RefreshReport:
    """What one refresh did; durations in seconds."""

    ran: bool = True
    kind: str = ""
    reason: str = ""
    changes: int = 0
    profiles: int = 0
    members: int = 0
    added: int = 0
    moved: int = 0
    removed: int = 0
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
        if self.kind == "incremental":
            return (
                f"incremental: {self.changes} changes to {self.profiles} profiles; "
                f"{self.added} members added, {self.moved} moved, {self.removed} "
                f"removed; {self.skipped_latitude} beyond Redis's latitude limit, "
                f"{self.skipped_category} invalid category values; "
                f"{self.seconds:.2f} s"
            )
        return (
            f"full ({self.reason}): {self.categories} categories, {self.members} "
            f"members from {self.profiles} profiles; skipped "
            f"{self.skipped_latitude} beyond Redis's latitude limit and "
            f"{self.skipped_category} invalid category values; removed "
            f"{self.categories_removed} vanished categories; {self.seconds:.2f} s"
        )


def refresh(
    engine: Engine,
    client: redis.Redis,
    *,
    batch_size: int = 5000,
    full: bool = False,
    lock_ttl_s: float = LOCK_TTL_SECONDS,
) -> RefreshReport:
    """Bring the Redis indexes up to date with PostGIS.

    Incremental when the index in Redis is a trustworthy starting point, a full
    rebuild otherwise or when ``full`` is true. Skips (``ran`` false) when
    another refresh holds the lock. Any failure leaves the last good index
    serving and is recorded for /health; the change log keeps every change
    not yet applied.

    Raises:
        BackendUnavailable: PostgreSQL or Redis failed during the refresh.
        SchemaMissing: the profiles table or its change log does not exist.
        RefreshAborted: the refresh lost its lock or its temporary keys.
    """
    with geoindex.translate_errors():
        lock = geoindex.refresh_lock(client, lock_ttl_s)
        if not lock.acquire():
            log.info("refresh: another refresh holds the lock; skipping this one")
            return RefreshReport(ran=False)

        try:
            return _refresh(engine, client, lock, batch_size, full)
        except NearbyError as exc:
            _record_failure(client, exc.message)
            raise
        except Exception as exc:
            _record_failure(client, f"unexpected {type(exc).__name__}: {exc}")
            raise
        finally:
            _release(lock)


def full_refresh(
    engine: Engine, client: redis.Redis, *, batch_size: int = 5000
) -> RefreshReport:
    """Rebuild every category's index from PostGIS: :func:`refresh` with ``full``."""
    return refresh(engine, client, batch_size=batch_size, full=True)


def _refresh(engine, client, lock, batch_size, full) -> RefreshReport:
    started = time.monotonic()
    meta = geoindex.index_meta(client)
    status = geoindex.refresh_status(client)

    with postgis.snapshot(engine) as conn:
        log_id = postgis.change_log_id(conn)
        reason = _full_reason(conn, meta, status, log_id, full)
        if reason:
            report = _rebuild(conn, client, lock, batch_size, reason)
        else:
            report = _apply_changes(conn, client, lock, batch_size)

        report.seconds = time.monotonic() - started
        meta_fields = {k: v for k, v in asdict(report).items() if k != "ran"}
        _renew(lock)
        geoindex.write_meta(
            client,
            meta_fields | {"log_id": log_id},
            replaces_existing=report.kind == "incremental",
        )

    if report.skipped_latitude or report.skipped_category:
        log.warning(
            "refresh: left %d profiles beyond latitude %.8f and %d invalid "
            "category values out of Redis's GEO sets",
            report.skipped_latitude,
            geo.REDIS_MEMBER_MAX_LATITUDE,
            report.skipped_category,
        )
    log.info("refresh: done: %s", report.summary())
    return report


def _full_reason(conn, meta, status, log_id: str, full: bool) -> str:
    if full:
        return "asked for"
    if not meta:
        return "no index in Redis"
    if "rebuild_started_at" in status:
        return "a full rebuild did not finish"
    if meta.get("layout") != geoindex.LAYOUT:
        return "the key layout changed"
    if meta.get("log_id") != log_id:
        return "the change log was recreated"
    if postgis.has_rebuild_marker(conn):
        return "a TRUNCATE or bulk load asked for it"
    return ""


def _rebuild(conn, client, lock, batch_size, reason) -> RefreshReport:
    report = RefreshReport(kind="full", reason=reason)
    geoindex.mark_rebuild_started(client)
    report.temporary_keys_removed = geoindex.delete_temporary_keys(client)
    build = geoindex.IndexBuild(client, flush_members=batch_size * FLUSH_BATCHES)
    log.info("refresh: full rebuild (%s), batches of %d rows", reason, batch_size)

    for batch in postgis.stream_profiles(conn, batch_size):
        _renew(lock)
        build.add_batch(_memberships(batch, report))
        report.profiles += len(batch)
        log.debug("refresh: %d profiles read", report.profiles)

    report.categories_removed = build.swap(lambda: _renew(lock))
    report.categories = len(build.counts)
    report.members = sum(reachable for reachable, _ in build.counts.values())
    report.added = report.members
    postgis.forget_changes(conn)
    return report


def _memberships(batch, report: RefreshReport):
    for profile in batch:
        member = _member(profile)
        if not member.reachable:
            report.skipped_latitude += 1
        categories = list(_valid_categories(profile.categories, profile.id, report))
        yield member, categories


def _apply_changes(conn, client, lock, batch_size) -> RefreshReport:
    report = RefreshReport(kind="incremental")
    last_seq = None

    for batch in postgis.stream_changes(conn, batch_size):
        _renew(lock)
        before: dict[int, set[str]] = {}
        for change in batch:
            before.setdefault(change.profile_id, set()).update(change.old_categories)
        current = {row.id: row for row in postgis.profiles_by_id(conn, list(before))}
        _renew(lock)

        changes = [
            _profile_change(profile_id, old, current.get(profile_id), report)
            for profile_id, old in before.items()
        ]
        counts = geoindex.apply_changes(client, changes)
        report.changes += len(batch)
        report.profiles += len(before)
        report.added += counts.added
        report.moved += counts.moved
        report.removed += counts.removed
        report.categories += len(counts.touched)
        last_seq = batch[-1].seq

    if last_seq is not None:
        postgis.forget_changes(conn, through_seq=last_seq)
    return report


def _profile_change(profile_id, old_categories, row, report) -> geoindex.ProfileChange:
    if row is None:
        joined = frozenset()
        member = None
    else:
        member = _member(row)
        joined = frozenset(_valid_categories(row.categories, row.id, report))
        if not member.reachable:
            report.skipped_latitude += 1
    left = frozenset(c for c in old_categories if c is not None and is_category(c))
    return geoindex.ProfileChange(profile_id, member, joined, left - joined)


def _member(profile) -> geoindex.Member:
    return geoindex.Member(profile.id, profile.lon, profile.lat, profile.info)


def _valid_categories(categories, profile_id: int, report: RefreshReport):
    for category in dict.fromkeys(categories):
        if category is None or not is_category(category):
            report.skipped_category += 1
            log.debug("refresh: profile %d has category %r", profile_id, category)
        else:
            yield category


def _renew(lock) -> None:
    try:
        lock.reacquire()
    except redis.exceptions.LockError as exc:
        raise LockLost(
            "the refresh lock expired and another refresh may hold it; this one "
            "stopped without touching the live index"
        ) from exc


def _record_failure(client, message: str) -> None:
    log.error("refresh: failed; the last good index keeps serving: %s", message)
    try:
        geoindex.write_failure(client, message)
    except redis.RedisError:
        log.error("refresh: could not record the failure in Redis either")


def _release(lock) -> None:
    try:
        lock.release()
    except redis.exceptions.LockError:
        log.warning("refresh: the lock expired before the refresh ended")
