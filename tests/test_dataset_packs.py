"""Packed snapshots through the service, on SQLite and PostgreSQL: deduplication across packs, and
gc of packs that no committed version refers to."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from charter.data.snapshot import snapshot
from charter.service.registry import Registry
from charter.storage.blobs import LocalBlobStore
from charter.storage.packs import PACK_SUFFIX

MiB = 1024 * 1024
HOUR = 3600.0


def _store(registry: Registry) -> LocalBlobStore:
    blobs = registry.store.blobs
    assert isinstance(blobs, LocalBlobStore)
    return blobs


def _packs(blobs: LocalBlobStore) -> set[str]:
    return {path.name for path in blobs.packs.folder.iterdir() if path.name.endswith(PACK_SUFFIX)}


def _age_all(blobs: LocalBlobStore, seconds: float) -> None:
    then = time.time() - seconds
    for path in blobs.packs.folder.iterdir():
        os.utime(path, (then, then))


def test_an_append_stores_only_the_new_chunks_in_a_new_pack(registry: Registry, tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    source.write_bytes(np.random.default_rng(1).bytes(8 * MiB))
    first = registry.datasets.add("big", source, role="train")
    blobs = _store(registry)
    assert len(_packs(blobs)) == 1
    with open(source, "ab") as handle:
        handle.write(np.random.default_rng(2).bytes(MiB))
    second = registry.datasets.add("big", source, role="train")
    assert second.version.ref == "big@2"
    assert 0 < second.bytes_new <= 2 * MiB < first.bytes_new
    assert len(_packs(blobs)) == 2
    out = tmp_path / "out"
    registry.datasets.checkout("big@2", out)
    assert (out / "big.bin").read_bytes() == source.read_bytes()


def test_gc_deletes_the_pack_of_an_add_that_never_committed(registry: Registry, tmp_path: Path) -> None:
    kept = tmp_path / "kept.bin"
    kept.write_bytes(np.random.default_rng(3).bytes(3 * MiB))
    registry.datasets.add("kept", kept, role="train")
    blobs = _store(registry)
    lost = tmp_path / "lost"
    lost.mkdir()
    for i in range(20):
        (lost / f"{i}.bin").write_bytes(np.random.default_rng(100 + i).bytes(4096))
    orphaned = snapshot(blobs, lost)  # written, but no version names it (the add died before commit)
    packs = _packs(blobs)
    assert len(packs) == 2

    recent = registry.datasets.gc(grace_seconds=HOUR)
    assert recent.removed == 0 and recent.kept_recent == orphaned.chunks_total + 1  # and the manifest
    assert _packs(blobs) == packs

    _age_all(blobs, 2 * HOUR)
    done = registry.datasets.gc(grace_seconds=HOUR)
    assert done.removed == orphaned.chunks_total + 1 and done.bytes_removed > 20 * 4096
    assert len(_packs(blobs)) == 1 and not blobs.has(orphaned.manifest_digest)
    events = registry.audit.log(subject="store")
    assert events[-1].action == "blobs.collected" and events[-1].payload["removed"] == done.removed
    assert registry.audit.verify().ok
    out = tmp_path / "out"
    registry.datasets.checkout("kept@1", out)
    assert (out / "kept.bin").read_bytes() == kept.read_bytes()
