"""Print example queries of the running demo, each checked first.

``make demo`` runs this once gunicorn is started. It takes the two largest
categories from ``GET /categories``, centres each query on a real profile of
the category (read through :mod:`nearby.postgis`, so the profile itself is a
result; of a few such profiles, the one with the most neighbours), and keeps
a query only if the server answers it 200 with at least one result. The
examples cover both backends and the query shapes: the same radius query on
/nearby/redis and /nearby/postgis, the nearest profiles without a radius
(out to KNN_MAX_RADIUS_KM) through /nearby, and a map view's box as GeoJSON.

Exit status 0 when every example was checked, 1 otherwise (the message says
which URL failed and why).
"""

import argparse
import itertools
import json
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from config import get_settings  # noqa: E402
from nearby import postgis  # noqa: E402
from nearby import query  # noqa: E402
from nearby.db import make_engine  # noqa: E402

REQUEST_TIMEOUT_S = 10
STREAM_BATCH = 1000
MAX_BATCHES = 100
"""Profiles scanned for centres at most: MAX_BATCHES * STREAM_BATCH."""
CANDIDATES = 5
"""Profiles tried as the centre of each example; the busiest one is shown."""


class DemoError(Exception):
    """The demo cannot show a working example; the message says why."""


@dataclass(frozen=True)
class Example:
    title: str
    url: str
    found: int


def get_json(url: str, wait_s: float) -> dict:
    """GET ``url`` and decode its JSON; retry for ``wait_s`` while nothing listens.

    Raises:
        DemoError: no answer within ``wait_s``, a status other than 200, or a
            body that is not JSON.
    """
    deadline = time.monotonic() + wait_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=REQUEST_TIMEOUT_S) as response:
                return json.load(response)
        except urllib.error.HTTPError as exc:
            body = exc.read().decode(errors="replace")[:300]
            raise DemoError(f"{url} answered {exc.code}: {body}") from None
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            if time.monotonic() > deadline:
                reason = getattr(exc, "reason", exc)
                raise DemoError(
                    f"{url}: no answer within {wait_s} s ({reason})"
                ) from None
            time.sleep(0.5)
        except ValueError:
            raise DemoError(f"{url} did not answer JSON") from None


def largest_categories(base: str, wait_s: float, count: int) -> list[str]:
    """Return the ``count`` categories with the most members in the Redis index."""
    listing = get_json(f"{base}/categories", wait_s)
    indexed = [entry for entry in listing.get("categories", []) if entry["redis"] > 0]
    indexed.sort(key=lambda entry: (-entry["redis"], entry["name"]))
    if len(indexed) < count:
        raise DemoError(
            f"{base}/categories lists {len(indexed)} indexed categories, "
            f"{count} needed: was the data seeded and the index refreshed?"
        )
    return [entry["name"] for entry in indexed[:count]]


def centres(categories: list[str]) -> dict[str, list[tuple[float, float]]]:
    """Return up to CANDIDATES (lon, lat) of real profiles of each category."""
    engine = make_engine(get_settings().database_url, pool_size=1)
    found: dict[str, list[tuple[float, float]]] = {name: [] for name in categories}
    try:
        with engine.connect() as conn:
            batches = postgis.stream_profiles(conn, STREAM_BATCH)
            for batch in itertools.islice(batches, MAX_BATCHES):
                for profile in batch:
                    for category in set(profile.categories) & found.keys():
                        if len(found[category]) < CANDIDATES:
                            found[category].append((profile.lon, profile.lat))
                if all(len(points) == CANDIDATES for points in found.values()):
                    break
    finally:
        engine.dispose()

    missing = sorted(name for name, points in found.items() if not points)
    if missing:
        raise DemoError(f"no profile found in PostGIS for {', '.join(missing)}")
    return found


