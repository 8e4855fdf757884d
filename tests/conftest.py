"""Fixtures on the real services that ``make test`` starts.

Tests use a database of their own (the configured name plus ``_test``) and
Redis databases 15 (index) and 14 (Celery broker) of the configured server,
so they never touch the demo's data. A test that cannot reach a service
fails: nothing here skips.
"""

from urllib.parse import urlsplit
from urllib.parse import urlunsplit

import pytest
from sqlalchemy import create_engine
from sqlalchemy import text
from sqlalchemy.engine import make_url

from config import Settings
from config import get_settings
from nearby import postgis
from nearby.app import create_app
from nearby.db import make_engine
from nearby.db import make_redis
from nearby.refresh import full_refresh

TEST_REDIS_DB = 15
TEST_BROKER_DB = 14


def _with_redis_db(url: str, db: int) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{db}"))


@pytest.fixture(scope="session")
def settings() -> Settings:
    """Settings pointing at the test database and the test Redis databases."""
    base = get_settings()
    database_url = make_url(base.database_url)
    test_url = database_url.set(database=f"{database_url.database}_test")
    return Settings(
        database_url=test_url.render_as_string(hide_password=False),
        redis_url=_with_redis_db(base.redis_url, TEST_REDIS_DB),
        celery_broker_url=_with_redis_db(base.redis_url, TEST_BROKER_DB),
        refresh_batch_size=500,
    )


@pytest.fixture(scope="session")
def engine(settings):
    """Engine on the test database, created (with the schema) when missing."""
    url = make_url(settings.database_url)
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :name"),
            {"name": url.database},
        ).scalar()
        if not exists:
            conn.execute(text(f'CREATE DATABASE "{url.database}"'))
    admin.dispose()

    engine = make_engine(settings.database_url)
    postgis.ensure_schema(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def db(engine):
    """The test database with an empty profiles table, emptied again after."""
    _truncate(engine)
    yield engine
    _truncate(engine)


@pytest.fixture
def redis_client(settings):
    """A client on the test Redis database, flushed before and after the test."""
    client = make_redis(settings.redis_url)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


def _truncate(engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE profiles, profile_changes RESTART IDENTITY"))


@pytest.fixture
def place(db):
    """Insert profiles with plain SQL, as another application would.

    Call it with ``(name, lon, lat, categories)`` tuples; it returns their ids
    in the same order.
    """

    def insert(*profiles) -> list[int]:
        with db.begin() as conn:
            return [
                conn.execute(
                    text(
                        "INSERT INTO profiles (name, city, location, categories) "
                        "VALUES (:name, :city, ST_SetSRID(ST_MakePoint(:lon, :lat), "
                        "4326)::geography, :categories) RETURNING id"
                    ),
                    {
                        "name": name,
                        "city": f"{name} city",
                        "lon": lon,
                        "lat": lat,
                        "categories": list(categories),
                    },
                ).scalar_one()
                for name, lon, lat, categories in profiles
            ]

    return insert


@pytest.fixture
def app(settings, db, redis_client):
    """The web app on the test services."""
    app = create_app(settings)
    yield app
    services = app.extensions["nearby"]
    services.engine.dispose()
    services.redis.close()


@pytest.fixture
def client(app):
    """A test client of :func:`app`."""
    return app.test_client()


@pytest.fixture
def refresh(db, redis_client, settings):
    """Run one full refresh of the test Redis from the test database."""

    def run():
        return full_refresh(db, redis_client, batch_size=settings.refresh_batch_size)

    return run
