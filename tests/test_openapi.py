"""The API description: valid, true to NearbyQuery, honoured by every answer.

Besides answers checked by hand, schemathesis fuzzes every operation and
checks each answer against the document: no 500, and only documented
statuses, content types, headers and bodies. It runs twice, on seeded profiles
and a fresh index. First on the document as served, through its pytest
integration (its examples, coverage and fuzzing phases, valid and invalid
data, other methods than GET): since the document cannot say which parameters
go together, most answers are errors. Then on the document cut down to one
query shape at a time with the seeded categories, so that most answers are
pages of results; each next page is fetched and checked too.
"""

import copy
from html.parser import HTMLParser
from urllib.parse import urlsplit

import jsonschema
import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from openapi_spec_validator import validate
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance
from schemathesis.specs.openapi.checks import negative_data_rejection
from schemathesis.specs.openapi.checks import response_headers_conformance
from schemathesis.specs.openapi.checks import response_schema_conformance
from schemathesis.specs.openapi.checks import status_code_conformance
from schemathesis.specs.openapi.checks import unsupported_method

from config import get_settings
from nearby.app import create_app
from nearby.openapi import build_document
from nearby.query import NearbyQuery

SEARCHES = ["/nearby", "/nearby/redis", "/nearby/postgis"]
OPERATIONS = [*SEARCHES, "/categories", "/health"]
PARIS = (2.3522, 48.8566)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
"""What every fuzzed answer must pass: answers of valid and invalid requests."""

RAW_CHECKS = [*CHECKS, negative_data_rejection, unsupported_method]
"""Also: requests the document calls invalid are refused; other methods are 405."""

RAW_EXAMPLES = 150
SHAPED_EXAMPLES = 100
SCAN_CAP = 100
"""The smallest MAX_SCAN_MEMBERS allowed, so fuzzed areas can exceed it."""

