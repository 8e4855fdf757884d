"""Great-circle geometry written independently of nearby, for expected values.

Distances come from the angle between unit vectors (atan2 of the cross and dot
products), not from the haversine formula that nearby uses, on the sphere of
radius 6372797.560856 m that the API contract names.
"""

import math

SPHERE_RADIUS_M = 6372797.560856
FEET_M = 0.3048
MILE_M = 1609.344


def _unit_vector(lon: float, lat: float) -> tuple[float, float, float]:
    phi = math.radians(lat)
    lam = math.radians(lon)
    return (math.cos(phi) * math.cos(lam), math.cos(phi) * math.sin(lam), math.sin(phi))


def distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance in metres between two points in degrees."""
    a = _unit_vector(lon1, lat1)
    b = _unit_vector(lon2, lat2)
    cross = (
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    )
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return SPHERE_RADIUS_M * math.atan2(math.hypot(*cross), dot)


def destination(
    lon: float, lat: float, bearing_deg: float, distance_m: float
) -> tuple[float, float]:
    """Return (lon, lat) reached from a point along a bearing, on the sphere."""
    delta = distance_m / SPHERE_RADIUS_M
    theta = math.radians(bearing_deg)
    phi1 = math.radians(lat)
    lam1 = math.radians(lon)

    phi2 = math.asin(
        math.sin(phi1) * math.cos(delta)
        + math.cos(phi1) * math.sin(delta) * math.cos(theta)
    )
    lam2 = lam1 + math.atan2(
        math.sin(theta) * math.sin(delta) * math.cos(phi1),
        math.cos(delta) - math.sin(phi1) * math.sin(phi2),
    )
    lon2 = (math.degrees(lam2) + 540) % 360 - 180
    return lon2, math.degrees(phi2)
