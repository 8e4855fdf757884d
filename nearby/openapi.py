"""The API description: an OpenAPI 3.1 document, and a page that shows it.

:func:`build_document` writes the document with apispec from the declarations
the app itself runs on, never from a copy of them: the query parameters of
/nearby* are the fields of :class:`~nearby.query.NearbyQuery`, with the types,
bounds, patterns, enums, defaults and descriptions of its pydantic JSON schema;
the bodies are the models of :mod:`nearby.schemas`; the error codes and what
they mean come from the classes of :mod:`nearby.errors`. The figures it quotes
(the scan cap, the deepest page, the greatest radius) are the server's
settings.

:func:`register` serves the document at ``/openapi.json``, built once per app,
and Swagger UI at ``/docs/``. Swagger UI's files come from the
flask-swagger-ui package and are served by the app itself, so the page needs
no network; it sends nothing to Swagger's online validator.
"""

import inspect
import re

import orjson
from apispec import APISpec
from flask import Blueprint
from flask import Flask
from flask import Response
from flask_swagger_ui import get_swaggerui_blueprint
from pydantic import BaseModel
from pydantic import TypeAdapter
from pydantic.json_schema import models_json_schema

from config import Settings
from nearby import errors
from nearby import geo
from nearby import schemas
from nearby.api import BACKEND_HEADER
from nearby.api import BACKEND_REASON_HEADER
from nearby.api import INDEX_AGE_HEADER
from nearby.query import GEOJSON_MEDIA_TYPE
from nearby.query import NearbyQuery

OPENAPI_VERSION = "3.1.0"
API_VERSION = "1"
"""Version of the HTTP contract the document describes."""
DOCUMENT_URL = "/openapi.json"
DOCS_URL = "/docs"
JSON_MEDIA_TYPE = "application/json"
SCHEMA_REF = "#/components/schemas/{model}"
STATUS_NOTE = re.compile(r" \(\d{3}[^)]*\)\.$")
"""The HTTP status that ends an error class's summary line, as in "... (400)."."""

BODIES = (
    schemas.NearbyAnswer,
    schemas.FeatureCollection,
    schemas.ErrorBody,
    schemas.CategoriesAnswer,
    schemas.HealthAnswer,
)
"""Every body model; their JSON schemas, and those they refer to, are
components of the document under the models' names."""

SEARCH_ERRORS = {
    "/nearby/redis": {
        400: (errors.BadParameter, errors.AreaTooLarge, errors.BeyondRedisLatitude),
        404: (errors.UnknownCategory,),
        503: (errors.IndexNotReady, errors.BackendUnavailable),
    },
    "/nearby/postgis": {
        400: (errors.BadParameter, errors.AreaTooLarge),
        404: (errors.UnknownCategory,),
        503: (errors.BackendUnavailable, errors.SchemaMissing),
    },
    "/nearby": {
        400: (errors.BadParameter, errors.AreaTooLarge),
        404: (errors.UnknownCategory,),
        503: (errors.BackendUnavailable, errors.SchemaMissing),
    },
}
"""The errors each search endpoint answers with, by HTTP status."""

INTERNAL_ERROR = (
    f"`{errors.NearbyError.code}`: a fault of nearby itself; the server log has "
    "the details."
)

SUMMARY = """\
Which profiles of a category are near this point, nearest first? Two backends
answer with one contract: Redis GEO indexes, refreshed from PostGIS every few
minutes, and PostGIS itself, the source of truth.

Every error is JSON, `{"error": {"code", "message", "param"}}`, with a stable
`code` and, when one query parameter is to blame, its name in `param`. Besides
the errors each operation lists, a path that does not exist answers 404
`not_found` and a method other than GET (or HEAD) answers 405
`method_not_allowed` with `Allow`. Every 503 carries `Retry-After`.
"""

