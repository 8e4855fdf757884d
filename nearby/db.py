"""Connections to the two services: a SQLAlchemy engine and a Redis client."""

import contextlib
import heapq
import logging
import math
import os
import socket
import threading
import time

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import Engine
from sqlalchemy import create_engine
from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError

from nearby.errors import BackendUnavailable

log = logging.getLogger(__name__)

WATCH = "nearby_watch"
IDLE_SINCE = "nearby_idle_since"

PING_AFTER_IDLE_S = 1.0
"""Seconds in the pool after which a connection is pinged before use. One
used more recently is trusted: if the server went away in between, the
statement fails fast (a 503) and the pool drops its connections."""


def make_engine(
    url: str,
    *,
    connect_timeout_s: float = 2.0,
    statement_timeout_ms: int | None = None,
    deadline_s: float | None = None,
    pool_size: int = 5,
    autocommit: bool = False,
) -> Engine:
    """Return an engine for ``url`` whose connections fail fast.

    ``connect_timeout_s`` is rounded up to whole seconds, libpq's unit;
    ``statement_timeout_ms`` (when given) makes the server cancel any slower
    statement. ``deadline_s`` (when given) bounds how long a connection may
    stay checked out from the pool: past it, its socket is shut down, so a
    server that stopped answering altogether (which no server-side timeout
    can catch) fails the statement instead of hanging the caller. A
    connection that sat in the pool for :data:`PING_AFTER_IDLE_S` or more is
    first pinged under that deadline, and replaced by a fresh one if dead.
    ``autocommit`` runs each statement as its own transaction: no BEGIN and
    ROLLBACK around a read, two round trips fewer.
    """
    connect_args = {"connect_timeout": max(1, math.ceil(connect_timeout_s))}
    options = ["-c jit=off"]
    if statement_timeout_ms is not None:
        options.append(f"-c statement_timeout={int(statement_timeout_ms)}")
    connect_args["options"] = " ".join(options)

    engine = create_engine(
        url,
        connect_args=connect_args,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=connect_timeout_s,
        pool_pre_ping=deadline_s is None,
        isolation_level="AUTOCOMMIT" if autocommit else None,
    )
    if deadline_s is not None:
        _watch_checkouts(engine, deadline_s)
    return engine


def _watch_checkouts(engine: Engine, deadline_s: float) -> None:
    @event.listens_for(engine, "checkout")
    def _arm(dbapi_connection, record, proxy):
        watch = WATCHDOG.arm(dbapi_connection, deadline_s)
        record.info[WATCH] = watch
        idle_since = record.info.pop(IDLE_SINCE, None)
        if idle_since is not None and time.monotonic() - idle_since < PING_AFTER_IDLE_S:
            return

        try:
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SELECT 1")
        except Exception as exc:
            WATCHDOG.cancel(watch)
            if watch.severed:
                raise BackendUnavailable(
                    "postgis", f"no answer within {deadline_s:g} s"
                ) from exc
            raise DisconnectionError(f"ping failed: {exc}") from exc

    @event.listens_for(engine, "checkin")
    def _disarm(dbapi_connection, record):
        record.info[IDLE_SINCE] = time.monotonic()
        watch = record.info.pop(WATCH, None)
        if watch is not None:
            WATCHDOG.cancel(watch)


class Watch:
    """One checkout under watch: its deadline and whether it was severed."""

    __slots__ = ("deadline", "connection", "cancelled", "severed")

    def __init__(self, deadline: float, dbapi_connection):
        self.deadline = deadline
        self.connection = dbapi_connection
        self.cancelled = False
        self.severed = False

    def __lt__(self, other: "Watch") -> bool:
        return self.deadline < other.deadline


class Watchdog:
    """Shuts the socket of every DB-API connection still checked out at its
    deadline.

    One thread per process waits for the earliest deadline; arming and
    cancelling a watch cost a heap push and a flag, not a thread each. The
    thread starts with the first watch of the process (after a fork, too).
    """

    def __init__(self):
        self._reset()
        # A forked child inherits the heap and the lock, maybe held, but not
        # the thread: it starts afresh.
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._watches: list[Watch] = []
        self._running = False

    def arm(self, dbapi_connection, deadline_s: float) -> Watch:
        """Watch ``dbapi_connection`` from now for ``deadline_s`` seconds."""
        watch = Watch(time.monotonic() + deadline_s, dbapi_connection)
        with self._lock:
            if not self._running:
                self._running = True
                threading.Thread(
                    target=self._run, name="postgis watchdog", daemon=True
                ).start()
            heapq.heappush(self._watches, watch)
            if self._watches[0] is watch:
                self._wake.notify()
        return watch

    def cancel(self, watch: Watch) -> None:
        """Let the connection of ``watch`` live on (unless already severed)."""
        with self._lock:
            watch.cancelled = True
            watch.connection = None

    def _run(self) -> None:
        with self._lock:
            while True:
                while self._watches and self._watches[0].cancelled:
                    heapq.heappop(self._watches)
                if not self._watches:
                    self._wake.wait()
                    continue
                left = self._watches[0].deadline - time.monotonic()
                if left > 0:
                    self._wake.wait(left)
                    continue
                watch = heapq.heappop(self._watches)
                watch.severed = True
                _sever(watch.connection)


def _sever(dbapi_connection) -> None:
    try:
        sock = socket.socket(fileno=os.dup(dbapi_connection.fileno()))
    except Exception:
        return

    log.warning("postgis: a connection outlived its deadline; closing its socket")
    with sock, contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


WATCHDOG = Watchdog()


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
