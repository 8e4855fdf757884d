"""The Celery app of nearby, and a command to refresh the indexes by hand.

celery -A worker worker        # runs refresh tasks
celery -A worker beat          # schedules one every REFRESH_INTERVAL_SECONDS
python worker.py refresh       # one refresh now, in the foreground
"""

import argparse
import sys

from config import settings_or_exit
from nearby import logs
from nearby.db import make_engine
from nearby.db import make_redis
from nearby.errors import NearbyError
from nearby.refresh import full_refresh
from nearby.tasks import create_celery

settings = settings_or_exit("worker")
app = create_celery(settings)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("refresh", help="rebuild every category's index now")
    parser.parse_args(argv)
    logs.configure(settings.log_level)

    engine = make_engine(settings.database_url, pool_size=1)
    client = make_redis(settings.redis_url, timeout_s=30)
    try:
        report = full_refresh(engine, client, batch_size=settings.refresh_batch_size)
    except NearbyError as exc:
        print(f"refresh failed: {exc.message}", file=sys.stderr)
        return 1

    print(f"refresh {report.summary()}")
    return 0 if report.ran else 3


if __name__ == "__main__":
    sys.exit(main())
