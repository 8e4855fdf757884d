"""Speed and memory of the fake-profile loader, at several sizes.

    python bench/load.py [--counts 200000 2000000] [--with-5m] [--runs 3]

Each run is ``python load_data.py --reset --yes --count N`` into a scratch
database of its own (``--database``, default ``nearby_bench_load``, created
on the server of ``DATABASE_URL`` and dropped at the end unless ``--keep``),
so the demo's data is never touched. While it runs, the resident memory of
the loader's whole process tree (the main process, the process that reads
the gazetteer and Faker, the workers) is summed every
:data:`SAMPLE_INTERVAL_S`; the peak of that sum is reported. The wall time
covers everything the command does: start-up, rows, indexes, ``ANALYZE``.

Figures are medians over ``--runs`` runs, printed and written as a Markdown
table to ``bench/results/load.md``.
"""

import argparse
import contextlib
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
from sqlalchemy import create_engine
from sqlalchemy import text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from config import get_settings  # noqa: E402

SAMPLE_INTERVAL_S = 0.05
RESULTS = ROOT / "bench" / "results" / "load.md"
INDEXES_LINE = re.compile(r"built the secondary indexes in ([0-9.]+) s")
ROWS_RATE_LINE = re.compile(
    r"committed rows [0-9]+ to [0-9]+ \([0-9]+ of [0-9]+, ([0-9]+) rows/s"
)
ANALYZE_LINE = re.compile(r"analysed the table in ([0-9.]+) s")


@dataclass(frozen=True)
class Run:
    """One load: wall seconds, peak summed RSS in bytes, loader CPU seconds.

    ``rows_phase_per_s`` is the rate of the rows alone, before the indexes,
    as the loader's last batch line gives it; ``other_cores`` is the CPU that
    other work took meanwhile, in cores: the machine's busy time less that of
    the loader, of the PostgreSQL sessions on the scratch database and of
    this script, over the wall time.
    """

    count: int
    wall_s: float
    peak_rss: int
    cpu_s: float
    indexes_s: float
    analyze_s: float
    rows_phase_per_s: float
    other_cores: float

    @property
    def rows_per_s(self) -> float:
        return self.count / self.wall_s


def _tree_rss(process: psutil.Process) -> int:
    # A process may end between the listing and the reading: it counts 0.
    total = 0
    with contextlib.suppress(psutil.Error):
        for member in [process, *process.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                total += member.memory_info().rss
    return total


def _seconds(pattern: re.Pattern, log: str) -> float:
    found = pattern.search(log)
    return float(found.group(1)) if found else 0.0


def _busy_s() -> float:
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


def _sessions_cpu_s(database: str, seen: dict[int, float]) -> None:
    # PostgreSQL sessions on the scratch database: their CPU so far, by pid.
    for process in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            if database in " ".join(process.info["cmdline"] or ()):
                times = process.cpu_times()
                seen[process.pid] = times.user + times.system


def run_once(count: int, database_url: str) -> Run:
    """Run one load of ``count`` rows into an emptied table and measure it."""
    database = make_url(database_url).database
    sessions: dict[int, float] = {}
    _sessions_cpu_s(database, sessions)
    sessions_before = sum(sessions.values())
    own = psutil.Process()
    own_before = sum(own.cpu_times()[:2])
    busy_before = _busy_s()
    # Files, not pipes: nobody reads a pipe while the loader runs.
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "load_data.py", "--reset", "--yes", "--count", str(count)],
            cwd=ROOT,
            env=os.environ | {"DATABASE_URL": database_url, "LOG_LEVEL": "INFO"},
            stdout=out,
            stderr=err,
            text=True,
        )
        watched = psutil.Process(process.pid)
        peak = 0
        samples = 0
        while process.poll() is None:
            peak = max(peak, _tree_rss(watched))
            if samples % 20 == 0:
                _sessions_cpu_s(database, sessions)
            samples += 1
            time.sleep(SAMPLE_INTERVAL_S)
        wall_s = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        busy_s = _busy_s() - busy_before
        own_s = sum(own.cpu_times()[:2]) - own_before
        out.seek(0)
        err.seek(0)
        stdout, log = out.read(), err.read()

    if process.returncode != 0:
        raise SystemExit(f"load of {count} rows failed:\n{stdout}\n{log[-2000:]}")
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    sessions_s = sum(sessions.values()) - sessions_before
    other_cores = max(0.0, busy_s - cpu_s - sessions_s - own_s) / wall_s
    return Run(
        count=count,
        wall_s=wall_s,
        peak_rss=peak,
        cpu_s=cpu_s,
        indexes_s=_seconds(INDEXES_LINE, log),
        analyze_s=_seconds(ANALYZE_LINE, log),
        rows_phase_per_s=float((ROWS_RATE_LINE.findall(log) or ["0"])[-1]),
        other_cores=other_cores,
    )


