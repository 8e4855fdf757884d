"""Compare the Redis indexes with PostGIS and name every difference.

For every category: the members PostGIS has (and those within Redis's
latitude limit) against the members Redis holds (and those it counts beyond
it). For a sample of categories: the exact member sets, and positions to
within :data:`POSITION_TOLERANCE_M`. It holds the refresh lock while it
compares, so no refresh changes Redis under it; changes written to PostGIS
since the last refresh show as drift, and the report says how many wait.
"""

import contextlib
import logging
import random
from dataclasses import dataclass
from dataclasses import field

import redis
from sqlalchemy import Engine

from nearby import geo
from nearby import geoindex
from nearby import postgis
from nearby.category import is_category
from nearby.errors import RefreshAborted

log = logging.getLogger(__name__)

POSITION_TOLERANCE_M = 1.0
COUNT_BATCH = 500
MAX_REPORTED = 100
"""Drift lines kept in a report; the counts cover every one."""


@dataclass
class VerifyReport:
    """What a comparison found: drift lines, and what was compared."""

    categories: int = 0
    sampled: list[str] = field(default_factory=list)
    pending_changes: int = 0
    drift_count: int = 0
    drift: list[str] = field(default_factory=list)

    def add(self, line: str) -> None:
        """Record one difference."""
        self.drift_count += 1
        if len(self.drift) < MAX_REPORTED:
            self.drift.append(line)

    @property
    def ok(self) -> bool:
        """Whether Redis and PostGIS agree."""
        return self.drift_count == 0


def verify(
    engine: Engine,
    client: redis.Redis,
    *,
    sample: int = 20,
    seed: int | None = None,
    lock_ttl_s: float = 60,
) -> VerifyReport:
    """Compare every category's counts and ``sample`` categories' members.

    Holds the refresh lock, renewed before each category it compares, so a
    killed verify blocks refreshes for at most ``lock_ttl_s``.

    Raises:
        RefreshAborted: a refresh holds the lock, or took it over.
        BackendUnavailable: PostgreSQL or Redis failed.
    """
    report = VerifyReport()
    with geoindex.translate_errors():
        lock = geoindex.refresh_lock(client, lock_ttl_s)
        if not lock.acquire():
            raise RefreshAborted("a refresh is running; verify once it is done")
        try:
            with postgis.snapshot(engine) as conn:
                names = _compare_counts(conn, client, report)
                _compare_sample(conn, client, names, sample, seed, report, lock)
        except redis.exceptions.LockError as exc:
            raise RefreshAborted(
                "verify lost the refresh lock, so Redis may have changed under it"
            ) from exc
        finally:
            with contextlib.suppress(redis.exceptions.LockError):
                lock.release()
    return report


def _compare_counts(conn, client, report: VerifyReport) -> list[str]:
    report.pending_changes = postgis.pending_changes(conn)
    names = []
    batch = []
    for row in postgis.category_member_counts(conn, geo.REDIS_MEMBER_MAX_LATITUDE):
        if is_category(row[0]):
            batch.append(row)
        if len(batch) == COUNT_BATCH:
            names.extend(_compare_count_batch(client, batch, report))
            batch = []
    names.extend(_compare_count_batch(client, batch, report))
    report.categories = len(names)

    known = set(names)
    for name in client.sscan_iter(geoindex.CATEGORIES_KEY, count=COUNT_BATCH):
        if name not in known:
            report.add(f"{name}: in Redis, but no profile in PostGIS has it")
    return names


def _compare_count_batch(client, batch, report: VerifyReport) -> list[str]:
    names = [name for name, _, _ in batch]
    sizes = geoindex.member_counts(client, names) if names else []
    for (name, total, reachable), (in_redis, beyond) in zip(batch, sizes, strict=True):
        if (in_redis, in_redis + beyond) != (reachable, total):
            report.add(
                f"{name}: PostGIS has {total} members ({reachable} within Redis's "
                f"latitudes), Redis holds {in_redis} (and counts {beyond} beyond)"
            )
    return names


def _compare_sample(conn, client, names, sample, seed, report, lock) -> None:
    chosen = random.Random(seed).sample(names, min(sample, len(names)))
    report.sampled = sorted(chosen)
    for category in report.sampled:
        lock.reacquire()
        drift = postgis.compare_members(
            conn,
            category,
            geoindex.iter_members(client, category),
            max_lat=geo.REDIS_MEMBER_MAX_LATITUDE,
            tolerance_m=POSITION_TOLERANCE_M,
        )
        for kind, (count, examples) in drift.items():
            if count:
                report.add(
                    f"{category}: {count} members {kind} in Redis, e.g. {examples}"
                )
