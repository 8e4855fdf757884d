"""Fixtures on the real services that ``make test`` starts.

Tests use a database of their own (the configured name plus ``_test``) and
Redis databases 15 (index) and 14 (Celery broker) of the configured server,
so they never touch the demo's data. A test that cannot reach a service
fails: nothing here skips.

The scale suite has a database (the configured name plus ``_scale``) and a
Redis database (13) of its own, which no other test truncates or flushes: the
million seeded profiles they hold are loaded and indexed once, then reused by
every run that finds exactly that load there.
"""

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit
from urllib.parse import urlunsplit

import pytest
import redis
from sqlalchemy import Engine
from sqlalchemy import create_engine
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.engine import make_url

from config import Settings
from config import get_settings
from nearby import geoindex
from nearby import loader
from nearby import postgis
from nearby.app import create_app
from nearby.db import make_engine
from nearby.db import make_redis
from nearby.refresh import full_refresh

TEST_REDIS_DB = 15
TEST_BROKER_DB = 14
SCALE_REDIS_DB = 13

SCALE_PROFILES_ENV = "NEARBY_SCALE_PROFILES"
SCALE_PROFILES_DEFAULT = 1_000_000
SCALE_SEED = 2718
SCALE_MARKER_TABLE = "scale_load"
SCALE_MARKER_KEY = "scale:load"
"""Where the scale data records what it holds: a table in its database, a key
in its Redis database (beside nearby's own keys, which never clash with it)."""


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


def _create_database(url: URL) -> None:
    """Create the database of ``url`` on its server when it does not exist."""
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :name"),
            {"name": url.database},
        ).scalar()
        if not exists:
            conn.execute(text(f'CREATE DATABASE "{url.database}"'))
    admin.dispose()


@pytest.fixture(scope="session")
def engine(settings):
    """Engine on the test database, created (with the schema) when missing."""
    _create_database(make_url(settings.database_url))
    engine = make_engine(settings.database_url)
    postgis.ensure_schema(engine)
    postgis.create_secondary_indexes(engine)
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


@dataclass(frozen=True)
class ScaleData:
    """The seeded profiles of the scale suite, in PostGIS and indexed in Redis.

    ``load_s`` and ``refresh_s`` are the seconds this session spent loading
    the profiles and rebuilding their index; None for a step whose work an
    earlier session had done.
    """

    settings: Settings
    engine: Engine
    profiles: int
    seed: int
    load_s: float | None
    refresh_s: float | None


@pytest.fixture(scope="session")
def scale_settings() -> Settings:
    """Settings pointing at the scale database and Redis database 13.

    Timeouts are long: the scale suite checks what the backends answer, and
    measures how long they take itself.
    """
    base = get_settings()
    database_url = make_url(base.database_url)
    scale_url = database_url.set(database=f"{database_url.database}_scale")
    return Settings(
        database_url=scale_url.render_as_string(hide_password=False),
        redis_url=_with_redis_db(base.redis_url, SCALE_REDIS_DB),
        celery_broker_url=_with_redis_db(base.redis_url, TEST_BROKER_DB),
        backend_timeout_seconds=10,
        statement_timeout_ms=30_000,
        query_deadline_seconds=60,
    )


@pytest.fixture(scope="session")
def scale_data(scale_settings) -> Iterator[ScaleData]:
    """``NEARBY_SCALE_PROFILES`` (default 1,000,000) profiles of a fixed seed.

    Reused when the scale database and Redis database already hold exactly
    that load, as their markers and counts tell; otherwise the profiles are
    loaded again and the index fully rebuilt. Nothing is emptied afterwards.
    """
    profiles = int(os.environ.get(SCALE_PROFILES_ENV, SCALE_PROFILES_DEFAULT))
    load = f"{profiles} profiles of seed {SCALE_SEED}"
    _create_database(make_url(scale_settings.database_url))
    engine = make_engine(scale_settings.database_url)
    client = make_redis(scale_settings.redis_url, timeout_s=60)

    load_s = refresh_s = None
    if _scale_load(engine, profiles) != load:
        client.delete(SCALE_MARKER_KEY)
        load_s = _load_scale(engine, profiles, load)
    with engine.connect() as conn:
        indexed = f"{load}, change log {postgis.change_log_id(conn)}"
    if not _scale_index_holds(engine, client, indexed):
        refresh_s = _index_scale(engine, client, indexed)
    client.close()

    yield ScaleData(scale_settings, engine, profiles, SCALE_SEED, load_s, refresh_s)
    engine.dispose()


def _scale_load(engine: Engine, profiles: int) -> str | None:
    """Return the marker of the load the scale database holds, if it is whole."""
    postgis.ensure_schema(engine)
    postgis.create_secondary_indexes(engine)
    with engine.begin() as conn:
        conn.execute(
            text(f"CREATE TABLE IF NOT EXISTS {SCALE_MARKER_TABLE} (load text)")
        )
        marker = conn.execute(text(f"SELECT load FROM {SCALE_MARKER_TABLE}")).scalar()
        held = postgis.count_profiles(conn)
    return marker if held == profiles else None


def _load_scale(engine: Engine, profiles: int, load: str) -> float:
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(text(f"DELETE FROM {SCALE_MARKER_TABLE}"))
    loader.prepare_schema(engine, reset=True)
    loader.load_fake(engine, profiles, seed=SCALE_SEED)
    with engine.begin() as conn:
        conn.execute(
            text(f"INSERT INTO {SCALE_MARKER_TABLE} (load) VALUES (:load)"),
            {"load": load},
        )
    return time.perf_counter() - started


def _scale_index_holds(engine: Engine, client: redis.Redis, indexed: str) -> bool:
    """Tell whether Redis holds the index of ``indexed``, every member counted."""
    if client.get(SCALE_MARKER_KEY) != indexed or not geoindex.index_meta(client):
        return False
    with engine.connect() as conn:
        pending = postgis.pending_changes(conn)
        memberships = conn.execute(
            text("SELECT coalesce(sum(cardinality(categories)), 0) FROM profiles")
        ).scalar_one()
    indexed_members = sum(members for _, members, _ in geoindex.iter_categories(client))
    return pending == 0 and indexed_members == memberships


def _index_scale(engine: Engine, client: redis.Redis, indexed: str) -> float:
    started = time.perf_counter()
    client.flushdb()
    full_refresh(engine, client)
    client.set(SCALE_MARKER_KEY, indexed)
    return time.perf_counter() - started
