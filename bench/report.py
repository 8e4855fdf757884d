"""The suite's results as Markdown (``bench/results/suite.md``) and a chart.

Request rates are medians over the rounds, latencies the medians of each
run's own percentiles, ratios the medians of the ratios of runs made back to
back in one round; memory is in MB of 10^6 bytes.
"""

import os
import platform
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from matplotlib import pyplot  # noqa: E402

RADII_KM = (1, 10, 50)
LABELS = {
    "ceiling": "ceiling",
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


def _each(cell) -> str:
    return ", ".join(f"{run.per_s:,.0f}" for run in cell.runs)


def _load(load: tuple[float, float, float]) -> str:
    return " / ".join(f"{value:.2f}" for value in load)


def markdown(results, targets, machine, args, command: str, versions) -> str:
    """Return the whole results page."""
    full = [result for result in results if not result.short]
    baseline = [result for result in results if result.short]
    workers = len(results[0].rss["redis"])
    spent = sum(sum(result.spent.values()) for result in results)
    lines = [
        "# Benchmark suite: nearby, its ceiling, the in-memory approach, the engines",
        "",
        f"`{command}` (what `make bench` runs), {machine['date']}: "
        f"{machine['wall_s'] / 60:.1f} min in all, of which {spent:.0f} s seeding "
        "and indexing (none when the data sets are already there).",
        "",
        f"Machine: {machine['cores']} cores ({machine['cpu']}), "
        f"{machine['memory_gb']:.0f} GB, {machine['system']}; "
        + ", ".join(f"{name} {version}" for name, version in versions.items())
        + ". Load average (1, 5, 15 min) before the run "
        f"{_load(machine['load_before'])}, after it {_load(machine['load_after'])}. "
        "The machine is shared with other work, which comes and goes: each "
        "figure is a median over the rounds, the rate of each run is listed, "
        "and the other work during the runs is given in cores.",
        "",
        "Every server is `gunicorn -c gunicorn.conf.py` (`web:app`, "
        "`bench.app:build()`, `bench.inmemory:build()`), the demo's and "
        f"docker-compose's command, with {workers} sync workers "
        "(`WEB_CONCURRENCY`), on 127.0.0.1; each endpoint has a server of its "
        "own and all of them run through the rounds. Load comes from wrk on "
        f"loopback: {args.threads} thread, {args.connections} connections, "
        f"{args.duration:g} s runs without warm-up, each connection sending the "
        "next path of a pre-generated list (`bench/rotate.lua`). A round loads "
        "each radius on every endpoint back to back, the order of the endpoints "
        f"turning each round; {args.runs} rounds. wrk, the gunicorn workers, "
        f"Redis and PostgreSQL share the same {machine['cores']} cores, so a rate "
        "is what the whole machine serves, load generator included, not what a "
        "server would serve on cores of its own. Worker RSS is read with psutil "
        "from each worker (one figure per worker) after the last run of that "
        "endpoint at that radius. Other work is the CPU that programs other "
        "than the run's own (the suite, wrk, the servers, PostgreSQL and Redis) "
        "took during the runs, the virtual machine's steal included, in cores "
        f"of the {machine['cores']} (median over the runs; `bench/cpu.py`).",
        "",
        f"Queries: `radius` {', '.join(str(r) for r in RADII_KM)} km, "
        "`limit=50`, one category each, around a real location of one of its "
        f"members ({args.centres_per_category} per category, the same list for "
        "every endpoint). Small categories are those nearest the 10th "
        "percentile of the categories that have at least that many members, "
        "median ones those nearest the median, large ones the largest. Every "
        f"endpoint's answers to {args.check_samples} of the queries were checked "
        "against a direct SQL query and the suite's own great-circle distances "
        "(`bench/checks.py`), and no request of any run failed at the socket, "
        'timed out or got a status of 400 or above (wrk\'s "Non-2xx or 3xx" '
        "count; the routes measured never redirect).",
        "",
    ]
    for result in full + baseline:
        lines += _dataset_section(result, args)
    lines += ["## Targets", ""]
    lines += [f"- **{target.verdict}** {target.text}" for target in targets]
    lines += [
        "",
        "The chart, [suite.png](suite.png), shows the request rates per endpoint "
        "and radius, with the ceiling of each radius as a dashed line.",
        "",
    ]
    return "\n".join(lines)


def _dataset_section(result, args) -> list[str]:
    heading = f"## {result.label} profiles"
    if result.short:
        heading += (
            f" (baseline pass for worker memory: one round of "
            f"{args.baseline_duration:g} s runs, no ceiling)"
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
        "Results per answer, averaged over real /nearby/redis answers: "
        + ", ".join(
            f"{radius} km {count:.1f}"
            for radius, count in result.radius_results.items()
        )
        + f"; {result.average_results:.1f} over all.",
        "",
    ]
    if result.has_ceiling:
        lines += [
            f"The ceiling answers a fixed body of {result.ceiling_results} "
            f"results ({result.ceiling_bytes:,} bytes) to the same query strings.",
            "",
        ]

    lines += [
        "| endpoint | radius | req/s | req/s of each run | p50 | p99 | worker RSS "
        "| requests | other work |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for backend, label in LABELS.items():
        for radius in RADII_KM:
            cell = result.cells.get((backend, radius))
            if cell is None:
                continue
            lines.append(
                f"| {label} | {radius} km | {cell.per_s:,.0f} | {_each(cell)} | "
                f"{cell.p50_ms:.1f} ms | {cell.p99_ms:.1f} ms | {_mb(cell.rss)} | "
                f"{cell.requests:,} | {cell.other:.2f} cores |"
            )
    lines.append("")

    if result.has_ceiling:
        lines += [
            "| radius | redis / ceiling | postgis / ceiling | in-memory / ceiling | "
            "redis / postgis |",
            "| ---: | ---: | ---: | ---: | ---: |",
        ]
        for radius in RADII_KM:
            lines.append(
                f"| {radius} km | {result.ratio('redis', 'ceiling', radius):.0%} | "
                f"{result.ratio('postgis', 'ceiling', radius):.0%} | "
                f"{result.ratio('inmemory', 'ceiling', radius):.0%} | "
                f"{result.ratio('redis', 'postgis', radius):.1f}× |"
            )
        lines.append("")

    inmemory_rss = result.rss["inmemory"]
    lines += [
        "In-memory app (`bench/inmemory.py`), every profile in each worker: "
        f"{_mb(inmemory_rss)} resident per worker, "
        f"{sum(inmemory_rss) / 1e6:.0f} MB for its {len(inmemory_rss)} workers; "
        f"web:app's workers: {_mb(result.rss['redis'])} serving /nearby/redis, "
        f"{_mb(result.rss['postgis'])} serving /nearby/postgis.",
        "",
    ]

    if result.engines:
        lines += [
            "Engines alone, over the same centres, "
            f"{args.connections} connections, {args.engine_duration:g} s a run, "
            f"medians of {args.runs} rounds:",
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
            "r+1 m ASC COUNT 51`) for one centre of each category in "
            "turn: the rate is all their requests over all their time, the "
            "latencies the medians of each centre's. It leaves out the rest of a "
            "request's Redis work (the checks of readiness, categories and sizes, "
            "the HMGET of display fields, all in the same Lua script). "
            "PostGIS search is `pgbench -M prepared` on the service's "
            "own statement (`postgis.search_statement`), prepared once per "
            "connection as the service prepares it; each transaction also "
            "reads its centre and the geohash ranges of its circle from a table "
            "of the same centres by primary key (`\\set n random(1, N)` and "
            "`\\gset`), which counts in its time.",
            "",
        ]

    for plan in result.plans:
        lines += [
            f"EXPLAIN (ANALYZE, BUFFERS) of the PostGIS search at 10 km, "
            f"{plan.size_class} category `{plan.category}` ({plan.members:,} "
            f"members): an index for the category: "
            f"**{'yes' if plan.category_index else 'no'}**; for the distance: "
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
        for (backend, radius), cell in result.cells.items():
            lines.append(
                f"{result.profiles:>9,} {LABELS[backend]:<16} {radius:>2} km"
                f"   {cell.per_s:7,.0f} req/s  p50 {cell.p50_ms:6.1f} ms  "
                f"p99 {cell.p99_ms:6.1f} ms  RSS {_mb(cell.rss)}  "
                f"other {cell.other:.2f} cores"
            )
        for (engine, radius), load in result.engines.items():
            lines.append(
                f"{result.profiles:>9,} {engine:<16} {radius:>2} km   "
                f"{load.per_s:7,.0f} /s     p50 {load.p50_ms:6.2f} ms  "
                f"p99 {load.p99_ms:6.2f} ms"
            )
    return lines


def chart(results, path: Path) -> None:
    """Draw req/s per endpoint and radius, each radius's ceiling as a line."""
    full = [result for result in results if result.has_ceiling]
    figure, axes = pyplot.subplots(
        1, len(full), figsize=(6.5 * len(full), 4.5), squeeze=False
    )
    backends = [backend for backend in LABELS if backend != "ceiling"]
    width = 0.8 / len(backends)
    for axis, result in zip(axes[0], full, strict=True):
        for number, backend in enumerate(backends):
            rates = [result.cells[backend, radius].per_s for radius in RADII_KM]
            positions = [
                group + (number - (len(backends) - 1) / 2) * width
                for group in range(len(RADII_KM))
            ]
            bars = axis.bar(
                positions, rates, width, label=LABELS[backend], color=COLOURS[backend]
            )
            axis.bar_label(bars, fmt="%.0f", fontsize=7, padding=2)
        for group, radius in enumerate(RADII_KM):
            axis.hlines(
                result.cells["ceiling", radius].per_s,
                group - 0.45,
                group + 0.45,
                colors="black",
                linestyles="dashed",
                linewidth=1.2,
                label=(
                    f"ceiling ({result.ceiling_results} results, no I/O)"
                    if group == 0
                    else None
                ),
            )
        axis.set_xticks(range(len(RADII_KM)), [f"{radius} km" for radius in RADII_KM])
        axis.set_ylabel("requests per second (median of the rounds)")
        axis.set_title(
            f"{result.label} profiles, limit 50, "
            f"{len(result.rss['redis'])} gunicorn workers"
        )
        axis.set_ylim(0, axis.get_ylim()[1] * 1.3)
        axis.legend(fontsize=8, loc="upper left", ncols=2)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    pyplot.close(figure)
