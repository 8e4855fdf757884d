"""The HTTP views: parse the query, ask one backend, render the answer.

Views hold no error handling: every failure is a :class:`~nearby.errors.NearbyError`
raised below them and rendered by :mod:`nearby.errors`.
"""

import time
from collections.abc import Iterator

import orjson
from flask import Blueprint
from flask import Response
from flask import current_app
from flask import jsonify
from flask import request

from nearby import geo
from nearby import geoindex
from nearby import postgis
from nearby.errors import RETRY_AFTER_SECONDS
from nearby.errors import BadParameter
from nearby.errors import NearbyError
from nearby.query import LAT
from nearby.query import NearbyQuery
from nearby.query import parse_nearby

bp = Blueprint("api", __name__)

INDEX_AGE_HEADER = "X-Index-Age"
"""Seconds since the refresh that the answer's index comes from."""


def _services():
    return current_app.extensions["nearby"]


@bp.get("/nearby/redis")
def nearby_redis():
    """Answer from the Redis GEO index of the category; never touches PostgreSQL."""
    query = parse_nearby(request.args)
    if not geo.within_redis_latitude(query.lat):
        raise BadParameter(
            LAT,
            f"Redis cannot search around latitudes beyond ±{geo.REDIS_MAX_LATITUDE}; "
            "/nearby/postgis serves this centre",
        )

    services = _services()
    answer = geoindex.search(
        services.redis,
        lon=query.lon,
        lat=query.lat,
        radius_m=query.radius_m,
        category=query.category,
        limit=query.limit,
        max_fetch=services.settings.max_tie_fetch,
    )
    response = _render("redis", query, answer.hits)
    response.headers[INDEX_AGE_HEADER] = (
        f"{max(0.0, time.time() - answer.refreshed_at):.0f}"
    )
    return response


@bp.get("/nearby/postgis")
def nearby_postgis():
    """Answer from PostGIS with the GiST index on location."""
    query = parse_nearby(request.args)
    hits = postgis.search(
        _services().engine,
        lon=query.lon,
        lat=query.lat,
        radius_m=query.radius_m,
        category=query.category,
        limit=query.limit,
    )
    return _render("postgis", query, hits)


def _render(backend: str, query: NearbyQuery, hits: list[geo.Hit]):
    unit_m = query.unit_m
    body = {
        "backend": backend,
        "category": query.category,
        "center": {"lat": query.lat, "lon": query.lon},
        "radius": query.radius,
        "unit": query.unit,
        "count": len(hits),
        "results": [
            {
                "id": hit.id,
                "name": hit.name,
                "city": hit.city,
                "lat": hit.lat,
                "lon": hit.lon,
                "distance": hit.distance_m / unit_m,
            }
            for hit in hits
        ],
    }
    return Response(orjson.dumps(body), mimetype="application/json")


@bp.get("/categories")
def categories():
    """List every category with its members in PostGIS and in Redis.

    Both counts are those of the last refresh; the list streams from Redis in
    batches, in no set order.
    """
    client = _services().redis
    index = _index_status(geoindex.index_meta(client))
    total = geoindex.category_count(client)
    head = orjson.dumps({"index": index, "count": total})[:-1]

    def body() -> Iterator[bytes]:
        yield head + b',"categories":['
        for number, (name, postgis_members, redis_members) in enumerate(
            geoindex.iter_categories(client)
        ):
            entry = {"name": name, "postgis": postgis_members, "redis": redis_members}
            yield (b"," if number else b"") + orjson.dumps(entry)
        yield b"]}"

    return Response(body(), mimetype="application/json")


@bp.get("/health")
def health():
    """Report whether PostgreSQL and Redis answer and how old the index is.

    200 when both answer and an index is built, 503 otherwise.
    """
    services = _services()
    checks = {}
    meta = {}
    for name, check in (
        ("postgis", lambda: postgis.ping(services.engine)),
        ("redis", lambda: meta.update(geoindex.index_meta(services.redis))),
    ):
        try:
            check()
            checks[name] = {"ok": True}
        except NearbyError as exc:
            checks[name] = {"ok": False, "error": exc.message}

    index = _index_status(meta)
    if checks["redis"]["ok"]:
        index["last_failure"] = _failure(geoindex.refresh_status(services.redis))
    healthy = all(check["ok"] for check in checks.values()) and index["built"]
    status = "ok" if healthy else "unavailable"
    if healthy and index["last_failure"]:
        status = "degraded"
    body = {"status": status, **checks, "index": index}
    if healthy:
        return jsonify(body)
    return jsonify(body), 503, {"Retry-After": str(RETRY_AFTER_SECONDS)}


def _index_status(meta: dict[str, str]) -> dict:
    if not meta:
        return {"built": False, "refreshed_at": None, "age_seconds": None}

    refreshed_at = float(meta["refreshed_at"])
    return {
        "built": True,
        "refreshed_at": _iso(refreshed_at),
        "age_seconds": round(time.time() - refreshed_at, 3),
        "last_refresh": {"kind": meta.get("kind"), "seconds": _number(meta, "seconds")}
        | {name: _number(meta, name) for name in REFRESH_COUNTS},
    }


REFRESH_COUNTS = (
    "changes",
    "profiles",
    "added",
    "moved",
    "removed",
    "skipped_latitude",
    "skipped_category",
)


def _number(meta: dict[str, str], name: str) -> float | int | None:
    try:
        value = float(meta[name])
    except (KeyError, ValueError):
        return None
    return int(value) if value.is_integer() and name != "seconds" else value


def _failure(status: dict[str, str]) -> dict | None:
    if "failed_at" not in status:
        return None
    return {"failed_at": _iso(float(status["failed_at"])), "error": status["error"]}


def _iso(unix_s: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(unix_s))
