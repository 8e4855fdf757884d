"""The load generators of the suite: wrk over HTTP, redis-benchmark, pgbench.

Each runs as a child process against loopback, for a fixed duration or
request count, under a timeout; each result is one :class:`Load`: requests
per second and latency percentiles in milliseconds. The Debian packages wrk,
redis-tools and postgresql-15 provide the three commands
(``scripts/devservices.py tools`` installs them).
"""

import json
import os
import re
import statistics
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
ROTATE_LUA = ROOT / "bench" / "rotate.lua"
WRK_TIMEOUT_S = 5
"""wrk counts a request unanswered after this long as a timeout."""
SLACK_S = 60
"""Added to a run's duration before it is killed as hung."""
PROBE_REQUESTS = 200
"""Requests of redis-benchmark's first, rate-finding run of each command."""

PGBENCH_TPS = re.compile(r"^tps = ([0-9.]+) \(without initial connection time\)", re.M)
PGBENCH_FAILED = re.compile(r"^number of failed transactions: ([0-9]+)", re.M)


@dataclass(frozen=True)
class Load:
    """One run's throughput and latency; ``errors`` counts failed requests.

    For wrk, ``errors`` is the sum of its socket errors, timeouts and answers
    of status 400 and above (its "Non-2xx or 3xx" count, ``non_2xx``).
    """

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int = 0
    non_2xx: int = 0

    @property
    def per_s(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def wrk(
    base_url: str,
    paths: list[str],
    *,
    duration_s: float,
    connections: int,
    threads: int,
) -> Load:
    """Send ``paths`` in turn to ``base_url`` for ``duration_s`` with wrk.

    Raises:
        RuntimeError: wrk failed or printed no summary.
    """
    with tempfile.NamedTemporaryFile("w", suffix=".paths", delete=False) as listing:
        listing.write("\n".join(paths) + "\n")
    try:
        done = subprocess.run(
            [
                "wrk",
                f"-t{threads}",
                f"-c{connections}",
                f"-d{duration_s:g}s",
                f"--timeout={WRK_TIMEOUT_S}s",
                "-s",
                str(ROTATE_LUA),
                base_url,
                "--",
                listing.name,
            ],
            capture_output=True,
            text=True,
            timeout=duration_s + SLACK_S,
            check=False,
        )
    finally:
        os.unlink(listing.name)

    summary = next(
        (
            line.removeprefix("WRK_JSON ")
            for line in done.stdout.splitlines()
            if line.startswith("WRK_JSON ")
        ),
        None,
    )
    if done.returncode != 0 or summary is None:
        raise RuntimeError(
            f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout}"
        )
    figures = json.loads(summary)
    socket_errors = sum(
        figures[name] for name in ("connect", "read", "write", "timeout")
    )
    return Load(
        requests=figures["requests"],
        seconds=figures["duration_us"] / 1e6,
        p50_ms=figures["p50_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
        errors=socket_errors + figures["status"],
        non_2xx=figures["status"],
    )


def redis_benchmark(
    redis_url: str,
    commands: list[list[str]],
    *,
    duration_s: float,
    connections: int,
) -> Load:
    """Run each command with redis-benchmark, together for about ``duration_s``.

    redis-benchmark repeats one command per run, so each command (a centre)
    gets a short probe of :data:`PROBE_REQUESTS` to learn its rate, then a
    run of its share of the duration. The rate is the total requests over
    the total time; the percentiles are the medians, over the commands, of
    each run's own.

    Raises:
        RuntimeError: redis-benchmark failed or printed no figures.
    """
    share_s = duration_s / len(commands)
    rows = []
    for command in commands:
        probe = _redis_benchmark_run(redis_url, command, PROBE_REQUESTS, connections)
        requests = max(PROBE_REQUESTS, int(probe["rps"] * share_s))
        rows.append(_redis_benchmark_run(redis_url, command, requests, connections))

    requests = sum(row["requests"] for row in rows)
    seconds = sum(row["requests"] / row["rps"] for row in rows)
    return Load(
        requests=requests,
        seconds=seconds,
        p50_ms=statistics.median(row["p50_latency_ms"] for row in rows),
        p99_ms=statistics.median(row["p99_latency_ms"] for row in rows),
    )


def _redis_benchmark_run(
    redis_url: str, command: list[str], requests: int, connections: int
) -> dict[str, float]:
    url = urlsplit(redis_url)
    env = dict(os.environ)
    if url.password:
        env["REDISCLI_AUTH"] = url.password
    done = subprocess.run(
        [
            "redis-benchmark",
            "-h",
            url.hostname,
            "-p",
            str(url.port or 6379),
            "--dbnum",
            url.path.strip("/") or "0",
            "-c",
            str(connections),
            "-n",
            str(requests),
            "--csv",
            *command,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=SLACK_S + requests / 100,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith('"')]
    if done.returncode != 0 or len(lines) < 2:
        raise RuntimeError(
            f"redis-benchmark failed ({done.returncode}): "
            f"{done.stderr.strip() or done.stdout}"
        )
    names = [name.strip('"') for name in lines[0].split(",")]
    values = [value.strip('"') for value in lines[1].rsplit(",", len(names) - 1)]
    row = {
        name: float(value) for name, value in zip(names[1:], values[1:], strict=True)
    }
    row["requests"] = requests
    return row


def pgbench(
    database_url: str,
    script: str,
    *,
    variables: dict[str, str],
    duration_s: float,
    connections: int,
    threads: int,
) -> Load:
    """Run the pgbench ``script`` for ``duration_s``; percentiles from its log.

    Statements are prepared once per connection (``-M prepared``), as the
    service's radius search of one category is.

    Raises:
        RuntimeError: pgbench failed, or a transaction failed.
    """
    url = urlsplit(database_url.replace("postgresql+psycopg2", "postgresql", 1))
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = url.password
    with tempfile.TemporaryDirectory(prefix="nearby-pgbench-") as work:
        script_path = Path(work) / "search.sql"
        script_path.write_text(script)
        defines = [f"--define={name}={value}" for name, value in variables.items()]
        done = subprocess.run(
            [
                "pgbench",
                "--no-vacuum",
                "--protocol=prepared",
                f"--client={connections}",
                f"--jobs={threads}",
                f"--time={max(1, round(duration_s))}",
                f"--file={script_path}",
                "--log",
                f"--log-prefix={work}/log",
                *defines,
                "-h",
                url.hostname,
                "-p",
                str(url.port or 5432),
                "-U",
                url.username,
                url.path.strip("/"),
            ],
            capture_output=True,
            text=True,
            env=env,
            cwd=work,
            timeout=duration_s + SLACK_S,
            check=False,
        )
        tps = PGBENCH_TPS.search(done.stdout)
        if done.returncode != 0 or tps is None:
            raise RuntimeError(
                f"pgbench failed ({done.returncode}): "
                f"{done.stderr.strip()[-2000:] or done.stdout}"
            )
        failed = PGBENCH_FAILED.search(done.stdout)
        if failed and int(failed.group(1)):
            raise RuntimeError(f"pgbench: {failed.group(1)} transactions failed")
        latencies_us = sorted(
            int(line.split()[2])
            for log in Path(work).glob("log*")
            for line in log.read_text().splitlines()
        )

    per_s = float(tps.group(1))
    return Load(
        requests=len(latencies_us),
        seconds=len(latencies_us) / per_s if per_s else 0.0,
        p50_ms=_percentile(latencies_us, 50) / 1000,
        p99_ms=_percentile(latencies_us, 99) / 1000,
    )


def _percentile(sorted_values: list[int], percent: float) -> float:
    if not sorted_values:
        return 0.0
    rank = min(len(sorted_values) - 1, int(len(sorted_values) * percent / 100))
    return float(sorted_values[rank])