QUERY_RULES = """\
A query has one of three shapes: `lat`, `lon` and `radius`, the profiles within
the radius; `lat` and `lon` alone, the `limit` nearest, searched out to
{nearest_km:,g} km; or `bbox`, the profiles in the box, measured and ordered from
its centre. `category` is always required.

Numbers are plain ASCII decimals: an optional sign, digits, an optional
fraction and an optional exponent (`-33.86`, `1e3`); `0x10`, `1_000`, `NaN`,
`inf` and numbers with spaces are refused, and `limit` is a whole number. Each
parameter is given once; an unknown or repeated one is refused.

**Paging.** A page holds at most `limit` results. When `next_cursor` is not
null, the same query (the same `category`, centre and `radius`, or `bbox`) with
`cursor` set to it gives the next page. Pages reach at most the first
{max_window:,} results (setting `MAX_RESULT_WINDOW`, by default
{default_window:,}): the page that reaches that far ends there, and a cursor
beyond it answers 400. {backend_paging}

**Scan cap.** A radius or box query whose area holds more than {max_scan:,}
profiles of its categories (setting `MAX_SCAN_MEMBERS`, by default
{default_scan:,}) answers 400 `area_too_large`, whatever its `limit`. A nearest
query is never refused for its area: it stops at `limit`.
"""

REDIS_PAGING = (
    "Redis fetches the `offset + limit + 1` members nearest the centre for every "
    "page, so page n costs O(n·limit)."
)
POSTGIS_PAGING = (
    "PostGIS sorts the whole area for a radius or box page, and walks the "
    "`offset + limit + 1` nearest through its GiST index for a nearest page."
)

SEARCHES = {
    "/nearby/redis": {
        "operationId": "nearbyRedis",
        "summary": "Search the Redis GEO indexes",
        "description": (
            "Answers from the Redis GEO index of each category and never touches "
            "PostgreSQL, so it knows the categories of the last refresh only. "
            "Redis holds no profile beyond latitude "
            f"±{geo.REDIS_MAX_LATITUDE}: a centre beyond it, or a search that "
            "reaches there where its categories have profiles, answers 400 "
            f"`{errors.BeyondRedisLatitude.code}`; /nearby/postgis and /nearby "
            "serve those."
        ),
        "paging": REDIS_PAGING,
    },
    "/nearby/postgis": {
        "operationId": "nearbyPostgis",
        "summary": "Search PostGIS",
        "description": (
            "Answers from PostgreSQL with its GiST index on location and GIN "
            "index on categories: every profile, the newest data, at every "
            "latitude."
        ),
        "paging": POSTGIS_PAGING,
    },
    "/nearby": {
        "operationId": "nearby",
        "summary": "Search Redis, or PostGIS when Redis cannot answer",
        "description": (
            "Answers from Redis when it can, and from PostGIS otherwise: when the "
            "Redis index is not built, does not know a category, cannot search "
            f"beyond latitude ±{geo.REDIS_MAX_LATITUDE}, or Redis cannot be "
            f"reached. `{BACKEND_HEADER}` says which backend answered and "
            f"`{BACKEND_REASON_HEADER}` why PostGIS did."
        ),
        "paging": f"{REDIS_PAGING} {POSTGIS_PAGING}",
    },
}

HEADERS = {
    BACKEND_HEADER: {
        "description": "The backend that answered.",
        "schema": TypeAdapter(schemas.Backend).json_schema(),
    },
    INDEX_AGE_HEADER: {
        "description": "Whole seconds since the refresh that the answer's Redis "
        "index comes from; only on answers from Redis.",
        "schema": {"type": "integer", "minimum": 0},
    },
    BACKEND_REASON_HEADER: {
        "description": "Why /nearby answered from PostGIS: the error code and "
        "message of Redis's refusal; only on /nearby answers from PostGIS.",
        "schema": {"type": "string"},
    },
    "Cache-Control": {
        "description": "`max-age` of the seconds until the next refresh is due "
        "on answers from Redis; `no-cache` on answers from PostGIS.",
        "schema": {"type": "string", "pattern": "^(no-cache|max-age=[0-9]+)$"},
    },
    "Vary": {
        "description": "`Accept`: the answer is GeoJSON when `Accept` asks for "
        f"`{GEOJSON_MEDIA_TYPE}` and `format` is not given.",
        "schema": {"type": "string"},
    },
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer", "minimum": 0},
    },
}


