"""Shared fixtures: a fresh store per test on SQLite and on PostgreSQL.

Each backend is migrated once per test session into a template (a SQLite file, a PostgreSQL
template database); each test gets a copy, so every test starts from a freshly migrated schema
without paying for the migration each time. PostgreSQL is reached at CHARTER_TEST_POSTGRES
(default postgresql://postgres@127.0.0.1:5432/test); the tests create and drop their own databases.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import Connection, Engine

from charter.clock import ManualClock
from charter.config import Settings
from charter.service.registry import Registry
from charter.service.setup import init_store, open_registry
from charter.storage import migrate
from charter.storage.engine import create_engine

POSTGRES = os.environ.get("CHARTER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
ADMIN = "admin"


def _pg_admin_conninfo() -> str:
    return POSTGRES.replace("postgresql+psycopg://", "postgresql://")


def _pg_url(database: str) -> str:
    base, _, _ = _pg_admin_conninfo().rpartition("/")
    return f"{base}/{database}"


@pytest.fixture(scope="session")
def _templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    folder = tmp_path_factory.mktemp("templates")
    sqlite_file = folder / "template.db"
    engine = create_engine(f"sqlite:///{sqlite_file}")
    migrate.upgrade(engine)
    engine.dispose()
    templates = {"sqlite": str(sqlite_file)}
    pg_template = f"charter_tpl_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(_pg_admin_conninfo(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{pg_template}"')
        engine = create_engine(_pg_url(pg_template))
        migrate.upgrade(engine)
        engine.dispose()
        templates["postgresql"] = pg_template
    except psycopg.OperationalError as exc:
        templates["postgresql_error"] = str(exc)
    yield templates
    if "postgresql" in templates:
        with psycopg.connect(_pg_admin_conninfo(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{pg_template}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    """Parametrises a test over both engines."""
    return str(request.param)


@pytest.fixture
def database_url(backend: str, tmp_path: Path, _templates: dict[str, str]) -> Iterator[str]:
    """A freshly migrated, empty database on `backend`."""
    if backend == "sqlite":
        target = tmp_path / "home" / "charter.db"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_templates["sqlite"], target)
        yield f"sqlite:///{target}"
        return
    if "postgresql" not in _templates:
        pytest.fail(f"PostgreSQL is not reachable at {POSTGRES}: {_templates.get('postgresql_error')}")
    name = f"charter_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_pg_admin_conninfo(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{_templates["postgresql"]}"')
    yield _pg_url(name)
    with psycopg.connect(_pg_admin_conninfo(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on a fresh database of `backend`, for storage-level tests."""
    engine = create_engine(database_url)
    yield engine
    engine.dispose()


@contextmanager
def rolled_back(engine: Engine) -> Iterator[Connection]:
    """A connection whose writes are undone afterwards (each example starts from empty tables)."""
    with engine.connect() as conn:
        conn.begin()
        try:
            yield conn
        finally:
            conn.rollback()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings.for_home(tmp_path / "home", user=ADMIN, database_url=database_url)


@pytest.fixture
def registry(settings: Settings, clock: ManualClock) -> Iterator[Registry]:
    """A store whose first user, `admin`, holds every role."""
    init_store(settings, clock)
    reg = open_registry(settings, clock=clock)
    yield reg
    reg.close()


def add_user(registry: Registry, name: str, *roles: str) -> Registry:
    """Add a user (as the registry's admin) and return a registry acting as that user."""
    registry.as_user(ADMIN).users.add(name, roles)
    return registry.as_user(name)


@pytest.fixture(scope="session")
def _s3_endpoint() -> Iterator[str]:
    """A local S3 server (moto's server mode, real HTTP on loopback) for the whole session."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_bucket(_s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh, empty bucket on the local S3 server; the AWS_* variables point at it."""
    import boto3

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_S3": _s3_endpoint,
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    bucket = f"charter-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=_s3_endpoint).create_bucket(Bucket=bucket)
    return bucket
