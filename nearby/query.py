"""The query of /nearby*: its parameters, parsing them, and the paging cursor.

:class:`NearbyQuery` declares every parameter with its type, bounds and
description; it validates requests and :mod:`nearby.openapi` documents it.
:func:`parse_nearby` turns the raw query string into a frozen
:class:`NearbyQuery` or raises :class:`~nearby.errors.BadParameter` naming the
parameter at fault. Nothing else in nearby looks at what users typed.

A query has one of three shapes:

- ``lat``, ``lon`` and ``radius``: the profiles within the radius;
- ``lat`` and ``lon`` alone: the ``limit`` nearest, out to the configured
  greatest radius;
- ``bbox=west,south,east,north``: the profiles in the box, measured and
  ordered from its centre; ``west > east`` crosses the antimeridian.

``category`` is one slug or several joined by commas, meaning any of them.
Numbers are plain ASCII decimals: an optional sign, digits, an optional
fraction and an optional exponent (``-33.86``, ``1e3``). Anything else, such as
``0x10``, ``1_000``, `` 5``, ``NaN`` or ``inf``, is unparsable; so is a number
too large to be finite. ``limit`` is a whole number.

A ``cursor`` names the last result of the page before, signed together with
a digest of the query it belongs to; it is base64url text with no meaning to
clients.
"""

import base64
import hashlib
import hmac
import math
import re
from collections.abc import Mapping
from typing import Annotated
from typing import Literal

import orjson
from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from pydantic import ValidationError
from werkzeug.datastructures import MIMEAccept
from werkzeug.datastructures import MultiDict

from nearby import geo
from nearby.category import CATEGORY_MAX_LENGTH
from nearby.category import CATEGORY_PATTERN
from nearby.errors import BadParameter

LAT = "lat"
LON = "lon"
RADIUS = "radius"
BBOX = "bbox"
UNIT = "unit"
CATEGORY = "category"
LIMIT = "limit"
CURSOR = "cursor"
FORMAT = "format"

DEFAULT_UNIT = "km"
DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
MAX_CATEGORIES = 20
CURSOR_MAX_LENGTH = 256
CURSOR_VERSION = 2
CURSOR_MAC_BYTES = 16
MAX_PROFILE_ID = 2**63 - 1
"""The largest id a profile can have: PostgreSQL's bigint."""
BBOX_EDGES = ("west", "south", "east", "north")

GEOJSON = "geojson"
GEOJSON_MEDIA_TYPE = "application/geo+json"
JSON_MEDIA_TYPE = "application/json"

DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
INTEGER = re.compile(r"[+-]?[0-9]+")
BASE64URL = r"^[A-Za-z0-9_-]+$"

Unit = Literal["m", "km", "mi", "ft"]
Format = Literal["json", "geojson"]
Category = Annotated[
    str,
    Field(
        min_length=1,
        max_length=CATEGORY_MAX_LENGTH,
        pattern=f"^{CATEGORY_PATTERN.pattern}$",
    ),
]
Longitude = Annotated[float, Field(ge=-180, le=180)]
Latitude = Annotated[float, Field(ge=-90, le=90)]


