"""Engines for the two supported databases, with the settings each needs."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url

from charter.errors import InvalidInput

WRITE = "charter_write"


def normalise_url(url: str) -> URL:
    """Accept `postgresql://` and `postgres://` as psycopg 3 URLs; SQLite as is."""
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError:
        raise InvalidInput(
            f"{url!r} is not a database URL; expected sqlite:///PATH or postgresql://USER@HOST/DB"
        ) from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise InvalidInput(
            f"database {parsed.get_backend_name()!r} is not supported; use SQLite or PostgreSQL"
        )
    return parsed


def create_engine(url: str, **kwargs: Any) -> Engine:
    parsed = normalise_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = sa.create_engine(parsed, connect_args={"timeout": 30}, **kwargs)
        _configure_sqlite(engine)
        return engine
    return sa.create_engine(parsed, pool_pre_ping=True, **kwargs)


# A new database's pages: 16 KiB instead of SQLite's 4 KiB. Storing transaction records is mostly
# B-tree work on the table and its three indexes; with larger pages it splits a quarter as often,
# and the engine alone stores 1.27 times the records a second (bench_ingest, docs/benchmarks.md).
# It takes effect only on a database that is still empty (an existing one keeps its page size:
# docs/operations.md says how to convert one).
PAGE_SIZE = 16384


def _configure_sqlite(engine: Engine) -> None:
    """Page size (of a new database), WAL, foreign keys, and transactions we start ourselves
    (BEGIN IMMEDIATE for writers).

    pysqlite's own transaction handling is switched off so that a write transaction takes the
    database's write lock at BEGIN: two writers then queue instead of failing half-way.
    """

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA page_size={PAGE_SIZE}")  # before WAL: a WAL database keeps its size
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
