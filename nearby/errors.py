"""The error family of nearby, and its rendering as JSON HTTP answers.

Every error a client can see is a :class:`NearbyError` carrying its HTTP
status, a stable ``code``, a human ``message`` and, when one parameter is to
blame, its name in ``param``. A backend's failure tells clients only which
backend failed; its detail goes to the log. :func:`register` makes the Flask
app render these, Werkzeug's own errors (404, 405, ...) and anything
unexpected alike::

    {"error": {"code": "...", "message": "...", "param": "..." | null}}
"""

import logging

from flask import Flask
from flask import jsonify
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5


class NearbyError(Exception):
    """Base of every error nearby reports; a subclass names its HTTP status."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param

    @property
    def public_message(self) -> str:
        """The message for clients; :attr:`message`, fuller, goes to the log."""
        return self.message

    def headers(self) -> dict[str, str]:
        """Return the HTTP headers that go with this error."""
        return {}


class BadParameter(NearbyError):
    """A query parameter is missing, repeated, unparsable or out of range (400)."""

    status = 400
    code = "bad_parameter"

    def __init__(self, param: str, message: str):
        super().__init__(message, param)


class AreaTooLarge(BadParameter):
    """A radius or box covers more members than one request may scan (400)."""

    code = "area_too_large"

    def __init__(self, *, box: bool, max_scan: int):
        if box:
            super().__init__(
                "bbox",
                f"the box holds more than {max_scan} profiles of these categories; "
                "zoom in, or ask for fewer categories",
            )
        else:
            super().__init__(
                "radius",
                f"the radius holds more than {max_scan} profiles of these "
                "categories; give a smaller radius, or none for the nearest ones",
            )


class BeyondRedisLatitude(BadParameter):
    """The search reaches where Redis holds no profiles (400).

    /nearby/postgis serves such searches, and /nearby sends them there.
    """

    code = "beyond_redis_latitude"


class UnknownCategory(NearbyError):
    """No profile holds the category asked for (404)."""

    status = 404
    code = "unknown_category"

    def __init__(self, category: str):
        super().__init__(f"no profile has the category {category!r}", "category")


class Unavailable(NearbyError):
    """A backend cannot answer now; the client may retry (503, Retry-After)."""

    status = 503
    code = "unavailable"

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(RETRY_AFTER_SECONDS)}


class BackendUnavailable(Unavailable):
    """PostgreSQL or Redis is unreachable, too slow or refused the query."""

    code = "backend_unavailable"

    def __init__(self, backend: str, detail: str):
        super().__init__(f"{backend} is unavailable: {detail}")
        self.backend = backend

    @property
    def public_message(self) -> str:
        """Which backend failed, without its detail (addresses, SQL, replies)."""
        return f"{self.backend} is unavailable; retry shortly"


class IndexNotReady(Unavailable):
    """The Redis index has not been built yet, or not for this category."""

    code = "index_not_ready"


class RefreshAborted(Unavailable):
    """A refresh stopped before it changed the live index."""

    code = "refresh_aborted"


class IndexBuildLost(RefreshAborted):
    """The temporary keys of a build expired or were deleted under it."""


class LockLost(RefreshAborted):
    """Another refresh took over the lock of a refresh that stalled."""


class SchemaMissing(Unavailable):
    """PostGIS or the profiles table is missing on the database server."""

    code = "schema_missing"


def render(error: NearbyError):
    """Return the Flask response for ``error``."""
    body = {
        "error": {
            "code": error.code,
            "message": error.public_message,
            "param": error.param,
        }
    }
    return jsonify(body), error.status, error.headers()


def register(app: Flask) -> None:
    """Make ``app`` answer every error, expected or not, as JSON."""

    @app.errorhandler(NearbyError)
    def _nearby_error(error: NearbyError):
        if error.status >= 500:
            log.warning("api: %s: %s", error.code, error.message)
        return render(error)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):
        code = (error.name or "error").lower().replace(" ", "_")
        body = {"error": {"code": code, "message": error.description, "param": None}}
        return (
            jsonify(body),
            error.code,
            dict(error.get_headers()) | {"Content-Type": "application/json"},
        )

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        log.exception("api: unexpected error")
        return render(NearbyError("internal error; the server log has the details"))
