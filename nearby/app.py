"""The Flask app factory: connections, the API and its description, errors."""

from dataclasses import dataclass

import redis
from flask import Flask
from sqlalchemy import Engine

from config import Settings
from nearby import api
from nearby import errors
from nearby import openapi
from nearby.db import make_engine
from nearby.db import make_redis


@dataclass(frozen=True)
class Services:
    """What the views need: settings, the PostGIS engine, the Redis client."""

    settings: Settings
    engine: Engine
    redis: redis.Redis


def create_app(settings: Settings) -> Flask:
    """Return the nearby web app for ``settings``; connections open lazily."""
    app = Flask("nearby")
    app.json.sort_keys = False

    engine = make_engine(
        settings.database_url,
        connect_timeout_s=settings.backend_timeout_seconds,
        statement_timeout_ms=settings.statement_timeout_ms,
        deadline_s=settings.query_deadline_seconds,
        autocommit=True,
    )
    client = make_redis(settings.redis_url, timeout_s=settings.backend_timeout_seconds)
    app.extensions["nearby"] = Services(settings, engine, client)

    app.register_blueprint(api.bp)
    openapi.register(app, settings)
    errors.register(app)
    return app
