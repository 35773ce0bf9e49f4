"""Pluggable blob storage: the fsspec store on fsspec's memory file system, and a whole charter flow
on S3 (moto's server on loopback, real HTTP) over both database backends."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import blake3
import pytest

from charter.config import Settings
from charter.data.snapshot import checkout, snapshot, verify
from charter.errors import NotFound
from charter.service.setup import _blob_store
from charter.storage.blobs import LocalBlobStore
from charter.storage.blobs_fsspec import BlobStoreUnavailable, FsspecBlobStore, UnsupportedBlobUrl
from tests.cli_runner import Cli


def _digest(data: bytes) -> str:
    return str(blake3.blake3(data).hexdigest())


def _key(store: FsspecBlobStore, digest: str) -> str:
    return f"{store.root}/objects/{digest[:2]}/{digest}"


class Requests:
    """What charter's S3 store asked the server for (object keys), recorded on its file system."""

    def __init__(self, store: FsspecBlobStore, monkeypatch: pytest.MonkeyPatch) -> None:
        self.uploaded: list[str] = []
        self.looked_up: list[str] = []
        fs = store.fs  # fsspec caches file systems: the CLI's store gets this same one
        pipe_file, exists = fs.pipe_file, fs.exists

        def recorded_pipe_file(path: str, data: bytes, **kwargs: Any) -> Any:
            self.uploaded.append(path)
            return pipe_file(path, data, **kwargs)

        def recorded_exists(path: str, **kwargs: Any) -> Any:
            self.looked_up.append(path)
            return exists(path, **kwargs)

        monkeypatch.setattr(fs, "pipe_file", recorded_pipe_file)
        monkeypatch.setattr(fs, "exists", recorded_exists)

    def clear(self) -> None:
        self.uploaded.clear()
        self.looked_up.clear()


@pytest.fixture
def memory_store() -> Iterator[FsspecBlobStore]:
    name = f"charter-{uuid.uuid4().hex}"
    store = FsspecBlobStore(f"memory://{name}/blobs")
    store.create()
    yield store
    store.fs.rm(f"/{name}", recursive=True)


# --- the fsspec store on memory:// --------------------------------------------------------------


def test_objects_round_trip_under_the_local_layout(memory_store: FsspecBlobStore) -> None:
    data = b"a chunk of data" * 100
    digest = _digest(data)
    assert memory_store.exists() and not memory_store.has(digest)
    assert memory_store.put(digest, memoryview(data)) is True
    assert memory_store.put(digest, data) is False  # an existing object is not written again
    assert memory_store.has(digest) and memory_store.get(digest) == data
    assert memory_store.size(digest) == len(data)
    with memory_store.open(digest) as handle:
        assert handle.read(5) == data[:5] and handle.read() == data[5:]
    assert memory_store.fs.cat_file(_key(memory_store, digest)) == data
    memory_store.delete(digest)
    memory_store.delete(digest)  # deleting what is not there is a no-op
    assert not memory_store.has(digest)


def test_a_store_exists_once_created() -> None:
    store = FsspecBlobStore(f"memory://charter-{uuid.uuid4().hex}/blobs/")
    assert not store.exists()
    store.create()
    store.create()  # idempotent
    assert store.exists() and store.location == store.url and not store.url.endswith("/")


def test_missing_objects_are_not_found(memory_store: FsspecBlobStore) -> None:
    digest = "0" * 64
    for read in (memory_store.get, memory_store.open, memory_store.size):
        with pytest.raises(NotFound, match="missing an object"):
            read(digest)
    with pytest.raises(ValueError, match="not a BLAKE3"):
        memory_store.has("../escape")


def test_put_keeps_its_own_copy_of_a_reused_buffer(memory_store: FsspecBlobStore) -> None:
    buffer = bytearray(b"x" * 1000)
    digest = _digest(bytes(buffer))
    memory_store.put(digest, memoryview(buffer))
    buffer[:] = b"y" * 1000
    assert memory_store.get(digest) == b"x" * 1000


def test_put_many_reports_each_item_in_order(memory_store: FsspecBlobStore) -> None:
    blobs = [f"blob {i}".encode() for i in range(40)]
    memory_store.put(_digest(blobs[3]), blobs[3])
    written = memory_store.put_many((_digest(b), b) for b in blobs)
    assert written == [i != 3 for i in range(40)]
    assert all(memory_store.get(_digest(b)) == b for b in blobs)
    assert memory_store.put_many([]) == []


def test_digests_list_objects_with_size_and_time(memory_store: FsspecBlobStore) -> None:
    data = {_digest(b): b for b in (b"one", b"two two")}
    for digest, blob in data.items():
        memory_store.put(digest, blob)
    memory_store.fs.pipe_file(f"{memory_store.root}/objects/ab/not-a-digest", b"x")
    memory_store.fs.pipe_file(f"{memory_store.root}/objects/ab/{'c' * 64}", b"wrong shard")
    listed = {digest: (mtime, size) for digest, mtime, size in memory_store.digests()}
    assert {d: s for d, (_, s) in listed.items()} == {d: len(b) for d, b in data.items()}
    assert all(mtime > 1_600_000_000 for mtime, _ in listed.values())
    assert memory_store.clean_temporary(float("inf")) == 0 and memory_store.parallelism > 1