def query_parameters() -> list[dict]:
    """Return the OpenAPI query parameters of :class:`NearbyQuery`, in its order.

    Each schema is the model's JSON schema of the field, less the ``null``
    that stands for a parameter not given; the model's required fields are
    required parameters. Lists (``category``, ``bbox``) are comma-joined:
    ``style: form``, ``explode: false``.
    """
    model = NearbyQuery.model_json_schema(ref_template=SCHEMA_REF)
    required = set(model.get("required", ()))

    parameters = []
    for name, field in model["properties"].items():
        schema = _without_null(field)
        schema.pop("title", None)
        parameter = {
            "name": name,
            "in": "query",
            "required": name in required,
            "description": schema.pop("description"),
            "schema": schema,
        }
        if schema.get("type") == "array":
            parameter |= {"style": "form", "explode": False}
        parameters.append(parameter)
    return parameters


def _without_null(field: dict) -> dict:
    """Return the schema ``field`` less its ``null`` branch and null default."""
    field = dict(field)
    if field.get("default", ...) is None:
        del field["default"]
    branches = [
        branch for branch in field.pop("anyOf", ()) if branch != {"type": "null"}
    ]
    if len(branches) == 1:
        return branches[0] | field
    return ({"anyOf": branches} if branches else {}) | field


def build_document(settings: Settings) -> dict:
    """Return the OpenAPI 3.1 document of the app that ``settings`` configure."""
    spec = APISpec(
        title="nearby",
        version=API_VERSION,
        openapi_version=OPENAPI_VERSION,
        info={"description": SUMMARY},
    )
    parameters = query_parameters()
    _add_components(spec, parameters)

    for path, search in SEARCHES.items():
        rules = QUERY_RULES.format(
            nearest_km=settings.knn_max_radius_km,
            max_window=settings.max_result_window,
            default_window=Settings.model_fields["max_result_window"].default,
            max_scan=settings.max_scan_members,
            default_scan=Settings.model_fields["max_scan_members"].default,
            backend_paging=search["paging"],
        )
        operation = {
            "operationId": search["operationId"],
            "summary": search["summary"],
            "description": f"{search['description']}\n\n{rules}",
            "tags": ["search"],
            "parameters": [parameter["name"] for parameter in parameters],
            "responses": {
                200: _search_answer(path),
                **{
                    status: _error(*codes)
                    for status, codes in SEARCH_ERRORS[path].items()
                },
                500: _error(INTERNAL_ERROR),
            },
        }
        spec.path(path=path, operations={"get": operation})

    spec.path(path="/categories", operations={"get": _categories()})
    spec.path(path="/health", operations={"get": _health()})
    return spec.to_dict()


def _add_components(spec: APISpec, parameters: list[dict]) -> None:
    """Add every body schema, and every query parameter, as a component."""
    _, bodies = models_json_schema(
        [(model, "validation") for model in BODIES], ref_template=SCHEMA_REF
    )
    model = NearbyQuery.model_json_schema(ref_template=SCHEMA_REF)
    for name, schema in (bodies["$defs"] | model.get("$defs", {})).items():
        spec.components.schema(name, schema)

    for parameter in parameters:
        spec.components.parameter(parameter["name"], "query", parameter)


