"""Connections to the two services: a SQLAlchemy engine and a Redis client."""

import math

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import Engine
from sqlalchemy import create_engine


def make_engine(
    url: str,
    *,
    connect_timeout_s: float = 2.0,
    statement_timeout_ms: int | None = None,
    pool_size: int = 5,
) -> Engine:
    """Return an engine for ``url`` whose connections fail fast.

    ``connect_timeout_s`` is rounded up to whole seconds, libpq's unit;
    ``statement_timeout_ms`` (when given) cancels any slower statement.
    """
    connect_args = {"connect_timeout": max(1, math.ceil(connect_timeout_s))}
    if statement_timeout_ms is not None:
        connect_args["options"] = f"-c statement_timeout={int(statement_timeout_ms)}"

    return create_engine(
        url,
        connect_args=connect_args,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=connect_timeout_s,
        pool_pre_ping=True,
    )


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
