"""Snapshots into the blob store, and checkout back out: byte for byte, deduplicated, verified."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from charter.data.checkout import CorruptBlob, TargetNotEmpty
from charter.data.chunking import MAX_CHUNK, WINDOW, content_digest
from charter.data.manifest import UnsafePath
from charter.data.snapshot import checkout, load_manifest, snapshot, store_file, verify
from charter.errors import InvalidInput, NotFound
from charter.storage.blobs import LocalBlobStore

MiB = 1024 * 1024


def random_bytes(n: int, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


@pytest.fixture
def blobs(tmp_path: Path) -> LocalBlobStore:
    store = LocalBlobStore(tmp_path / "blobs")
    store.create()
    return store


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    (root / "train" / "deep").mkdir(parents=True)
    (root / "train" / "part-0.csv").write_text("a,b\n1,2\n")
    (root / "train" / "deep" / "big.bin").write_bytes(random_bytes(WINDOW + 3 * MiB + 123))
    (root / "README.md").write_text("hello ü\n")
    (root / "empty").write_bytes(b"")
    (root / "medium.bin").write_bytes(random_bytes(700_000, seed=2))
    return root


def tree(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_snapshot_and_checkout_round_trip_byte_for_byte(
    blobs: LocalBlobStore, folder: Path, tmp_path: Path
) -> None:
    result = snapshot(blobs, folder)
    manifest = result.manifest
    assert [entry.path for entry in manifest.files] == sorted(tree(folder))
    for entry in manifest.files:
        assert entry.digest == content_digest((folder / entry.path).read_bytes())
        assert entry.size == (folder / entry.path).stat().st_size
    assert result.manifest_digest == manifest.digest
    assert result.bytes_read == manifest.total_bytes == sum(len(v) for v in tree(folder).values())
    assert load_manifest(blobs, result.manifest_digest) == manifest

    out = checkout(blobs, manifest, tmp_path / "out")
    assert tree(tmp_path / "out") == tree(folder)
    assert out.files == len(manifest.files)
    assert out.bytes_written == manifest.total_bytes
    assert verify(blobs, manifest) == []


def test_progress_reports_every_byte_read(blobs: LocalBlobStore, folder: Path) -> None:
    seen: list[int] = []
    result = snapshot(blobs, folder, progress=seen.append)
    assert sum(seen) == result.bytes_read
    assert len(seen) >= 2


@pytest.mark.parametrize("threads", [1, 3])
def test_the_same_content_stores_once(blobs: LocalBlobStore, tmp_path: Path, threads: int) -> None:
    root = tmp_path / "dup"
    root.mkdir()
    payload = random_bytes(3 * MiB, seed=5)
    (root / "a.bin").write_bytes(payload)
    (root / "b.bin").write_bytes(payload)
    first = snapshot(blobs, root, threads=threads)
    a, b = first.manifest.files
    assert a.chunks == b.chunks and a.digest == b.digest
    assert first.chunks_new == first.chunks_total == len(a.chunks)
    assert first.bytes_new == len(payload) + len(first.manifest.to_bytes())

    again = snapshot(blobs, root, threads=threads)
    assert again.bytes_new == 0 and again.chunks_new == 0
    assert again.manifest_digest == first.manifest_digest


def test_appending_stores_only_the_tail(blobs: LocalBlobStore, tmp_path: Path) -> None:
    path = tmp_path / "weights.bin"
    path.write_bytes(random_bytes(12 * MiB, seed=7))
    before = store_file(blobs, path)
    with open(path, "ab") as handle:
        handle.write(random_bytes(MiB, seed=8))
    after = store_file(blobs, path)
    chunk_bytes_new = after.bytes_new - len(after.manifest.to_bytes())
    assert 0 < chunk_bytes_new <= MAX_CHUNK + MiB
    assert set(before.manifest.files[0].chunks[:-1]) <= set(after.manifest.files[0].chunks)
    assert after.manifest.files[0].path == "weights.bin"


def test_a_single_file_snapshot_is_named_after_the_file(blobs: LocalBlobStore, tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"tensor bytes")
    for result in (snapshot(blobs, path), store_file(blobs, path)):
        assert [entry.path for entry in result.manifest.files] == ["model.safetensors"]
    checkout(blobs, result.manifest, tmp_path / "out")
    assert (tmp_path / "out" / "model.safetensors").read_bytes() == b"tensor bytes"


def test_store_file_refuses_a_folder(blobs: LocalBlobStore, folder: Path) -> None:
    with pytest.raises(InvalidInput, match="folder"):
        store_file(blobs, folder)


def test_a_symlink_inside_the_root_is_followed(blobs: LocalBlobStore, folder: Path) -> None:
    (folder / "link.csv").symlink_to(folder / "train" / "part-0.csv")
    (folder / "train-link").symlink_to(folder / "train", target_is_directory=True)
    manifest = snapshot(blobs, folder).manifest
    paths = {entry.path: entry for entry in manifest.files}
    assert paths["link.csv"].digest == paths["train/part-0.csv"].digest
    assert paths["train-link/part-0.csv"].digest == paths["train/part-0.csv"].digest


def test_a_symlink_escaping_the_root_is_refused(blobs: LocalBlobStore, folder: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("do not store me")
    (folder / "train" / "escape.txt").symlink_to(secret)
    with pytest.raises(UnsafePath, match=r"train/escape\.txt.*outside the snapshot root"):
        snapshot(blobs, folder)


def test_a_relative_symlink_climbing_out_is_refused(blobs: LocalBlobStore, folder: Path) -> None:
    (folder / "up").symlink_to("../..", target_is_directory=True)
    with pytest.raises(UnsafePath, match="'up'"):
        snapshot(blobs, folder)


def test_symlink_loops_and_dangling_links_are_refused(blobs: LocalBlobStore, folder: Path) -> None:
    (folder / "train" / "loop").symlink_to(folder / "train", target_is_directory=True)
    with pytest.raises(InvalidInput, match="loop"):
        snapshot(blobs, folder)
    (folder / "train" / "loop").unlink()
    (folder / "dangling").symlink_to(folder / "nowhere")
    with pytest.raises(InvalidInput, match="does not exist"):
        snapshot(blobs, folder)


def test_empty_missing_and_special_paths_are_refused(blobs: LocalBlobStore, tmp_path: Path) -> None:
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(InvalidInput, match="no files"):
        snapshot(blobs, tmp_path / "empty")
    with pytest.raises(InvalidInput, match="does not exist"):
        snapshot(blobs, tmp_path / "missing")
    os.mkfifo(tmp_path / "empty" / "pipe")
    with pytest.raises(InvalidInput, match="not a regular file"):
        snapshot(blobs, tmp_path / "empty")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads unreadable files")
def test_an_unreadable_file_is_refused_by_name(blobs: LocalBlobStore, folder: Path) -> None:
    (folder / "README.md").chmod(0)
    with pytest.raises(InvalidInput, match=r"README\.md"):
        snapshot(blobs, folder)


def test_a_backslash_in_a_file_name_is_refused(blobs: LocalBlobStore, folder: Path) -> None:
    (folder / "a\\b.txt").write_text("x")
    with pytest.raises(UnsafePath, match="backslash"):
        snapshot(blobs, folder)


def _corrupt(blobs: LocalBlobStore, digest: str) -> None:
    """Flip a bit in the middle of the object, where it is stored (a snapshot packs its objects)."""
    blobs.packs.refresh(force=True)
    location = blobs.packs.locate(digest)
    if location is None:
        path, offset, length = blobs.path(digest), 0, blobs.path(digest).stat().st_size
    else:
        name, offset, length = location
        path = blobs.packs.pack_path(name)
    with open(path, "r+b") as handle:
        handle.seek(offset + length // 2)
        byte = handle.read(1)[0]
        handle.seek(offset + length // 2)
        handle.write(bytes([byte ^ 1]))


def test_a_corrupt_chunk_is_caught_by_checkout_and_verify(
    blobs: LocalBlobStore, folder: Path, tmp_path: Path
) -> None:
    manifest = snapshot(blobs, folder).manifest
    big = next(entry for entry in manifest.files if entry.path == "train/deep/big.bin")
    _corrupt(blobs, big.chunks[2])

    problems = verify(blobs, manifest)
    assert len(problems) == 1 and "train/deep/big.bin" in problems[0] and "corrupt" in problems[0]

    target = tmp_path / "out"
    with pytest.raises(CorruptBlob, match=r"train/deep/big\.bin"):
        checkout(blobs, manifest, target)
    deep = target / "train" / "deep"
    assert not (deep / "big.bin").exists()
    assert list(deep.iterdir()) == []  # no temporary file left behind either


def test_a_missing_chunk_is_caught_by_checkout_and_verify(
    blobs: LocalBlobStore, folder: Path, tmp_path: Path
) -> None:
    manifest = snapshot(blobs, folder).manifest
    entry = next(entry for entry in manifest.files if entry.path == "medium.bin")
    blobs.delete(entry.chunks[0])
    assert verify(blobs, manifest) == [f"medium.bin: chunk {entry.chunks[0]} is missing"]
    with pytest.raises(NotFound, match=r"medium\.bin"):
        checkout(blobs, manifest, tmp_path / "out")
    assert not (tmp_path / "out" / "medium.bin").exists()


def test_a_corrupt_or_missing_manifest_is_refused(blobs: LocalBlobStore, folder: Path) -> None:
    result = snapshot(blobs, folder)
    _corrupt(blobs, result.manifest_digest)
    with pytest.raises(CorruptBlob):
        load_manifest(blobs, result.manifest_digest)
    blobs.delete(result.manifest_digest)
    with pytest.raises(NotFound, match="manifest"):
        load_manifest(blobs, result.manifest_digest)


def test_checkout_refuses_a_non_empty_target_unless_forced(
    blobs: LocalBlobStore, folder: Path, tmp_path: Path
) -> None:
    manifest = snapshot(blobs, folder).manifest
    target = tmp_path / "out"
    target.mkdir()
    (target / "README.md").write_text("old")
    (target / "keep.txt").write_text("mine")
    with pytest.raises(TargetNotEmpty):
        checkout(blobs, manifest, target)
    checkout(blobs, manifest, target, force=True)
    assert (target / "README.md").read_text() == "hello ü\n"
    assert (target / "keep.txt").read_text() == "mine"


def test_forced_checkout_does_not_write_through_a_link_in_the_target(
    blobs: LocalBlobStore, folder: Path, tmp_path: Path
) -> None:
    manifest = snapshot(blobs, folder).manifest
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    target = tmp_path / "out"
    target.mkdir()
    (target / "train").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(UnsafePath, match="not a folder"):
        checkout(blobs, manifest, target, force=True)
    assert list(elsewhere.iterdir()) == []


def test_checkout_refuses_a_file_as_target(blobs: LocalBlobStore, folder: Path, tmp_path: Path) -> None:
    manifest = snapshot(blobs, folder).manifest
    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidInput, match="not a folder"):
        checkout(blobs, manifest, tmp_path / "file")


def test_the_blob_store_holds_chunks_and_manifest_only(blobs: LocalBlobStore, folder: Path) -> None:
    result = snapshot(blobs, folder)
    stored = {digest for digest, _, _ in blobs.digests()}
    assert stored == result.manifest.chunk_digests() | {result.manifest_digest}
    assert result.chunks_total == len(result.manifest.chunk_digests())
    assert not any((blobs.root / "tmp").iterdir())
    assert not any((blobs.root / "objects").rglob("*/*"))  # all packed, nothing loose
