"""Settings of every nearby process, read from the environment once.

Each setting is an environment variable of the same name in upper case
(``DATABASE_URL``, ``REDIS_URL``, ...). The defaults point at the project-local
PostgreSQL and Redis that ``make demo`` and ``make test`` start on loopback, so
the demo needs no configuration at all.

Nothing else in the project reads the environment: entry files call
:func:`get_settings` and hand the result (or the values in it) to the
``nearby`` package.
"""

import hashlib
import sys
from functools import lru_cache
from urllib.parse import urlsplit
from urllib.parse import urlunsplit

from pydantic import Field
from pydantic import ValidationError
from pydantic import model_validator
from pydantic_settings import BaseSettings
from pydantic_settings import SettingsConfigDict

POSTGRES_SCHEMES = {"postgresql", "postgresql+psycopg2", "postgres"}


class Settings(BaseSettings):
    """Typed settings with defaults that work for the local demo."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    database_url: str = Field(
        "postgresql+psycopg2://nearby:nearby@127.0.0.1:55432/nearby",
        description="SQLAlchemy URL of the PostgreSQL+PostGIS source of truth "
        "(psycopg2 driver).",
    )
    redis_url: str = Field(
        "redis://127.0.0.1:56379/0",
        description="Redis database that holds the GEO indexes.",
    )
    celery_broker_url: str = Field(
        "",
        description="Celery broker. Empty means the Redis of REDIS_URL, "
        "database 1 (a database of its own, so the index can be flushed alone).",
    )
    refresh_interval_seconds: int = Field(
        300, gt=0, description="How often Celery beat refreshes the indexes."
    )
    refresh_batch_size: int = Field(
        5000,
        gt=0,
        le=100_000,
        description="Rows read from PostGIS and members written to Redis per "
        "batch; bounds the refresh's memory.",
    )
    refresh_lock_seconds: float = Field(
        60,
        gt=0,
        le=3600,
        description="Expiry of the refresh lock, renewed by every batch: a "
        "killed refresh blocks the next one for at most this long.",
    )
    backend_timeout_seconds: float = Field(
        0.5,
        gt=0,
        le=30,
        description="Connect and socket timeout of Redis, and the connect "
        "timeout of PostgreSQL, for the web app.",
    )
    statement_timeout_ms: int = Field(
        800,
        gt=0,
        description="PostgreSQL statement_timeout of the web app's queries.",
    )
    query_deadline_seconds: float = Field(
        1.0,
        gt=0,
        le=60,
        description="Longest the web app holds a PostgreSQL connection for one "
        "request; past it the connection is cut and the request answers 503, "
        "even when the server has stopped answering altogether.",
    )
    max_tie_fetch: int = Field(
        10_000,
        ge=1000,
        description="Most members /nearby/redis fetches, past those a page "
        "needs, to order profiles tied at the same distance by id.",
    )
    knn_max_radius_km: float = Field(
        1000.0,
        gt=0,
        le=20_016,
        description="How far a query without a radius looks for the nearest "
        "profiles, in kilometres.",
    )
    max_scan_members: int = Field(
        50_000,
        ge=100,
        description="Most members of its categories that a radius or box query "
        "may cover; a larger area answers 400 asking to narrow it.",
    )
    max_result_window: int = Field(
        10_000,
        ge=1000,
        description="Deepest result, counted from the first page, that paging "
        "reaches; a cursor past it answers 400.",
    )
    cursor_secret: str = Field(
        "",
        description="Key that signs paging cursors; every web process must "
        "share it. Empty: derived from DATABASE_URL, password included.",
    )
    log_level: str = Field("INFO", description="Level of every process's logs.")

    @property
    def cursor_key(self) -> bytes:
        """The key of paging cursors, from CURSOR_SECRET or DATABASE_URL."""
        secret = self.cursor_secret or f"nearby cursors of {self.database_url}"
        return hashlib.blake2b(secret.encode(), digest_size=32).digest()

    @model_validator(mode="after")
    def _check(self) -> "Settings":
        if urlsplit(self.database_url).scheme not in POSTGRES_SCHEMES:
            raise ValueError(
                "DATABASE_URL must be a PostgreSQL URL "
                "(postgresql+psycopg2://user:password@host:port/database)"
            )
        if self.statement_timeout_ms / 1000 >= self.query_deadline_seconds:
            raise ValueError(
                "STATEMENT_TIMEOUT_MS must be shorter than QUERY_DEADLINE_SECONDS, "
                "so that slow statements are cancelled before their connection is cut"
            )

        if not self.celery_broker_url:
            broker = urlsplit(self.redis_url)._replace(path="/1")
            object.__setattr__(self, "celery_broker_url", urlunsplit(broker))
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process's settings, read from the environment on first call."""
    return Settings()


def settings_or_exit(program: str) -> Settings:
    """Return :func:`get_settings`, or exit with a message naming each bad one.

    For entry points: a wrong environment variable ends the process with
    status 2 and one line per problem, not a traceback.
    """
    try:
        return get_settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, error['loc'])).upper() or 'settings'}: {error['msg']}"
            for error in exc.errors()
        )
        print(f"{program}: bad settings: {problems}", file=sys.stderr)
        raise SystemExit(2) from None
