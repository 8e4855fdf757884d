"""Where one request's CPU goes: each step of /nearby/redis and /nearby/postgis.

    python bench/profile_request.py              # the suite's 1,000,000 data set
    python bench/profile_request.py --radius 50 --requests 2000

Runs the app in this process, called as a WSGI application with environs
built before the timing (no HTTP server, no load generator, no test client),
on a data set the suite seeded, over real queries of the suite's category
mix. It first times whole requests by CPU (``time.process_time``)
for the ceiling route (answering as many results as /nearby/redis does on
average at the radius) and both endpoints, then times each step of the
endpoints' requests by CPU too, with a timer wrapped around the function of
the step: parsing the query, the search (the backend's call, the CPU of its
round trip included, not the wait), rendering the answer, and the rest
(Flask and Werkzeug around the view). The timers cost a few microseconds a
request. Last, it runs the /nearby/redis requests again and reports the time
Redis itself spent per request, by command, from ``INFO commandstats``
before and after them: EVALSHA's time includes the commands the search
script runs, so the difference is what the script's Lua costs beyond them.
And it times a bare PING by CPU, through the client's pool and on a
connection held outside it: the floor of any round trip to Redis.
"""

import argparse
import importlib
import logging
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from werkzeug.test import EnvironBuilder  # noqa: E402

from bench import datasets  # noqa: E402
from bench.app import ROUTES  # noqa: E402
from bench.app import create_bench_app  # noqa: E402
from bench.suite import SEED  # noqa: E402
from bench.suite import mix_queries  # noqa: E402
from config import Settings  # noqa: E402
from nearby.db import make_redis  # noqa: E402

