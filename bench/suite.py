"""The benchmark suite: nearby's endpoints against their ceiling, the approach
they replace, and their engines alone, at 1,000,000 profiles (and 5,000,000).

    python bench/suite.py [--with-5m] [--duration 10] [--connections 16] [--runs 3]
    make bench BENCH_ARGS="--with-5m"

For each data set (see ``bench/datasets.py``: a database and a Redis database
of its own, seeded and indexed when they do not already hold the count) it
starts servers made with ``gunicorn -c gunicorn.conf.py`` (the demo's and
docker-compose's command and settings, ``WEB_CONCURRENCY`` workers) on free
ports of 127.0.0.1, one per endpoint:

- ``web:app`` for /nearby/redis, and another for /nearby/postgis;
- ``bench.app:build()`` for the ceiling: a route of the same app that answers a
  fixed body of as many results as real answers hold on average (measured
  first, from /nearby/redis answers to the benchmark's own queries);
- ``bench.inmemory:build()``, every profile in NumPy arrays, the approach
  nearby replaces.

Queries: radius 1, 10 and 50 km, ``limit=50``, each asking for one category
of a mix of small, median and large ones (sizes from /categories) around a
real location of one of its members. wrk sends them in turn (``rotate.lua``)
for ``--duration`` seconds over ``--connections`` connections. A round loads
every radius on every endpoint back to back, the endpoints' order turning
each round, so that the other work of a shared machine falls on all alike;
figures are medians over ``--runs`` rounds, and ratios medians of the ratios
within a round. The load generator shares the machine's cores with the
servers and the databases; the CPU other programs took meanwhile is recorded
(``bench/cpu.py``). After each run the resident set of each worker is read.

Before its runs every endpoint's answers to ``--check-samples`` queries are
checked against the suite's own computation (``bench/checks.py``); a wrong
answer, a non-200 answer, or any error wrk counts ends the run at once with
status 1, and no results are written. redis-benchmark then runs the GEOSEARCH
of a page on the same keys and centres, pgbench the PostGIS search statement
on the same table and centres, and EXPLAIN (ANALYZE, BUFFERS) shows the plan
of that statement at 10 km. A short pass at 100,000 profiles gives the
baseline of worker memory.

Results go to ``bench/results/suite.md`` and ``bench/results/suite.png``;
the targets are printed PASS or FAIL (``--strict`` makes a FAIL exit with
status 3). Every server the suite started is stopped at the end, also after
a failure, Ctrl-C or SIGTERM.
"""

import argparse
import logging
import os
import platform
import random
import re
import signal
import statistics
import sys
import time
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from urllib.parse import parse_qsl
from urllib.parse import urlencode
from urllib.parse import urlsplit

import orjson
import psutil
from sqlalchemy import Engine
from sqlalchemy import text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import checks  # noqa: E402
from bench import cpu  # noqa: E402
from bench import datasets  # noqa: E402
from bench import loadgen  # noqa: E402
from bench import report  # noqa: E402
from bench.app import CEILING_PATH  # noqa: E402
from bench.app import RESULTS_ENV  # noqa: E402
from bench.inmemory import PATH as INMEMORY_PATH  # noqa: E402
from bench.servers import Server  # noqa: E402
from bench.servers import Servers  # noqa: E402
from config import get_settings  # noqa: E402
from nearby import geo  # noqa: E402
from nearby import geoindex  # noqa: E402
from nearby import postgis  # noqa: E402
from nearby.db import make_redis  # noqa: E402
from scripts import devservices  # noqa: E402

log = logging.getLogger("bench.suite")

RESULTS_MD = ROOT / "bench" / "results" / "suite.md"
RESULTS_PNG = ROOT / "bench" / "results" / "suite.png"

BASELINE_PROFILES = 100_000
MAIN_PROFILES = 1_000_000
LARGE_PROFILES = 5_000_000
RADII_KM = (1, 10, 50)
HEADLINE_RADIUS_KM = 10
LIMIT = 50
SEED = 7
CATEGORIES_PER_CLASS = 4
CENTRES_PER_CATEGORY = 100

