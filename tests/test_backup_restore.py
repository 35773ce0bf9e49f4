"""Backups restore to a store whose ledger verifies and still extends every signed checkpoint.

PostgreSQL: `pg_dump -Fc` of a live store, `pg_restore` into a new database, exactly as
docs/operations.md says. SQLite: the online backup API (what `sqlite3 … ".backup …"` uses).
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from charter.config import Settings
from charter.service.registry import Registry
from charter.service.setup import open_registry
from tests.conftest import _pg_admin_conninfo, _pg_url
from tests.test_slot_helpers import MODEL_SPEC


def _history(registry: Registry, tmp_path: Path) -> None:
    registry.users.add("alice", ["author"])
    registry.models.register("m", MODEL_SPEC)
    registry.models.register("m", {**MODEL_SPEC, "provider_model": "claude-sonnet-4-5-20251001"})
    data = tmp_path / "rows.csv"
    data.write_text("text,label\n" + "".join(f"row {i},{i % 2}\n" for i in range(50)))
    registry.datasets.add("rows", data, role="train")


def _checkpoint(registry: Registry, tmp_path: Path) -> tuple[list[Any], Ed25519PublicKey]:

    key = Ed25519PrivateKey.generate()
    key_file = tmp_path / "checkpoint.pem"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    registry.checkpoints.sign(key_file)
    return registry.checkpoints.list(), key.public_key()


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_a_pg_dump_restores_to_a_verifiable_ledger(
    registry: Registry, tmp_path: Path, database_url: str
) -> None:
    _history(registry, tmp_path)
    exported, public = _checkpoint(registry, tmp_path)
    registry.users.add("late", ["viewer"])  # the ledger moves on after the checkpoint
    before = registry.audit.verify()
    dump = tmp_path / "charter.dump"
    source = database_url.replace("postgresql+psycopg://", "postgresql://")
    subprocess.run(["pg_dump", "-Fc", "-f", str(dump), source], check=True, capture_output=True)
    restored_db = f"charter_restore_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(_pg_admin_conninfo(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{restored_db}"')
    try:
        target = _pg_url(restored_db)
        subprocess.run(["pg_restore", "--no-owner", "-d", target, str(dump)], check=True, capture_output=True)
        settings = Settings.for_home(registry.settings.home, user="admin", database_url=target)
        with open_registry(settings) as restored:
            after = restored.audit.verify()
            assert after.ok and after.events == before.events and after.head_hash == before.head_hash
            assert restored.checkpoints.verify(exported, public).ok
            assert [str(v.version) for v in restored.models.versions("m")] == ["1.0.0", "1.1.0"]
            assert restored.datasets.checkout("rows@1", tmp_path / "out").files == 1
    finally:
        with psycopg.connect(_pg_admin_conninfo(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{restored_db}" WITH (FORCE)')


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_an_online_sqlite_backup_restores_to_a_verifiable_ledger(registry: Registry, tmp_path: Path) -> None:
    _history(registry, tmp_path)
    exported, public = _checkpoint(registry, tmp_path)
    home = registry.settings.home
    backup = tmp_path / "backup"
    backup.mkdir()
    with sqlite3.connect(home / "charter.db") as live, sqlite3.connect(backup / "charter.db") as copy:
        live.backup(copy)  # consistent while the store is open, as `.backup` is
    shutil.copytree(home / "blobs", backup / "blobs")
    registry.users.add("late", ["viewer"])  # changes after the backup are not in it
    with open_registry(Settings.for_home(backup, user="admin")) as restored:
        verification = restored.audit.verify()
        assert verification.ok
        assert "late" not in [u.name for u in restored.users.list()]
        assert restored.checkpoints.verify(exported, public).ok
