"""Lake tables by reference: an Apache Iceberg or Delta Lake table pinned at one snapshot.

A lake version stores no copy of the table. It stores a small *reference document* (canonical
JSON, one file of the version's manifest) naming the table, the snapshot that was pinned, and
what the scan found there: schema, row count and the BLAKE3 digest of the sorted canonical row
fingerprints (`charter.data.fingerprints`, the same as for Parquet files, so overlap works across
kinds). The same table at the same snapshot gives the same document, hence the same version digest.

    {"fingerprints":"<blake3>","format":"charter.lake/1","kind":"iceberg","rows":1200,
     "schema":[{"name":"id","type":"integer"},…],"snapshot":8797169016564502912,
     "table":{"catalog":"sqlite:////data/catalog.db","name":"analytics.events"}}

Reading goes through `LakeReader` (one per format, `charter.data.lake_iceberg` and
`charter.data.lake_delta`), which opens the table at a snapshot and streams record batches.
Adding scans the batches once (`scan_and_profile`: row fingerprints and profile, nothing written,
so a table of any size needs no scratch space); checking out writes them to one Parquet file while
fingerprinting them (`scan_to_parquet`) and verifies the result against the document.
The libraries are an optional extra, imported only when a lake table is actually opened.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from charter.errors import CharterError, InvalidInput, NotFound

if TYPE_CHECKING:
    import pyarrow as pa

FORMAT = "charter.lake/1"
KINDS = ("iceberg", "delta")
DOCUMENT = "lake-table.json"  # the one file of a lake version's manifest
TABLE_FILE = "table.parquet"  # what checkout writes
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")

# progress(rows read so far, rows expected — an estimate from the table's metadata)
RowProgress = Callable[[int, int], None]


class LakeExtraMissing(InvalidInput):
    def __init__(self, library: str) -> None:
        super().__init__(
            f"reading Iceberg and Delta Lake tables needs {library}, which is not installed; "
            "install charter[lake] (pip install 'charter[lake]')",
            library=library,
        )


class SnapshotGone(NotFound):
    """The pinned snapshot can no longer be read: expired, vacuumed, or its files deleted."""

    def __init__(self, kind: str, table: str, snapshot: int, reason: str) -> None:
        pinned = (
            f"snapshot {snapshot} of the Iceberg table"
            if kind == "iceberg"
            else (f"version {snapshot} of the Delta table")
        )
        CharterError.__init__(
            self,
            f"{pinned} {table} can no longer be read: {reason}. The table no longer holds it (expiring "
            "snapshots or a vacuum removes old ones' files); restore the table's files, or register its "
            "current snapshot as a new version",
            table=table,
            snapshot=str(snapshot),
            reason=reason,
        )


def require(module: str, library: str) -> Any:
    """Import `module` of an optional library, or say to install charter[lake]."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise LakeExtraMissing(library) from None


@dataclass(frozen=True)
class TableRef:
    """Which table: an Iceberg table in a catalog, or a Delta table at a URI or path."""

    kind: str  # iceberg | delta
    location: str  # the catalog URI (iceberg) or the table URI/path (delta)
    name: str | None = None  # iceberg: namespace.table

    def identity(self) -> dict[str, str]:
        if self.kind == "iceberg":
            assert self.name is not None
            return {"catalog": self.location, "name": self.name}
        return {"uri": self.location}

    def __str__(self) -> str:
        return f"{self.location}#{self.name}" if self.name else self.location

    @classmethod
    def from_identity(cls, kind: str, identity: dict[str, Any]) -> TableRef:
        if kind == "iceberg":
            return cls(kind, str(identity["catalog"]), str(identity["name"]))
        return cls(kind, str(identity["uri"]))


def is_local(location: str) -> bool:
    """Whether a table or catalog location is a path on this machine (plain path, file://,
    or an SQLite catalog file) rather than an object store or a service."""
    if location.startswith("sqlite:"):
        return True
    scheme = _SCHEME.match(location)
    return scheme is None or scheme.group(1).lower() == "file" or location.lower().startswith("file:")


def local_path(location: str) -> Path | None:
    """The file-system path a local location names (None for object stores and services)."""
    if not is_local(location):
        return None
    if location.startswith("sqlite:"):
        # SQLAlchemy's spelling: sqlite:///relative.db, sqlite:////absolute/catalog.db
        rest = location[len("sqlite:") :]
        path = rest[3:].split("?", 1)[0] if rest.startswith("///") else ""
        return Path(path) if path and path != ":memory:" else None
    if location.lower().startswith("file:"):
        from urllib.parse import unquote, urlparse

        return Path(unquote(urlparse(location).path))
    return Path(location)


