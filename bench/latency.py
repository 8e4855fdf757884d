"""Sequential latency of both endpoints against a running nearby server.

    python bench/latency.py [--base http://127.0.0.1:8000] [--requests 500]

Draws query centres from the profiles in PostGIS (each query asks for one of
its centre profile's categories, radius 10 km, limit 50), sends the same
queries to /nearby/redis and /nearby/postgis one at a time over one keep-alive
connection, checks every answer is a 200 with the same ids, and prints the
median and 99th percentile in milliseconds. Loopback only; it stops after
``--requests`` queries per endpoint.
"""

import argparse
import http.client
import json
import random
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlencode
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text  # noqa: E402

from config import get_settings  # noqa: E402
from nearby.db import make_engine  # noqa: E402


def _centres(count: int, seed: int) -> list[tuple[float, float, list[str]]]:
    engine = make_engine(get_settings().database_url)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT ST_X(location::geometry), ST_Y(location::geometry), categories "
                "FROM profiles TABLESAMPLE SYSTEM (1) REPEATABLE (:seed) LIMIT :n"
            ),
            {"seed": seed, "n": count},
        ).all()
    engine.dispose()
    return rows


def _get(conn, path: str) -> tuple[float, dict]:
    started = time.perf_counter()
    conn.request("GET", path)
    response = conn.getresponse()
    body = response.read()
    elapsed_ms = (time.perf_counter() - started) * 1000
    if response.status != 200:
        raise SystemExit(f"{path} answered {response.status}: {body[:200]!r}")
    return elapsed_ms, json.loads(body)


def main() -> int:
    """Run the measurement; return the exit status."""
    parser = argparse.ArgumentParser(description="Latency of both endpoints.")
    parser.add_argument("--base", default="http://127.0.0.1:8000")
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--radius-km", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    base = urlsplit(args.base)
    if base.hostname not in {"127.0.0.1", "localhost", "::1"}:
        raise SystemExit("this benchmark targets loopback only")
    rng = random.Random(args.seed)
    centres = _centres(max(args.requests, 100), args.seed)
    queries = []
    for _ in range(args.requests):
        lon, lat, categories = rng.choice(centres)
        params = {"lat": lat, "lon": lon, "radius": args.radius_km, "limit": 50}
        queries.append(urlencode(params | {"category": rng.choice(categories)}))

    conn = http.client.HTTPConnection(base.hostname, base.port or 80, timeout=10)
    timings = {"redis": [], "postgis": []}
    results = 0
    for query in queries:
        answers = {}
        for backend, samples in timings.items():
            elapsed_ms, answers[backend] = _get(conn, f"/nearby/{backend}?{query}")
            samples.append(elapsed_ms)
        ids = {
            name: [r["id"] for r in body["results"]] for name, body in answers.items()
        }
        if len(set(map(tuple, ids.values()))) != 1:
            print(f"warning: the backends differ on {query}", file=sys.stderr)
        results += len(ids["redis"])

    print(
        f"{args.requests} queries, radius {args.radius_km} km, limit 50, "
        f"{results / args.requests:.1f} results on average"
    )
    for backend, samples in timings.items():
        cuts = statistics.quantiles(samples, n=100)
        print(
            f"/nearby/{backend:<8} median {statistics.median(samples):6.2f} ms   "
            f"p99 {cuts[98]:6.2f} ms"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
