"""The distance model shared by both backends, and the limits of Redis GEO.

Both /nearby/redis and /nearby/postgis measure the great-circle distance on a
sphere of radius :data:`EARTH_RADIUS_M` (6372797.560856 m), the sphere Redis
uses for GEOSEARCH. Its haversine form, for points given in degrees::

    d = 2 R asin( sqrt( sin²(Δφ/2) + cos φ1 cos φ2 sin²(Δλ/2) ) )

PostGIS's spherical geography functions (``ST_Distance(a, b, false)``,
``ST_DWithin(a, b, r, false)``) use another sphere, of radius
:data:`POSTGIS_SPHERE_RADIUS_M`, the mean radius ``(2a + b) / 3`` of the WGS84
ellipsoid. A distance on one sphere is the same central angle as on the other,
so a PostGIS distance times :data:`POSTGIS_TO_MODEL` is the model distance, and
a model radius times :data:`MODEL_TO_POSTGIS` is the radius to hand PostGIS.

Against the WGS84 ellipsoid the spherical model errs by up to about 0.5 %; it
is the model, not a measurement, and both backends share it.

Coordinates inside the code go longitude first, as Redis's GEOADD and
PostGIS's ``ST_MakePoint`` take them. Distances inside are in metres.
"""

import math
from dataclasses import dataclass

EARTH_RADIUS_M = 6372797.560856
"""Radius of Redis's sphere, in metres: the one distance model of nearby."""

WGS84_SEMI_MAJOR_AXIS_M = 6378137.0
WGS84_INVERSE_FLATTENING = 298.257223563
WGS84_SEMI_MINOR_AXIS_M = WGS84_SEMI_MAJOR_AXIS_M * (1 - 1 / WGS84_INVERSE_FLATTENING)

POSTGIS_SPHERE_RADIUS_M = (2 * WGS84_SEMI_MAJOR_AXIS_M + WGS84_SEMI_MINOR_AXIS_M) / 3
"""Radius of the sphere of PostGIS's ``use_spheroid => false`` functions."""

POSTGIS_TO_MODEL = EARTH_RADIUS_M / POSTGIS_SPHERE_RADIUS_M
MODEL_TO_POSTGIS = POSTGIS_SPHERE_RADIUS_M / EARTH_RADIUS_M

REDIS_MAX_LATITUDE = 85.05112878
"""Redis stores and searches latitudes in [-85.05112878, 85.05112878] only."""

UNIT_M = {"m": 1.0, "km": 1000.0, "mi": 1609.344, "ft": 0.3048}
"""Metres in one unit: the international mile and foot, exactly."""


def within_redis_latitude(lat: float | None) -> bool:
    """Tell whether Redis can store or search around latitude ``lat`` degrees.

    An empty point (no latitude at all) is not.
    """
    return lat is not None and -REDIS_MAX_LATITUDE <= lat <= REDIS_MAX_LATITUDE


def great_circle_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Return the model distance in metres between two points in degrees."""
    phi1 = math.radians(lat1)
    phi2 = math.radians(lat2)
    half_dphi = (phi2 - phi1) / 2
    half_dlambda = math.radians(lon2 - lon1) / 2

    h = (
        math.sin(half_dphi) ** 2
        + math.cos(phi1) * math.cos(phi2) * math.sin(half_dlambda) ** 2
    )
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, h)))


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result of either backend: a profile and its model distance."""

    id: int
    name: str
    city: str | None
    lon: float
    lat: float
    distance_m: float