def parse_ref(kind: str, text: str) -> TableRef:
    """`CATALOG_URI#NAMESPACE.TABLE` for Iceberg, `PATH_OR_URI` for Delta; local paths absolute."""
    if kind not in KINDS:
        raise InvalidInput(f"{kind!r} is not a lake table kind; accepted: {', '.join(KINDS)}")
    text = text.strip()
    if "\x00" in text:
        raise InvalidInput(f"the table reference {text!r} contains a NUL character; give a path or URI")
    if kind == "iceberg":
        catalog, hash_, name = text.rpartition("#")
        if not hash_ or not catalog or not name:
            raise InvalidInput(
                f"--iceberg {text!r} does not name a table: give CATALOG_URI#NAMESPACE.TABLE, for example "
                "sqlite:////data/catalog.db#analytics.events (a SQL catalog) or "
                "https://catalog.example/api#analytics.events (a REST catalog)",
                reference=text,
            )
        if "." not in name.strip(".") or any(not part for part in name.split(".")):
            raise InvalidInput(
                f"{name!r} is not an Iceberg table identifier; give NAMESPACE.TABLE, "
                "for example analytics.events",
                reference=text,
            )
        return TableRef(kind, _normalise_catalog(catalog), name)
    if not text:
        raise InvalidInput(
            "--delta needs the table's path or URI, for example /data/events or s3://bucket/events"
        )
    if is_local(text):
        path = local_path(text)
        assert path is not None
        return TableRef(kind, str(path.expanduser().absolute()))
    return TableRef(kind, text.rstrip("/"))


def _normalise_catalog(uri: str) -> str:
    if uri.startswith("sqlite:"):
        path = local_path(uri)
        if path is None:
            raise InvalidInput(f"{uri!r} names no SQLite file; give sqlite:////absolute/path/catalog.db")
        query = uri.partition("?")[2]
        return f"sqlite:///{path.expanduser().absolute()}" + (f"?{query}" if query else "")
    if _SCHEME.match(uri) is None:
        raise InvalidInput(
            f"{uri!r} is not a catalog URI; give a SQL catalog (sqlite:////path/catalog.db, "
            "postgresql://host/db) or a REST catalog (https://host/path)"
        )
    if re.match(r"^[a-zA-Z0-9+.-]+://[^/@]*:[^/@]*@", uri):
        raise InvalidInput(
            "the catalog URI contains a password, which would be recorded in the version and the audit "
            "log; give it without one and let the driver find it (PGPASSWORD, ~/.pgpass, ...)"
        )
    return uri


class OpenedTable(Protocol):
    """A table opened at one snapshot."""

    ref: TableRef
    snapshot: int  # Iceberg snapshot id, Delta table version

    def arrow_schema(self) -> pa.Schema: ...

    def expected_rows(self) -> int: ...

    def batches(self) -> Iterator[pa.RecordBatch]: ...

    def files(self) -> list[str]:
        """Every file reading the snapshot opens (metadata and data), as paths or URIs."""
        ...


class LakeReader(Protocol):
    def open(self, ref: TableRef, snapshot: int | None) -> OpenedTable:
        """The table at `snapshot` (its current snapshot when None); NotFound/SnapshotGone if absent."""
        ...


def reader(kind: str) -> LakeReader:
    if kind == "iceberg":
        from charter.data.lake_iceberg import IcebergReader

        return IcebergReader()
    from charter.data.lake_delta import DeltaReader

    return DeltaReader()


