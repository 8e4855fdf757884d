"""Geohash cells: the spatial half of PostGIS's key to a category's members.

``profile_categories`` holds a row per category of each profile with the
geohash of its location (``ST_GeoHash``, :data:`STORED_PRECISION` characters,
cells of about 4.8 by 4.8 m at the equator). Its B-tree on
``(category, geohash)`` keeps each category's members in geohash order, which
is the Z-order of their cells: the members inside a cell of any coarser
precision are one range of the index, those whose geohash starts with the
cell's. :func:`cover` turns a circle into the few such ranges that hold it,
so that a radius search reads its category's members near the centre and no
others.

A geohash interleaves the bits of a longitude cell number (first, and every
other bit after) with those of a latitude one, most significant first, five
bits to a character of :data:`BASE32`. With ``n`` characters the longitude
gets ``ceil(5n / 2)`` bits, the latitude ``floor(5n / 2)``. The cell of a
point is found by halving: a coordinate on a boundary goes to the upper
half, and the upper bounds (longitude 180, latitude 90) fall in the last cell.
"""

import math
from dataclasses import dataclass

from nearby import geo

BASE32 = "0123456789bcdefghjkmnpqrstuvwxyz"
"""The geohash alphabet, in ascending byte order: under the "C" collation a
geohash sorts as its cell numbers do."""

STORED_PRECISION = 9
"""Characters of the geohash stored for each member."""

MAX_CELLS = 12
"""Most cells a cover may take, before adjacent ones merge into ranges: more
cells fit a circle more tightly, but each range costs an index descent."""

PAST_LAST = "{"
"""The byte after ``z``: every geohash that starts with ``p`` sorts below
``p + PAST_LAST``."""

MARGIN_RAD = 1e-9
"""Radians (about 6 mm) added to every circle: rounding in the bounds of the
cover never leaves out a member that the exact distance test keeps."""


@dataclass(frozen=True, slots=True)
class Cover:
    """Geohash ranges ``[low, high)`` that together hold a circle."""

    low: tuple[str, ...]
    high: tuple[str, ...]

    @property
    def whole_globe(self) -> bool:
        """Tell whether the one range holds every geohash."""
        return self.low == ("",)


WHOLE_GLOBE = Cover(("",), (PAST_LAST,))
"""The cover of a circle that leaves no cell out."""


def cover(lon: float, lat: float, radius_m: float) -> Cover:
    """Return the geohash ranges that hold every point within ``radius_m`` of
    ``(lon, lat)``, on the model sphere.

    The circle's bounding box in degrees decides: the finest precision whose
    cells over that box number :data:`MAX_CELLS` or fewer, then those cells,
    merged where they follow each other.
    """
    box = _bounding_box(lon, lat, radius_m)
    if box is None:
        return WHOLE_GLOBE

    west_east, south, north = box
    # Finer precisions would need more than MAX_CELLS rows of cells alone.
    rows_bits = math.log2(180.0 * MAX_CELLS / max(north - south, 1e-12))
    finest = max(1, min(STORED_PRECISION, int(2 * rows_bits / 5) + 1))
    for precision in range(finest, 0, -1):
        columns = [
            _cell_span(w, e, _lon_bits(precision), -180.0, 360.0) for w, e in west_east
        ]
        rows = _cell_span(south, north, _lat_bits(precision), -90.0, 180.0)
        count = sum(last - first + 1 for first, last in columns) * (
            rows[1] - rows[0] + 1
        )
        if count <= MAX_CELLS:
            break
    else:
        return WHOLE_GLOBE

    codes = sorted(
        _interleave(column, row, precision)
        for first, last in columns
        for column in range(first, last + 1)
        for row in range(rows[0], rows[1] + 1)
    )
    runs: list[list[int]] = []
    for code in codes:
        if runs and code == runs[-1][1] + 1:
            runs[-1][1] = code
        else:
            runs.append([code, code])
    low = tuple(_geohash(first, precision) for first, _ in runs)
    high = tuple(_geohash(last, precision) + PAST_LAST for _, last in runs)
    return Cover(low, high)


def geohash(lon: float, lat: float, precision: int = STORED_PRECISION) -> str:
    """Return the geohash of a point, as ``ST_GeoHash`` gives it."""
    column = _cell(lon, _lon_bits(precision), -180.0, 360.0)
    row = _cell(lat, _lat_bits(precision), -90.0, 180.0)
    return _geohash(_interleave(column, row, precision), precision)


def _bounding_box(
    lon: float, lat: float, radius_m: float
) -> tuple[list[tuple[float, float]], float, float] | None:
    """Return the longitude ranges and the latitude range of a circle's box,
    or None for a circle too large to bound."""
    angle = radius_m / geo.EARTH_RADIUS_M + MARGIN_RAD
    if angle >= math.pi / 2:
        return None

    reach = math.degrees(angle)
    south, north = lat - reach, lat + reach
    if south <= -90.0 or north >= 90.0:
        return [(-180.0, 180.0)], max(south, -90.0), min(north, 90.0)

    half_width = math.degrees(math.asin(math.sin(angle) / math.cos(math.radians(lat))))
    west, east = lon - half_width, lon + half_width
    if west < -180.0:
        ranges = [(west + 360.0, 180.0), (-180.0, east)]
    elif east > 180.0:
        ranges = [(west, 180.0), (-180.0, east - 360.0)]
    else:
        ranges = [(west, east)]
    return ranges, south, north


def _lon_bits(precision: int) -> int:
    return (5 * precision + 1) // 2


def _lat_bits(precision: int) -> int:
    return 5 * precision // 2


def _cell(value: float, bits: int, start: float, width: float) -> int:
    """Return the cell number of ``value`` among ``2**bits`` equal cells, by
    halving as ``ST_GeoHash`` does (a value on a boundary goes up)."""
    low, high = start, start + width
    number = 0
    for _ in range(bits):
        middle = (low + high) / 2
        if value >= middle:
            number = (number << 1) | 1
            low = middle
        else:
            number <<= 1
            high = middle
    return number


def _cell_span(
    low: float, high: float, bits: int, start: float, width: float
) -> tuple[int, int]:
    """Return the first and last cell numbers over ``[low, high]``.

    By division, where :func:`_cell` halves: the two differ only for a value
    within rounding of a boundary, and a cover's bounds lie
    :data:`MARGIN_RAD` beyond every point it must hold.
    """
    cells = 1 << bits
    scale = cells / width
    first = min(cells - 1, max(0, int((low - start) * scale)))
    last = min(cells - 1, max(0, int((high - start) * scale)))
    return first, last


SPREAD_BYTE = [
    sum(((byte >> bit) & 1) << (2 * bit) for bit in range(8)) for byte in range(256)
]
"""Each byte with a zero bit put above each of its bits."""


def _spread(number: int) -> int:
    """Return ``number`` with a zero bit put above each of its bits."""
    spread = 0
    shift = 0
    while number:
        spread |= SPREAD_BYTE[number & 0xFF] << shift
        number >>= 8
        shift += 16
    return spread


def _interleave(column: int, row: int, precision: int) -> int:
    """Return the geohash bits of a cell: longitude bit first, then latitude."""
    if (5 * precision) % 2 == 0:
        return (_spread(column) << 1) | _spread(row)
    return _spread(column) | (_spread(row) << 1)


def _geohash(code: int, precision: int) -> str:
    return "".join(
        BASE32[(code >> (5 * (precision - 1 - place))) & 31]
        for place in range(precision)
    )
