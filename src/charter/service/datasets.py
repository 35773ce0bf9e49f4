"""Dataset registry use cases: snapshots, time travel, checkout, exact overlap, garbage collection."""

from __future__ import annotations

import builtins
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from charter.domain.canonical import canonical_json
from charter.domain.refs import DatasetRef, check_name, parse_dataset_ref
from charter.domain.roles import Action
from charter.errors import InvalidInput, NotFound
from charter.service.access import authorize
from charter.service.dataset_analysis import NearOverlap, drift_source, near_between
from charter.service.dataset_results import (
    AddResult,
    CheckoutReport,
    DatasetDiff,
    DatasetProfile,
    DatasetVersion,
    ExactOverlap,
    GcReport,
    overlap_between,
)
from charter.storage.datasets import DatasetVersionRecord

if TYPE_CHECKING:
    from charter.data.manifest import Manifest
    from charter.service.registry import Registry

ROLES = ("train", "eval", "holdout", "production-sample")
GC_GRACE_SECONDS = 3600.0


def add_arguments(name: str, role: str, derived_from: str | None) -> DatasetRef | None:
    """The checks an add makes before reading any file (a remote client makes them too); the
    parent version's reference, if any."""
    check_name(name, "dataset")
    if role not in ROLES:
        raise InvalidInput(f"{role!r} is not a dataset role; accepted: {', '.join(ROLES)}")
    return parse_dataset_ref(derived_from) if derived_from else None


def existing_source(path: str | Path) -> Path:
    source = Path(path)
    if not source.exists():
        raise InvalidInput(f"{source} does not exist; give a file or a folder to snapshot")
    return source


@dataclass(frozen=True)
class VersionFacts:
    """What a new dataset version records beyond its manifest: its kind, and for tables the schema,
    row count, row-fingerprints digest and profile (JSON); `audit` adds to its audit event."""

    kind: str  # files | table | iceberg | delta
    schema: list[dict[str, str]] | None = None
    row_count: int | None = None
    fingerprints_digest: str | None = None
    profile: str | None = None
    audit: Mapping[str, Any] = field(default_factory=dict)


# Prefix → factory of a drift source (`charter.data.drift.DriftSource`, see
# `charter.service.dataset_analysis.drift_source`); the deployment tracks add "slot:".
DRIFT_SOURCES: dict[str, Callable[[Registry, str], Any]] = {}