def test_a_non_atomic_file_system_writes_through_a_temporary_name(tmp_path: Path) -> None:
    store = FsspecBlobStore(f"file://{tmp_path}/blobs")
    store.create()
    digest = _digest(b"data")
    assert store.put(digest, b"data") and store.get(digest) == b"data"
    assert (tmp_path / "blobs" / "objects" / digest[:2] / digest).read_bytes() == b"data"
    assert not list((tmp_path / "blobs" / "tmp").iterdir())  # moved into place
    (tmp_path / "blobs" / "tmp" / "left-by-a-crash").write_bytes(b"partial")
    assert store.clean_temporary(0) == 0  # younger than the cutoff: kept
    assert store.clean_temporary(float("inf")) == 1
    assert not list((tmp_path / "blobs" / "tmp").iterdir())


def test_snapshot_and_checkout_through_the_fsspec_store(
    memory_store: FsspecBlobStore, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    (source / "sub").mkdir(parents=True)
    (source / "big.bin").write_bytes(bytes(range(256)) * 20_000)  # several chunks
    for i in range(50):
        (source / "sub" / f"{i}.txt").write_text(f"small file {i}\n" * (i + 1))
    first = snapshot(memory_store, source)
    assert first.chunks_new == first.chunks_total > 50
    assert verify(memory_store, first.manifest) == []
    checkout(memory_store, first.manifest, tmp_path / "out")
    for path in source.rglob("*"):
        if path.is_file():
            assert (tmp_path / "out" / path.relative_to(source)).read_bytes() == path.read_bytes()
    again = snapshot(memory_store, source)
    assert again.manifest_digest == first.manifest_digest and again.chunks_new == 0


def test_chunks_known_to_be_stored_are_not_looked_up(
    memory_store: FsspecBlobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "f.bin"
    source.write_bytes(bytes(range(256)) * 10_000)
    first = snapshot(memory_store, source)
    requests = Requests(memory_store, monkeypatch)
    again = snapshot(memory_store, source, present=first.manifest.chunk_digests())
    assert again.chunks_new == 0 and again.chunks_total == first.chunks_total > 1
    assert requests.looked_up == [_key(memory_store, first.manifest_digest)] and requests.uploaded == []


# --- choosing a store from CHARTER_BLOB_URL ------------------------------------------------------


def _settings(tmp_path: Path, blob_url: str) -> Settings:
    return Settings(home=tmp_path, database_url="sqlite://", blob_url=blob_url, user="admin")


def test_plain_paths_and_file_urls_are_local_folders_and_other_urls_go_to_fsspec(tmp_path: Path) -> None:
    for url in (str(tmp_path / "blobs"), f"file://{tmp_path}/blobs"):
        store = _blob_store(_settings(tmp_path, url))
        assert isinstance(store, LocalBlobStore) and store.root == tmp_path / "blobs"
    store = _blob_store(_settings(tmp_path, "memory://charter-choice/blobs"))
    assert isinstance(store, FsspecBlobStore) and store.root == "/charter-choice/blobs"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("nosuch://bucket/prefix", "knows no protocol 'nosuch'"),
        ("https://example.com/blobs", "read-only"),
        ("memory://", "give a bucket or folder"),
        ("simplecache::s3://bucket/prefix", "chained"),
    ],
)
def test_an_unusable_url_is_refused_naming_what_is_accepted(tmp_path: Path, url: str, reason: str) -> None:
    with pytest.raises(UnsupportedBlobUrl, match=reason) as refused:
        _blob_store(_settings(tmp_path, url))
    assert "s3://bucket/prefix" in str(refused.value) and "local folder path" in str(refused.value)


def test_without_fsspec_the_error_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "fsspec", None)  # `import fsspec` now raises ImportError
    with pytest.raises(UnsupportedBlobUrl, match=r"charter\[s3\]"):
        _blob_store(_settings(tmp_path, "s3://bucket/prefix"))
    assert isinstance(_blob_store(_settings(tmp_path, str(tmp_path))), LocalBlobStore)


# --- S3 (moto on loopback) ----------------------------------------------------------------------


def test_creating_a_store_creates_its_bucket(s3_bucket: str) -> None:
    store = FsspecBlobStore(f"s3://{s3_bucket}-new/charter")
    assert not store.exists()
    store.create()
    assert store.exists() and store.put("a" * 64, b"x") and store.get("a" * 64) == b"x"
    store.fs.rm(f"{s3_bucket}-new", recursive=True)