STEPS = {
    "redis": {
        "parse": ("nearby.api", "_parse"),
        "search": ("nearby.api", "_redis_search"),
        "render": ("nearby.api", "_render"),
    },
    "postgis": {
        "parse": ("nearby.api", "_parse"),
        "search": ("nearby.postgis", "search"),
        "render": ("nearby.api", "_render"),
    },
}
"""The function that is each step, by module and name; the views call each
through its module, so that a wrapper put there times every call."""
SEARCH_COMMANDS = (
    "evalsha",
    "eval",
    "geosearch",
    "hmget",
    "hget",
    "zcard",
    "sismember",
    "scard",
)
"""The commands a /nearby/redis search runs; other clients of the same Redis
server (a Celery broker, say) run others, which are left out."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    datasets.add_profiles_argument(parser)
    parser.add_argument("--radius", type=int, default=10, help="km (default 10)")
    parser.add_argument(
        "--requests", type=int, default=1200, help="per route (default 1200)"
    )
    args = parser.parse_args(argv)
    if args.requests < 1:
        parser.error("--requests must be 1 or more")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    settings = Settings()
    data = datasets.dataset(args.profiles, settings.database_url, settings.redis_url)
    queries = mix_queries(data, args.radius)
    queries = [queries[n % len(queries)] for n in range(args.requests)]
    random.Random(SEED).shuffle(queries)

    settings = settings.model_copy(
        update={"database_url": data.database_url, "redis_url": data.redis_url}
    )
    results = _average_results(create_bench_app(settings, 0), queries)
    client = _WsgiCaller(create_bench_app(settings, round(results)))
    for path in ROUTES.values():
        for query in queries:
            client.prepare(f"{path}?{query}")
    print(
        f"The ceiling answers {round(results)} results, as /nearby/redis does on "
        f"average at {args.radius} km ({results:.1f})"
    )

    cpu_us = {}
    for route, path in ROUTES.items():
        cpu_us[route] = _cpu_per_request(client, path, queries)
    print(f"CPU per request, {len(queries)} requests at {args.radius} km:")
    for route, micros in cpu_us.items():
        print(f"  {route:8s} {micros:7.0f} us")

    for route in STEPS:
        shares, mean_us = _shares(client, ROUTES[route], queries, STEPS[route])
        print(
            f"{ROUTES[route]}, by step (share of its CPU, and microseconds of a "
            f"mean {mean_us:.0f} us request):"
        )
        for step, share in shares.items():
            print(f"  {step:8s} {share:6.1%} {share * mean_us:7.0f} us")

    redis = make_redis(data.redis_url, timeout_s=5)
    print("Redis's own time per /nearby/redis request, by command:")
    for command, (calls, micros) in _redis_time(redis, client, queries).items():
        print(f"  {command:10s} {calls:5.2f} calls {micros:7.1f} us")

    pooled, held = _ping_cpu_us(redis, len(queries) * 10)
    print(f"A bare PING, by CPU: {pooled:.0f} us through the pool, {held:.0f} us held")
    return 0


def _average_results(app, queries: list[str]) -> float:
    """Return how many results /nearby/redis answers hold on average."""
    client = app.test_client()
    counts = []
    for query in queries:
        response = client.get(f"{ROUTES['redis']}?{query}")
        if response.status_code != 200:
            raise SystemExit(f"/nearby/redis?{query}: {response.status_code}")
        counts.append(response.get_json()["count"])
    services = app.extensions["nearby"]
    services.engine.dispose()
    services.redis.close()
    return statistics.mean(counts)


def _cpu_per_request(client, path: str, queries: list[str]) -> float:
    for query in queries[:50]:
        _get(client, path, query)
    spent = []
    for query in queries:
        started = time.process_time()
        _get(client, path, query)
        spent.append(time.process_time() - started)
    return statistics.median(spent) * 1e6


def _redis_time(redis, client, queries: list[str]) -> dict[str, tuple[float, float]]:
    """Return calls and microseconds per request of each command Redis ran."""
    before = redis.info("commandstats")
    for query in queries:
        _get(client, ROUTES["redis"], query)
    after = redis.info("commandstats")

    spent = {}
    for name, stats in after.items():
        calls = stats["calls"] - before.get(name, {}).get("calls", 0)
        micros = stats["usec"] - before.get(name, {}).get("usec", 0)
        if calls and name.removeprefix("cmdstat_") in SEARCH_COMMANDS:
            spent[name.removeprefix("cmdstat_")] = (
                calls / len(queries),
                micros / len(queries),
            )
    return dict(sorted(spent.items(), key=lambda item: -item[1][1]))


def _ping_cpu_us(redis, pings: int) -> tuple[float, float]:
    """Return the CPU of a PING through ``redis``'s pool, and on a held connection."""
    pool = redis.connection_pool
    held = pool.connection_class(**pool.connection_kwargs)

    def pooled_ping() -> None:
        connection = pool.get_connection()
        try:
            connection.send_command("PING")
            connection.read_response()
        finally:
            pool.release(connection)

    def held_ping() -> None:
        held.send_command("PING")
        held.read_response()

    spent = []
    try:
        for ping in (pooled_ping, held_ping):
            for _ in range(pings // 10):
                ping()
            started = time.process_time()
            for _ in range(pings):
                ping()
            spent.append((time.process_time() - started) / pings * 1e6)
    finally:
        held.disconnect()
    return spent[0], spent[1]


def _shares(
    client, path: str, queries: list[str], steps: dict
) -> tuple[dict[str, float], float]:
    """Return each step's share of the requests' CPU, timed around its
    function, and the mean CPU of a request in microseconds, timers included."""
    spent = dict.fromkeys(steps, 0.0)
    originals = []
    for step, (module_name, name) in steps.items():
        module = importlib.import_module(module_name)
        original = getattr(module, name)
        originals.append((module, name, original))
        setattr(module, name, _timed(original, spent, step))
    try:
        started = time.process_time()
        for query in queries:
            _get(client, path, query)
        total = time.process_time() - started
    finally:
        for module, name, original in originals:
            setattr(module, name, original)

    shares = {step: seconds / total for step, seconds in spent.items()}
    shares["rest"] = 1 - sum(shares.values())
    return shares, total / len(queries) * 1e6


def _timed(function, spent: dict[str, float], step: str):
    def timed(*args, **kwargs):
        started = time.process_time()
        try:
            return function(*args, **kwargs)
        finally:
            spent[step] += time.process_time() - started

    return timed


class _WsgiCaller:
    """Calls the app as a WSGI server would, each environ built once beforehand."""

    def __init__(self, app):
        self.app = app
        self.environs = {}

    def prepare(self, url: str) -> None:
        path, _, query = url.partition("?")
        environ = EnvironBuilder(path=path, query_string=query).get_environ()
        self.environs[url] = environ

    def get(self, url: str) -> tuple[str, bytes]:
        statuses = []
        environ = dict(self.environs[url])
        body = self.app(environ, lambda status, headers: statuses.append(status))
        try:
            return statuses[0], b"".join(body)
        finally:
            if hasattr(body, "close"):
                body.close()


def _get(client: _WsgiCaller, path: str, query: str) -> None:
    status, body = client.get(f"{path}?{query}")
    if not status.startswith("200 "):
        raise SystemExit(f"{path}?{query}: {status} {body!r}")


if __name__ == "__main__":
    sys.exit(main())
