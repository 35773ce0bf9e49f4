"""Lake tables by reference: register an Iceberg or Delta snapshot as a dataset version, and read
it back at that snapshot (checkout, reproduce).

Adding scans the table once at the pinned snapshot: the rows go to a temporary Parquet file while
they are fingerprinted, the profile is computed from that file with the same code as for a file
version, and the file is deleted. What the version keeps is the reference document
(`charter.data.lake`) as the one file of its manifest, the row fingerprints and the profile. The
version's digest is the manifest's, so the same table at the same snapshot is "unchanged".
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from charter.data.lake import DOCUMENT, KINDS, Reference, RowProgress, TableRef, parse_ref
from charter.errors import InvalidInput

if TYPE_CHECKING:
    from charter.data.manifest import Manifest
    from charter.service.dataset_results import AddResult, CheckoutReport
    from charter.service.datasets import DatasetService
    from charter.storage.blobs import BlobStore
    from charter.storage.datasets import DatasetVersionRecord


def table_arguments(
    iceberg: str | None, delta: str | None, snapshot: int | None, table_version: int | None
) -> tuple[str, str, int | None]:
    """(kind, reference text, pinned snapshot or None) from the add's lake arguments."""
    if (iceberg is None) == (delta is None):
        raise InvalidInput(
            "give exactly one table: --iceberg CATALOG_URI#NAMESPACE.TABLE or --delta PATH_OR_URI"
        )
    if iceberg is not None:
        if table_version is not None:
            raise InvalidInput("--table-version pins a Delta table; for Iceberg give --snapshot ID")
        return "iceberg", iceberg, snapshot
    if snapshot is not None:
        raise InvalidInput("--snapshot pins an Iceberg table; for Delta give --table-version N")
    assert delta is not None
    return "delta", delta, table_version


def add_table(
    service: DatasetService,
    name: str,
    *,
    iceberg: str | None,
    delta: str | None,
    snapshot: int | None,
    table_version: int | None,
    role: str,
    sources: Sequence[str],
    derived_from: str | None,
    message: str,
    progress: RowProgress | None,
    confine_to: Sequence[Path] | None = None,
) -> AddResult:
    from charter.data.lake import confine, reader, scan_and_profile
    from charter.data.snapshot import store_file
    from charter.service.dataset_results import AddResult, DatasetVersion
    from charter.service.datasets import add_arguments

    started = time.perf_counter()
    parent_ref = add_arguments(name, role, derived_from)
    kind, text, pinned = table_arguments(iceberg, delta, snapshot, table_version)
    ref = parse_ref(kind, text)
    service.authorize_add(parent_ref)
    opened = reader(kind).open(ref, pinned)
    if confine_to is not None:  # a server: every local file the scan reads must be under a root
        confine(opened, confine_to)
    blobs = service.registry.store.blobs
    same = _latest_if_same(service, name, ref, opened.snapshot)
    if same is not None:  # the same table at the same snapshot: the same digest, no need to scan
        return AddResult(DatasetVersion.of(same), False, 0, 0, time.perf_counter() - started)
    schema, rows, fingerprints, fingerprints_digest, found = scan_and_profile(opened, progress=progress)
    profile = json.dumps(found, sort_keys=True, separators=(",", ":"))
    reference = Reference(ref, opened.snapshot, schema, rows, fingerprints_digest)
    with tempfile.TemporaryDirectory(prefix="charter-lake-") as scratch:
        document = Path(scratch) / DOCUMENT
        document.write_bytes(reference.to_bytes())
        stored = store_file(blobs, document, name=DOCUMENT)
    bytes_new = stored.bytes_new
    if blobs.put(fingerprints_digest, fingerprints):
        bytes_new += len(fingerprints)
    blobs.sync()
    return _record(
        service,
        name,
        reference,
        stored.manifest,
        profile=profile,
        bytes_new=bytes_new,
        started=started,
        role=role,
        sources=[reference.source(), *sources],
        parent_ref=parent_ref,
        message=message,
    )


