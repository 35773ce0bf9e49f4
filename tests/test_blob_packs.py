"""Pack files in the local blob store: packed objects read like loose ones, a pack is visible only
once complete, crash leftovers are ignored and collected, and gc deletes or repacks dead packs."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from charter.data.chunking import content_digest
from charter.errors import NotFound
from charter.storage.blobs import LocalBlobStore
from charter.storage.pack_file import SPOOL
from charter.storage.packs import INDEX_SUFFIX, PACK_SUFFIX

HOUR = 3600.0


def blob(n: int, seed: int) -> tuple[str, bytes]:
    data = np.random.default_rng(seed).bytes(n)
    return content_digest(data), data


@pytest.fixture(params=["direct", "buffered"])
def blobs(tmp_path: Path, request: pytest.FixtureRequest) -> LocalBlobStore:
    """A store whose packs are written with O_DIRECT where the file system allows, and one whose
    packs go through the page cache (what a file system without direct I/O gets)."""
    store = LocalBlobStore(tmp_path / "blobs", direct_io=request.param == "direct")
    store.create()
    return store


def packed(store: LocalBlobStore, *items: tuple[str, bytes]) -> list[bool]:
    with store.writer() as writer:
        return writer.put_many(items)


def pack_files(store: LocalBlobStore) -> list[str]:
    return sorted(path.name for path in store.packs.folder.iterdir())


def age(store: LocalBlobStore, seconds: float) -> None:
    """Make every pack look `seconds` old."""
    then = time.time() - seconds
    for path in store.packs.folder.iterdir():
        os.utime(path, (then, then))


def test_packed_and_loose_objects_read_the_same(blobs: LocalBlobStore) -> None:
    loose, packed_one = blob(5000, 1), blob(70_000, 2)
    assert blobs.put(*loose)
    assert packed(blobs, packed_one) == [True]
    assert not blobs.path(packed_one[0]).exists()
    for digest, data in (loose, packed_one):
        assert blobs.has(digest)
        assert blobs.get(digest) == data
        assert blobs.size(digest) == len(data)
        with blobs.open(digest) as handle:
            assert handle.read() == data
    assert {(d, s) for d, _, s in blobs.digests()} == {(loose[0], 5000), (packed_one[0], 70_000)}
    missing = "0" * 64
    assert not blobs.has(missing)
    with pytest.raises(NotFound):
        blobs.get(missing)
    with pytest.raises(NotFound):
        blobs.open(missing)
    with pytest.raises(NotFound):
        blobs.size(missing)


def test_a_batch_is_invisible_until_committed_and_gone_when_aborted(blobs: LocalBlobStore) -> None:
    first, second = blob(1000, 1), blob(2000, 2)
    writer = blobs.writer()
    writer.put_many([first])
    assert not blobs.has(first[0]) and pack_files(blobs) == []
    writer.commit()
    assert blobs.get(first[0]) == first[1]
    assert len(pack_files(blobs)) == 2  # one pack and its index

    aborted = blobs.writer()
    aborted.put_many([second])
    aborted.abort()
    assert not blobs.has(second[0])
    assert list(blobs.tmp.iterdir()) == [] and len(pack_files(blobs)) == 2


def test_objects_already_stored_loose_or_packed_are_not_written_again(blobs: LocalBlobStore) -> None:
    loose, a, b = blob(100, 1), blob(200, 2), blob(300, 3)
    blobs.put(*loose)
    assert packed(blobs, loose, a, a) == [False, True, False]
    assert packed(blobs, a, b) == [False, True]
    assert len(pack_files(blobs)) == 4  # two packs with their indexes
    assert packed(blobs, a, b) == [False, False]
    assert len(pack_files(blobs)) == 4  # a batch with nothing new writes no pack


def test_relying_on_a_loose_object_makes_the_commit_sync_loose_objects(tmp_path: Path) -> None:
    """A loose object may come from a process that has not synced it yet (a chunk uploaded to the
    server): a batch that skips it because it is there must make it durable before committing."""
    syncs: list[int] = []

    class Counting(LocalBlobStore):
        def sync(self) -> None:
            syncs.append(1)

    store = Counting(tmp_path / "blobs")
    store.create()
    loose, fresh = blob(100, 1), blob(200, 2)
    assert packed(store, fresh) == [True] and syncs == []
    store.put(*loose)
    assert packed(store, loose, blob(300, 3)) == [False, True] and syncs == [1]


@pytest.mark.parametrize("direct_io", [True, False])
def test_a_full_pack_is_closed_and_the_next_one_started(tmp_path: Path, direct_io: bool) -> None:
    store = LocalBlobStore(tmp_path / "blobs", pack_limit=50_000, direct_io=direct_io)
    store.create()
    items = [blob(20_000, seed) for seed in range(10)]
    assert packed(store, *items) == [True] * 10
    names = pack_files(store)
    packs = [name for name in names if name.endswith(PACK_SUFFIX)]
    assert len(packs) == 5 and len(names) == 10  # two objects per pack, each pack with its index
    for digest, data in items:
        assert store.get(digest) == data
    for pack in packs:
        held = [length for name, _, length in _where(store).values() if name + PACK_SUFFIX == pack]
        assert (store.packs.folder / pack).stat().st_size == 16 + sum(held)  # no padding left


def test_an_object_larger_than_the_write_buffers_round_trips(blobs: LocalBlobStore) -> None:
    big = blob(SPOOL * 2 + 12345, 7)  # spans several direct writes and ends in a partial one
    small = blob(10, 8)
    assert packed(blobs, small, big) == [True, True]
    assert blobs.get(big[0]) == big[1] and blobs.get(small[0]) == small[1]


def _where(store: LocalBlobStore) -> dict[str, tuple[str, int, int]]:
    store.packs.refresh(force=True)
    return {digest: store.packs.locate(digest) for digest, _, _ in store.digests()}  # type: ignore[misc]


def test_another_store_instance_sees_a_pack_committed_after_it_looked(blobs: LocalBlobStore) -> None:
    reader = LocalBlobStore(blobs.root)
    early = blob(100, 1)
    packed(blobs, early)
    assert reader.get(early[0]) == early[1]  # loads the index
    late = blob(200, 2)
    packed(blobs, late)
    assert reader.get(late[0]) == late[1]
    assert reader.size(late[0]) == 200


def test_a_pack_without_its_index_is_ignored_and_collected_after_the_grace_period(
    blobs: LocalBlobStore,
) -> None:
    item = blob(1000, 1)
    packed(blobs, item)
    index = next(p for p in blobs.packs.folder.iterdir() if p.name.endswith(INDEX_SUFFIX))
    index.unlink()  # as if the process died between renaming the pack and its index
    fresh = LocalBlobStore(blobs.root)
    assert not fresh.has(item[0])
    with pytest.raises(NotFound):
        fresh.get(item[0])

    assert fresh.collect(set(), time.time() - HOUR).leftovers == 0  # within the grace period
    assert len(pack_files(fresh)) == 1
    age(fresh, 2 * HOUR)
    assert fresh.collect(set(), time.time() - HOUR).leftovers == 1
    assert pack_files(fresh) == []


def test_a_damaged_index_hides_its_pack_and_a_temporary_pack_is_cleaned(blobs: LocalBlobStore) -> None:
    item = blob(1000, 1)
    packed(blobs, item)
    index = next(p for p in blobs.packs.folder.iterdir() if p.name.endswith(INDEX_SUFFIX))
    index.write_bytes(index.read_bytes()[:-5])
    assert not LocalBlobStore(blobs.root).has(item[0])

    writer = blobs.writer()
    writer.put_many([blob(500, 2)])  # never committed: a process killed here leaves a temporary pack
    temp = next(blobs.tmp.iterdir())
    writer._current.file.close()  # type: ignore[union-attr]  # as the dead process's descriptor
    then = time.time() - 2 * HOUR
    os.utime(temp, (then, then))
    result = blobs.collect(set(), time.time() - HOUR)
    assert not temp.exists() and result.leftovers >= 1


def test_gc_deletes_a_dead_pack_and_keeps_a_live_one(blobs: LocalBlobStore) -> None:
    live, dead = blob(1000, 1), blob(1000, 2)
    packed(blobs, live)
    packed(blobs, dead)
    age(blobs, 2 * HOUR)
    dry = blobs.collect({live[0]}, time.time() - HOUR, dry_run=True)
    assert dry.removed == 1 and blobs.has(dead[0]) and len(pack_files(blobs)) == 4
    result = blobs.collect({live[0]}, time.time() - HOUR)
    assert result.removed == 1 and result.freed > 1000
    assert not blobs.has(dead[0]) and blobs.get(live[0]) == live[1]
    assert len(pack_files(blobs)) == 2


def test_gc_repacks_a_mostly_dead_pack(blobs: LocalBlobStore) -> None:
    items = [blob(10_000, seed) for seed in range(4)]
    packed(blobs, *items)
    age(blobs, 2 * HOUR)
    before = pack_files(blobs)
    stale_reader = LocalBlobStore(blobs.root)
    assert stale_reader.has(items[0][0])  # holds the old index

    result = blobs.collect({items[0][0]}, time.time() - HOUR)
    assert result.removed == 3 and result.freed == 30_000
    after = pack_files(blobs)
    assert len(after) == 2 and not set(after) & set(before)
    assert blobs.get(items[0][0]) == items[0][1]
    assert all(not blobs.has(digest) for digest, _ in items[1:])
    assert stale_reader.get(items[0][0]) == items[0][1]  # finds the object in its new pack


def test_gc_leaves_a_mostly_live_pack_alone(blobs: LocalBlobStore) -> None:
    items = [blob(10_000, seed) for seed in range(4)]
    packed(blobs, *items)
    age(blobs, 2 * HOUR)
    before = pack_files(blobs)
    result = blobs.collect({digest for digest, _ in items[:3]}, time.time() - HOUR)
    assert result.removed == 0 and result.left_in_packs == 10_000
    assert pack_files(blobs) == before


def test_gc_never_touches_a_pack_within_the_grace_period(blobs: LocalBlobStore) -> None:
    items = [blob(1000, seed) for seed in range(3)]
    packed(blobs, *items)
    result = blobs.collect(set(), time.time() - HOUR)
    assert result.removed == 0 and result.kept_recent == 3
    assert all(blobs.has(digest) for digest, _ in items)


def test_deleting_a_packed_object_rewrites_its_pack(blobs: LocalBlobStore) -> None:
    a, b = blob(1000, 1), blob(1000, 2)
    packed(blobs, a, b)
    blobs.delete(a[0])
    assert not blobs.has(a[0]) and blobs.get(b[0]) == b[1]
    assert not LocalBlobStore(blobs.root).has(a[0])


def test_unpacking_leaves_every_object_loose_for_an_object_store(blobs: LocalBlobStore) -> None:
    loose, a, b = blob(100, 1), blob(200, 2), blob(300, 3)
    blobs.put(*loose)
    packed(blobs, a, b)
    assert blobs.unpack() == 2
    assert pack_files(blobs) == []
    for digest, data in (loose, a, b):
        assert blobs.path(digest).read_bytes() == data


def test_a_file_system_that_opens_direct_but_refuses_direct_writes_gets_buffered_packs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Some FUSE and network file systems accept O_DIRECT at open and fail the writes with EINVAL:
    the pack is then written through the page cache instead of failing the snapshot."""
    import errno
    import fcntl

    if not getattr(os, "O_DIRECT", 0):
        pytest.skip("no O_DIRECT on this platform")
    real_pwrite = os.pwrite
    refused: list[int] = []

    def pwrite(fd: int, data: object, offset: int) -> int:
        if fcntl.fcntl(fd, fcntl.F_GETFL) & getattr(os, "O_DIRECT", 0):
            refused.append(fd)
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_pwrite(fd, data, offset)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "pwrite", pwrite)
    store = LocalBlobStore(tmp_path / "blobs", direct_io=True)
    store.create()
    items = [blob(SPOOL + 1000, 1), blob(100, 2)]
    assert packed(store, *items) == [True, True]
    assert refused, "the direct write was never tried"
    fresh = LocalBlobStore(store.root)
    for digest, data in items:
        assert fresh.get(digest) == data
