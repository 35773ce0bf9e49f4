"""Migrations: the recorded head matches the scripts; upgrade is idempotent on both engines."""

from __future__ import annotations

from charter.storage import migrate
from charter.storage.engine import create_engine
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
