"""Connections to the two services: a SQLAlchemy engine and a Redis client."""

import contextlib
import logging
import math
import os
import socket
import threading

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import Engine
from sqlalchemy import create_engine
from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError

from nearby.errors import BackendUnavailable

log = logging.getLogger(__name__)

WATCHDOG = "nearby_watchdog"


def make_engine(
    url: str,
    *,
    connect_timeout_s: float = 2.0,
    statement_timeout_ms: int | None = None,
    deadline_s: float | None = None,
    pool_size: int = 5,
) -> Engine:
    """Return an engine for ``url`` whose connections fail fast.

    ``connect_timeout_s`` is rounded up to whole seconds, libpq's unit;
    ``statement_timeout_ms`` (when given) makes the server cancel any slower
    statement. ``deadline_s`` (when given) bounds how long a connection may
    stay checked out from the pool: past it, its socket is shut down, so a
    server that stopped answering altogether (which no server-side timeout
    can catch) fails the statement instead of hanging the caller. Each
    checkout first pings the server under that deadline, and a dead pooled
    connection is replaced by a fresh one.
    """
    connect_args = {"connect_timeout": max(1, math.ceil(connect_timeout_s))}
    if statement_timeout_ms is not None:
        connect_args["options"] = f"-c statement_timeout={int(statement_timeout_ms)}"

    engine = create_engine(
        url,
        connect_args=connect_args,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=connect_timeout_s,
        pool_pre_ping=deadline_s is None,
    )
    if deadline_s is not None:
        _watch_checkouts(engine, deadline_s)
    return engine


def _watch_checkouts(engine: Engine, deadline_s: float) -> None:
    @event.listens_for(engine, "checkout")
    def _arm(dbapi_connection, record, proxy):
        watchdog = Watchdog(dbapi_connection, deadline_s)
        record.info[WATCHDOG] = watchdog

        try:
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SELECT 1")
        except Exception as exc:
            watchdog.cancel()
            if watchdog.severed:
                raise BackendUnavailable(
                    "postgis", f"no answer within {deadline_s:g} s"
                ) from exc
            raise DisconnectionError(f"ping failed: {exc}") from exc

    @event.listens_for(engine, "checkin")
    def _disarm(dbapi_connection, record):
        watchdog = record.info.pop(WATCHDOG, None)
        if watchdog is not None:
            watchdog.cancel()


class Watchdog:
    """Shuts a DB-API connection's socket unless cancelled within ``deadline_s``."""

    def __init__(self, dbapi_connection, deadline_s: float):
        self.severed = False
        self._timer = threading.Timer(deadline_s, self._sever, (dbapi_connection,))
        self._timer.daemon = True
        self._timer.start()

    def cancel(self) -> None:
        """Let the connection live on."""
        self._timer.cancel()

    def _sever(self, dbapi_connection) -> None:
        self.severed = True
        try:
            sock = socket.socket(fileno=os.dup(dbapi_connection.fileno()))
        except Exception:
            return

        log.warning("postgis: a connection outlived its deadline; closing its socket")
        with sock, contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def make_redis(url: str, *, timeout_s: float | None = 2.0) -> redis.Redis:
    """Return a Redis client for ``url`` that gives up after ``timeout_s``.

    Responses are decoded as UTF-8. No retries: a failing Redis must surface
    as an error within the timeout, not after several of them.
    """
    return redis.Redis.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=timeout_s,
        socket_timeout=timeout_s,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=30,
    )
