"""Delta Lake tables through delta-rs (`deltalake`): a local path or an object-store URI.

A table version is read by loading the table at that version (time travel through its log) and
scanning the Parquet files the log lists for it. A version whose log entries were cleaned up is
refused by delta-rs; one whose data files were vacuumed fails when a file is read: both become
`SnapshotGone` naming the version.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from charter.data.lake import SnapshotGone, TableRef, is_local, local_path, require
from charter.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    import pyarrow as pa

BATCH_ROWS = 65_536


class DeltaTable:
    def __init__(self, ref: TableRef, table: Any, version: int) -> None:
        self.ref, self.table, self.snapshot = ref, table, version
        self._dataset: Any = None

    def _data(self) -> Any:
        if self._dataset is None:
            try:
                self._dataset = self.table.to_pyarrow_dataset()
            except (OSError, ValueError) as exc:
                raise SnapshotGone("delta", str(self.ref), self.snapshot, _reason(exc)) from None
        return self._dataset

    def arrow_schema(self) -> pa.Schema:
        return self._data().schema

    def expected_rows(self) -> int:
        try:
            return int(self._data().count_rows())
        except (OSError, ValueError) as exc:
            raise SnapshotGone("delta", str(self.ref), self.snapshot, _reason(exc)) from None

    def files(self) -> list[str]:
        try:
            return [self.ref.location, *(str(uri) for uri in self.table.file_uris())]
        except (OSError, ValueError) as exc:
            raise SnapshotGone("delta", str(self.ref), self.snapshot, _reason(exc)) from None

    def batches(self) -> Iterator[pa.RecordBatch]:
        try:
            yield from self._data().to_batches(batch_size=BATCH_ROWS)
        except (OSError, ValueError) as exc:
            raise SnapshotGone("delta", str(self.ref), self.snapshot, _reason(exc)) from None


class DeltaReader:
    def open(self, ref: TableRef, snapshot: int | None) -> DeltaTable:
        deltalake = require("deltalake", "deltalake")
        errors = require("deltalake.exceptions", "deltalake")
        if is_local(ref.location):
            path = local_path(ref.location)
            if path is None or not (path / "_delta_log").is_dir():
                raise NotFound(
                    f"Delta table at {ref.location}", "give the folder that holds the table's _delta_log"
                )
        if snapshot is not None and snapshot < 0:
            raise InvalidInput(f"--table-version {snapshot} is negative; Delta table versions start at 0")
        try:
            current = deltalake.DeltaTable(ref.location)
        except errors.TableNotFoundError:
            raise NotFound(f"Delta table at {ref.location}", "check the path or URI") from None
        except (errors.DeltaError, OSError, ValueError) as exc:
            raise InvalidInput(f"cannot open the Delta table {ref.location}: {_reason(exc)}") from None
        latest = int(current.version())
        if snapshot is None:
            return DeltaTable(ref, current, latest)
        if snapshot > latest:
            raise NotFound(
                f"version {snapshot} of the Delta table {ref.location}",
                f"its versions go up to {latest}",
            )
        try:
            table = deltalake.DeltaTable(ref.location, version=snapshot)
        except (errors.DeltaError, OSError, ValueError) as exc:
            raise SnapshotGone("delta", str(ref), snapshot, _reason(exc)) from None
        return DeltaTable(ref, table, snapshot)


def _reason(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
