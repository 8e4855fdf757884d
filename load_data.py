"""Command line of the loader: fake profiles or a CSV file into PostGIS.

    python load_data.py --count 100000 [--seed 42] [--until-total] [--workers N]
    python load_data.py --csv people.csv [--strict]
    python load_data.py --reset [--yes] [--count N | --csv FILE]
    python load_data.py --stats

The database is ``DATABASE_URL`` (see ``config.py``); what the rows hold,
how a CSV file is checked and how a load survives an interruption is
described in ``nearby/loader.py``. A load appends; ``--reset`` drops the
table first, and asks for ``--yes`` when it holds rows. ``--stats`` prints
the category sizes and the profiles per continent, after the load if there
is one.

Exit status: 0 done; 1 some CSV rows were rejected (with ``--strict``,
nothing was loaded); 2 bad arguments or settings, an unreadable CSV file, a
bad header, or ``--reset`` without ``--yes`` on a table with rows; 3
PostgreSQL is unreachable, lacks PostGIS, is out of disk space, is busy with
another load, or failed during the load; 4 the load failed otherwise (a
worker process died, ...); 130
interrupted (Ctrl-C); 143 terminated (SIGTERM). A load that stopped keeps
the batches it committed and says how many.
"""

import argparse
import errno
import os
import signal
import sys
from concurrent.futures.process import BrokenProcessPool

from pydantic import ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import OperationalError

from config import get_settings
from nearby import loader
from nearby import logs
from nearby.db import make_engine
from nearby.errors import BackendUnavailable
from nearby.errors import SchemaMissing

EXIT_OK = 0
EXIT_REJECTED = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3
EXIT_FAILED = 4
EXIT_INTERRUPTED = 128 + signal.SIGINT
EXIT_TERMINATED = 128 + signal.SIGTERM

DISK_FULL_SQLSTATE = "53100"


class Terminated(BaseException):
    """SIGTERM arrived; raised in the main thread by the signal handler."""


