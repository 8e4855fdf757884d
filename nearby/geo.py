"""The distance model shared by both backends, and the limits of Redis GEO.

Both /nearby/redis and /nearby/postgis measure the great-circle distance on a
sphere of radius :data:`EARTH_RADIUS_M` (6372797.560856 m), the sphere Redis
uses for GEOSEARCH. For points given in degrees, the central angle in its
atan2 form, well conditioned at every separation::

    d = R atan2( sqrt( (cos φ2 sin Δλ)² + (cos φ1 sin φ2 - sin φ1 cos φ2 cos Δλ)² ),
                 sin φ1 sin φ2 + cos φ1 cos φ2 cos Δλ )

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

A search (:class:`Search`) has one of three shapes: a circle around a centre, the
nearest profiles around a centre (a circle of the configured greatest radius,
cut at ``limit``), or a longitude/latitude box (:class:`Box`), whose results are
ordered and measured from its centre. Longitudes -180 and 180 are one meridian:
a box edge at either holds profiles at both.
"""

import math
from dataclasses import dataclass
from enum import StrEnum

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

REDIS_MEMBER_MAX_LATITUDE = 85.0511287
"""Greatest latitude of a profile in Redis: 9 mm short of the limit, where
members are stored but never found."""

UNIT_M = {"m": 1.0, "km": 1000.0, "mi": 1609.344, "ft": 0.3048}
"""Metres in one unit: the international mile and foot, exactly."""


def within_redis_latitude(lat: float | None) -> bool:
    """Tell whether Redis can search around latitude ``lat`` degrees.

    An empty point (no latitude at all) is not.
    """
    return lat is not None and -REDIS_MAX_LATITUDE <= lat <= REDIS_MAX_LATITUDE


def redis_holds(lat: float | None) -> bool:
    """Tell whether Redis can hold a profile at latitude ``lat`` and find it.

    Redis stores a member at exactly +85.05112878 but no search returns it,
    so members must lie within :data:`REDIS_MEMBER_MAX_LATITUDE`.
    """
    return (
        lat is not None
        and -REDIS_MEMBER_MAX_LATITUDE <= lat <= REDIS_MEMBER_MAX_LATITUDE
    )


def reach_latitude(lat: float, radius_m: float) -> float:
    """Return the greatest absolute latitude, in degrees, of a circle's points.

    The circle is centred at latitude ``lat`` with radius ``radius_m``; one
    that takes in a pole reaches 90.
    """
    return min(90.0, abs(lat) + math.degrees(radius_m / EARTH_RADIUS_M))


def great_circle_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Return the model distance in metres between two points in degrees.

    The atan2 form of the central angle (Vincenty's formula for the sphere)
    is exact to rounding at every separation, antipodes included, where the
    haversine form loses centimetres; longitudes 360 degrees apart are the
    same meridian.
    """
    phi1 = math.radians(lat1)
    phi2 = math.radians(lat2)
    dlambda = math.radians(math.remainder(lon2 - lon1, 360.0))
    cos_phi1, sin_phi1 = math.cos(phi1), math.sin(phi1)
    cos_phi2, sin_phi2 = math.cos(phi2), math.sin(phi2)
    cos_dlambda = math.cos(dlambda)

    y = math.hypot(
        cos_phi2 * math.sin(dlambda),
        cos_phi1 * sin_phi2 - sin_phi1 * cos_phi2 * cos_dlambda,
    )
    x = sin_phi1 * sin_phi2 + cos_phi1 * cos_phi2 * cos_dlambda
    return EARTH_RADIUS_M * math.atan2(y, x)


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result of either backend: a profile and its model distance."""

    id: int
    name: str
    city: str | None
    lon: float
    lat: float
    distance_m: float


class Shape(StrEnum):
    """What area a search covers."""

    RADIUS = "radius"
    NEAREST = "nearest"
    BOX = "bbox"


@dataclass(frozen=True, slots=True)
class Box:
    """A longitude/latitude box in degrees; ``west > east`` crosses 180."""

    west: float
    south: float
    east: float
    north: float

    @property
    def crosses_antimeridian(self) -> bool:
        return self.west > self.east

    @property
    def lon_span(self) -> float:
        """Degrees of longitude the box spans, 0 to 360."""
        span = self.east - self.west
        return span + 360.0 if span < 0 else span

    def center(self) -> tuple[float, float]:
        """Return ``(lon, lat)`` of the box's centre, longitude in [-180, 180)."""
        lon = self.west + self.lon_span / 2
        if lon >= 180.0:
            lon -= 360.0
        return lon, (self.south + self.north) / 2

    def contains(self, lon: float, lat: float) -> bool:
        """Tell whether the point is in the box, edges included."""
        if not self.south <= lat <= self.north:
            return False
        if abs(lon) == 180.0:
            return self._holds_lon(180.0) or self._holds_lon(-180.0)
        return self._holds_lon(lon)

    def _holds_lon(self, lon: float) -> bool:
        if self.crosses_antimeridian:
            return lon >= self.west or lon <= self.east
        return self.west <= lon <= self.east


@dataclass(frozen=True, slots=True)
class After:
    """Where a page starts: past the profile ``id`` at ``lon``, ``lat``.

    Each backend measures that point's distance to the centre its own way, so
    that a page starts exactly after the last result of the one before, ties
    included. ``offset`` counts the results of the pages before.
    """

    id: int
    lon: float
    lat: float
    offset: int


@dataclass(frozen=True, slots=True)
class Search:
    """One search as both backends run it: an area, categories, a page.

    ``lon``/``lat`` are the centre results are measured from (a box's centre).
    ``radius_m`` bounds a circle: the radius of a radius search, the greatest
    radius of a nearest search; a box search has none. ``limit`` results are
    asked for; backends return up to ``limit + 1``, the one past telling that
    another page exists. A radius or box search that covers more than
    ``max_scan`` members is refused; a nearest search is not, it stops at
    ``limit``.
    """

    shape: Shape
    categories: tuple[str, ...]
    lon: float
    lat: float
    radius_m: float | None
    limit: int
    max_scan: int
    box: Box | None = None
    after: After | None = None

    @property
    def offset(self) -> int:
        """Results of the pages before this one."""
        return self.after.offset if self.after else 0

    @property
    def depth(self) -> int:
        """Results from the first one through the one past this page."""
        return self.offset + self.limit + 1

    def covers(self, lon: float, lat: float, distance_m: float) -> bool:
        """Tell whether a point at ``distance_m`` from the centre is in the area."""
        if self.box is not None:
            return self.box.contains(lon, lat)
        return distance_m <= self.radius_m

    def after_key(self) -> tuple[float, int] | None:
        """Return the (distance, id) that results must come after, if paging."""
        if self.after is None:
            return None
        after_m = great_circle_m(self.lon, self.lat, self.after.lon, self.after.lat)
        return after_m, self.after.id