def _search_answer(path: str) -> dict:
    headers = {BACKEND_HEADER: True, "Cache-Control": True, "Vary": True}
    if path == "/nearby/redis":
        headers[INDEX_AGE_HEADER] = True
    elif path == "/nearby":
        headers |= {INDEX_AGE_HEADER: False, BACKEND_REASON_HEADER: False}

    return {
        "description": "One page of results, nearest first: JSON, or GeoJSON "
        f"when `format=geojson` or `Accept: {GEOJSON_MEDIA_TYPE}` asks for it.",
        "headers": {
            name: _header(name, required=required) for name, required in headers.items()
        },
        "content": {
            JSON_MEDIA_TYPE: {"schema": _name(schemas.NearbyAnswer)},
            GEOJSON_MEDIA_TYPE: {"schema": _name(schemas.FeatureCollection)},
        },
    }


def _categories() -> dict:
    return {
        "operationId": "categories",
        "summary": "List the categories of the Redis index",
        "description": "Every category with its profiles in PostGIS and in Redis, "
        "as the last refresh counted them (the two differ by the profiles beyond "
        "Redis's latitudes), and the time and age of that refresh. Streamed from "
        "Redis in batches, in no set order.",
        "tags": ["service"],
        "responses": {
            200: {
                "description": "The categories.",
                "content": {
                    JSON_MEDIA_TYPE: {"schema": _name(schemas.CategoriesAnswer)}
                },
            },
            500: _error(INTERNAL_ERROR),
            503: _error(errors.BackendUnavailable),
        },
    }


def _health() -> dict:
    body = {JSON_MEDIA_TYPE: {"schema": _name(schemas.HealthAnswer)}}
    return {
        "operationId": "health",
        "summary": "Tell whether both backends answer and an index is built",
        "description": "PostgreSQL must answer and let nearby read the profiles "
        "table; Redis must answer and hold a built index.",
        "tags": ["service"],
        "responses": {
            200: {"description": "Both answer and an index is built.", "content": body},
            500: _error(INTERNAL_ERROR),
            503: {
                "description": "A backend does not answer, or no index is built; "
                "the body says which.",
                "headers": {"Retry-After": _header("Retry-After", required=True)},
                "content": body,
            },
        },
    }


def _error(*causes: type[errors.NearbyError] | str) -> dict:
    """Return the response of an error whose codes ``causes`` name.

    Each cause is an error class, described by its code and its docstring's
    first line, or a description already written.
    """
    lines = [cause if isinstance(cause, str) else _cause(cause) for cause in causes]
    response = {
        "description": "\n".join(f"- {line}" for line in lines),
        "content": {JSON_MEDIA_TYPE: {"schema": _name(schemas.ErrorBody)}},
    }
    if any(
        isinstance(cause, type) and issubclass(cause, errors.Unavailable)
        for cause in causes
    ):
        response["headers"] = {"Retry-After": _header("Retry-After", required=True)}
    return response


def _cause(error: type[errors.NearbyError]) -> str:
    """Return "`code`: what it means", from the error's docstring."""
    summary = STATUS_NOTE.sub(".", inspect.getdoc(error).splitlines()[0])
    return f"`{error.code}`: {summary}"


def _header(name: str, *, required: bool) -> dict:
    return HEADERS[name] | {"required": required}


def _name(model: type[BaseModel]) -> str:
    return model.__name__


def register(app: Flask, settings: Settings) -> None:
    """Serve the document at ``/openapi.json`` and Swagger UI at ``/docs/``."""
    document = orjson.dumps(build_document(settings))
    blueprint = Blueprint("openapi", __name__)

    @blueprint.get(DOCUMENT_URL)
    def openapi_document():
        return Response(document, mimetype=JSON_MEDIA_TYPE)

    app.register_blueprint(blueprint)
    app.register_blueprint(
        get_swaggerui_blueprint(
            DOCS_URL,
            DOCUMENT_URL,
            config={
                "app_name": "nearby API",
                "validatorUrl": None,
                "oauth2RedirectUrl": None,
            },
        )
    )
