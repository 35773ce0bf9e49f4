"""Apache Iceberg tables through pyiceberg: a SQL catalog (SQLite, PostgreSQL) or a REST catalog.

The catalog URI chooses the catalog: `sqlite:`/`postgresql:`/`mysql:` URIs open pyiceberg's SQL
catalog (without creating its tables: charter only reads), `http(s)://` a REST catalog. The SQL
catalog keeps tables per catalog name; charter uses pyiceberg's default name, `default`, unless
the URI's fragment-free query names another (`sqlite:////data/catalog.db?catalog=prod`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode

from sqlalchemy.exc import SQLAlchemyError

from charter.data.lake import SnapshotGone, TableRef, local_path, require
from charter.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    import pyarrow as pa

DEFAULT_CATALOG = "default"
_SQL_SCHEMES = ("sqlite", "postgresql", "mysql")


class IcebergTable:
    def __init__(self, ref: TableRef, table: Any, snapshot: int) -> None:
        self.ref, self.table, self.snapshot = ref, table, snapshot

    def _scan(self) -> Any:
        return self.table.scan(snapshot_id=self.snapshot)

    def arrow_schema(self) -> pa.Schema:
        from pyiceberg.io.pyarrow import schema_to_pyarrow

        return schema_to_pyarrow(self._scan().projection())

    def expected_rows(self) -> int:
        try:
            return sum(int(task.file.record_count) for task in self._scan().plan_files())
        except (OSError, ValueError) as exc:
            raise SnapshotGone("iceberg", str(self.ref), self.snapshot, _reason(exc)) from None

    def files(self) -> list[str]:
        try:
            tasks = list(self._scan().plan_files())
        except (OSError, ValueError) as exc:
            raise SnapshotGone("iceberg", str(self.ref), self.snapshot, _reason(exc)) from None
        found = [str(self.table.metadata_location)]
        for task in tasks:
            found.append(str(task.file.file_path))
            found.extend(str(deletes.file_path) for deletes in task.delete_files)
        return found

    def batches(self) -> Iterator[pa.RecordBatch]:
        try:
            yield from self._scan().to_arrow_batch_reader()
        except (OSError, ValueError) as exc:
            raise SnapshotGone("iceberg", str(self.ref), self.snapshot, _reason(exc)) from None


class IcebergReader:
    def open(self, ref: TableRef, snapshot: int | None) -> IcebergTable:
        require("pyiceberg", "pyiceberg")
        exceptions = require("pyiceberg.exceptions", "pyiceberg")
        assert ref.name is not None
        catalog = _catalog(ref.location)
        try:
            table = catalog.load_table(ref.name)
        except (
            exceptions.NoSuchTableError,
            exceptions.NoSuchNamespaceError,
            exceptions.NoSuchIdentifierError,
        ):
            raise NotFound(
                f"Iceberg table {ref.name!r} in catalog {ref.location}",
                "check the NAMESPACE.TABLE after '#' "
                "(and ?catalog=NAME if the catalog is not named 'default')",
            ) from None
        except (OSError, ValueError, SQLAlchemyError) as exc:
            raise InvalidInput(f"cannot read Iceberg table {ref}: {_reason(exc)}") from None
        if snapshot is None:
            current = table.current_snapshot()
            if current is None:
                raise InvalidInput(
                    f"Iceberg table {ref} has no snapshot yet (nothing was ever written to it)"
                )
            return IcebergTable(ref, table, int(current.snapshot_id))
        if table.snapshot_by_id(snapshot) is None:
            known = sorted(int(s.snapshot_id) for s in table.snapshots())
            raise NotFound(
                f"snapshot {snapshot} of the Iceberg table {ref}",
                "it was never in the table or has expired (expired snapshots are gone for good); "
                "snapshots the table holds: " + (", ".join(str(s) for s in known[-10:]) or "none"),
            )
        return IcebergTable(ref, table, snapshot)


def _catalog(uri: str) -> Any:
    """The catalog a URI names, opened for reading."""
    base, _, query = uri.partition("?")
    params = dict(parse_qsl(query))
    name = params.pop("catalog", DEFAULT_CATALOG)
    scheme = base.split(":", 1)[0].split("+", 1)[0].lower()
    if scheme in _SQL_SCHEMES:
        sql = require("pyiceberg.catalog.sql", "pyiceberg[sql-sqlite]")
        if scheme == "sqlite":
            path = local_path(base)
            if path is None or not path.is_file():
                raise NotFound(
                    f"Iceberg catalog file {path or base}", "give the path of an existing SQLite catalog"
                )
        rest = urlencode(params)
        try:
            return sql.SqlCatalog(name, uri=base + (f"?{rest}" if rest else ""), init_catalog_tables="false")
        except Exception as exc:  # the driver's own errors: unreachable server, unreadable file
            raise InvalidInput(f"cannot open the Iceberg catalog {uri}: {_reason(exc)}") from None
    if scheme in ("http", "https"):
        catalog = require("pyiceberg.catalog.rest", "pyiceberg")
        try:
            return catalog.RestCatalog(name, uri=base, **params)
        except Exception as exc:  # connection and authentication failures of the REST client
            raise InvalidInput(f"cannot open the Iceberg REST catalog {uri}: {_reason(exc)}") from None
    raise InvalidInput(
        f"{uri!r}: catalogs charter opens are SQL (sqlite:, postgresql:, mysql:) and REST (http:, https:)"
    )


def _reason(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
