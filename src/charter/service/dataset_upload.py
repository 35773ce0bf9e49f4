"""The server's half of the commands that send the caller's files: datasets and model weights.

The client snapshots its files with the same engine as an embedded add (chunks, digests, a
manifest), sends the chunks the server lacks (`charter.service.blob_transfer`) and then commits
the manifest here. Nothing the client computed is recorded on its word: `verify_upload` reads
every chunk back, checks it, reassembles every file and checks that the manifest is exactly the
one charter's chunker would write; a table's schema, row count, row fingerprints and profile are
computed here from the reassembled files; the version is then recorded by the embedded use case
(`DatasetService.record_snapshot`), with its audit event, in one transaction.

`bytes_new` of an uploaded version counts the chunks that no version recorded before it
references (plus the manifest and row fingerprints if they are new): what the version adds to the
registry's storage. An embedded add counts what it wrote to the blob store, which is the same
number unless an interrupted add had left some of those chunks behind.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from charter.data.manifest import Manifest
from charter.data.reassemble import manifest_from_json, verify_upload
from charter.data.tabular import table_format
from charter.domain.refs import check_name, parse_dataset_ref
from charter.domain.roles import Action
from charter.errors import InvalidInput, NotFound
from charter.service.access import authorize
from charter.service.dataset_results import AddResult, DatasetVersion
from charter.service.datasets import add_arguments
from charter.service.model_inputs import WEIGHTS_FILE, version_argument, weights_reference

if TYPE_CHECKING:
    from charter.service.model_results import ModelVersion
    from charter.service.registry import Registry


def parse_manifest(document: object) -> Manifest:
    """A manifest sent as JSON, checked like one read from the store (paths, digests, order)."""
    manifest = manifest_from_json(document)
    if not manifest.files:
        raise InvalidInput("the manifest names no files; a snapshot holds at least one file")
    return manifest


def check_dataset_upload(registry: Registry, name: str, role: str, derived_from: str | None) -> None:
    """What `dataset add` refuses before reading any file: a bad name or role, a missing parent
    version, an actor who may not add datasets. The client asks before it uploads."""
    registry.datasets.authorize_add(add_arguments(name, role, derived_from))


def commit_dataset_upload(
    registry: Registry,
    name: str,
    manifest: Manifest,
    *,
    role: str,
    sources: Sequence[str] = (),
    derived_from: str | None = None,
    message: str = "",
) -> AddResult:
    """Record the uploaded snapshot `manifest` as the next version of `name` (see the module
    docstring); the same result as an embedded `datasets.add` of the same files."""
    started = time.perf_counter()
    parent_ref = add_arguments(name, role, derived_from)
    registry.datasets.authorize_add(parent_ref)
    with registry.store.read() as tx:
        latest = tx.datasets.versions(name)[-1:]
    if latest and latest[0].digest == manifest.digest:  # verified when it was recorded: nothing new
        seconds = time.perf_counter() - started
        return AddResult(DatasetVersion.of(latest[0]), False, manifest.total_bytes, 0, seconds)
    blobs = registry.store.blobs
    tabular = all(table_format(entry.path) is not None for entry in manifest.files)
    with tempfile.TemporaryDirectory(prefix="charter-upload-") as folder:
        root = Path(folder)
        checked = verify_upload(blobs, manifest, into=root if tabular else None)
        bytes_new = _unreferenced_bytes(registry, name, checked.chunk_sizes)
        encoded = manifest.to_bytes()
        if blobs.put(manifest.digest, encoded):
            bytes_new += len(encoded)
        blobs.sync()
        return registry.datasets.record_snapshot(
            name,
            root,
            manifest,
            bytes_read=checked.bytes_read,
            bytes_new=bytes_new,
            started=started,
            role=role,
            sources=sources,
            parent_ref=parent_ref,
            message=message,
        )


def check_model_upload(registry: Registry, name: str, version: str | None) -> None:
    """What `model register` refuses before storing weights (the client asks before it uploads)."""
    check_name(name, "model")
    version_argument(version)
    with registry.store.read() as tx:
        authorize(tx, registry.actor, Action.REGISTER_MODEL)


def register_with_uploaded_weights(
    registry: Registry, name: str, spec: Mapping[str, Any], weights: Manifest, *, version: str | None = None
) -> ModelVersion:
    """`models.register(name, spec)` whose weights were uploaded as the manifest `weights` (one
    file named "weights"): checked like a dataset upload, then referenced from the spec exactly as
    an embedded registration of the same file references them."""
    check_model_upload(registry, name, version)
    if [entry.path for entry in weights.files] != [WEIGHTS_FILE]:
        raise InvalidInput(
            f"uploaded weights are a manifest of exactly one file named {WEIGHTS_FILE!r}; "
            "charter's client makes it from the weights file"
        )
    blobs = registry.store.blobs
    verify_upload(blobs, weights)
    blobs.put(weights.digest, weights.to_bytes())
    blobs.sync()
    document = dict(spec)
    document["weights"] = weights_reference(weights)
    return registry.models.register(name, document, version=version)


def version_manifest(registry: Registry, ref: str) -> tuple[str, Manifest]:
    """A dataset version's reference and manifest (what a remote checkout writes)."""
    from charter.data.snapshot import load_manifest

    parsed = parse_dataset_ref(ref)
    with registry.store.read() as tx:
        authorize(tx, registry.actor, Action.READ)
        record = tx.datasets.get_version(parsed)
    return record.ref, load_manifest(registry.store.blobs, record.manifest_digest)


def _unreferenced_bytes(registry: Registry, name: str, sizes: Mapping[str, int]) -> int:
    """The bytes of the chunks in `sizes` that no recorded version (dataset or model weights)
    references; the dataset's own latest version is looked at first, as appends share most."""
    remaining = set(sizes)
    with registry.store.read() as tx:
        latest = [r.manifest_digest for r in tx.datasets.versions(name)[-1:]]
        manifests, _ = tx.datasets.blob_roots()
        manifests |= tx.models.weight_manifests()
    blobs = registry.store.blobs
    for digest in latest + sorted(manifests - set(latest)):
        if not remaining:
            break
        try:
            document = json.loads(blobs.get(digest))
        except NotFound:
            continue
        for entry in document.get("files", ()):
            remaining.difference_update(entry.get("chunks", ()))
    return sum(sizes[digest] for digest in remaining)
