"""The Celery app of nearby, and commands to refresh and check the indexes.

celery -A worker worker        # runs refresh tasks
celery -A worker beat          # schedules one every REFRESH_INTERVAL_SECONDS
python worker.py refresh       # one refresh now (incremental when it can be)
python worker.py refresh --full
python worker.py verify        # compare Redis with PostGIS; non-zero on drift
"""

import argparse
import sys

from config import settings_or_exit
from nearby import logs
from nearby.db import make_engine
from nearby.db import make_redis
from nearby.errors import NearbyError
from nearby.refresh import refresh
from nearby.tasks import create_celery
from nearby.verify import verify

settings = settings_or_exit("worker")
app = create_celery(settings)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_DRIFT = 4
EXIT_SKIPPED = 3


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    refresh_command = commands.add_parser("refresh", help="update the indexes now")
    refresh_command.add_argument(
        "--full", action="store_true", help="rebuild every category from scratch"
    )
    verify_command = commands.add_parser("verify", help="compare Redis with PostGIS")
    verify_command.add_argument(
        "--sample",
        type=_count,
        default=20,
        help="categories compared member by member (default 20)",
    )
    args = parser.parse_args(argv)
    logs.configure(settings.log_level)

    engine = make_engine(settings.database_url, pool_size=1)
    client = make_redis(settings.redis_url, timeout_s=30)
    try:
        if args.command == "verify":
            return _verify(engine, client, args.sample)
        return _refresh(engine, client, args.full)
    except NearbyError as exc:
        print(f"{args.command} failed: {exc.message}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        engine.dispose()


def _count(text: str) -> int:
    value = int(text) if text.isdigit() else -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"a whole number of 0 or more, not {text!r}")
    return value


def _refresh(engine, client, full: bool) -> int:
    report = refresh(
        engine,
        client,
        batch_size=settings.refresh_batch_size,
        full=full,
        lock_ttl_s=settings.refresh_lock_seconds,
    )
    print(f"refresh {report.summary()}")
    return EXIT_OK if report.ran else EXIT_SKIPPED


def _verify(engine, client, sample: int) -> int:
    report = verify(
        engine, client, sample=sample, lock_ttl_s=settings.refresh_lock_seconds
    )
    for line in report.drift:
        print(f"drift: {line}")
    if report.drift_count > len(report.drift):
        print(f"drift: ... and {report.drift_count - len(report.drift)} more")
    print(
        f"verify: {report.categories} categories compared by count, "
        f"{len(report.sampled)} member by member; {report.drift_count} differences; "
        f"{report.pending_changes} changes wait for the next refresh"
    )
    return EXIT_OK if report.ok else EXIT_DRIFT


if __name__ == "__main__":
    sys.exit(main())