def _latest_if_same(
    service: DatasetService, name: str, ref: TableRef, snapshot: int
) -> DatasetVersionRecord | None:
    """The latest version of `name` if it pins this very table at this snapshot."""
    from charter.data.snapshot import load_manifest

    with service.registry.store.read() as tx:
        latest = tx.datasets.versions(name)[-1:]
    if not latest or latest[0].kind != ref.kind:
        return None
    blobs = service.registry.store.blobs
    pinned = load_reference(blobs, load_manifest(blobs, latest[0].manifest_digest))
    return latest[0] if (pinned.ref, pinned.snapshot) == (ref, snapshot) else None


def _record(
    service: DatasetService,
    name: str,
    reference: Reference,
    manifest: Manifest,
    *,
    profile: str,
    bytes_new: int,
    started: float,
    role: str,
    sources: Sequence[str],
    parent_ref: Any,
    message: str,
) -> AddResult:
    """The next version of `name`, unless the latest one pins the same table at the same snapshot."""
    from charter.service.datasets import VersionFacts

    facts = VersionFacts(
        kind=reference.ref.kind,
        schema=reference.schema,
        row_count=reference.rows,
        fingerprints_digest=reference.fingerprints,
        profile=profile,
        # Iceberg snapshot ids are 64-bit: beyond canonical JSON's integers, so a string
        audit={"table": reference.ref.identity(), "snapshot": str(reference.snapshot)},
    )
    return service.insert_version(
        name,
        manifest,
        facts,
        bytes_read=0,
        bytes_new=bytes_new,
        started=started,
        role=role,
        sources=sources,
        parent_ref=parent_ref,
        message=message,
    )


def is_lake(kind: str) -> bool:
    return kind in KINDS


def load_reference(blobs: BlobStore, manifest: Manifest) -> Reference:
    """The reference document a lake version's manifest holds."""
    try:
        entry = manifest.file(DOCUMENT)
    except KeyError:
        raise InvalidInput(f"this manifest holds no {DOCUMENT}: it is not a lake-table version") from None
    return Reference.from_bytes(b"".join(blobs.get(chunk) for chunk in entry.chunks))


def checkout_table(
    record: DatasetVersionRecord | str,
    reference: Reference,
    target: str | Path,
    *,
    force: bool = False,
    progress: RowProgress | None = None,
) -> CheckoutReport:
    """Read the table at its pinned snapshot into TARGET/table.parquet, verified by row count and
    row-fingerprint digest."""
    from charter.data.checkout import TargetNotEmpty
    from charter.data.lake import materialise
    from charter.service.dataset_results import CheckoutReport

    folder = Path(target)
    if folder.exists() and not folder.is_dir():
        raise InvalidInput(f"the checkout target {folder} is a file; give a folder")
    if folder.is_dir() and any(folder.iterdir()) and not force:
        raise TargetNotEmpty(str(folder))
    folder.mkdir(parents=True, exist_ok=True)
    scan = materialise(reference, folder, progress=progress)
    ref = record if isinstance(record, str) else record.ref
    return CheckoutReport(ref, str(folder.absolute()), 1, scan.path.stat().st_size, True)


def readable_copy(blobs: BlobStore, record: DatasetVersionRecord, root: Path) -> list[str]:
    """Write a version where its rows can be read: its files (checkout), or for a lake version its
    table at the pinned snapshot (`table.parquet`, verified). The table files' paths under `root`."""
    from charter.data.lake import TABLE_FILE
    from charter.data.snapshot import checkout, load_manifest

    manifest = load_manifest(blobs, record.manifest_digest)
    if is_lake(record.kind):
        checkout_table(record, load_reference(blobs, manifest), root)
        return [TABLE_FILE]
    checkout(blobs, manifest, root)
    return [entry.path for entry in manifest.files]