class DatasetService:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    # --- writing ----------------------------------------------------------------------------

    def add(
        self,
        name: str,
        path: str | Path,
        *,
        role: str,
        sources: Sequence[str] = (),
        derived_from: str | None = None,
        message: str = "",
        progress: Callable[[int], None] | None = None,
    ) -> AddResult:
        """Snapshot a file or folder as the next version of `name`.

        Blobs are written (deduplicated) and made durable before the version is committed, so an
        interrupted add leaves only unreferenced blobs, which the next add reuses and `gc` removes.
        Content equal to the latest version's records nothing new.
        """
        from charter.data.snapshot import load_manifest, snapshot

        parent_ref = add_arguments(name, role, derived_from)
        source = existing_source(path)
        self.authorize_add(parent_ref)  # fail fast, before reading gigabytes
        started = time.perf_counter()
        blobs = self.registry.store.blobs
        with self.registry.store.read() as tx:  # chunks a version holds are never collected: not asked for
            bases = [
                *tx.datasets.versions(name)[-1:],
                *([tx.datasets.get_version(parent_ref)] if parent_ref else []),
            ]
        present = {c for base in bases for c in load_manifest(blobs, base.manifest_digest).chunk_digests()}
        snap = snapshot(blobs, source, progress=progress, present=present)
        return self.record_snapshot(
            name,
            source,
            snap.manifest,
            bytes_read=snap.bytes_read,
            bytes_new=snap.bytes_new,
            started=started,
            role=role,
            sources=sources,
            parent_ref=parent_ref,
            message=message,
        )

    def add_table(
        self,
        name: str,
        *,
        iceberg: str | None = None,
        delta: str | None = None,
        snapshot: int | None = None,
        table_version: int | None = None,
        role: str,
        sources: Sequence[str] = (),
        derived_from: str | None = None,
        message: str = "",
        progress: Callable[[int, int], None] | None = None,
        confine_to: Sequence[Path] | None = None,
    ) -> AddResult:
        """Register an Iceberg table (`iceberg="CATALOG_URI#NAMESPACE.TABLE"`, at `snapshot` or its
        current one) or a Delta table (`delta="PATH_OR_URI"`, at `table_version` or its latest) as
        the next version of `name`, by reference: see `charter.service.dataset_lake`. `confine_to`:
        folders every local file of the table must lie under (the server sets it from
        CHARTER_LAKE_ROOTS; callers of the API cannot)."""
        from charter.service.dataset_lake import add_table

        return add_table(
            self,
            name,
            iceberg=iceberg,
            delta=delta,
            snapshot=snapshot,
            table_version=table_version,
            role=role,
            sources=sources,
            derived_from=derived_from,
            message=message,
            progress=progress,
            confine_to=confine_to,
        )

    def authorize_add(self, parent_ref: DatasetRef | None) -> None:
        """Refuse an add the actor may not make, or whose parent version does not exist."""
        with self.registry.store.read() as tx:
            authorize(tx, self.registry.actor, Action.ADD_DATASET)
            if parent_ref is not None:
                tx.datasets.get_version(parent_ref)

    def record_snapshot(
        self,
        name: str,
        root: Path,
        manifest: Manifest,
        *,
        bytes_read: int,
        bytes_new: int,
        started: float,
        role: str,
        sources: Sequence[str],
        parent_ref: DatasetRef | None,
        message: str,
    ) -> AddResult:
        """Record a snapshot whose blobs (chunks and manifest) are durable in the store as the next
        version of `name`, unless it equals the latest version. A table's schema, row fingerprints
        and profile are read from the files under `root` (the snapshot's source, or a folder the
        server reassembled an upload into)."""
        from charter.data import fingerprints
        from charter.data.tabular import inspect_table

        store = self.registry.store
        table = inspect_table(root, manifest)
        fingerprints_digest = None
        profile = None
        if table is not None:
            import blake3

            from charter.data.scan import scan_table

            scan = scan_table(root, table)  # profile and fingerprints from one read of the table
            assert scan.fingerprints is not None and scan.profile is not None
            data = fingerprints.to_bytes(scan.fingerprints)
            fingerprints_digest = blake3.blake3(data).hexdigest()
            if store.blobs.put(fingerprints_digest, data):
                bytes_new += len(data)
                store.blobs.sync()
            profile = json.dumps(scan.profile, sort_keys=True, separators=(",", ":"))

        return self.insert_version(
            name,
            manifest,
            VersionFacts(
                kind="table" if table is not None else "files",
                schema=None if table is None else table.schema,
                row_count=None if table is None else table.row_count,
                fingerprints_digest=fingerprints_digest,
                profile=profile,
            ),
            bytes_read=bytes_read,
            bytes_new=bytes_new,
            started=started,
            role=role,
            sources=sources,
            parent_ref=parent_ref,
            message=message,
        )

    def insert_version(
        self,
        name: str,
        manifest: Manifest,
        facts: VersionFacts,
        *,
        bytes_read: int,
        bytes_new: int,
        started: float,
        role: str,
        sources: Sequence[str],
        parent_ref: DatasetRef | None,
        message: str,
    ) -> AddResult:
        """In one transaction, with its audit event: the next version of `name` for a manifest whose
        blobs are durable, unless the latest version has the same digest (then that one, unchanged)."""
        registry = self.registry
        with registry.store.write() as tx:
            authorize(tx, registry.actor, Action.ADD_DATASET)
            now = tx.clock.now()
            dataset_id = tx.datasets.dataset_id(name)
            if dataset_id is None:
                dataset_id = tx.datasets.create_dataset(name, at=now, by=registry.actor)
            else:
                latest = tx.datasets.versions(name)[-1:]
                if latest and latest[0].digest == manifest.digest:
                    seconds = time.perf_counter() - started
                    return AddResult(DatasetVersion.of(latest[0]), False, bytes_read, bytes_new, seconds)
            parent = tx.datasets.get_version(parent_ref) if parent_ref is not None else None
            record = tx.datasets.insert_version(
                {
                    "dataset_id": dataset_id,
                    "digest": manifest.digest,
                    "manifest_digest": manifest.digest,
                    "kind": facts.kind,
                    "role": role,
                    "sources": json.dumps(list(sources)),
                    "derived_from_id": None if parent is None else parent.id,
                    "message": message,
                    "file_count": len(manifest.files),
                    "bytes_total": manifest.total_bytes,
                    "bytes_new": bytes_new,
                    "schema": None if facts.schema is None else canonical_json(facts.schema).decode(),
                    "row_count": facts.row_count,
                    "fingerprints_digest": facts.fingerprints_digest,
                    "profile": facts.profile,
                    "created_at": now,
                    "created_by": registry.actor,
                }
            )
            tx.ledger.append(
                registry.actor,
                "dataset.version_added",
                record.subject,
                {
                    "digest": record.digest,
                    "kind": record.kind,
                    "role": role,
                    **facts.audit,
                    "sources": list(sources),
                    "derived_from": record.derived_from,
                    "message": message,
                    "files": record.file_count,
                    "bytes_total": record.bytes_total,
                    "bytes_new": bytes_new,
                    "row_count": record.row_count,
                    "fingerprints": facts.fingerprints_digest,
                },
            )
            return AddResult(
                DatasetVersion.of(record), True, bytes_read, bytes_new, time.perf_counter() - started
            )

    # --- reading ----------------------------------------------------------------------------

    def get(self, ref: str, *, as_of: datetime | None = None) -> DatasetVersion:
        """`name@N`, or `name` for the latest version (the one current at `as_of`, if given)."""
        parsed = parse_dataset_ref(ref)
        with self.registry.store.read() as tx:
            authorize(tx, self.registry.actor, Action.READ)
            return DatasetVersion.of(tx.datasets.get_version(parsed, as_of=as_of))

    def list(self) -> builtins.list[DatasetVersion]:
        """The latest version of every dataset."""
        with self.registry.store.read() as tx:
            authorize(tx, self.registry.actor, Action.READ)
            return [DatasetVersion.of(r) for r in tx.datasets.latest_versions()]

    def versions(self, name: str) -> builtins.list[DatasetVersion]:
        with self.registry.store.read() as tx:
            authorize(tx, self.registry.actor, Action.READ)
            records = tx.datasets.versions(name)
            if not records:
                raise NotFound(f"dataset {name!r}", "list datasets with `charter dataset list`")
            return [DatasetVersion.of(r) for r in records]

    def files(self, ref: str) -> builtins.list[dict[str, Any]]:
        """The files of a version: path, size and BLAKE3 digest."""
        from charter.data.snapshot import load_manifest

        record = self._record(ref)
        manifest = load_manifest(self.registry.store.blobs, record.manifest_digest)
        return [{"path": f.path, "size": f.size, "digest": f.digest} for f in manifest.files]

    def diff(self, a: str, b: str) -> DatasetDiff:
        from charter.data.snapshot import load_manifest

        ra, rb = self._record(a), self._record(b)
        blobs = self.registry.store.blobs
        fa = {f.path: f for f in load_manifest(blobs, ra.manifest_digest).files}
        fb = {f.path: f for f in load_manifest(blobs, rb.manifest_digest).files}
        changed = sorted(p for p in fa.keys() & fb.keys() if fa[p].digest != fb[p].digest)
        schema_changes = _schema_changes(ra.schema or [], rb.schema or [])
        rows = None if ra.row_count is None or rb.row_count is None else rb.row_count - ra.row_count
        return DatasetDiff(
            ra.ref,
            rb.ref,
            sorted(fb.keys() - fa.keys()),
            sorted(fa.keys() - fb.keys()),
            changed,
            len(fa.keys() & fb.keys()) - len(changed),
            rb.bytes_total - ra.bytes_total,
            rows,
            schema_changes,
        )

    def checkout(self, ref: str, target: str | Path, *, force: bool = False) -> CheckoutReport:
        """Write a version to a folder, byte for byte, verified against its digests; a lake-table
        version is read at its pinned snapshot into table.parquet, verified by rows and fingerprints."""
        from charter.data.snapshot import checkout, load_manifest

        record = self._record(ref)
        manifest = load_manifest(self.registry.store.blobs, record.manifest_digest)
        if record.kind in ("iceberg", "delta"):  # a lake table: read it at its pinned snapshot
            from charter.service.dataset_lake import checkout_table, load_reference

            reference = load_reference(self.registry.store.blobs, manifest)
            return checkout_table(record, reference, target, force=force)
        result = checkout(self.registry.store.blobs, manifest, Path(target), force=force)
        return CheckoutReport(
            record.ref, str(Path(target).absolute()), result.files, result.bytes_written, True
        )

    def overlap(self, a: str, b: str) -> ExactOverlap:
        """Exact overlap: rows of A found in B (with multiplicity)."""
        ra, rb = self._record(a), self._record(b)
        return overlap_between(self.registry.store.blobs, ra, rb)

    def near_overlap(
        self, a: str, b: str, *, column: str | None = None, threshold: float | None = None
    ) -> NearOverlap:
        """Exact overlap plus near-duplicate texts of A found in B (MinHash/LSH, verified by exact
        Jaccard on word shingles). Without `column`, every text column the two tables share; the
        threshold defaults to the `contamination` policy's."""
        ra, rb = self._record(a), self._record(b)
        if threshold is None:
            threshold = float(self._policy_section("contamination")["near_duplicate_threshold"])
        if not 0 < threshold <= 1:
            raise InvalidInput(f"threshold {threshold} must be in (0, 1]; for example 0.8")
        exact = overlap_between(self.registry.store.blobs, ra, rb)
        return near_between(self.registry.store.blobs, ra, rb, exact, column=column, threshold=threshold)

    def _policy_section(self, section: str) -> dict[str, Any]:
        from charter.service.policies import current_policy

        with self.registry.store.read() as tx:
            return dict(current_policy(tx).section(section))

    def drift(
        self,
        ref: str,
        against: str | Path,
        *,
        report: str | Path | None = None,
        since: datetime | None = None,
    ) -> Any:
        """Drift of production inputs against the stored profile of the training version `ref`.

        `against`: a tabular file or folder, or a dataset version `DS@N` (typically role
        production-sample); further sources plug in through `DRIFT_SOURCES` (a prefix such as
        `slot:` → a factory). Thresholds come from the `drift` policy. With `report`, the
        self-contained HTML report is written there. Returns a `charter.data.drift.DriftReport`.
        """
        from charter.data.drift_report import render_html

        def source() -> Any:
            nonlocal against
            if since is not None:
                if not str(against).startswith("slot:") or "@" in str(against):
                    raise InvalidInput(
                        "--since applies to a slot's recorded inputs: use --against slot:NAME with --since"
                    )
                against = f"{against}@{since.isoformat()}"
            return drift_source(self.registry, against)

        result = self.drift_from(ref, source)
        if report is not None:
            Path(report).write_text(render_html(result), encoding="utf-8")
        return result

    def drift_from(self, ref: str, source: Callable[[], Any]) -> Any:
        """`drift` against the `charter.data.drift.DriftSource` that `source()` opens once the
        training version is known to have a profile (the server passes an uploaded file this way)."""
        from charter.data.drift import compare

        record = self._record(ref)
        if record.profile is None:
            raise InvalidInput(
                f"{record.ref} has no stored profile (not a table version); drift compares a table's profile "
                "with production inputs"
            )
        opened = source()
        schema, batches = opened.read()
        policy = self._policy_section("drift")
        return compare(
            record.profile,
            schema,
            batches,
            training=record.ref,
            against=opened.describe(),
            psi_moderate=float(policy["psi_moderate"]),
            psi_significant=float(policy["psi_significant"]),
        )

    def profile(self, ref: str) -> DatasetProfile:
        """The statistical profile stored with a table version (see `charter.data.profile`)."""
        record = self._record(ref)
        if record.profile is None:
            raise InvalidInput(
                f"{record.ref} has no profile: profiles are computed for tabular versions "
                "(Parquet, CSV, JSON Lines with one schema); add the table as a new version to profile it",
                ref=record.ref,
            )
        return DatasetProfile(record.ref, record.row_count or 0, record.profile)

    # --- maintenance ------------------------------------------------------------------------

    def gc(self, *, dry_run: bool = False, grace_seconds: float = GC_GRACE_SECONDS) -> GcReport:
        """Remove blobs no version can reach. Blobs younger than the grace period are kept: they may
        belong to an add that has not committed yet."""
        from charter.data.snapshot import load_manifest

        store = self.registry.store
        with store.write() as tx:
            authorize(tx, self.registry.actor, Action.COLLECT_GARBAGE)
            manifests, others = tx.datasets.blob_roots()
            manifests |= tx.models.weight_manifests()
            reachable = manifests | others
            for digest in manifests:
                reachable |= load_manifest(store.blobs, digest).chunk_digests()
            cutoff = time.time() - grace_seconds
            # loose objects and packs alike: a dead pack is deleted, a mostly dead one repacked
            collected = store.blobs.collect(reachable, cutoff, dry_run=dry_run)
            removed, freed, kept = collected.removed, collected.freed, collected.kept_recent
            if not dry_run and removed:
                tx.ledger.append(
                    self.registry.actor, "blobs.collected", "store", {"removed": removed, "bytes": freed}
                )
            return GcReport(dry_run, len(reachable), removed, freed, kept)

    def _record(self, ref: str) -> DatasetVersionRecord:
        parsed = parse_dataset_ref(ref)
        with self.registry.store.read() as tx:
            authorize(tx, self.registry.actor, Action.READ)
            return tx.datasets.get_version(parsed)


def _schema_changes(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> builtins.list[str]:
    ta = {c["name"]: c["type"] for c in a}
    tb = {c["name"]: c["type"] for c in b}
    changes = [f"+ {n} ({tb[n]})" for n in sorted(tb.keys() - ta.keys())]
    changes += [f"- {n} ({ta[n]})" for n in sorted(ta.keys() - tb.keys())]
    changes += [f"~ {n}: {ta[n]} -> {tb[n]}" for n in sorted(ta.keys() & tb.keys()) if ta[n] != tb[n]]
    return changes