class NearbyQuery(BaseModel):
    """A validated query of /nearby, /nearby/redis and /nearby/postgis.

    ``lat`` and ``lon`` are in degrees, ``radius`` is in ``unit``;
    :attr:`radius_m` gives it in metres.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    category: Annotated[
        list[Category],
        Field(
            min_length=1,
            max_length=MAX_CATEGORIES,
            description="Category slug, e.g. `python-developer`, or up to "
            f"{MAX_CATEGORIES} joined by commas: profiles of any of them, each "
            "once.",
        ),
    ]
    lat: Annotated[
        float | None,
        Field(
            ge=-90,
            le=90,
            description="Latitude of the centre, in degrees. Required with "
            "`lon`, unless `bbox` is given.",
        ),
    ] = None
    lon: Annotated[
        float | None,
        Field(
            ge=-180,
            le=180,
            description="Longitude of the centre, in degrees. Required with "
            "`lat`, unless `bbox` is given.",
        ),
    ] = None
    radius: Annotated[
        float | None,
        Field(
            gt=0,
            description="Search radius, in `unit`. Without it, the `limit` "
            "nearest profiles are returned, searched out to the server's "
            "greatest radius (1,000 km unless configured otherwise).",
        ),
    ] = None
    bbox: Annotated[
        tuple[Longitude, Latitude, Longitude, Latitude] | None,
        Field(
            description="Box `west,south,east,north` in degrees, instead of "
            "`lat`, `lon` and `radius`. `west` greater than `east` crosses the "
            "antimeridian. Results are ordered, and their distance measured, "
            "from the box's centre.",
        ),
    ] = None
    unit: Annotated[Unit, Field(description="Unit of `radius` and distances.")] = (
        DEFAULT_UNIT
    )
    limit: Annotated[
        int, Field(ge=1, le=MAX_LIMIT, description="Most results on one page.")
    ] = DEFAULT_LIMIT
    cursor: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=CURSOR_MAX_LENGTH,
            pattern=BASE64URL,
            description="`next_cursor` of the page before, to get the next page "
            "of the same query.",
        ),
    ] = None
    format: Annotated[
        Format | None,
        Field(
            description="`geojson` for a GeoJSON FeatureCollection; without it, "
            "`Accept: application/geo+json` asks for GeoJSON too.",
        ),
    ] = None

    @property
    def shape(self) -> geo.Shape:
        if self.bbox is not None:
            return geo.Shape.BOX
        if self.radius is None:
            return geo.Shape.NEAREST
        return geo.Shape.RADIUS

    @property
    def categories(self) -> tuple[str, ...]:
        """The categories asked for, each once, in the order given."""
        return tuple(dict.fromkeys(self.category))

    @property
    def radius_m(self) -> float | None:
        """The radius in metres."""
        return None if self.radius is None else self.radius * geo.UNIT_M[self.unit]

    @property
    def unit_m(self) -> float:
        """Metres in one ``unit``."""
        return geo.UNIT_M[self.unit]

    @property
    def box(self) -> geo.Box | None:
        return None if self.bbox is None else geo.Box(*self.bbox)

    def center(self) -> tuple[float, float]:
        """Return ``(lon, lat)`` that distances are measured from."""
        if self.bbox is not None:
            return self.box.center()
        return self.lon, self.lat

    def digest(self) -> bytes:
        """Return a digest of what selects and orders results (not the page).

        Equal queries digest alike: the radius counts in whole micrometres,
        whatever its unit, and longitude -180 as 180.
        """
        shape = [self.shape.value, sorted(set(self.category))]
        if self.bbox is not None:
            shape.append(list(self.bbox))
        else:
            lon = 180.0 if self.lon == -180.0 else self.lon
            radius_m = None if self.radius_m is None else round(self.radius_m, 6)
            shape += [lon, self.lat, radius_m]
        return hashlib.blake2b(orjson.dumps(shape), digest_size=16).digest()


NUMBER_PARAMS = {LAT: DECIMAL, LON: DECIMAL, RADIUS: DECIMAL, LIMIT: INTEGER}
LIST_PARAMS = (CATEGORY, BBOX)
SHOWN_CHARS = 40
"""Longest given value quoted whole in an error message; longer ones are cut."""


def parse_nearby(args: MultiDict | Mapping[str, str]) -> NearbyQuery:
    """Return the :class:`NearbyQuery` that the query string ``args`` asks for.

    Raises:
        BadParameter: a parameter is unknown, repeated, missing, unparsable,
            out of range or not allowed beside another; ``param`` names the
            first one at fault.
    """
    values = _single_values(args)
    _check_numbers(values)
    fields = {
        name: value.split(",") if name in LIST_PARAMS else value
        for name, value in values.items()
    }

    try:
        query = NearbyQuery.model_validate(fields)
    except ValidationError as exc:
        raise _bad_parameter(exc, values) from None

    _check_shape(query)
    return query


def _check_numbers(values: dict[str, str]) -> None:
    for name, pattern in NUMBER_PARAMS.items():
        if name in values and not pattern.fullmatch(values[name]):
            kind = "a whole number" if pattern is INTEGER else "a decimal number"
            raise BadParameter(
                name, f"{name} must be {kind}, got {_shown(values[name])}"
            )

    if BBOX in values:
        edges = values[BBOX].split(",")
        if len(edges) != len(BBOX_EDGES):
            raise BadParameter(
                BBOX,
                "bbox must be four numbers west,south,east,north, got "
                f"{_shown(values[BBOX])}",
            )
        for edge, value in zip(BBOX_EDGES, edges, strict=True):
            if not DECIMAL.fullmatch(value):
                raise BadParameter(
                    BBOX, f"bbox {edge} must be a decimal number, got {_shown(value)}"
                )


def _check_shape(query: NearbyQuery) -> None:
    if query.bbox is not None:
        for name in (LAT, LON, RADIUS):
            if getattr(query, name) is not None:
                raise BadParameter(
                    name, f"{name} cannot be given with bbox; give one or the other"
                )
        west, south, east, north = query.bbox
        if south > north:
            raise BadParameter(
                BBOX, f"bbox south ({south}) must not be north of north ({north})"
            )
        return

    for name in (LAT, LON):
        if getattr(query, name) is None:
            raise BadParameter(name, f"{name} is required, unless bbox is given")
    if query.radius is not None and query.radius_m <= 0:
        raise BadParameter(
            RADIUS, f"radius is too small to measure, got {query.radius}"
        )
    if query.radius is not None and not math.isfinite(query.radius_m):
        raise BadParameter(
            RADIUS, f"radius is too large to measure, got {query.radius}"
        )


def _shown(value: str) -> str:
    """Quote a value the user gave, cut to a readable length."""
    if len(value) > SHOWN_CHARS:
        return repr(value[:SHOWN_CHARS]) + f"... ({len(value)} characters)"
    return repr(value)


def _single_values(args: MultiDict | Mapping[str, str]) -> dict[str, str]:
    known = NearbyQuery.model_fields
    lists = (
        args.to_dict(flat=False)
        if isinstance(args, MultiDict)
        else {key: [value] for key, value in args.items()}
    )

    values = {}
    for name, given in lists.items():
        if name not in known:
            expected = ", ".join(known)
            raise BadParameter(
                name, f"unknown parameter {_shown(name)}; known: {expected}"
            )
        if len(given) > 1:
            raise BadParameter(
                name, f"{name} is given {len(given)} times; give it once"
            )
        values[name] = given[0]
    return values


def _bad_parameter(exc: ValidationError, values: dict[str, str]) -> BadParameter:
    error = exc.errors()[0]
    loc = error["loc"]
    name = str(loc[0]) if loc else ""
    given = error.get("input")
    shown = _shown(given) if isinstance(given, str) else _shown(values.get(name, ""))

    if error["type"] == "missing":
        return BadParameter(name, f"{name} is required")
    if name == UNIT:
        return BadParameter(name, f"unit must be one of m, km, mi, ft, got {shown}")
    if name == FORMAT:
        return BadParameter(name, f"format must be json or geojson, got {shown}")
    if name == CURSOR:
        return BadParameter(name, f"cursor is not one this service gave, got {shown}")
    if name == CATEGORY and error["type"] == "too_long":
        return BadParameter(
            name,
            f"category lists at most {MAX_CATEGORIES} categories, got "
            f"{len(values[name].split(','))}",
        )
    if name == CATEGORY:
        return BadParameter(
            name,
            "category must be a slug of 1 to 64 lowercase ASCII letters, digits and "
            f"single hyphens, or several joined by commas, got {shown}",
        )

    label = name
    if name == BBOX and len(loc) > 1 and isinstance(loc[1], int):
        label = f"bbox {BBOX_EDGES[loc[1]]}"
        shown = _shown(values[BBOX].split(",")[loc[1]])
    if error["type"] == "finite_number":
        return BadParameter(name, f"{label} must be a finite number, got {shown}")

    ctx = error.get("ctx", {})
    bounds = {
        "greater_than_equal": f"at least {ctx.get('ge')}",
        "less_than_equal": f"at most {ctx.get('le')}",
        "greater_than": f"greater than {ctx.get('gt')}",
    }
    if error["type"] in bounds:
        return BadParameter(
            name, f"{label} must be {bounds[error['type']]}, got {shown}"
        )
    return BadParameter(name, f"{label}: {error['msg']}")


def wants_geojson(query: NearbyQuery, accept: MIMEAccept) -> bool:
    """Tell whether the answer should be GeoJSON.

    ``format`` decides when given; otherwise the ``Accept`` header does, by
    its quality values: GeoJSON when it prefers ``application/geo+json`` to
    ``application/json``.
    """
    if query.format is not None:
        return query.format == GEOJSON
    return accept[GEOJSON_MEDIA_TYPE] > accept[JSON_MEDIA_TYPE]


def encode_cursor(query: NearbyQuery, last: geo.Hit, offset: int, key: bytes) -> str:
    """Return the cursor of the page after the one that ended with ``last``.

    ``offset`` counts the results up to and including ``last``. The cursor is
    signed with ``key`` together with the query's digest, so that it is valid
    for that query only and cannot be made by anyone without the key.
    """
    payload = orjson.dumps(
        [CURSOR_VERSION, offset, last.id, float(last.lon), float(last.lat)]
    )
    mac = _cursor_mac(key, query, payload)
    return base64.urlsafe_b64encode(mac + payload).rstrip(b"=").decode()


def decode_cursor(query: NearbyQuery, max_offset: int, key: bytes) -> geo.After | None:
    """Return where the page of ``query.cursor`` starts, or None without one.

    Raises:
        BadParameter: the cursor is not one this service made with ``key``,
            belongs to another query, or starts ``max_offset`` results or more
            from the first.
    """
    if query.cursor is None:
        return None

    not_ours = BadParameter(
        CURSOR, f"cursor is not one this service gave, got {_shown(query.cursor)}"
    )
    try:
        text = query.cursor + "=" * (-len(query.cursor) % 4)
        raw = base64.urlsafe_b64decode(text)
    except ValueError:
        raise not_ours from None
    mac, payload = raw[:CURSOR_MAC_BYTES], raw[CURSOR_MAC_BYTES:]
    if not hmac.compare_digest(mac, _cursor_mac(key, query, payload)):
        raise BadParameter(
            CURSOR,
            "cursor belongs to another query, or was not made by this service; "
            "page with the same category, centre, radius or bbox as the query "
            "that returned it",
        )

    try:
        version, offset, last_id, lon, lat = orjson.loads(payload)
    except (ValueError, TypeError):
        raise not_ours from None
    if version != CURSOR_VERSION or not _is_position(offset, last_id, lon, lat):
        raise not_ours
    if offset >= max_offset:
        raise BadParameter(
            CURSOR,
            f"pages end {max_offset} results from the first; narrow the query "
            "(a smaller radius or box, or fewer categories) to see farther",
        )
    return geo.After(id=last_id, lon=lon, lat=lat, offset=offset)


def _is_position(offset, last_id, lon, lat) -> bool:
    """Tell whether a cursor's fields name a result: a count of results, a
    profile id and a finite location on the globe."""
    return (
        all(type(value) is int for value in (offset, last_id))
        and all(type(value) in (int, float) for value in (lon, lat))
        and offset >= 1
        and 0 <= last_id <= MAX_PROFILE_ID
        and -180 <= lon <= 180
        and -90 <= lat <= 90
    )


def _cursor_mac(key: bytes, query: NearbyQuery, payload: bytes) -> bytes:
    return hashlib.blake2b(
        query.digest() + payload, key=key, digest_size=CURSOR_MAC_BYTES
    ).digest()


def to_search(
    query: NearbyQuery,
    *,
    nearest_max_m: float,
    max_scan: int,
    max_offset: int,
    cursor_key: bytes,
) -> geo.Search:
    """Return the :class:`~nearby.geo.Search` both backends run for ``query``.

    ``nearest_max_m`` bounds a search without a radius; ``max_scan``,
    ``max_offset`` and ``cursor_key`` are the limits of
    :class:`~nearby.geo.Search` and :func:`decode_cursor`. A page that would
    reach past ``max_offset`` results ends there.

    Raises:
        BadParameter: the cursor is not valid for this query.
    """
    lon, lat = query.center()
    box = query.box
    radius_m = query.radius_m
    if box is None and radius_m is None:
        radius_m = nearest_max_m
    after = decode_cursor(query, max_offset, cursor_key)
    limit = (
        query.limit if after is None else min(query.limit, max_offset - after.offset)
    )

    return geo.Search(
        shape=query.shape,
        categories=query.categories,
        lon=lon,
        lat=lat,
        radius_m=radius_m,
        limit=limit,
        max_scan=max_scan,
        box=box,
        after=after,
    )