ENDPOINTS = {
    "ceiling": CEILING_PATH,
    "redis": "/nearby/redis",
    "postgis": "/nearby/postgis",
    "inmemory": INMEMORY_PATH,
}
"""The endpoints measured per radius, by the backend their answers name."""
BACKENDS = tuple(ENDPOINTS)
"""The order of the endpoints in the first round."""

INMEMORY_READY_LINE = "inmemory: loaded"
INMEMORY_TIMEOUT_S = 900
"""GUNICORN_TIMEOUT of the in-memory server: its workers read every profile
before they answer, longer than gunicorn's default 30 s at 5,000,000."""

TARGET_REDIS_CEILING = 0.60
TARGET_POSTGIS_CEILING = 0.25
TARGET_REDIS_OVER_POSTGIS = 4.0
TARGET_RSS_GROWTH = 0.10

INDEX_USE = re.compile(
    r"(?:Bitmap Index Scan on|Index Scan using|Index Only Scan using) (\S+)"
)
INDEX_COLUMNS_SQL = text(
    "SELECT indexname, indexdef FROM pg_indexes "
    "WHERE tablename IN ('profiles', 'profile_categories')"
)
INDEX_KEYS = re.compile(r"USING \w+ \((.*?)\)(?: INCLUDE|$)")
CATEGORY_KEYS = {"categories", "category"}
DISTANCE_KEYS = {"location", "geometry(location)", "geohash"}
"""Key columns that answer the category test, and those that answer the
distance: the location itself or its geohash, whose ranges hold the circle."""


def index_keys(indexdef: str) -> set[str]:
    """Return the key columns of an index definition (not its INCLUDE ones)."""
    match = INDEX_KEYS.search(indexdef)
    if match is None:
        return set()
    return {key.strip() for key in match.group(1).split(",")}


class CheckFailed(Exception):
    """An endpoint answered wrong, or not with 200; the run stops."""


@dataclass
class Cell:
    """An endpoint at one radius: its runs and its workers' RSS afterwards."""

    runs: list[loadgen.Load] = field(default_factory=list)
    rss: list[int] = field(default_factory=list)
    """Resident set of each worker after the runs, in bytes."""
    other_cores: list[float] = field(default_factory=list)
    """CPU other programs took during each run, in cores (bench/cpu.py)."""

    @property
    def per_s(self) -> float:
        return statistics.median(run.per_s for run in self.runs)

    @property
    def p50_ms(self) -> float:
        return statistics.median(run.p50_ms for run in self.runs)

    @property
    def p99_ms(self) -> float:
        return statistics.median(run.p99_ms for run in self.runs)

    @property
    def other(self) -> float:
        return statistics.median(self.other_cores) if self.other_cores else 0.0

    @property
    def requests(self) -> int:
        return sum(run.requests for run in self.runs)


@dataclass
class Plan:
    """The EXPLAIN of the PostGIS search for one query, and the indexes it uses."""

    size_class: str
    category: str
    members: int
    text: str
    category_index: bool
    distance_index: bool