def nearby_url(
    base: str,
    backend: str,
    category: str,
    centre: tuple[float, float],
    radius_km: float | None,
    limit: int,
) -> str:
    """Return the URL of a search on ``backend`` around ``centre`` (lon, lat).

    ``backend`` is ``redis``, ``postgis`` or empty for /nearby, which picks;
    without ``radius_km`` the search is for the nearest profiles.
    """
    lon, lat = centre
    params = {
        query.LAT: f"{lat:.5f}",
        query.LON: f"{lon:.5f}",
        query.UNIT: "km",
        query.CATEGORY: category,
        query.LIMIT: limit,
    }
    if radius_km is not None:
        params[query.RADIUS] = radius_km
    path = f"/nearby/{backend}" if backend else "/nearby"
    return f"{base}{path}?{urlencode(params)}"


def box_url(base: str, category: str, centre: tuple[float, float], half_deg: float):
    """Return the URL of a GeoJSON box search of ``half_deg`` around ``centre``."""
    lon, lat = centre
    bbox = ",".join(
        f"{value:.4f}"
        for value in (
            max(-180.0, lon - half_deg),
            max(-90.0, lat - half_deg),
            min(180.0, lon + half_deg),
            min(90.0, lat + half_deg),
        )
    )
    params = {query.BBOX: bbox, query.CATEGORY: category, query.FORMAT: "geojson"}
    return f"{base}/nearby?{urlencode(params, safe=',')}"


def checked(title: str, url: str, wait_s: float) -> Example:
    """Return the example of ``url`` once the server found something there.

    Raises:
        DemoError: the server failed or found nothing.
    """
    found = get_json(url, wait_s).get("count") or 0
    if found <= 0:
        raise DemoError(f"{url} found nothing")
    return Example(title, url, found)


def busiest(
    base: str,
    category: str,
    candidates: list[tuple[float, float]],
    radius_km: float,
    limit: int,
    wait_s: float,
) -> tuple[float, float]:
    """Return the candidate centre around which Redis finds the most profiles."""

    def found(centre: tuple[float, float]) -> int:
        url = nearby_url(base, "redis", category, centre, radius_km, limit)
        return get_json(url, wait_s).get("count") or 0

    return max(candidates, key=found)


def examples(base: str, wait_s: float) -> list[Example]:
    """Return the checked examples: one query on both backends, then others."""
    first, second = largest_categories(base, wait_s, 2)
    candidates = centres([first, second])
    near = busiest(base, first, candidates[first], 50, 10, wait_s)
    far = busiest(base, second, candidates[second], 200, 25, wait_s)

    return [
        checked(
            f"Redis: the 10 nearest {first} within 50 km",
            nearby_url(base, "redis", first, near, 50, 10),
            wait_s,
        ),
        checked(
            "PostGIS: the same query, answered by the database",
            nearby_url(base, "postgis", first, near, 50, 10),
            wait_s,
        ),
        checked(
            f"The 25 nearest {second}, out to {get_settings().knn_max_radius_km:g} "
            "km (/nearby picks the backend)",
            nearby_url(base, "", second, far, None, 25),
            wait_s,
        ),
        checked(
            f"The {first} in a map view, as GeoJSON",
            box_url(base, first, near, 0.2),
            wait_s,
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="default 8000")
    parser.add_argument(
        "--wait",
        type=float,
        default=30.0,
        help="seconds to wait for the server to answer; default 30",
    )
    args = parser.parse_args(argv)
    base = f"http://{args.host}:{args.port}"

    try:
        shown = examples(base, args.wait)
    except DemoError as exc:
        print(f"demo: error: {exc}", file=sys.stderr)
        return 1

    print(f"\nnearby runs at {base}. Example queries, each checked just now:\n")
    for example in shown:
        print(f"  {example.title} ({example.found} found):")
        print(f"    {example.url}")
        print(f"    curl -s '{example.url}'\n")
    print(f"  Categories: curl -s {base}/categories")
    print(f"  Health:     curl -s {base}/health\n")
    print("Stop the web server, the worker, beat and the databases with: make stop")
    return 0


if __name__ == "__main__":
    sys.exit(main())
