"""Migrations: the recorded head matches the scripts; upgrade is idempotent on both engines."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from charter.storage import migrate
from charter.storage.engine import PAGE_SIZE, create_engine
from charter.storage.schema import metadata


def test_the_head_constant_is_the_scripts_head() -> None:
    assert migrate.script_head() == migrate.HEAD


def test_a_migrated_database_is_at_head_and_upgrading_again_changes_nothing(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        assert migrate.current_revision(engine) == migrate.HEAD
        assert migrate.upgrade(engine) == (migrate.HEAD, migrate.HEAD)
    finally:
        engine.dispose()


def test_the_migrations_create_every_table_of_the_schema(database_url: str) -> None:
    import sqlalchemy as sa

    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
        assert set(metadata.tables) <= tables
    finally:
        engine.dispose()


def test_the_migrations_match_schema_py(database_url: str) -> None:
    """No drift between storage/schema.py and the migration scripts (add a migration for changes)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": False})
            assert compare_metadata(context, metadata) == []
    finally:
        engine.dispose()


def test_a_new_sqlite_store_has_16k_pages_and_an_older_one_keeps_its_own(tmp_path: Path) -> None:
    """Larger pages make storing records cheaper (storage/engine.py); they can only be chosen while
    a database is empty, so a store made with SQLite's 4 KiB pages keeps them and still works."""
    new = create_engine(f"sqlite:///{tmp_path / 'new.db'}")
    try:
        migrate.upgrade(new)
        with new.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA page_size").scalar() == PAGE_SIZE == 16384
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        new.dispose()
    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    old.execute("PRAGMA journal_mode=WAL")
    old.execute("CREATE TABLE made_before (x INTEGER)")
    made = old.execute("PRAGMA page_size").fetchone()[0]
    old.close()
    engine = create_engine(f"sqlite:///{path}")
    try:
        assert migrate.upgrade(engine)[1] == migrate.HEAD
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA page_size").scalar() == made != PAGE_SIZE
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
    finally:
        engine.dispose()
