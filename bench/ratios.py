"""A quick side-by-side: the ceiling and the endpoints on one data set, in one run.

    python bench/ratios.py                      # the suite's 1,000,000 data set
    python bench/ratios.py --radius 50 --rounds 5 WEB_CONCURRENCY=4

For trying one change at a time, where ``make bench`` measures everything:
it starts one ``bench.app:build()`` server (the app plus the ceiling route) on
a data set the suite already seeded, loads each route with wrk in rounds whose
order turns, and prints each run's requests/s with the CPU that the gunicorn
workers, Redis and PostgreSQL spent per request, then the median ratios to
the ceiling. ``NAME=VALUE`` arguments go to the server's environment
(``WEB_CONCURRENCY``, ``GUNICORN_CMD_ARGS``...).
"""

import argparse
import logging
import os
import statistics
import sys
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import datasets  # noqa: E402
from bench import loadgen  # noqa: E402
from bench import servers  # noqa: E402
from bench.app import RESULTS_ENV  # noqa: E402
from bench.app import ROUTES  # noqa: E402
from bench.suite import mix_queries  # noqa: E402
from config import Settings  # noqa: E402

SERVICE_PROCESSES = ("redis-server", "postgres")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    datasets.add_profiles_argument(parser)
    parser.add_argument("--radius", type=int, default=10, help="km (default 10)")
    parser.add_argument("--rounds", type=int, default=3, help="default 3")
    parser.add_argument("--seconds", type=float, default=6, help="per run (6)")
    parser.add_argument("--connections", type=int, default=16, help="default 16")
    parser.add_argument(
        "--ceiling-results",
        type=int,
        default=4,
        help="results in the ceiling's body (default 4)",
    )
    parser.add_argument(
        "--routes", default="ceiling,redis,postgis", help="comma-separated"
    )
    parser.add_argument("env", nargs="*", metavar="NAME=VALUE")
    args = parser.parse_args(argv)
    args.routes = args.routes.split(",")
    if "ceiling" not in args.routes or not set(args.routes) <= set(ROUTES):
        parser.error(f"--routes takes ceiling and any of {', '.join(ROUTES)}")
    if any("=" not in item for item in args.env):
        parser.error("extra arguments are NAME=VALUE")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    settings = Settings()
    data = datasets.dataset(args.profiles, settings.database_url, settings.redis_url)
    paths = ["?" + query for query in mix_queries(data, args.radius)]

    env = os.environ | data.env() | {RESULTS_ENV: str(args.ceiling_results)}
    env |= dict(item.split("=", 1) for item in args.env)
    rates: dict[str, list[float]] = {route: [] for route in args.routes}
    with servers.Servers() as running:
        server = running.start("ratios", "bench.app:build()", env, ready_path="/health")
        for number in range(args.rounds):
            turn = number % len(args.routes)
            for route in args.routes[turn:] + args.routes[:turn]:
                load, cpu = _run(server, [ROUTES[route] + p for p in paths], args)
                rates[route].append(load.per_s)
                spent = ", ".join(f"{name} {ms:.3f}" for name, ms in cpu.items())
                print(f"{route:8s} {load.per_s:7.0f} req/s  CPU ms/request: {spent}")

    medians = {route: statistics.median(values) for route, values in rates.items()}
    print(
        "medians: "
        + ", ".join(f"{route} {rate:.0f} req/s" for route, rate in medians.items())
    )
    print(
        "of the ceiling: "
        + ", ".join(
            f"{route} {medians[route] / medians['ceiling']:.0%}"
            for route in args.routes
            if route != "ceiling"
        )
    )
    return 0


def _run(server, paths, args) -> tuple[loadgen.Load, dict[str, float]]:
    """One wrk run, and the CPU milliseconds per request of each kind of process.

    A process that starts during the run (a PostgreSQL backend for a new
    connection) counts all of its CPU.
    """
    before = _cpu_by_pid(server)
    load = loadgen.wrk(
        server.base_url,
        paths,
        duration_s=args.seconds,
        connections=args.connections,
        threads=1,
    )
    if load.errors:
        raise SystemExit(f"{load.errors} requests failed or answered >= 400")

    spent: dict[str, float] = {}
    for pid, (kind, seconds) in _cpu_by_pid(server).items():
        spent[kind] = spent.get(kind, 0.0) + seconds - before.get(pid, (kind, 0.0))[1]
    return load, {kind: s / load.requests * 1000 for kind, s in spent.items()}


def _cpu_by_pid(server) -> dict[int, tuple[str, float]]:
    """User and system seconds of the workers, Redis and PostgreSQL, by pid."""
    processes = [("workers", process) for process in server.worker_processes()]
    for process in psutil.process_iter(["name"]):
        if process.info["name"] in SERVICE_PROCESSES:
            processes.append((process.info["name"], process))
    seconds = {}
    for kind, process in processes:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        seconds[process.pid] = (kind, times.user + times.system)
    return seconds


if __name__ == "__main__":
    sys.exit(main())