FUZZ_SETTINGS = hypothesis_settings(
    max_examples=RAW_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
"""Deterministic runs, bounded in examples, that write no example database."""

SHAPES = {
    "radius": {"lat", "lon", "radius"},
    "nearest": {"lat", "lon"},
    "bbox": {"bbox"},
}
"""The parameters each query shape requires; it leaves out the other shapes'."""
SHAPE_PARAMETERS = {"lat", "lon", "radius", "bbox", "cursor"}

CATEGORIES = ["developers", "farmers", "polar-guides"]

BOUND_KEYWORDS = {
    "type",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "minLength",
    "maxLength",
    "pattern",
    "enum",
    "default",
    "minItems",
    "maxItems",
    "items",
    "prefixItems",
}
"""Keywords of NearbyQuery's schema that the document must carry over."""


def _spread() -> list[tuple]:
    """Profiles over the whole globe, a crowd in Paris and some near the poles.

    Every 15 degrees of longitude and latitude (to ±75) a developer, the Paris
    crowd more than a page of farmers and developers, and polar guides beyond
    Redis's latitudes and at the antimeridian.
    """
    profiles = [
        (f"dev {lon} {lat}", float(lon), float(lat), ["developers"])
        for lon in range(-180, 180, 15)
        for lat in range(-75, 76, 15)
    ]
    profiles += [
        (
            f"Zoë {n}",
            PARIS[0] + n * 0.001,
            PARIS[1] - n * 0.0005,
            ["farmers", "developers"],
        )
        for n in range(120)
    ]
    profiles += [
        ("north guide", 10.0, 88.5, ["polar-guides"]),
        ("south guide", -60.0, -89.0, ["polar-guides", "developers"]),
        ("date-line guide", 180.0, 84.0, ["polar-guides"]),
        ("other side guide", -179.99, 84.0, ["polar-guides"]),
    ]
    return profiles


@pytest.fixture
def document(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.get_json()


@pytest.fixture
def fuzzed_app(settings, place, refresh, db, redis_client):
    """An app on the seeded profiles and a fresh index, with the least scan cap."""
    place(*_spread())
    refresh()
    app = create_app(settings.model_copy(update={"max_scan_members": SCAN_CAP}))
    yield app
    services = app.extensions["nearby"]
    services.engine.dispose()
    services.redis.close()


def _resolve(document: dict, item: dict) -> dict:
    while "$ref" in item:
        *_, kind, name = item["$ref"].split("/")
        item = document["components"][kind][name]
    return item


def _parameters(document: dict, path: str) -> dict[str, dict]:
    operation = document["paths"][path]["get"]
    return {
        parameter["name"]: parameter
        for parameter in (_resolve(document, p) for p in operation["parameters"])
    }


def _check_body(document: dict, path: str, response) -> None:
    """Validate the body against the schema documented for its status and type."""
    documented = document["paths"][path]["get"]["responses"][str(response.status_code)]
    media = documented["content"][response.mimetype]
    schema = {"$ref": media["schema"]["$ref"], "components": document["components"]}

    jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    ).validate(response.get_json(force=True))
    for name, header in documented.get("headers", {}).items():
        if header["required"]:
            assert name in response.headers, name


def test_document_is_valid_openapi_3_1(document):
    validate(document)

    assert document["openapi"].startswith("3.1.")
    assert set(document["paths"]) == set(OPERATIONS)


@pytest.mark.parametrize("path", SEARCHES)
def test_every_query_parameter_is_documented_as_the_model_declares(document, path):
    model = NearbyQuery.model_json_schema()
    documented = _parameters(document, path)

    assert list(documented) == list(model["properties"])
    compared = set()
    for name, field in model["properties"].items():
        parameter = documented[name]
        branches = [
            branch
            for branch in field.get("anyOf", [field])
            if branch != {"type": "null"}
        ]
        assert len(branches) == 1
        expected = dict(branches[0])
        if field.get("default") is not None:
            expected["default"] = field["default"]

        schema = parameter["schema"]
        for keyword, value in expected.items():
            if keyword not in ("title", "description"):
                assert schema[keyword] == value, (name, keyword)
                compared.add(keyword)
        assert parameter["in"] == "query"
        assert parameter["description"] == field["description"]
        assert parameter["required"] == (name in model["required"])
        if expected["type"] == "array":
            assert (parameter["style"], parameter["explode"]) == ("form", False)
    assert compared >= BOUND_KEYWORDS


@pytest.mark.parametrize("path", SEARCHES)
def test_search_errors_are_documented(document, path):
    responses = document["paths"][path]["get"]["responses"]

    assert {"200", "400", "404", "500", "503"} <= set(responses)
    assert "Retry-After" in responses["503"]["headers"]
    assert "area_too_large" in responses["400"]["description"]
    assert set(responses["200"]["content"]) == {
        "application/json",
        "application/geo+json",
    }


def test_paging_and_scan_cap_are_described_with_the_settings(document, settings):
    description = document["paths"]["/nearby/postgis"]["get"]["description"]

    assert f"{settings.max_result_window:,} results" in description
    assert f"more than {settings.max_scan_members:,}" in description
    assert "GiST" in description
    assert "O(n·limit)" in document["paths"]["/nearby/redis"]["get"]["description"]


class _Assets(HTMLParser):
    """Every URL a page's tags refer to, and the scripts written in it."""

    def __init__(self):
        super().__init__()
        self.urls = []
        self.inline = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.urls += [value for name, value in attrs if name in ("src", "href")]
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.inline.append(data)


def test_docs_page_loads_with_its_assets_from_the_app(client):
    response = client.get("/docs", follow_redirects=True)

    assert response.status_code == 200
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert "http://" not in html and "https://" not in html

    assets = _Assets()
    assets.feed(html)
    assert len(assets.urls) >= 4
    for url in assets.urls:
        assert not urlsplit(url).netloc, url
        assert client.get(url).status_code == 200, url
    script = "".join(assets.inline)
    assert '"url": "/openapi.json"' in script
    assert '"validatorUrl": null' in script


def test_answers_validate_against_the_documented_schemas(client, place, refresh):
    place(
        ("a", *PARIS, ["developers"]),
        ("b", PARIS[0] + 0.01, PARIS[1], ["developers"]),
        ("c", PARIS[0] + 0.02, PARIS[1], ["developers"]),
    )
    document = client.get("/openapi.json").get_json()
    refresh()
    near = {"lon": PARIS[0], "lat": PARIS[1], "radius": 5, "category": "developers"}

    answers = [
        (
            "/nearby/redis",
            client.get("/nearby/redis", query_string=near | {"limit": 2}),
        ),
        (
            "/nearby/postgis",
            client.get("/nearby/postgis", query_string=near | {"format": "geojson"}),
        ),
        (
            "/nearby",
            client.get(
                "/nearby",
                query_string={"bbox": "2,48,3,49", "category": "developers"},
                headers={"Accept": "application/geo+json"},
            ),
        ),
        ("/nearby", client.get("/nearby", query_string=near | {"lat": 89.5})),
        (
            "/nearby/redis",
            client.get("/nearby/redis", query_string=near | {"lat": 89.5}),
        ),
        ("/nearby/postgis", client.get("/nearby/postgis", query_string={"lat": "x"})),
        ("/nearby", client.get("/nearby", query_string=near | {"category": "chefs"})),
        ("/categories", client.get("/categories")),
        ("/health", client.get("/health")),
    ]

    statuses = [
        (path, response.status_code, response.mimetype) for path, response in answers
    ]
    assert statuses == [
        ("/nearby/redis", 200, "application/json"),
        ("/nearby/postgis", 200, "application/geo+json"),
        ("/nearby", 200, "application/geo+json"),
        ("/nearby", 200, "application/json"),
        ("/nearby/redis", 400, "application/json"),
        ("/nearby/postgis", 400, "application/json"),
        ("/nearby", 404, "application/json"),
        ("/categories", 200, "application/json"),
        ("/health", 200, "application/json"),
    ]
    for path, response in answers:
        _check_body(document, path, response)
    assert answers[0][1].get_json()["next_cursor"] is not None
    assert answers[3][1].headers["X-Backend-Reason"].startswith("beyond_redis_latitude")


def test_unavailable_index_answers_validate_too(client, place):
    place(("a", *PARIS, ["developers"]))
    document = client.get("/openapi.json").get_json()
    near = {"lon": PARIS[0], "lat": PARIS[1], "radius": 5, "category": "developers"}

    redis = client.get("/nearby/redis", query_string=near)
    health = client.get("/health")

    assert (redis.status_code, health.status_code) == (503, 503)
    _check_body(document, "/nearby/redis", redis)
    _check_body(document, "/health", health)


def test_area_over_the_scan_cap_answer_validates(fuzzed_app):
    client = fuzzed_app.test_client()
    document = client.get("/openapi.json").get_json()
    wide = {"lon": PARIS[0], "lat": PARIS[1], "radius": 50, "category": "farmers"}

    for path in SEARCHES:
        response = client.get(path, query_string=wide)

        assert response.status_code == 400
        assert response.get_json()["error"]["code"] == "area_too_large"
        _check_body(document, path, response)


FUZZED_DOCUMENT = build_document(
    get_settings().model_copy(update={"max_scan_members": SCAN_CAP})
)
"""The document :func:`fuzzed_app` serves, for schemathesis to collect tests from."""
served_schema = schemathesis.openapi.from_dict(FUZZED_DOCUMENT)


def test_fuzzed_document_is_the_one_served(fuzzed_app):
    served = fuzzed_app.test_client().get("/openapi.json").get_json()

    assert served == FUZZED_DOCUMENT


@served_schema.parametrize()
@FUZZ_SETTINGS
def test_fuzzed_requests_get_documented_answers(case, fuzzed_app):
    case.call_and_validate(app=fuzzed_app, checks=RAW_CHECKS)


def _fuzz(app, schema, path: str) -> list:
    """Send valid cases of ``path`` of ``schema`` to ``app``; return the answers.

    Each answer is checked against the document; a page with a next page has
    that next page fetched and checked as well.
    """
    operation = schema[path]["GET"]
    answers = []

    @given(case=operation.as_strategy(GenerationMode.POSITIVE))
    @hypothesis_settings(FUZZ_SETTINGS, max_examples=SHAPED_EXAMPLES)
    def run(case):
        response = case.call_and_validate(app=app, checks=CHECKS)
        answers.append(response)

        body = response.json() if response.status_code == 200 else {}
        if body.get("next_cursor"):
            query = dict(case.query) | {"cursor": body["next_cursor"]}
            following = operation.Case(query=query, media_type=None)
            answers.append(following.call_and_validate(app=app, checks=CHECKS))

    run()
    return answers


def _one_shape(document: dict, shape: str) -> dict:
    """Return ``document`` with only the query parameters of one shape.

    The shape's own parameters are required, the others' left out (``cursor``
    too: :func:`_fuzz` follows real ones), and ``category`` takes the
    seeded categories only.
    """
    document = copy.deepcopy(document)
    parameters = document["components"]["parameters"]
    for name in SHAPE_PARAMETERS - SHAPES[shape]:
        del parameters[name]
    for name in SHAPES[shape]:
        parameters[name]["required"] = True
    parameters["category"]["schema"]["items"] = {"enum": CATEGORIES}

    for path in SEARCHES:
        operation = document["paths"][path]["get"]
        operation["parameters"] = [
            parameter
            for parameter in operation["parameters"]
            if parameter["$ref"].rsplit("/", 1)[1] in parameters
        ]
    return document


@pytest.mark.parametrize("path", SEARCHES)
@pytest.mark.parametrize("shape", SHAPES)
def test_fuzzed_queries_of_each_shape_get_documented_answers(fuzzed_app, shape, path):
    served = fuzzed_app.test_client().get("/openapi.json").get_json()
    schema = schemathesis.openapi.from_dict(_one_shape(served, shape))

    answers = _fuzz(fuzzed_app, schema, path)

    pages = [response.json() for response in answers if response.status_code == 200]
    assert len(pages) >= len(answers) / 3
    assert any(page["count"] for page in pages)
