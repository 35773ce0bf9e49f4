"""Real Iceberg and Delta tables for the lake tests, written locally with pyiceberg and deltalake."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pytest

pytest.importorskip("pyiceberg", reason="the lake extra (charter[lake]) is not installed")
pytest.importorskip("deltalake", reason="the lake extra (charter[lake]) is not installed")


def rows(start: int, count: int) -> pa.Table:
    """`count` rows with ids from `start`: an integer, a float, a category and a short text."""
    ids = list(range(start, start + count))
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "score": pa.array([i * 0.5 for i in ids], pa.float64()),
            "colour": pa.array([("red", "green", "blue")[i % 3] for i in ids], pa.string()),
            "text": pa.array([f"ticket number {i} about billing" for i in ids], pa.string()),
        }
    )


def row_set(table: pa.Table) -> set[tuple[object, ...]]:
    names = sorted(table.column_names)
    return set(zip(*(table.column(n).to_pylist() for n in names), strict=True))


@dataclass(frozen=True)
class Iceberg:
    catalog: str  # sqlite:////…/catalog.db
    table: str  # namespace.table
    first: int  # snapshot ids
    second: int

    @property
    def ref(self) -> str:
        return f"{self.catalog}#{self.table}"


def iceberg_table(folder: Path, warehouse: Path | None = None) -> Iceberg:
    """Namespace `lake`, table `events`: snapshot 1 holds 300 rows, snapshot 2 adds 100 more. The
    catalog is FOLDER/catalog.db; the table's files are in `warehouse` (default FOLDER/warehouse)."""
    from pyiceberg.catalog.sql import SqlCatalog

    warehouse = warehouse or folder / "warehouse"
    folder.mkdir(parents=True, exist_ok=True)
    warehouse.mkdir(parents=True)
    uri = f"sqlite:///{folder / 'catalog.db'}"
    catalog = SqlCatalog("default", uri=uri, warehouse=f"file://{warehouse}")
    catalog.create_namespace("lake")
    table = catalog.create_table("lake.events", schema=rows(0, 1).schema)
    table.append(rows(0, 300))
    first = table.current_snapshot().snapshot_id
    table.append(rows(300, 100))
    second = table.current_snapshot().snapshot_id
    return Iceberg(uri, "lake.events", first, second)


def expire(iceberg: Iceberg, snapshot: int) -> None:
    from pyiceberg.catalog.sql import SqlCatalog

    table = SqlCatalog("default", uri=iceberg.catalog).load_table(iceberg.table)
    table.maintenance.expire_snapshots().by_id(snapshot).commit()


def delta_table(folder: Path) -> Path:
    """Version 0 holds 250 rows; version 1 overwrites them with 120 others."""
    from deltalake import write_deltalake

    path = folder / "delta-events"
    write_deltalake(str(path), rows(0, 250))
    write_deltalake(str(path), rows(1000, 120), mode="overwrite")
    return path


def vacuum(path: Path) -> None:
    """Remove every data file no longer in the latest version (the older versions' files)."""
    from deltalake import DeltaTable

    DeltaTable(str(path)).vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False)
