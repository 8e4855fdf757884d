"""Refresh benchmark: full rebuild, incremental refresh, and their peak memory.

    python bench/refresh.py [--counts 100000 1000000] [--changes 10000]

For each count, into a scratch database of its own
(``<database>_bench_refresh_<count>``, kept for the next run) and a scratch
Redis database (12) of the configured servers: seeds the profiles
(``load_data.py --count N --until-total``), runs ``worker.py refresh --full``,
writes ``--changes`` changed profiles with plain SQL (half moved, a quarter
re-categorised, an eighth deleted, an eighth inserted), runs
``worker.py refresh`` (incremental), and checks the result with
``worker.py verify``. Each command runs as its own process; its wall time and
peak resident memory (sampled every 20 ms with psutil) are recorded. Results
go to ``bench/results/refresh.md``.
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit
from urllib.parse import urlunsplit

import psutil
from sqlalchemy import create_engine
from sqlalchemy import text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from config import get_settings  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "refresh.md"
REDIS_DB = 12

CHANGES_SQL = [
    # Moves: half of the changes, a few hundred metres each.
    """
    UPDATE profiles SET location = ST_SetSRID(ST_MakePoint(
        ST_X(location::geometry) + 0.003, ST_Y(location::geometry)), 4326)::geography
    WHERE id IN (SELECT id FROM profiles ORDER BY md5(id::text) LIMIT :moves)
    """,
    # Re-categorisations: a quarter, swapping the first category for another's.
    """
    UPDATE profiles p SET categories = o.categories
    FROM (
        SELECT id, lead(categories) OVER (ORDER BY id) AS categories
        FROM profiles WHERE id IN (
            SELECT id FROM profiles ORDER BY md5(id::text || 'c') LIMIT :recategorised
        )
    ) AS o
    WHERE p.id = o.id AND o.categories IS NOT NULL
    """,
    # Deletes: an eighth.
    """
    DELETE FROM profiles
    WHERE id IN (SELECT id FROM profiles ORDER BY md5(id::text || 'd') LIMIT :deletes)
    """,
    # Inserts: an eighth, copies of existing profiles at a nearby spot.
    """
    INSERT INTO profiles (name, city, country, location, categories)
    SELECT name, city, country, ST_SetSRID(ST_MakePoint(
        ST_X(location::geometry), ST_Y(location::geometry) + 0.002), 4326)::geography,
        categories
    FROM profiles ORDER BY md5(id::text || 'i') LIMIT :inserts
    """,
]


def _scratch_urls(count: int) -> tuple[str, str]:
    settings = get_settings()
    url = make_url(settings.database_url)
    database_url = url.set(database=f"{url.database}_bench_refresh_{count}")
    redis_url = urlunsplit(urlsplit(settings.redis_url)._replace(path=f"/{REDIS_DB}"))
    return database_url.render_as_string(hide_password=False), redis_url


def _create_database(database_url: str) -> None:
    url = make_url(database_url)
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": url.database}
        ).scalar()
        if not exists:
            conn.execute(text(f'CREATE DATABASE "{url.database}"'))
    admin.dispose()


def _run(env: dict[str, str], *args: str) -> tuple[float, float, str]:
    """Run a command; return its wall seconds, peak RSS in MB and output."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    watched = psutil.Process(process.pid)
    peak = 0
    while process.poll() is None:
        try:
            tree = [watched, *watched.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree))
        except psutil.Error:
            pass
        time.sleep(0.02)
    output = process.stdout.read()
    if process.returncode not in (0,):
        raise SystemExit(f"{' '.join(args)} failed ({process.returncode}):\n{output}")
    return time.perf_counter() - started, peak / 1e6, output.strip().splitlines()[-1]


def _change(database_url: str, changes: int) -> float:
    engine = create_engine(database_url)
    params = {
        "moves": changes // 2,
        "recategorised": changes // 4,
        "deletes": changes // 8,
        "inserts": changes - changes // 2 - changes // 4 - changes // 8,
    }
    started = time.perf_counter()
    with engine.begin() as conn:
        for statement in CHANGES_SQL:
            conn.execute(text(statement), params)
    engine.dispose()
    return time.perf_counter() - started


def main() -> int:
    """Run the benchmark; return the exit status."""
    parser = argparse.ArgumentParser(description="Refresh benchmark.")
    parser.add_argument("--counts", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--changes", type=int, default=10_000)
    args = parser.parse_args()

    rows = []
    for count in args.counts:
        database_url, redis_url = _scratch_urls(count)
        _create_database(database_url)
        env = os.environ | {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "LOG_LEVEL": "WARNING",
        }
        _run(env, "load_data.py", "--count", str(count), "--until-total")
        full_s, full_mb, full_line = _run(env, "worker.py", "refresh", "--full")
        change_s = _change(database_url, args.changes)
        incr_s, incr_mb, incr_line = _run(env, "worker.py", "refresh")
        _, _, verify_line = _run(env, "worker.py", "verify")
        rows.append((count, full_s, full_mb, incr_s, incr_mb, verify_line))
        print(
            f"{count:>9} profiles: full {full_s:.1f} s, {full_mb:.0f} MB | "
            f"{args.changes} changes written in {change_s:.1f} s | incremental "
            f"{incr_s:.2f} s, {incr_mb:.0f} MB\n  {full_line}\n  {incr_line}\n"
            f"  {verify_line}"
        )

    lines = [
        "# Refresh benchmark",
        "",
        f"`python bench/refresh.py --counts {' '.join(map(str, args.counts))} "
        f"--changes {args.changes}`, on {os.cpu_count()} cores. Wall seconds of "
        "each command (process start included) and the peak resident memory of "
        "its process.",
        "",
        "| profiles | full rebuild | its peak RSS | incremental after "
        f"{args.changes} changes | its peak RSS | verify |",
        "| ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for count, full_s, full_mb, incr_s, incr_mb, verify_line in rows:
        lines.append(
            f"| {count:,} | {full_s:.1f} s | {full_mb:.0f} MB | {incr_s:.2f} s | "
            f"{incr_mb:.0f} MB | {verify_line.split(';')[1].strip()} |"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
