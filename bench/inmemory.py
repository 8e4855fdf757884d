"""The approach nearby replaces: every profile in memory, searched per request.

    DATABASE_URL=... gunicorn -c gunicorn.conf.py 'bench.inmemory:build()'

Each worker reads every profile of ``DATABASE_URL`` once, as it starts, into
NumPy arrays (:class:`Profiles`): ids, longitudes and latitudes in radians,
display fields packed into one UTF-8 buffer and a table of cities, and for
each category the sorted row numbers of its members. A request computes the
haversine distance from the centre to every member of its categories at
once, on the sphere of radius 6372797.560856 m that nearby uses::

    d = 2 R asin( sqrt( sin²(Δφ/2) + cos φ1 cos φ2 sin²(Δλ/2) ) )

keeps those within the radius and returns the ``limit`` nearest, ties by id.
It answers ``/nearby/inmemory`` with the query string of /nearby (radius
searches only: ``lat``, ``lon``, ``radius``, ``category``, ``unit``,
``limit``) and the JSON shape of its answers, ``backend`` being
``inmemory``. Latitudes and longitudes in answers are converted back from
radians, so they may differ from the stored ones in the last bit or two.
It never touches PostgreSQL or Redis after start.
"""

import logging
import time
from array import array
from dataclasses import dataclass

import numpy as np
import orjson
from flask import Flask
from flask import Response
from flask import request
from sqlalchemy import text

from config import settings_or_exit
from nearby import errors
from nearby import geo
from nearby import logs
from nearby.db import make_engine
from nearby.errors import BadParameter
from nearby.errors import UnknownCategory
from nearby.query import encode_cursor
from nearby.query import parse_nearby

log = logging.getLogger(__name__)

EARTH_RADIUS_M = 6372797.560856
PATH = "/nearby/inmemory"
BATCH_ROWS = 50_000

LOAD_SQL = text(
    """
    SELECT id, ST_X(location::geometry) AS lon, ST_Y(location::geometry) AS lat,
           name, city, categories
    FROM profiles
    ORDER BY id
    """
)


@dataclass(frozen=True)
class Profiles:
    """Every profile, column by column.

    Row ``i`` is the profile ``ids[i]``; rows are in id order. ``name_ends``
    holds where each name ends in ``names`` (UTF-8), ``city_codes`` an index
    into ``cities`` (-1 for none), and ``members`` each category's rows,
    ascending.
    """

    ids: np.ndarray
    lon_rad: np.ndarray
    lat_rad: np.ndarray
    names: bytes
    name_ends: np.ndarray
    city_codes: np.ndarray
    cities: list[str]
    members: dict[str, np.ndarray]

    def name(self, row: int) -> str:
        start = self.name_ends[row - 1] if row else 0
        return self.names[start : self.name_ends[row]].decode()

    def city(self, row: int) -> str | None:
        code = self.city_codes[row]
        return None if code < 0 else self.cities[code]


def load_profiles(engine) -> Profiles:
    """Read every profile into :class:`Profiles`, streaming from a cursor."""
    ids = array("q")
    lons = array("d")
    lats = array("d")
    names = bytearray()
    name_ends = array("Q")
    city_codes = array("i")
    city_index: dict[str, int] = {}
    members: dict[str, array] = {}

    with engine.connect() as conn:
        result = conn.execute(
            LOAD_SQL,
            execution_options={"stream_results": True, "yield_per": BATCH_ROWS},
        )
        for row_number, (pid, lon, lat, name, city, categories) in enumerate(result):
            ids.append(pid)
            lons.append(lon)
            lats.append(lat)
            names += name.encode()
            name_ends.append(len(names))
            city_codes.append(
                -1 if city is None else city_index.setdefault(city, len(city_index))
            )
            for category in categories:
                rows = members.get(category)
                if rows is None:
                    rows = members[category] = array("i")
                rows.append(row_number)

    return Profiles(
        ids=np.frombuffer(ids, dtype=np.int64).copy(),
        lon_rad=np.radians(np.frombuffer(lons, dtype=np.float64)),
        lat_rad=np.radians(np.frombuffer(lats, dtype=np.float64)),
        names=bytes(names),
        name_ends=np.frombuffer(name_ends, dtype=np.uint64).copy(),
        city_codes=np.frombuffer(city_codes, dtype=np.int32).copy(),
        cities=list(city_index),
        members={
            name: np.frombuffer(rows, dtype=np.int32).copy()
            for name, rows in members.items()
        },
    )


