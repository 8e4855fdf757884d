"""The suite's results as Markdown (``bench/results/suite.md``) and a chart.

Request rates are medians over the runs, latencies the medians of each run's
own percentiles; memory is in MB of 10^6 bytes.
"""

import os
import platform
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from matplotlib import pyplot  # noqa: E402

ENDPOINT_LABELS = {
    "redis": "/nearby/redis",
    "postgis": "/nearby/postgis",
    "inmemory": "in-memory app",
}
COLOURS = {"redis": "#c0392b", "postgis": "#2e6da4", "inmemory": "#7f8c8d"}


def machine_facts() -> dict:
    """Return the cores, CPU, memory and load average of the machine, now."""
    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_bytes = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "memory_gb": memory_bytes / 1e9,
        "system": f"{platform.system()} {platform.release()}",
        "load_before": os.getloadavg(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def _mb(sizes: list[int]) -> str:
    if not sizes:
        return "–"
    return " / ".join(f"{size / 1e6:.0f}" for size in sizes) + " MB"


def _load(load: tuple[float, float, float]) -> str:
    return " / ".join(f"{value:.2f}" for value in load)


def markdown(results, targets, machine, args, command: str, versions) -> str:
    """Return the whole results page."""
    full = [result for result in results if not result.short]
    workers = len(full[0].cells["redis", 10].rss) if full else 0
    spent = sum(sum(result.spent.values()) for result in results)
    lines = [
        "# Benchmark suite: nearby, its ceiling, the in-memory approach, the engines",
        "",
        f"`{command}` (what `make bench` runs), {machine['date']}: "
        f"{machine['wall_s'] / 60:.1f} min in all, of which {spent:.0f} s seeding "
        "and indexing (0 when the data sets were already there).",
        "",
        f"Machine: {machine['cores']} cores ({machine['cpu']}), "
        f"{machine['memory_gb']:.0f} GB, {machine['system']}; "
        + ", ".join(f"{name} {version}" for name, version in versions.items())
        + ". Load average (1, 5, 15 min) before the run "
        f"{_load(machine['load_before'])}, after it {_load(machine['load_after'])}: "
        "the machine is shared with other work, so every figure is a median of "
        f"{args.runs} runs and still moves by tens of percent from one run to the "
        "next.",
        "",
        "Every server is `gunicorn -c gunicorn.conf.py MODULE:app`, the demo's and "
        f"docker-compose's command, with {workers} sync workers (`WEB_CONCURRENCY`), "
        "on 127.0.0.1. Load from wrk on loopback: "
        f"{args.threads} thread, {args.connections} connections, "
        f"{args.duration:g} s runs without warm-up, each connection sending the "
        "next path of a pre-generated list (`bench/rotate.lua`). wrk, the "
        "gunicorn workers, Redis and PostgreSQL share the same "
        f"{machine['cores']} cores, so a rate is what the whole machine serves, "
        "load generator included, not what a server would serve on cores of its "
        "own. Worker RSS is read with psutil from each worker (one figure per "
        "worker) after the runs of that radius; each endpoint has a fresh server.",
        "",
        f"Queries: `radius` {', '.join(str(r) for r in (1, 10, 50))} km, "
        "`limit=50`, one category each, around a real location of one of its "
        f"members ({args.centres_per_category} per category, the same list for "
        "every endpoint). Every endpoint's answers to "
        f"{args.check_samples} of them were checked against a direct SQL query "
        "and the suite's own great-circle distances (`bench/checks.py`), and no "
        "request of any run failed at the socket, timed out or got a status of "
        '400 or above (wrk\'s "Non-2xx or 3xx" count; the routes measured '
        "never redirect).",
        "",
    ]
    for result in full + [r for r in results if r.short]:
        lines += _dataset_section(result, args)
    lines += ["## Targets", ""]
    lines += [f"- **{target.verdict}** {target.text}" for target in targets]
    lines += [
        "",
        "The chart ([suite.png](suite.png)) shows the request rates of the "
        "endpoints per radius, the ceiling as a line.",
        "",
    ]
    return "\n".join(lines)


def _dataset_section(result, args) -> list[str]:
    heading = f"## {result.profiles:,} profiles"
    if result.short:
        heading += (
            f" (baseline pass: {args.baseline_duration:g} s runs, one each, for "
            "worker memory)"
        )
    mix = "; ".join(
        f"{size_class}: "
        + ", ".join(f"`{name}` ({result.sizes[name]:,})" for name in names)
        for size_class, names in result.mix.items()
    )
    lines = [
        heading,
        "",
        f"Categories (members): {mix}.",
        "",
        f"Results per answer, from {sum(1 for _ in result.radius_results)} radii "
        "of real /nearby/redis answers: "
        + ", ".join(
            f"{radius} km {count:.1f}"
            for radius, count in result.radius_results.items()
        )
        + f"; {result.average_results:.1f} on average.",
        "",
        "| endpoint | radius | req/s | p50 | p99 | worker RSS | requests |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    if result.ceiling is not None:
        cell = result.ceiling
        lines.append(
            f"| ceiling: fixed body of {result.ceiling_results} results | all | "
            f"{cell.per_s:,.0f} | {cell.p50_ms:.1f} ms | {cell.p99_ms:.1f} ms | "
            f"{_mb(cell.rss)} | {cell.requests:,} |"
        )
    for backend, label in ENDPOINT_LABELS.items():
        for radius in (1, 10, 50):
            cell = result.cells.get((backend, radius))
            if cell is None:
                continue
            lines.append(
                f"| {label} | {radius} km | {cell.per_s:,.0f} | {cell.p50_ms:.1f} ms | "
                f"{cell.p99_ms:.1f} ms | {_mb(cell.rss)} | {cell.requests:,} |"
            )
    lines.append("")

    if result.ceiling is not None:
        ceiling = result.ceiling.per_s
        lines += [
            "| radius | redis / ceiling | postgis / ceiling | in-memory / ceiling | "
            "redis / postgis |",
            "| ---: | ---: | ---: | ---: | ---: |",
        ]
        for radius in (1, 10, 50):
            redis = result.cells["redis", radius].per_s
            postgis = result.cells["postgis", radius].per_s
            inmemory = result.cells["inmemory", radius].per_s
            lines.append(
                f"| {radius} km | {redis / ceiling:.0%} | {postgis / ceiling:.0%} | "
                f"{inmemory / ceiling:.0%} | {redis / postgis:.1f}× |"
            )
        lines.append("")

    inmemory_rss = result.cells["inmemory", 50].rss
    lines += [
        f"In-memory app (`bench/inmemory.py`): every profile in each worker, "
        f"{_mb(inmemory_rss)} resident per worker "
        f"({sum(inmemory_rss) / 1e6:.0f} MB for the {len(inmemory_rss)} workers), "
        "against "
        f"{_mb(result.cells['redis', 50].rss)} for the workers of web:app "
        "serving /nearby/redis and "
        f"{_mb(result.cells['postgis', 50].rss)} serving /nearby/postgis.",
        "",
    ]

    if result.engines:
        lines += [
            "Engines alone, over the same centres, "
            f"{args.connections} connections, {args.engine_duration:g} s a run:",
            "",
            "| engine | radius | per second | p50 | p99 |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        for (engine, radius), load in result.engines.items():
            lines.append(
                f"| {engine} | {radius} km | {load.per_s:,.0f} | "
                f"{load.p50_ms:.2f} ms | {load.p99_ms:.2f} ms |"
            )
        lines += [
            "",
            "redis GEOSEARCH is `redis-benchmark` running the page's command "
            "(`GEOSEARCH nearby:v1:{<category>}:geo FROMLONLAT lon lat BYRADIUS "
            "r+1 m ASC COUNT 51 WITHDIST`) for one centre of each category in "
            "turn: the rate is all their requests over all their time, the "
            "latencies the medians of each centre's. It leaves out the rest of a "
            "request's Redis work (the MULTI of sizes, the HMGET of display "
            "fields). PostGIS search is `pgbench -M extended` on the service's "
            "own statement (`postgis.search_statement`), planned with each "
            "call's values as psycopg2's literals are; each transaction also "
            "reads its centre from a table of the same centres by primary key "
            "(`\\set n random(1, N)` and `\\gset`), which counts in its time.",
            "",
        ]

    for plan in result.plans:
        lines += [
            f"EXPLAIN (ANALYZE, BUFFERS) of the PostGIS search at 10 km, "
            f"{plan.size_class} category `{plan.category}` ({plan.members:,} "
            f"members): index for the category "
            f"**{'yes' if plan.category_index else 'no'}**, for the distance "
            f"**{'yes' if plan.distance_index else 'no'}**.",
            "",
            "```",
            plan.text,
            "```",
            "",
        ]
    return lines


def summary_lines(results) -> list[str]:
    """Return one printed line per figure of every data set."""
    lines = []
    for result in results:
        if result.ceiling is not None:
            cell = result.ceiling
            lines.append(
                f"{result.profiles:>9,} ceiling ({result.ceiling_results} results)"
                f"   {cell.per_s:7,.0f} req/s  p50 {cell.p50_ms:6.1f} ms  "
                f"p99 {cell.p99_ms:6.1f} ms  RSS {_mb(cell.rss)}"
            )
        for (backend, radius), cell in result.cells.items():
            lines.append(
                f"{result.profiles:>9,} {ENDPOINT_LABELS[backend]:<16} {radius:>2} km"
                f"   {cell.per_s:7,.0f} req/s  p50 {cell.p50_ms:6.1f} ms  "
                f"p99 {cell.p99_ms:6.1f} ms  RSS {_mb(cell.rss)}"
            )
        for (engine, radius), load in result.engines.items():
            lines.append(
                f"{result.profiles:>9,} {engine:<16} {radius:>2} km   "
                f"{load.per_s:7,.0f} /s     p50 {load.p50_ms:6.2f} ms  "
                f"p99 {load.p99_ms:6.2f} ms"
            )
    return lines


def chart(results, path: Path) -> None:
    """Draw req/s per endpoint and radius, the ceiling as a line, per data set."""
    full = [result for result in results if result.ceiling is not None]
    figure, axes = pyplot.subplots(
        1, len(full), figsize=(6.5 * len(full), 4.5), squeeze=False
    )
    radii = (1, 10, 50)
    width = 0.8 / len(ENDPOINT_LABELS)
    for axis, result in zip(axes[0], full, strict=True):
        for number, (backend, label) in enumerate(ENDPOINT_LABELS.items()):
            rates = [result.cells[backend, radius].per_s for radius in radii]
            positions = [r + (number - 1) * width for r in range(len(radii))]
            bars = axis.bar(
                positions, rates, width, label=label, color=COLOURS[backend]
            )
            axis.bar_label(bars, fmt="%.0f", fontsize=7, padding=2)
        axis.axhline(
            result.ceiling.per_s,
            color="black",
            linestyle="--",
            linewidth=1,
            label=f"ceiling ({result.ceiling_results} results, no I/O)",
        )
        axis.set_xticks(range(len(radii)), [f"{radius} km" for radius in radii])
        axis.set_ylabel("requests per second (median)")
        axis.set_title(f"{result.profiles:,} profiles, limit 50")
        axis.set_ylim(0, max(result.ceiling.per_s, axis.get_ylim()[1]) * 1.35)
        axis.legend(fontsize=8, loc="upper left", ncols=2)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    pyplot.close(figure)
