"""The nearby web app plus the benchmark's ceiling route, for gunicorn.

    BENCH_CEILING_RESULTS=25 gunicorn -c gunicorn.conf.py 'bench.app:build()'

``GET /bench/ceiling`` answers, whatever its query string, one fixed JSON
body in the shape of a /nearby answer with ``BENCH_CEILING_RESULTS`` results
(default 50), built once at start: no parsing, no I/O, no serialisation per
request. Served by the same app factory and the same gunicorn settings as
``web:app``, it measures what Flask and gunicorn alone allow on this machine,
the ceiling of every other endpoint. The production app (``web.py``) has no
such route. :func:`build` is gunicorn's factory; importing this module builds
nothing.
"""

import os

import orjson
from flask import Flask
from flask import Response

from config import Settings
from config import settings_or_exit
from nearby import logs
from nearby.app import create_app

CEILING_PATH = "/bench/ceiling"
ROUTES = {
    "ceiling": CEILING_PATH,
    "redis": "/nearby/redis",
    "postgis": "/nearby/postgis",
}
"""The path of each route the scripts compare."""
RESULTS_ENV = "BENCH_CEILING_RESULTS"
DEFAULT_RESULTS = 50
CURSOR = "WzEsIjNlZjQ1YjE3NmQ1MzE0ZjE5MCIsNTAsMTAwMDA0OSwyLjM0NywyLjM0XQ"
"""A cursor of the length real ones have."""


def ceiling_body(results: int) -> bytes:
    """Return a /nearby answer of ``results`` made-up profiles around Paris.

    Names, cities and numbers have the lengths real answers have, so the
    body weighs about what a real answer of that many results weighs.
    """
    hits = [
        {
            "id": 1_000_000 + number,
            "name": "Camille Martin-Lefebvre",
            "city": "Boulogne-Billancourt",
            "lat": 48.856613 + number * 1e-4,
            "lon": 2.352222 - number * 1e-4,
            "distance": 0.4521 + number * 0.173,
        }
        for number in range(results)
    ]
    return orjson.dumps(
        {
            "backend": "ceiling",
            "shape": "radius",
            "categories": ["python-developer"],
            "center": {"lat": 48.856613, "lon": 2.352222},
            "radius": 10.0,
            "bbox": None,
            "unit": "km",
            "count": results,
            "results": hits,
            "next_cursor": CURSOR if results else None,
        }
    )


def create_bench_app(settings: Settings, results: int) -> Flask:
    """Return the nearby app with the ceiling route answering ``results`` results."""
    app = create_app(settings)
    body = ceiling_body(results)
    headers = {
        "X-Backend": "ceiling",
        "Vary": "Accept",
        "Cache-Control": "no-cache",
    }

    @app.get(CEILING_PATH)
    def ceiling():
        return Response(body, mimetype="application/json", headers=headers)

    return app


def build() -> Flask:
    """Read the settings and ``BENCH_CEILING_RESULTS``; return the app."""
    settings = settings_or_exit("bench.app")
    logs.configure(settings.log_level)
    return create_bench_app(settings, int(os.environ.get(RESULTS_ENV, DEFAULT_RESULTS)))