@dataclass
class DatasetResult:
    """Everything measured on one data set."""

    profiles: int
    short: bool
    spent: dict[str, float]
    mix: dict[str, list[str]]
    sizes: dict[str, int]
    average_results: float = 0.0
    radius_results: dict[int, float] = field(default_factory=dict)
    cells: dict[tuple[str, int], Cell] = field(default_factory=dict)
    """(endpoint, radius) -> its runs; the ceiling's too, under "ceiling"."""
    ceiling_results: int = 0
    ceiling_bytes: int = 0
    rss: dict[str, list[int]] = field(default_factory=dict)
    checked: dict[str, int] = field(default_factory=dict)
    plans: list[Plan] = field(default_factory=list)
    engines: dict[tuple[str, int], loadgen.Load] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def label(self) -> str:
        return f"{self.profiles:,}"

    @property
    def has_ceiling(self) -> bool:
        return ("ceiling", HEADLINE_RADIUS_KM) in self.cells

    def ceiling_per_s(self) -> float:
        """Return the median rate of every run of the ceiling, at every radius."""
        return statistics.median(
            load.per_s
            for radius_km in RADII_KM
            for load in self.cells["ceiling", radius_km].runs
        )

    def ratio(self, backend: str, other: str, radius_km: int) -> float:
        """Return the median over the rounds of ``backend``'s rate over ``other``'s.

        Both ran in the same round at ``radius_km``, back to back.
        """
        pairs = zip(
            self.cells[backend, radius_km].runs,
            self.cells[other, radius_km].runs,
            strict=True,
        )
        return statistics.median(mine.per_s / theirs.per_s for mine, theirs in pairs)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Return the parsed arguments; exit with status 2 when they do not fit."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--with-5m", action="store_true", help="also measure 5,000,000 profiles"
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=10,
        help="seconds of each wrk run (default 10; no warm-up)",
    )
    parser.add_argument(
        "--connections", type=int, default=16, help="wrk connections (default 16)"
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="wrk threads (default 1)"
    )
    parser.add_argument(
        "--runs",
        type=int,
        default=3,
        help="runs of each figure, whose median is reported (default 3)",
    )
    parser.add_argument(
        "--baseline-duration",
        type=float,
        default=3,
        help="seconds of each wrk run of the 100,000-profile pass (default 3)",
    )
    parser.add_argument(
        "--engine-duration",
        type=float,
        default=5,
        help="seconds of each redis-benchmark and pgbench run (default 5)",
    )
    parser.add_argument(
        "--check-samples",
        type=int,
        default=50,
        help="answers of each endpoint checked against SQL (default 50)",
    )
    parser.add_argument(
        "--average-samples",
        type=int,
        default=300,
        help="/nearby/redis answers the ceiling's result count is averaged "
        "from (default 300)",
    )
    parser.add_argument(
        "--categories-per-class",
        type=int,
        default=CATEGORIES_PER_CLASS,
        help="small, median and large categories each "
        f"(default {CATEGORIES_PER_CLASS})",
    )
    parser.add_argument(
        "--centres-per-category",
        type=int,
        default=CENTRES_PER_CATEGORY,
        help="real member locations per category used as centres "
        f"(default {CENTRES_PER_CATEGORY})",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="exit with status 3 when a target fails",
    )
    args = parser.parse_args(argv)
    for name in ("duration", "baseline_duration", "engine_duration"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    for name in ("connections", "threads", "runs", "categories_per_class"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.threads > args.connections:
        parser.error("--threads must not exceed --connections")
    if args.centres_per_category < 2 or args.check_samples < 1:
        parser.error("--centres-per-category needs 2 or more, --check-samples 1")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the suite; return the exit status."""
    args = parse_args(argv)
    logging.basicConfig(
        level="INFO", format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S"
    )
    missing = devservices.missing_tools()
    if missing:
        print(
            f"suite: missing load generators: {', '.join(missing)}; "
            "`python scripts/devservices.py tools` installs them",
            file=sys.stderr,
        )
        return 2
    signal.signal(signal.SIGTERM, _terminated)
    signal.signal(signal.SIGHUP, _terminated)

    settings = get_settings()
    machine = report.machine_facts()
    counts = [BASELINE_PROFILES, MAIN_PROFILES]
    if args.with_5m:
        counts.append(LARGE_PROFILES)

    started = time.perf_counter()
    results = []
    try:
        with Servers() as servers:
            for count in counts:
                data = datasets.dataset(
                    count, settings.database_url, settings.redis_url
                )
                results.append(
                    run_dataset(data, servers, args, short=count == BASELINE_PROFILES)
                )
    except CheckFailed as exc:
        print(f"\nsuite: FAILED: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            "\nsuite: interrupted; every server it started is stopped", file=sys.stderr
        )
        return 130
    machine["load_after"] = os.getloadavg()
    machine["wall_s"] = time.perf_counter() - started

    targets = evaluate_targets(results)
    command = "python bench/suite.py" + "".join(f" {arg}" for arg in sys.argv[1:])
    RESULTS_MD.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_MD.write_text(
        report.markdown(results, targets, machine, args, command, versions(settings))
    )
    report.chart(results, RESULTS_PNG)

    print()
    for line in report.summary_lines(results):
        print(line)
    print()
    for target in targets:
        print(f"{target.verdict:<4} {target.text}")
    print(f"\nwrote {RESULTS_MD.relative_to(ROOT)} and {RESULTS_PNG.relative_to(ROOT)}")
    failed = any(target.verdict == "FAIL" for target in targets)
    return 3 if failed and args.strict else 0


def _terminated(signum, frame) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@dataclass
class Pass:
    """What the measurements of one data set share."""

    args: argparse.Namespace
    engine: Engine
    result: DatasetResult
    queries: dict[int, list[str]]
    """Query strings of every centre, by radius."""
    samples: list[tuple[int, int]]
    """(radius, centre number) of the answers each endpoint has checked."""
    duration_s: float
    runs: int
    roots: list[psutil.Process]
    """The database servers, whose CPU is the run's own (see bench/cpu.py)."""


def run_dataset(
    data: datasets.Dataset, servers: Servers, args: argparse.Namespace, *, short: bool
) -> DatasetResult:
    """Measure every endpoint (and, unless ``short``, the ceiling and engines)."""
    started = time.perf_counter()
    client = make_redis(data.redis_url, timeout_s=30)
    spent = datasets.prepare(data, client)
    engine = data.engine()
    env = data.env() | {"LOG_LEVEL": "WARNING"}
    log.info("dataset %s: measuring%s", data.label, " (baseline pass)" if short else "")

    try:
        on = {
            "redis": servers.start(
                f"redis-{data.profiles}", "web:app", env, ready_path="/health"
            )
        }
        sizes = _category_sizes(on["redis"])
        mix = datasets.category_mix(
            sizes, args.categories_per_class, min_members=args.centres_per_category
        )
        centres = datasets.draw_centres(engine, mix, args.centres_per_category, SEED)
        result = DatasetResult(data.profiles, short, spent, mix, sizes)
        run = Pass(
            args=args,
            engine=engine,
            result=result,
            queries={
                radius_km: [query_string(centre, radius_km) for centre in centres]
                for radius_km in RADII_KM
            },
            samples=_samples(centres, args.check_samples),
            duration_s=args.baseline_duration if short else args.duration,
            runs=1 if short else args.runs,
            roots=_database_servers(data),
        )
        _average_results(run, on["redis"])

        on["postgis"] = servers.start(
            f"postgis-{data.profiles}", "web:app", env, ready_path="/health"
        )
        if not short:
            on["ceiling"] = _start_ceiling(run, servers, env)
        on["inmemory"] = servers.start(
            f"inmemory-{data.profiles}",
            "bench.inmemory:build()",
            # INFO: readiness is its workers' "loaded" lines.
            env | {"GUNICORN_TIMEOUT": str(INMEMORY_TIMEOUT_S), "LOG_LEVEL": "INFO"},
            ready_path=f"{INMEMORY_PATH}?{run.queries[RADII_KM[0]][0]}",
            ready_line=INMEMORY_READY_LINE,
            start_timeout_s=INMEMORY_TIMEOUT_S,
        )
        for backend, server in on.items():
            if backend != "ceiling":
                _check(run, server, backend)

        _rounds(run, on)
        for backend, server in on.items():
            result.rss[backend] = server.worker_rss()
            servers.stop(server)

        if not short:
            result.plans = _explain(engine, centres, sizes)
            datasets.write_centre_table(engine, centres, RADII_KM)
            _measure_engines(data, centres, result, args)
    finally:
        engine.dispose()
        client.close()
    result.seconds = time.perf_counter() - started
    return result


def _database_servers(data: datasets.Dataset) -> list[psutil.Process]:
    ports = (make_url(data.database_url).port or 5432, urlsplit(data.redis_url).port)
    found = [cpu.listener(port) for port in ports if port]
    return [process for process in found if process is not None]


def _category_sizes(web: Server) -> dict[str, int]:
    status, body = web.get("/categories")
    if status != 200:
        raise CheckFailed(f"/categories answered {status}: {body[:200]!r}")
    return {
        entry["name"]: entry["postgis"] for entry in orjson.loads(body)["categories"]
    }


def mix_queries(data: datasets.Dataset, radius_km: int) -> list[str]:
    """Return the query strings, at ``radius_km``, of the suite's default
    category mix in ``data``, for the scripts that measure beside the suite."""
    engine = data.engine()
    try:
        centres = datasets.mix_centres(
            engine, CATEGORIES_PER_CLASS, CENTRES_PER_CATEGORY, seed=SEED
        )
    finally:
        engine.dispose()
    return [query_string(centre, radius_km) for centre in centres]


def query_string(centre: datasets.Centre, radius_km: int) -> str:
    return urlencode(
        {
            "lat": repr(centre.lat),
            "lon": repr(centre.lon),
            "radius": radius_km,
            "category": centre.category,
            "limit": LIMIT,
        }
    )


def _samples(centres: list[datasets.Centre], count: int) -> list[tuple[int, int]]:
    """Return ``(radius, centre number)`` pairs to check, spread over radii."""
    rng = random.Random(SEED + 1)
    numbers = rng.sample(range(len(centres)), min(count, len(centres)))
    return [(RADII_KM[i % len(RADII_KM)], number) for i, number in enumerate(numbers)]


def _average_results(run: Pass, web: Server) -> None:
    """Measure how many results the benchmark's answers hold, from real ones."""
    per_radius = max(1, run.args.average_samples // len(run.queries))
    counts = {}
    for radius_km, strings in run.queries.items():
        counts[radius_km] = []
        for query in strings[:per_radius]:
            status, body = web.get(f"{ENDPOINTS['redis']}?{query}")
            if status != 200:
                raise CheckFailed(f"/nearby/redis?{query} answered {status}: {body!r}")
            counts[radius_km].append(orjson.loads(body)["count"])

    result = run.result
    result.radius_results = {r: statistics.mean(c) for r, c in counts.items()}
    result.average_results = statistics.mean(
        count for values in counts.values() for count in values
    )
    log.info(
        "dataset %s: %.1f results per answer on average (%s)",
        f"{result.profiles:,}",
        result.average_results,
        ", ".join(f"{r} km: {n:.1f}" for r, n in result.radius_results.items()),
    )


def _start_ceiling(run: Pass, servers: Servers, env: dict[str, str]) -> Server:
    """Start the ceiling with the average result count of real answers."""
    results = round(run.result.average_results)
    server = servers.start(
        f"ceiling-{run.result.profiles}",
        "bench.app:build()",
        env | {RESULTS_ENV: str(results)},
        ready_path=CEILING_PATH,
    )
    status, body = server.get(CEILING_PATH)
    if status != 200 or orjson.loads(body)["count"] != results:
        raise CheckFailed(f"the ceiling answered {status} with {body[:200]!r}")
    run.result.ceiling_results = results
    run.result.ceiling_bytes = len(body)
    return server


def _rounds(run: Pass, on: dict[str, Server]) -> None:
    """Load every endpoint at every radius, ``run.runs`` rounds.

    Within a round each radius is loaded on every endpoint back to back, the
    order of the endpoints turning by one each round, so that the other work
    of a shared machine falls on all of them alike.
    """
    order = [backend for backend in BACKENDS if backend in on]
    for number in range(run.runs):
        turn = number % len(order)
        for radius_km in RADII_KM:
            for backend in order[turn:] + order[:turn]:
                paths = [
                    f"{ENDPOINTS[backend]}?{query}" for query in run.queries[radius_km]
                ]
                cell = run.result.cells.setdefault((backend, radius_km), Cell())
                _load(run, on[backend], paths, cell)
        log.info(
            "dataset %s: round %d of %d done", run.result.label, number + 1, run.runs
        )

    for (backend, radius_km), cell in run.result.cells.items():
        _log_cell(f"{backend} at {radius_km} km", cell)


def _load(run: Pass, server: Server, paths: list[str], cell: Cell) -> None:
    """Run wrk once into ``cell``, then read the workers' RSS.

    Raises:
        CheckFailed: wrk counted a failed request or an error status.
    """
    with cpu.OtherWork(run.roots) as other:
        load = loadgen.wrk(
            server.base_url,
            paths,
            duration_s=run.duration_s,
            connections=run.args.connections,
            threads=run.args.threads,
        )
    if load.errors or not load.requests:
        raise CheckFailed(
            f"{server.name}: wrk counted {load.errors} failed requests of "
            f"{load.requests} ({load.non_2xx} answers not 2xx or 3xx); the end "
            f"of {server.log_path}:\n{server.log_tail()}"
        )
    cell.runs.append(load)
    cell.other_cores.append(other.cores)
    cell.rss = server.worker_rss()


def _log_cell(label: str, cell: Cell) -> None:
    log.info(
        "%s: %.0f req/s, p50 %.1f ms, p99 %.1f ms (runs: %s req/s; other work "
        "%.2f cores)",
        label,
        cell.per_s,
        cell.p50_ms,
        cell.p99_ms,
        ", ".join(f"{load.per_s:.0f}" for load in cell.runs),
        cell.other,
    )


def _check(run: Pass, server: Server, backend: str) -> None:
    """Compare sampled answers with the suite's own computation.

    Raises:
        CheckFailed: an answer was not a 200, or differs; every problem found
            is listed.
    """
    path = ENDPOINTS[backend]
    problems = []
    with run.engine.connect() as conn:
        for radius_km, number in run.samples:
            query = run.queries[radius_km][number]
            status, body = server.get(f"{path}?{query}")
            if status != 200:
                problems.append(f"{path}?{query}: status {status}: {body[:300]!r}")
                continue

            params = dict(parse_qsl(query))
            radius_m = radius_km * 1000.0
            expected = checks.truth(
                conn,
                params["category"],
                float(params["lon"]),
                float(params["lat"]),
                radius_m,
                LIMIT,
            )
            wrong = checks.compare(
                orjson.loads(body),
                expected,
                radius_m=radius_m,
                limit=LIMIT,
                unit_m=1000.0,
                backend=backend,
            )
            problems += [f"{path}?{query}: {line}" for line in wrong]

    if problems:
        shown = "\n  ".join(problems[:20])
        raise CheckFailed(
            f"{len(problems)} problems in {len(run.samples)} checked answers of "
            f"{server.name}:\n  {shown}"
        )
    run.result.checked[backend] = len(run.samples)
    log.info(
        "%s: %d answers checked against SQL, all right", server.name, len(run.samples)
    )


def _search(centre: datasets.Centre, radius_km: int) -> geo.Search:
    return geo.Search(
        shape=geo.Shape.RADIUS,
        categories=(centre.category,),
        lon=centre.lon,
        lat=centre.lat,
        radius_m=radius_km * 1000.0,
        limit=LIMIT,
        max_scan=get_settings().max_scan_members,
    )


def _explain(
    engine, centres: list[datasets.Centre], sizes: dict[str, int]
) -> list[Plan]:
    """EXPLAIN the PostGIS search at the headline radius, once per size class."""
    plans = []
    with engine.connect() as conn:
        columns = {
            row.indexname: row.indexdef for row in conn.execute(INDEX_COLUMNS_SQL)
        }
        for size_class in ("small", "median", "large"):
            centre = next(c for c in centres if c.size_class == size_class)
            statement, params = postgis.search_statement(
                _search(centre, HEADLINE_RADIUS_KM)
            )
            explain = text("EXPLAIN (ANALYZE, BUFFERS) " + statement.text)
            lines = [row[0] for row in conn.execute(explain, params)]
            used = {
                columns.get(name, "")
                for line in lines
                for name in INDEX_USE.findall(line)
            }
            plans.append(
                Plan(
                    size_class=size_class,
                    category=centre.category,
                    members=sizes[centre.category],
                    text="\n".join(lines),
                    category_index=any(index_keys(d) & CATEGORY_KEYS for d in used),
                    distance_index=any(index_keys(d) & DISTANCE_KEYS for d in used),
                )
            )
    return plans


REDIS_ENGINE = "redis GEOSEARCH"
POSTGIS_ENGINE = "PostGIS search"
PGBENCH_CENTRE_SQL = (
    "\\set n random(1, {count})\n"
    "SELECT lon, lat, categories, category, cell_low, cell_high FROM bench_centres "
    "WHERE n = :n AND radius_km = {radius_km} \\gset\n"
)
"""Draws a centre of the suite's table; its columns become pgbench variables
of the names the search statement binds."""
PGBENCH_CENTRE_COLUMNS = {
    "lon",
    "lat",
    "categories",
    "category",
    "cell_low",
    "cell_high",
}


def _measure_engines(
    data: datasets.Dataset,
    centres: list[datasets.Centre],
    result: DatasetResult,
    args: argparse.Namespace,
) -> None:
    """redis-benchmark on the GEOSEARCH of a page; pgbench on the search SQL.

    ``--runs`` rounds of both at every radius; the medians are kept.
    """
    first_of_each = list({centre.category: centre for centre in centres}.values())
    loads: dict[tuple[str, int], list[loadgen.Load]] = {}
    for _ in range(args.runs):
        for radius_km in RADII_KM:
            loads.setdefault((REDIS_ENGINE, radius_km), []).append(
                loadgen.redis_benchmark(
                    data.redis_url,
                    _geosearch_commands(first_of_each, radius_km),
                    duration_s=args.engine_duration,
                    connections=args.connections,
                )
            )

            statement, params = postgis.search_statement(_search(centres[0], radius_km))
            script = (
                PGBENCH_CENTRE_SQL.format(count=len(centres), radius_km=radius_km)
                + statement.text.strip()
                + ";\n"
            )
            variables = {
                name: repr(value)
                for name, value in params.items()
                if name not in PGBENCH_CENTRE_COLUMNS
            }
            loads.setdefault((POSTGIS_ENGINE, radius_km), []).append(
                loadgen.pgbench(
                    data.database_url,
                    script,
                    variables=variables,
                    duration_s=args.engine_duration,
                    connections=args.connections,
                    threads=min(2, args.connections),
                )
            )

    for (engine_name, radius_km), runs in loads.items():
        load = result.engines[engine_name, radius_km] = _median_load(runs)
        log.info(
            "%s at %d km: %.0f/s, p50 %.2f ms, p99 %.2f ms (runs: %s)",
            engine_name,
            radius_km,
            load.per_s,
            load.p50_ms,
            load.p99_ms,
            ", ".join(f"{run.per_s:.0f}" for run in runs),
        )


def _geosearch_commands(
    centres: list[datasets.Centre], radius_km: int
) -> list[list[str]]:
    """Return the GEOSEARCH of a page around each centre, as the service sends it."""
    radius_m = radius_km * 1000.0 + geoindex.REDIS_SLACK_M
    return [
        [
            "GEOSEARCH",
            geoindex.geo_key(centre.category),
            "FROMLONLAT",
            repr(centre.lon),
            repr(centre.lat),
            "BYRADIUS",
            repr(radius_m),
            "m",
            "ASC",
            "COUNT",
            str(LIMIT + 1),
        ]
        for centre in centres
    ]


def _median_load(loads: list[loadgen.Load]) -> loadgen.Load:
    return loadgen.Load(
        requests=sum(load.requests for load in loads),
        seconds=sum(load.requests for load in loads)
        / statistics.median(load.per_s for load in loads),
        p50_ms=statistics.median(load.p50_ms for load in loads),
        p99_ms=statistics.median(load.p99_ms for load in loads),
    )


@dataclass(frozen=True)
class Target:
    """One target and whether this run met it: PASS, FAIL or SKIP."""

    verdict: str
    text: str


def evaluate_targets(results: list[DatasetResult]) -> list[Target]:
    """Judge the targets from the figures; a figure not measured is SKIP.

    Shares of the ceiling and the Redis/PostGIS ratio are medians of the
    ratios of runs made back to back in the same round.
    """
    by_count = {result.profiles: result for result in results}
    targets = []
    radius = HEADLINE_RADIUS_KM

    for result in results:
        if not result.has_ceiling:
            continue
        share = result.ratio("redis", "ceiling", radius)
        targets.append(
            _target(
                share >= TARGET_REDIS_CEILING,
                f"{result.label}: /nearby/redis at {radius} km "
                f"{result.cells['redis', radius].per_s:,.0f} req/s, {share:.0%} of "
                f"the ceiling (target {TARGET_REDIS_CEILING:.0%})",
            )
        )

    main = by_count.get(MAIN_PROFILES)
    if main is not None and main.has_ceiling:
        share = main.ratio("postgis", "ceiling", radius)
        indexed = bool(main.plans) and all(
            plan.category_index and plan.distance_index for plan in main.plans
        )
        plans = "; ".join(
            f"{plan.size_class} `{plan.category}`: "
            f"category {'yes' if plan.category_index else 'no'}, "
            f"distance {'yes' if plan.distance_index else 'no'}"
            for plan in main.plans
        )
        targets.append(
            _target(
                share >= TARGET_POSTGIS_CEILING and indexed,
                f"{main.label}: /nearby/postgis at {radius} km "
                f"{main.cells['postgis', radius].per_s:,.0f} req/s, {share:.0%} of "
                f"the ceiling (target {TARGET_POSTGIS_CEILING:.0%}), and EXPLAIN "
                f"uses an index for the category and for the distance ({plans})",
            )
        )

    large = by_count.get(LARGE_PROFILES)
    if large is None:
        targets.append(
            Target(
                "SKIP",
                f"5,000,000: /nearby/redis ≥ {TARGET_REDIS_OVER_POSTGIS:g}× "
                "/nearby/postgis (needs --with-5m)",
            )
        )
    else:
        ratio = large.ratio("redis", "postgis", radius)
        targets.append(
            _target(
                ratio >= TARGET_REDIS_OVER_POSTGIS,
                f"{large.label}: /nearby/redis at {radius} km {ratio:.1f}× "
                f"/nearby/postgis (target {TARGET_REDIS_OVER_POSTGIS:g}×)",
            )
        )

    baseline = by_count.get(BASELINE_PROFILES)
    compared = large or main
    for backend in ("redis", "postgis"):
        if baseline is None or compared is None:
            break
        before = max(baseline.rss[backend])
        after = max(compared.rss[backend])
        growth = after / before - 1
        line = (
            f"{compared.label}: largest {backend} worker RSS {after / 1e6:.0f} MB "
            f"against {before / 1e6:.0f} MB at 100,000 ({growth:+.1%}; target within "
            f"{TARGET_RSS_GROWTH:.0%} at 5,000,000); the in-memory app's "
            f"{max(compared.rss['inmemory']) / 1e6:.0f} MB against "
            f"{max(baseline.rss['inmemory']) / 1e6:.0f} MB"
        )
        if large is None:
            targets.append(Target("SKIP", line + " (5,000,000 needs --with-5m)"))
        else:
            targets.append(_target(abs(growth) <= TARGET_RSS_GROWTH, line))
    return targets


def _target(met: bool, line: str) -> Target:
    return Target("PASS" if met else "FAIL", line)


def versions(settings) -> dict[str, str]:
    """Return the versions of the servers and tools the figures depend on."""
    facts = {}
    data = datasets.dataset(MAIN_PROFILES, settings.database_url, settings.redis_url)
    engine = data.engine()
    try:
        with engine.connect() as conn:
            facts["PostgreSQL"] = conn.execute(text("SHOW server_version")).scalar()
            facts["PostGIS"] = conn.execute(
                text("SELECT postgis_lib_version()")
            ).scalar()
    finally:
        engine.dispose()
    client = make_redis(data.redis_url, timeout_s=5)
    facts["Redis"] = client.info("server")["redis_version"]
    client.close()
    facts["Python"] = platform.python_version()
    return facts


if __name__ == "__main__":
    sys.exit(main())