def _scratch_database(database: str, *, create: bool) -> str:
    url = make_url(get_settings().database_url)
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": database}
        ).scalar()
        if create and not exists:
            conn.execute(text(f'CREATE DATABASE "{database}"'))
        if not create and exists:
            conn.execute(text(f'DROP DATABASE "{database}" WITH (FORCE)'))
    admin.dispose()
    return url.set(database=database).render_as_string(hide_password=False)


def _median(runs: list[Run], field: str) -> float:
    return statistics.median(getattr(run, field) for run in runs)


def _table(results: dict[int, list[Run]]) -> str:
    lines = [
        "| profiles | wall s | rows/s, all in | rows/s, rows alone | indexes s "
        "| analyze s | peak RSS, all processes | loader CPU s "
        "| other work, cores | runs |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for count, runs in results.items():
        lines.append(
            f"| {count:,} | {_median(runs, 'wall_s'):.1f} "
            f"| {_median(runs, 'rows_per_s'):,.0f} "
            f"| {_median(runs, 'rows_phase_per_s'):,.0f} "
            f"| {_median(runs, 'indexes_s'):.1f} | {_median(runs, 'analyze_s'):.1f} "
            f"| {_median(runs, 'peak_rss') / 1e6:.0f} MB "
            f"| {_median(runs, 'cpu_s'):.0f} | {_median(runs, 'other_cores'):.2f} "
            f"| {len(runs)} |"
        )
    return "\n".join(lines)


def main() -> int:
    """Run the benchmark; return the exit status."""
    parser = argparse.ArgumentParser(description="Speed and memory of the loader.")
    parser.add_argument("--counts", type=int, nargs="+", default=[200_000, 2_000_000])
    parser.add_argument(
        "--with-5m", action="store_true", help="also load 5,000,000 profiles"
    )
    parser.add_argument("--runs", type=int, default=3, help="runs per count")
    parser.add_argument("--database", default="nearby_bench_load")
    parser.add_argument(
        "--keep", action="store_true", help="keep the scratch database at the end"
    )
    args = parser.parse_args()
    counts = [*args.counts, *([5_000_000] if args.with_5m else [])]

    database_url = _scratch_database(args.database, create=True)
    results: dict[int, list[Run]] = {}
    try:
        for count in counts:
            for number in range(args.runs):
                run = run_once(count, database_url)
                results.setdefault(count, []).append(run)
                print(
                    f"{count:>10,} rows, run {number + 1}: {run.wall_s:6.1f} s, "
                    f"{run.rows_per_s:8,.0f} rows/s, "
                    f"peak {run.peak_rss / 1e6:4.0f} MB, "
                    f"indexes {run.indexes_s:.1f} s, CPU {run.cpu_s:.0f} s, "
                    f"other work {run.other_cores:.2f} cores",
                    flush=True,
                )
    finally:
        if not args.keep:
            _scratch_database(args.database, create=False)

    table = _table(results)
    print(table)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        "# Loader: speed and memory\n\n"
        f"`python bench/load.py --runs {args.runs}"
        f"{' --with-5m' if args.with_5m else ''}` on {platform.node()}: "
        f"{os.cpu_count()} cores, Python {platform.python_version()}; "
        f"medians of {args.runs} runs.\n"
        "Each run is `load_data.py --reset --yes --count N` into an emptied "
        "table: start-up, rows, both secondary indexes and ANALYZE. Peak RSS is "
        "the largest sum over the loader's processes (MB of 10^6 bytes), sampled "
        f"every {SAMPLE_INTERVAL_S * 1000:.0f} ms; loader CPU is theirs, without "
        "the PostgreSQL server's; other work is the CPU the rest of the machine "
        "took meanwhile, in cores of the two.\n\n"
        f"{table}\n",
        encoding="utf-8",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
