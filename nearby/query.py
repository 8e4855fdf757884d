"""The query of /nearby/*: its parameter names, and parsing the query string.

:func:`parse_nearby` turns the raw query string into a frozen
:class:`NearbyQuery` or raises :class:`~nearby.errors.BadParameter` naming the
parameter at fault. Nothing else in nearby looks at what users typed.

Numbers are plain ASCII decimals: an optional sign, digits, an optional
fraction and an optional exponent (``-33.86``, ``1e3``). Anything else, such as
``0x10``, ``1_000``, `` 5``, ``NaN`` or ``inf``, is unparsable; so is a number
too large to be finite. ``limit`` is a whole number.
"""

import re
from collections.abc import Mapping
from typing import Annotated
from typing import Literal

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from pydantic import ValidationError
from werkzeug.datastructures import MultiDict

from nearby import geo
from nearby.category import CATEGORY_MAX_LENGTH
from nearby.category import CATEGORY_PATTERN
from nearby.errors import BadParameter

LAT = "lat"
LON = "lon"
RADIUS = "radius"
UNIT = "unit"
CATEGORY = "category"
LIMIT = "limit"

DEFAULT_UNIT = "km"
DEFAULT_LIMIT = 50
MAX_LIMIT = 1000

DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
INTEGER = re.compile(r"[+-]?[0-9]+")

Unit = Literal["m", "km", "mi", "ft"]


class NearbyQuery(BaseModel):
    """A validated proximity query: profiles of ``category`` within ``radius``.

    ``lat`` and ``lon`` are in degrees, ``radius`` is in ``unit``;
    :attr:`radius_m` gives it in metres.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    lat: Annotated[float, Field(ge=-90, le=90, description="Latitude in degrees.")]
    lon: Annotated[float, Field(ge=-180, le=180, description="Longitude in degrees.")]
    radius: Annotated[float, Field(gt=0, description="Search radius, in `unit`.")]
    unit: Annotated[Unit, Field(description="Unit of `radius` and distances.")] = (
        DEFAULT_UNIT
    )
    category: Annotated[
        str,
        Field(
            min_length=1,
            max_length=CATEGORY_MAX_LENGTH,
            pattern=f"^{CATEGORY_PATTERN.pattern}$",
            description="Category slug, e.g. `python-developer`.",
        ),
    ]
    limit: Annotated[
        int, Field(ge=1, le=MAX_LIMIT, description="Most results to return.")
    ] = DEFAULT_LIMIT

    @property
    def radius_m(self) -> float:
        """The radius in metres."""
        return self.radius * geo.UNIT_M[self.unit]

    @property
    def unit_m(self) -> float:
        """Metres in one ``unit``."""
        return geo.UNIT_M[self.unit]


NUMBER_PARAMS = {LAT: DECIMAL, LON: DECIMAL, RADIUS: DECIMAL, LIMIT: INTEGER}
SHOWN_CHARS = 40
"""Longest given value quoted whole in an error message; longer ones are cut."""


def parse_nearby(args: MultiDict | Mapping[str, str]) -> NearbyQuery:
    """Return the :class:`NearbyQuery` that the query string ``args`` asks for.

    Raises:
        BadParameter: a parameter is unknown, repeated, missing, unparsable or
            out of range; ``param`` names the first one at fault.
    """
    values = _single_values(args)

    for name, pattern in NUMBER_PARAMS.items():
        if name in values and not pattern.fullmatch(values[name]):
            kind = "a whole number" if pattern is INTEGER else "a decimal number"
            raise BadParameter(
                name, f"{name} must be {kind}, got {_shown(values[name])}"
            )

    try:
        query = NearbyQuery.model_validate(values)
    except ValidationError as exc:
        raise _bad_parameter(exc, values) from None

    if query.radius_m <= 0:
        raise BadParameter(
            RADIUS, f"radius is too small to measure, got {query.radius}"
        )
    return query


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
    name = str(error["loc"][0]) if error["loc"] else ""

    if error["type"] == "missing":
        return BadParameter(name, f"{name} is required")
    if name == UNIT:
        return BadParameter(
            name, f"unit must be one of m, km, mi, ft, got {_shown(values[name])}"
        )
    if name == CATEGORY:
        return BadParameter(
            name,
            "category must be a slug of 1 to 64 lowercase ASCII letters, digits and "
            f"single hyphens, got {_shown(values[name])}",
        )
    if error["type"] == "finite_number":
        return BadParameter(
            name, f"{name} must be a finite number, got {_shown(values[name])}"
        )

    ctx = error.get("ctx", {})
    bounds = {
        "greater_than_equal": f"at least {ctx.get('ge')}",
        "less_than_equal": f"at most {ctx.get('le')}",
        "greater_than": f"greater than {ctx.get('gt')}",
    }
    if error["type"] in bounds:
        return BadParameter(
            name, f"{name} must be {bounds[error['type']]}, got {_shown(values[name])}"
        )
    return BadParameter(name, f"{name}: {error['msg']}")
