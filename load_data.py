"""Command line of the loader: fake profiles or a CSV file into PostGIS.

    python load_data.py --count 100000 [--seed 42] [--until-total]
    python load_data.py --csv people.csv [--strict]
    python load_data.py --reset [--count N | --csv FILE]

The database is ``DATABASE_URL`` (see ``config.py``); what the rows hold and
how a CSV file is checked is described in ``nearby/loader.py``. Exit status:
0 done; 1 some CSV rows were rejected (with ``--strict``, nothing was loaded);
2 bad arguments or settings, an unreadable CSV file or a bad header; 3 PostgreSQL is
unreachable, lacks PostGIS or failed during the load; 130 interrupted.
"""

import argparse
import os
import sys

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
EXIT_INTERRUPTED = 130


def positive_int(text: str) -> int:
    """Parse a positive integer argument, or fail with argparse's message."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
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
        help=f"rows per COPY (default {loader.DEFAULT_BATCH_SIZE})",
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
    args = parser.parse_args(argv)

    if args.count is None and args.csv is None and not args.reset:
        parser.error("give --count N or --csv FILE (or --reset alone)")
    if args.count is None and (args.seed is not None or args.until_total):
        parser.error("--seed and --until-total go with --count")
    if args.csv is None and args.strict:
        parser.error("--strict goes with --csv")
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

    try:
        return _run(engine, args)
    except (BackendUnavailable, OperationalError) as exc:
        return _fail(
            EXIT_UNAVAILABLE, f"cannot reach PostgreSQL at {where}: {_why(exc)}"
        )
    except SchemaMissing as exc:
        return _fail(EXIT_UNAVAILABLE, f"{where}: {exc.message}")
    except DBAPIError as exc:
        return _fail(EXIT_UNAVAILABLE, f"database error at {where}: {_why(exc)}")
    except KeyboardInterrupt:
        return _fail(
            EXIT_INTERRUPTED,
            "interrupted; the batches committed so far stay "
            "(--count N --until-total completes a fake load)",
        )
    finally:
        engine.dispose()


def _run(engine, args: argparse.Namespace) -> int:
    loader.prepare_schema(engine, reset=args.reset)
    if args.reset:
        print("dropped and recreated the profiles table")

    if args.count is not None:
        result = loader.load_fake(
            engine,
            args.count,
            seed=loader.DEFAULT_SEED if args.seed is None else args.seed,
            batch_size=args.batch_size,
            until_total=args.until_total,
        )
        _summary(result)
        return EXIT_OK

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
            return EXIT_REJECTED
    return EXIT_OK


def _summary(result: loader.LoadResult) -> None:
    print(
        f"inserted {result.inserted} rows, rejected {result.rejected}, "
        f"in {result.seconds:.1f} s ({result.rows_per_s:,.0f} rows/s)"
    )


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