def positive_int(text: str) -> int:
    """Parse a positive integer argument, or fail with argparse's message."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return value


def non_negative_int(text: str) -> int:
    """Parse an integer argument of 0 or more, or fail with argparse's message."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer of 0 or more")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Return the parsed arguments; exit with status 2 when they do not fit."""
    parser = argparse.ArgumentParser(
        description="Load fake profiles, or profiles from a CSV file, into PostGIS."
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--count", type=positive_int, metavar="N", help="fake profiles to insert"
    )
    source.add_argument("--csv", metavar="FILE", help="CSV file of profiles to insert")
    parser.add_argument(
        "--seed",
        type=int,
        help=f"seed of the fake profiles (default {loader.DEFAULT_SEED})",
    )
    parser.add_argument(
        "--until-total",
        action="store_true",
        help="insert only the fake profiles missing for the table to hold N",
    )
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        default=loader.DEFAULT_BATCH_SIZE,
        metavar="ROWS",
        help=f"rows per COPY and transaction (default {loader.DEFAULT_BATCH_SIZE})",
    )
    parser.add_argument(
        "--workers",
        type=non_negative_int,
        metavar="N",
        help="processes that make fake rows; 0 makes them in this one (default: "
        f"one per core, none below {loader.INLINE_MAX_ROWS:,} rows)",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="load nothing from the CSV file if any row is bad",
    )
    parser.add_argument(
        "--reset",
        action="store_true",
        help="drop and recreate the profiles table first",
    )
    parser.add_argument(
        "--yes",
        action="store_true",
        help="with --reset: drop the table even when it holds rows",
    )
    parser.add_argument(
        "--stats",
        action="store_true",
        help="print the category sizes and the profiles per continent",
    )
    # For tests: the statistics of a small table, scaled to a large one.
    parser.add_argument("--scale-to", type=positive_int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.count is None and (
        args.seed is not None or args.until_total or args.workers is not None
    ):
        parser.error("--seed, --until-total and --workers go with --count")
    if args.csv is None and args.strict:
        parser.error("--strict goes with --csv")
    if args.yes and not args.reset:
        parser.error("--yes goes with --reset")
    if args.scale_to is not None and not args.stats:
        parser.error("--scale-to goes with --stats")
    if args.count is None and args.csv is None and not (args.reset or args.stats):
        parser.error("give --count N or --csv FILE (or --reset or --stats alone)")
    if args.csv is not None and not os.path.isfile(args.csv):
        parser.error(f"--csv: no such file: {args.csv}")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the load the arguments ask for; return the exit status."""
    args = parse_args(argv)
    try:
        settings = get_settings()
        url = make_url(settings.database_url)
        engine = make_engine(settings.database_url)
    except ValidationError as exc:
        wrong = "; ".join(
            f"{'.'.join(map(str, error['loc'])).upper()}: {error['msg']}"
            for error in exc.errors()
        )
        return _fail(EXIT_USAGE, f"bad settings: {wrong}")
    except ArgumentError as exc:
        return _fail(EXIT_USAGE, f"bad DATABASE_URL: {_why(exc)}")
    logs.configure(settings.log_level)
    where = f"{url.host}:{url.port or 5432}/{url.database}"
    previous = signal.signal(signal.SIGTERM, _terminate)

    try:
        return _run(engine, args)
    except loader.LoadStopped as exc:
        return _stopped(exc, where)
    except loader.LoaderBusy as exc:
        return _fail(EXIT_UNAVAILABLE, f"{where}: {exc}; try again when it ends")
    except (BackendUnavailable, OperationalError) as exc:
        if _disk_full(exc):
            return _fail(EXIT_UNAVAILABLE, f"{where}: out of disk space: {_why(exc)}")
        return _fail(
            EXIT_UNAVAILABLE, f"cannot reach PostgreSQL at {where}: {_why(exc)}"
        )
    except SchemaMissing as exc:
        return _fail(EXIT_UNAVAILABLE, f"{where}: {exc.message}")
    except DBAPIError as exc:
        if _disk_full(exc):
            return _fail(EXIT_UNAVAILABLE, f"{where}: out of disk space: {_why(exc)}")
        return _fail(EXIT_UNAVAILABLE, f"database error at {where}: {_why(exc)}")
    except KeyboardInterrupt:
        return _fail(EXIT_INTERRUPTED, "interrupted")
    except Terminated:
        return _fail(EXIT_TERMINATED, "terminated")
    finally:
        signal.signal(signal.SIGTERM, previous)
        engine.dispose()


def _run(engine, args: argparse.Namespace) -> int:
    if args.reset and not args.yes:
        held = loader.existing_rows(engine)
        if held:
            return _fail(
                EXIT_USAGE,
                f"the profiles table holds {held:,} rows and --reset drops them: "
                "add --yes to go ahead",
            )
    loader.prepare_schema(engine, reset=args.reset)
    if args.reset:
        print("dropped and recreated the profiles table")

    status = EXIT_OK
    if args.count is not None:
        result = loader.load_fake(
            engine,
            args.count,
            seed=loader.DEFAULT_SEED if args.seed is None else args.seed,
            batch_size=args.batch_size,
            until_total=args.until_total,
            workers=args.workers,
        )
        _summary(result)

    if args.csv is not None:
        try:
            result = loader.load_csv(
                engine, args.csv, batch_size=args.batch_size, strict=args.strict
            )
        except OSError as exc:
            return _fail(EXIT_USAGE, f"cannot read {args.csv}: {exc.strerror}")
        except loader.LoaderError as exc:
            return _fail(EXIT_USAGE, str(exc))
        _summary(result)
        if result.rejected:
            nothing = "; nothing loaded (--strict)" if args.strict else ""
            print(f"{result.rejected} rows rejected{nothing}", file=sys.stderr)
            status = EXIT_REJECTED

    if args.stats:
        _print_stats(loader.profile_stats(engine), args.scale_to)
    return status


def _summary(result: loader.LoadResult) -> None:
    print(
        f"inserted {result.inserted} rows, rejected {result.rejected}, "
        f"in {result.seconds:.1f} s ({result.rows_per_s:,.0f} rows/s)"
    )


def _print_stats(stats: loader.Stats, scale_to: int | None) -> None:
    scale = scale_to / stats.profiles if scale_to and stats.profiles else 1.0
    if scale != 1.0:
        print(
            f"profiles: {stats.profiles:,}; category sizes scaled by {scale:g}, "
            f"as if the table held {scale_to:,}"
        )
    else:
        print(f"profiles: {stats.profiles:,}")
    if stats.categories:
        largest, members = stats.largest()
        print(
            f"categories: {len(stats.categories):,}; members per category: "
            f"median {stats.median() * scale:,.0f}, "
            f"90th percentile {stats.percentile(90) * scale:,.0f}, "
            f"99th percentile {stats.percentile(99) * scale:,.0f}, "
            f"largest {members * scale:,.0f} ({largest})"
        )
    print("profiles per continent:")
    for continent, profiles in sorted(
        stats.continents.items(), key=lambda item: (-item[1], item[0])
    ):
        share = 100 * profiles / stats.profiles
        print(f"  {continent:<15} {profiles:>12,} {share:5.1f} %")


def _stopped(exc: loader.LoadStopped, where: str) -> int:
    cause = exc.__cause__
    committed = f"after committing {exc.result.inserted:,} rows"
    again = (
        f"; `python load_data.py --count {exc.result.total} --until-total` "
        "completes the load"
    )
    if isinstance(cause, KeyboardInterrupt):
        return _fail(EXIT_INTERRUPTED, f"interrupted {committed}{again}")
    if isinstance(cause, Terminated):
        return _fail(EXIT_TERMINATED, f"terminated {committed}{again}")
    if isinstance(cause, BrokenProcessPool):
        return _fail(EXIT_FAILED, f"a worker process died {committed}{again}")
    if isinstance(cause, OSError) and cause.errno == errno.ENOSPC:
        return _fail(
            EXIT_FAILED, f"out of local disk space {committed}: {cause}{again}"
        )
    if _disk_full(cause):
        return _fail(
            EXIT_UNAVAILABLE, f"{where}: out of disk space {committed}: {_why(cause)}"
        )
    if isinstance(cause, (BackendUnavailable, OperationalError)):
        return _fail(
            EXIT_UNAVAILABLE,
            f"lost PostgreSQL at {where} {committed}: {_why(cause)}{again}",
        )
    if isinstance(cause, DBAPIError):
        return _fail(
            EXIT_UNAVAILABLE, f"database error at {where} {committed}: {_why(cause)}"
        )
    return _fail(
        EXIT_FAILED, f"failed {committed}: {type(cause).__name__}: {cause}{again}"
    )


def _terminate(signum, frame) -> None:
    raise Terminated(signum)


def _disk_full(exc: BaseException | None) -> bool:
    return getattr(getattr(exc, "orig", None), "pgcode", None) == DISK_FULL_SQLSTATE


def _why(exc: BaseException) -> str:
    if isinstance(exc, BackendUnavailable) and exc.__cause__ is not None:
        exc = exc.__cause__
    cause = getattr(exc, "orig", None) or exc
    lines = str(cause).strip().splitlines()
    return lines[0] if lines else type(cause).__name__


def _fail(status: int, message: str) -> int:
    print(f"load_data: {message}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