@dataclass(frozen=True)
class Reference:
    """The reference document of a lake version (see the module docstring)."""

    ref: TableRef
    snapshot: int
    schema: list[dict[str, str]]
    rows: int
    fingerprints: str

    def to_bytes(self) -> bytes:
        document = {
            "format": FORMAT,
            "kind": self.ref.kind,
            "table": self.ref.identity(),
            "snapshot": self.snapshot,
            "schema": self.schema,
            "rows": self.rows,
            "fingerprints": self.fingerprints,
        }
        return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Reference:
        try:
            document = json.loads(data.decode("utf-8"))
            if document.get("format") != FORMAT or document.get("kind") not in KINDS:
                raise ValueError("unknown format")
            return cls(
                TableRef.from_identity(document["kind"], document["table"]),
                int(document["snapshot"]),
                list(document["schema"]),
                int(document["rows"]),
                str(document["fingerprints"]),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InvalidInput(
                f"not a charter lake-table reference ({exc}); expected the document charter writes "
                f"(format {FORMAT!r})"
            ) from None

    def source(self) -> str:
        """A one-line description for the version's sources."""
        pin = "snapshot" if self.ref.kind == "iceberg" else "version"
        return f"{self.ref.kind}:{self.ref}?{pin}={self.snapshot}"


@dataclass(frozen=True)
class Scan:
    """What one pass over a table at a snapshot found, and the Parquet file it wrote."""

    schema: list[dict[str, str]]
    rows: int
    fingerprints: bytes  # sorted uint64 little-endian
    fingerprints_digest: str
    path: Path


def schema_of(arrow_schema: pa.Schema) -> list[dict[str, str]]:
    """Columns by name with their canonical type names (`charter.data.tabular.type_name`)."""
    from charter.data.tabular import type_name

    names = [field.name for field in arrow_schema]
    if len(set(names)) != len(names):
        raise InvalidInput(
            f"the table has repeated column names ({', '.join(names)}); charter needs unique names"
        )
    return [{"name": f.name, "type": type_name(f.type)} for f in sorted(arrow_schema, key=lambda f: f.name)]


def scan_to_parquet(table: OpenedTable, path: Path, *, progress: RowProgress | None = None) -> Scan:
    """Stream the table at its snapshot into one Parquet file at `path`, fingerprinting every row."""
    import blake3
    import numpy as np
    import pyarrow.parquet as pq

    from charter.data import fingerprints

    arrow_schema = table.arrow_schema().remove_metadata()
    arrow_schema = _plain(arrow_schema)
    schema = schema_of(arrow_schema)
    columns = [c["name"] for c in schema]
    expected = table.expected_rows()
    hasher = fingerprints.RowHasher(columns)
    parts = []
    rows = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with pq.ParquetWriter(path, arrow_schema) as writer:
        for read in table.batches():
            batch = read.cast(arrow_schema) if read.schema != arrow_schema else read
            writer.write_batch(batch)
            parts.append(hasher.hash_batch(batch))
            rows += batch.num_rows
            if progress is not None:
                progress(rows, max(expected, rows))
    fps = np.concatenate(parts) if parts else np.empty(0, dtype=np.uint64)
    fps.sort()
    data = fingerprints.to_bytes(fps)
    return Scan(schema, rows, data, blake3.blake3(data).hexdigest(), path)


def scan_and_profile(
    table: OpenedTable, *, progress: RowProgress | None = None
) -> tuple[list[dict[str, str]], int, bytes, str, dict[str, Any]]:
    """One pass over the table at its snapshot, nothing written: its schema, row count, sorted row
    fingerprints (bytes and BLAKE3 digest) and profile — what `scan_to_parquet` and
    `profile_table` of that file give (the same rows sampled), without a copy of the table."""
    import blake3

    from charter.data import fingerprints
    from charter.data.scan import TableScanner

    arrow_schema = _plain(table.arrow_schema().remove_metadata())
    schema = schema_of(arrow_schema)
    expected = table.expected_rows()  # sets the sample rate; exact unless rows were deleted
    with TableScanner({c["name"]: c["type"] for c in schema}, rows=expected) as scanner:
        for read in table.batches():
            scanner.add(read.cast(arrow_schema) if read.schema != arrow_schema else read)
            if progress is not None:
                progress(scanner.seen, max(expected, scanner.seen))
        profile = scanner.profile()
        data = fingerprints.to_bytes(scanner.fingerprints())
    profile["rows"] = scanner.seen
    return schema, scanner.seen, data, blake3.blake3(data).hexdigest(), profile


def _plain(schema: pa.Schema) -> pa.Schema:
    """The schema without per-field metadata (Iceberg field ids): what the Parquet file records."""
    import pyarrow as pa

    return pa.schema([field.remove_metadata() for field in schema])


def confine(table: OpenedTable, roots: Sequence[Path]) -> None:
    """Refuse a table that would read a local file outside `roots` (a server opening tables its
    callers name: `CHARTER_LAKE_ROOTS`). Object-store files are not local and pass."""
    from charter.errors import PermissionDenied

    allowed = [Path(root).resolve() for root in roots]
    for location in table.files():
        path = local_path(location)
        if path is None:
            continue
        if not any(path.resolve().is_relative_to(root) for root in allowed):
            listed = os.pathsep.join(str(r) for r in allowed) or "none configured"
            raise PermissionDenied(
                f"{table.ref} reads {location}, a path on the server outside the folders its operator "
                f"allowed with CHARTER_LAKE_ROOTS (now: {listed}); keep the table's files under an allowed "
                "folder or in an object store",
                table=str(table.ref),
                path=location,
            )


def open_pinned(reference: Reference) -> OpenedTable:
    return reader(reference.ref.kind).open(reference.ref, reference.snapshot)


def materialise(reference: Reference, target: Path, *, progress: RowProgress | None = None) -> Scan:
    """Read the table at the pinned snapshot into TARGET/table.parquet and verify it against the
    reference: same row count and same row-fingerprint digest. The file is written under a
    temporary name and renamed into place only when both agree."""
    opened = open_pinned(reference)
    final = target / TABLE_FILE
    partial = target / f".{TABLE_FILE}.partial"
    try:
        scan = scan_to_parquet(opened, partial, progress=progress)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    where = f"{reference.ref.kind} table {reference.ref} at snapshot {reference.snapshot}"
    if scan.rows != reference.rows or scan.fingerprints_digest != reference.fingerprints:
        partial.unlink(missing_ok=True)
        raise InvalidInput(
            f"{where} no longer holds the rows recorded for it ({scan.rows} rows read, {reference.rows} "
            "recorded; row fingerprints "
            + ("match" if scan.fingerprints_digest == reference.fingerprints else "differ")
            + "): the table's files at that snapshot were changed outside the table format",
            table=str(reference.ref),
            snapshot=reference.snapshot,
        )
    partial.replace(final)
    return Scan(scan.schema, scan.rows, scan.fingerprints, scan.fingerprints_digest, final)