def test_a_missing_bucket_or_unreachable_endpoint_is_reported_by_name(s3_bucket: str) -> None:
    missing = FsspecBlobStore(f"s3://{s3_bucket}-missing/blobs")
    with pytest.raises(
        BlobStoreUnavailable, match=r"failed to list the stored objects.*bucket does not exist"
    ):
        list(missing.digests())
    options = {"endpoint_url": "http://127.0.0.1:9", "config_kwargs": {"retries": {"max_attempts": 1}}}
    down = FsspecBlobStore(f"s3://{s3_bucket}/blobs", options)
    with pytest.raises(BlobStoreUnavailable, match=r"Could not connect.*AWS_\* environment variables"):
        down.put("a" * 64, b"x")


def _table(path: Path, rows: int) -> Path:
    path.write_text(
        "id,text,score\n" + "".join(f"{i},ticket number {i} about {i % 97},{i % 13}\n" for i in range(rows))
    )
    return path


@pytest.fixture
def s3_cli(
    s3_bucket: str,
    database_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Cli:
    monkeypatch.setenv("CHARTER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CHARTER_DATABASE_URL", database_url)
    monkeypatch.setenv("CHARTER_BLOB_URL", f"s3://{s3_bucket}/charter")
    monkeypatch.setenv("CHARTER_USER", "admin")
    for name in ("CHARTER_URL", "CHARTER_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return Cli(capsys, monkeypatch)


def test_a_store_on_s3_serves_the_whole_flow(
    backend: str, s3_cli: Cli, s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli = s3_cli
    init = cli("init", "--json")
    assert init.code == 0, init.err
    assert init.json()["blobs"] == f"s3://{s3_bucket}/charter"
    store = _blob_store(Settings.from_env())
    assert isinstance(store, FsspecBlobStore) and store.exists()
    requests = Requests(store, monkeypatch)

    def objects() -> set[str]:
        return {digest for digest, _, _ in store.digests()}

    data = _table(tmp_path / "tickets.csv", 40_000)
    first = cli("dataset", "add", "tickets", str(data), "--role", "train", "--json")
    assert first.code == 0, first.err
    v1_bytes = data.read_bytes()
    stored_v1 = objects()
    assert len(stored_v1) >= 6  # several chunks, the manifest, the row fingerprints
    assert sorted(requests.uploaded) == sorted(_key(store, d) for d in stored_v1)

    # a second version adding one row uploads only the chunks that are new, and asks nothing about
    # the chunks the first version holds
    requests.clear()
    with data.open("a") as handle:
        handle.write("40000,one more ticket,1\n")
    second = cli("dataset", "add", "tickets", str(data), "--role", "train", "--json")
    assert second.code == 0, second.err
    assert second.json()["version"]["ref"] == "tickets@2"
    new = objects() - stored_v1
    assert sorted(requests.uploaded) == sorted(_key(store, d) for d in new)
    assert 2 <= len(new) <= 5  # the tail chunk(s), the manifest, the fingerprints
    assert second.json()["bytes_new"] < len(v1_bytes) / 2
    assert not {_key(store, d) for d in stored_v1} & set(requests.looked_up)

    for ref, expected in (("tickets@1", v1_bytes), ("tickets@2", data.read_bytes())):
        out = tmp_path / f"out-{ref}"
        assert cli("dataset", "checkout", ref, str(out)).code == 0
        assert (out / "tickets.csv").read_bytes() == expected

    weights = tmp_path / "weights.bin"
    weights.write_bytes(bytes(range(256)) * 4096)
    register = cli(
        "model", "register", "ranker", "--family", "llama-3", "--architecture", "decoder-only transformer",
        "--parameter-count", "8B", "--weights", str(weights), "--training-dataset", "tickets@1",
        "--training-date", "2026-02-01", "--json",
    )  # fmt: skip
    assert register.code == 0, register.err
    assert store.has(register.json()["spec"]["weights"]["manifest"])
    reproduce = cli("model", "reproduce", "ranker@1.0.0", str(tmp_path / "repro"), "--json")
    assert reproduce.code == 0, reproduce.err
    assert (tmp_path / "repro" / "tickets@1" / "tickets.csv").read_bytes() == v1_bytes

    # gc: an unreferenced object is kept within the grace period and removed after it
    orphan = b"written by an add that never committed"
    store.put(_digest(orphan), orphan)
    everything = objects()
    kept = cli("dataset", "gc", "--json").json()
    assert (kept["removed"], kept["kept_recent"]) == (0, 1) and objects() == everything
    dry = cli("dataset", "gc", "--grace", "0s", "--dry-run", "--json").json()
    assert dry["removed"] == 1 and objects() == everything
    done = cli("dataset", "gc", "--grace", "0s", "--json").json()
    assert (done["removed"], done["bytes_removed"]) == (1, len(orphan))
    assert objects() == everything - {_digest(orphan)} and store.exists()
    out = tmp_path / "after-gc"
    assert cli("dataset", "checkout", "tickets@2", str(out)).code == 0
    assert (out / "tickets.csv").read_bytes() == data.read_bytes()
    assert cli("audit", "verify", "--json").json()["ok"]