def nearest_rows(
    profiles: Profiles, categories, lon: float, lat: float, radius_m: float, count: int
) -> tuple[np.ndarray, np.ndarray]:
    """Return the ``count`` nearest rows within ``radius_m`` and their metres.

    Centre in degrees; rows of several categories count once. Nearest first,
    ties by id.
    """
    rows = profiles.members[categories[0]]
    for category in categories[1:]:
        rows = np.union1d(rows, profiles.members[category])

    lat0 = np.radians(lat)
    lat_rows = profiles.lat_rad[rows]
    half_dlat = (lat_rows - lat0) / 2
    half_dlon = (profiles.lon_rad[rows] - np.radians(lon)) / 2
    h = (
        np.sin(half_dlat) ** 2
        + np.cos(lat0) * np.cos(lat_rows) * np.sin(half_dlon) ** 2
    )
    distance_m = 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.minimum(h, 1.0)))

    inside = distance_m <= radius_m
    rows = rows[inside]
    distance_m = distance_m[inside]
    if len(rows) > count:
        # Only the nearest need sorting: every row tied with the cut stays in.
        cut = np.partition(distance_m, count - 1)[count - 1]
        keep = distance_m <= cut
        rows = rows[keep]
        distance_m = distance_m[keep]
    order = np.lexsort((profiles.ids[rows], distance_m))[:count]
    return rows[order], distance_m[order]


def create_inmemory_app(profiles: Profiles, cursor_key: bytes) -> Flask:
    """Return the WSGI app that answers ``/nearby/inmemory`` from ``profiles``,
    signing its cursors with ``cursor_key`` as the nearby app does."""
    app = Flask("nearby-inmemory")

    @app.get(PATH)
    def nearby_inmemory():
        query = parse_nearby(request.args)
        if query.radius is None or query.bbox is not None or query.cursor:
            raise BadParameter(
                "radius", "this server answers radius searches only, first pages"
            )
        for category in query.categories:
            if category not in profiles.members:
                raise UnknownCategory(category)

        rows, distance_m = nearest_rows(
            profiles,
            query.categories,
            query.lon,
            query.lat,
            query.radius_m,
            query.limit + 1,
        )
        lons = np.degrees(profiles.lon_rad[rows])
        lats = np.degrees(profiles.lat_rad[rows])
        results = [
            {
                "id": int(profiles.ids[row]),
                "name": profiles.name(row),
                "city": profiles.city(row),
                "lat": float(lats[number]),
                "lon": float(lons[number]),
                "distance": float(distance_m[number]) / query.unit_m,
            }
            for number, row in enumerate(rows[: query.limit].tolist())
        ]
        next_cursor = None
        if len(rows) > query.limit:
            last = results[-1]
            hit = geo.Hit(last["id"], "", None, last["lon"], last["lat"], 0.0)
            next_cursor = encode_cursor(query, hit, len(results), cursor_key)

        body = {
            "backend": "inmemory",
            "shape": "radius",
            "categories": list(query.categories),
            "center": {"lat": query.lat, "lon": query.lon},
            "radius": query.radius,
            "bbox": None,
            "unit": query.unit,
            "count": len(results),
            "results": results,
            "next_cursor": next_cursor,
        }
        return Response(orjson.dumps(body), mimetype="application/json")

    errors.register(app)
    return app


def build() -> Flask:
    """Read the settings and every profile; return the app (gunicorn's factory)."""
    settings = settings_or_exit("bench.inmemory")
    logs.configure(settings.log_level)
    engine = make_engine(settings.database_url, pool_size=1)

    started = time.perf_counter()
    profiles = load_profiles(engine)
    engine.dispose()
    log.info(
        "inmemory: loaded %d profiles of %d categories in %.1f s",
        len(profiles.ids),
        len(profiles.members),
        time.perf_counter() - started,
    )
    return create_inmemory_app(profiles, settings.cursor_key)
