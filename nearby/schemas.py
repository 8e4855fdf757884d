"""The bodies nearby answers with, declared as pydantic models.

The views build these bodies as plain dicts, for speed; the models exist to
describe them: :mod:`nearby.openapi` puts their JSON schemas in the API
description, and the tests check real answers against those schemas. Every
model forbids fields it does not declare, so an answer that grows a field the
description lacks fails those tests.

Distances are in the ``unit`` of the query; coordinates are degrees of
longitude and latitude (GeoJSON puts longitude first); times are UTC.
"""

from typing import Annotated
from typing import Literal

from pydantic import AwareDatetime
from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field

from nearby.geo import Shape
from nearby.query import Category
from nearby.query import Latitude
from nearby.query import Longitude
from nearby.query import Unit

Backend = Literal["redis", "postgis"]
Count = Annotated[int, Field(ge=0)]
Distance = Annotated[
    float, Field(ge=0, description="Great-circle distance from the centre, in `unit`.")
]
NextCursor = Annotated[
    str | None,
    Field(description="Pass as `cursor` to get the next page; null on the last page."),
]


class Answer(BaseModel):
    """Base of the answer models: every field declared, no other allowed."""

    model_config = ConfigDict(extra="forbid")


class Center(Answer):
    """The point distances are measured from, in degrees."""

    lat: Latitude
    lon: Longitude


class Result(Answer):
    """One profile found, with its exact coordinates in PostGIS."""

    id: int
    name: str
    city: str | None
    lat: Latitude
    lon: Longitude
    distance: Distance


class NearbyAnswer(Answer):
    """One page of results, nearest first; profiles at one distance by id."""

    backend: Annotated[Backend, Field(description="The backend that answered.")]
    shape: Annotated[
        Shape,
        Field(
            description="`radius`: within `radius` of the centre; `nearest`: the "
            "`limit` nearest; `bbox`: in the box, measured from its centre."
        ),
    ]
    categories: Annotated[
        list[Category], Field(description="The categories asked for, each once.")
    ]
    center: Center
    radius: Annotated[
        float | None, Field(description="The radius asked for, in `unit`.")
    ]
    bbox: Annotated[
        tuple[Longitude, Latitude, Longitude, Latitude] | None,
        Field(description="The box asked for: west, south, east, north."),
    ]
    unit: Unit
    count: Annotated[Count, Field(description="Results on this page.")]
    results: list[Result]
    next_cursor: NextCursor


class PointGeometry(Answer):
    """A GeoJSON Point: ``[lon, lat]`` in degrees."""

    type: Literal["Point"]
    coordinates: tuple[Longitude, Latitude]


class FeatureProperties(Answer):
    """What a feature says of its profile besides where it is."""

    id: int
    name: str
    city: str | None
    distance: Distance
    unit: Unit


class Feature(Answer):
    """One profile found, as a GeoJSON Feature whose id is the profile's."""

    type: Literal["Feature"]
    id: int
    geometry: PointGeometry
    properties: FeatureProperties


class FeatureCollection(Answer):
    """One page of results as a GeoJSON FeatureCollection (RFC 7946), nearest first.

    ``backend``, ``count`` and ``next_cursor`` are foreign members, with the
    meaning they have in the JSON answer.
    """

    type: Literal["FeatureCollection"]
    features: list[Feature]
    backend: Backend
    count: Count
    next_cursor: NextCursor


class ErrorDetail(Answer):
    """What went wrong, for programs (``code``, ``param``) and for people."""

    code: Annotated[str, Field(description="Stable code, such as `bad_parameter`.")]
    message: str
    param: Annotated[
        str | None,
        Field(description="The query parameter at fault, when one is."),
    ]


class ErrorBody(Answer):
    """The body of every error answer."""

    error: ErrorDetail


class LastRefresh(Answer):
    """What the last successful refresh did; null where it did not record it."""

    kind: Annotated[str | None, Field(description="`full` or `incremental`.")]
    seconds: Annotated[float | None, Field(description="Its duration, in seconds.")]
    changes: Count | None
    profiles: Count | None
    added: Count | None
    moved: Count | None
    removed: Count | None
    skipped_latitude: Count | None
    skipped_category: Count | None


class RefreshFailure(Answer):
    """The last refresh that failed since one succeeded."""

    failed_at: AwareDatetime
    error: str


class IndexStatus(Answer):
    """The Redis index: whether it is built, and by which refresh."""

    built: Annotated[
        bool | None,
        Field(
            description="Whether an index is built; null when Redis does not answer."
        ),
    ]
    refreshed_at: Annotated[
        AwareDatetime | None, Field(description="End of the last refresh.")
    ]
    age_seconds: Annotated[
        float | None, Field(description="Seconds since `refreshed_at`.")
    ]
    last_refresh: Annotated[
        LastRefresh | None, Field(description="Absent until an index is built.")
    ] = None
    last_failure: Annotated[
        RefreshFailure | None,
        Field(description="In /health, whenever Redis answers."),
    ] = None


class CategoryCount(Answer):
    """One category and its members, as the last refresh counted them."""

    name: Category
    postgis: Annotated[Count, Field(description="Profiles in PostGIS.")]
    redis: Annotated[
        Count, Field(description="Profiles in Redis: those within its latitudes.")
    ]


class CategoriesAnswer(Answer):
    """Every category of the index, in no set order."""

    index: IndexStatus
    count: Annotated[Count, Field(description="Categories in the index.")]
    categories: list[CategoryCount]


class Check(Answer):
    """Whether one backend answered."""

    ok: bool
    error: Annotated[str | None, Field(description="Why not, when not ok.")] = None


class HealthAnswer(Answer):
    """The state of both backends and of the index."""

    status: Annotated[
        Literal["ok", "degraded", "unavailable"],
        Field(
            description="`ok`; `degraded` when the last refresh failed and an "
            "older index serves; `unavailable` (with 503) when a backend does "
            "not answer or no index is built."
        ),
    ]
    postgis: Check
    redis: Check
    index: IndexStatus
