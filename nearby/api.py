"""The HTTP views: parse the query, ask one backend, render the answer.

Views hold no error handling: every failure is a :class:`~nearby.errors.NearbyError`
raised below them and rendered by :mod:`nearby.errors`.
"""

import logging
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
from nearby.errors import AreaTooLarge
from nearby.errors import BackendUnavailable
from nearby.errors import BeyondRedisLatitude
from nearby.errors import IndexNotReady
from nearby.errors import NearbyError
from nearby.errors import Unavailable
from nearby.errors import UnknownCategory
from nearby.query import GEOJSON_MEDIA_TYPE
from nearby.query import NearbyQuery
from nearby.query import encode_cursor
from nearby.query import parse_nearby
from nearby.query import to_search
from nearby.query import wants_geojson

log = logging.getLogger(__name__)

bp = Blueprint("api", __name__)

BACKEND_HEADER = "X-Backend"
"""The backend that answered: ``redis`` or ``postgis``."""
BACKEND_REASON_HEADER = "X-Backend-Reason"
"""Why /nearby answered from PostGIS rather than Redis."""
INDEX_AGE_HEADER = "X-Index-Age"
"""Seconds since the refresh that the answer's index comes from."""

REDIS_FALLBACKS = (IndexNotReady, UnknownCategory, BeyondRedisLatitude, Unavailable)
"""What makes /nearby answer from PostGIS: Redis has no ready index for the
categories, cannot search there, or cannot be reached."""


def _services():
    return current_app.extensions["nearby"]


@bp.get("/nearby/redis", provide_automatic_options=False)
def nearby_redis():
    """Answer from the Redis GEO indexes of the categories; never touches PostgreSQL."""
    query, search = _parse()
    answer = _redis_search(search)
    return _render(query, search, "redis", answer.hits, answer.refreshed_at)


@bp.get("/nearby/postgis", provide_automatic_options=False)
def nearby_postgis():
    """Answer from PostGIS with its GiST and GIN indexes."""
    query, search = _parse()
    hits = postgis.search(_services().engine, search)
    return _render(query, search, "postgis", hits)


@bp.get("/nearby", provide_automatic_options=False)
def nearby():
    """Answer from Redis when it can, from PostGIS otherwise; say which."""
    query, search = _parse()
    answer, reason = _redis_or_reason(search)
    if answer is not None:
        return _render(query, search, "redis", answer.hits, answer.refreshed_at)

    hits = postgis.search(_services().engine, search)
    response = _render(query, search, "postgis", hits)
    response.headers[BACKEND_REASON_HEADER] = reason
    return response


def _parse() -> tuple[NearbyQuery, geo.Search]:
    settings = _services().settings
    query = parse_nearby(request.args)
    search = to_search(
        query,
        nearest_max_m=settings.knn_max_radius_km * 1000,
        max_scan=settings.max_scan_members,
        max_offset=settings.max_result_window,
        cursor_key=settings.cursor_key,
    )
    return query, search


def _redis_search(search: geo.Search) -> geoindex.Answer:
    services = _services()
    return geoindex.search(
        services.redis, search, max_fetch=services.settings.max_tie_fetch
    )


def _redis_or_reason(search: geo.Search) -> tuple[geoindex.Answer | None, str]:
    """Return Redis's answer, or None and why PostGIS should answer instead.

    A box that Redis refuses as too large goes to PostGIS too: Redis counts
    the rectangle it searches, which encloses the box, and PostGIS the box.
    """
    try:
        return _redis_search(search), ""
    except REDIS_FALLBACKS as exc:
        if isinstance(exc, BackendUnavailable):
            log.warning("api: answering from postgis: %s", exc.message)
        return None, _header_text(f"{exc.code}: {exc.public_message}")
    except AreaTooLarge as exc:
        if search.box is None:
            raise
        return None, _header_text(f"{exc.code}: {exc.public_message}")


def _header_text(text: str) -> str:
    """Return ``text`` as ASCII, the one charset HTTP header values may use."""
    return text.replace("±", "+/-").encode("ascii", "replace").decode()


def _render(
    query: NearbyQuery,
    search: geo.Search,
    backend: str,
    hits: list[geo.Hit],
    refreshed_at: float | None = None,
) -> Response:
    more = len(hits) > search.limit
    hits = hits[: search.limit]
    next_cursor = (
        encode_cursor(
            query, hits[-1], search.offset + len(hits), _services().settings.cursor_key
        )
        if more
        else None
    )

    if wants_geojson(query, request.accept_mimetypes):
        body = _geojson(query, backend, hits, next_cursor)
        mimetype = GEOJSON_MEDIA_TYPE
    else:
        body = _json(query, search, backend, hits, next_cursor)
        mimetype = "application/json"
    response = Response(orjson.dumps(body), mimetype=mimetype)

    response.headers[BACKEND_HEADER] = backend
    response.headers["Vary"] = "Accept"
    if refreshed_at is None:
        response.headers["Cache-Control"] = "no-cache"
    else:
        age_s = int(max(0.0, time.time() - refreshed_at))
        left_s = max(0, _services().settings.refresh_interval_seconds - age_s)
        response.headers[INDEX_AGE_HEADER] = str(age_s)
        response.headers["Cache-Control"] = f"max-age={left_s}"
    return response


def _json(query, search, backend, hits, next_cursor) -> dict:
    unit_m = query.unit_m
    return {
        "backend": backend,
        "shape": search.shape.value,
        "categories": list(search.categories),
        "center": {"lat": search.lat, "lon": search.lon},
        "radius": query.radius,
        "bbox": None if query.bbox is None else list(query.bbox),
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
        "next_cursor": next_cursor,
    }


def _geojson(query, backend, hits, next_cursor) -> dict:
    unit_m = query.unit_m
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": hit.id,
                "geometry": {"type": "Point", "coordinates": [hit.lon, hit.lat]},
                "properties": {
                    "id": hit.id,
                    "name": hit.name,
                    "city": hit.city,
                    "distance": hit.distance_m / unit_m,
                    "unit": query.unit,
                },
            }
            for hit in hits
        ],
        "backend": backend,
        "count": len(hits),
        "next_cursor": next_cursor,
    }


@bp.get("/categories", provide_automatic_options=False)
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


@bp.get("/health", provide_automatic_options=False)
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

    if checks["redis"]["ok"]:
        index = _index_status(meta)
        index["last_failure"] = _failure(geoindex.refresh_status(services.redis))
    else:
        index = {"built": None, "refreshed_at": None, "age_seconds": None}
    healthy = all(check["ok"] for check in checks.values()) and index["built"] is True
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
