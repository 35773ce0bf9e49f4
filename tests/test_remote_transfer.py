"""Moving the caller's files over real HTTP: deduplicated resumable uploads, streamed checkouts,
drift inputs, model weights, prompt folders, track policies and transaction batches — each with
the same result as the embedded use case."""

from __future__ import annotations

import base64
import inspect
import json
import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import yaml

from charter.api import frames
from charter.client import transfer
from charter.client.remote import RemoteRegistry
from charter.clock import ManualClock
from charter.data.chunking import MAX_CHUNK, content_digest
from charter.errors import InvalidInput, MissingRole, NotFound, StoreUnavailable
from charter.service.registry import Registry
from tests.conftest import add_user
from tests.server_fixtures import live_server  # noqa: F401  (a fixture)

SERVICE_OF = {
    "dataset_add": ("datasets", "add"),
    "dataset_checkout": ("datasets", "checkout"),
    "dataset_drift": ("datasets", "drift"),
    "model_register": ("models", "register"),
    "model_reproduce": ("models", "reproduce"),
    "prompt_sync": ("prompts", "sync"),
    "prompt_check": ("prompts", "check"),
    "prompt_export": ("prompts", "export"),
    "prompt_validate": ("prompts", "validate"),
    "slot_create": ("slots", "create"),
}


class Wire(httpx.BaseTransport):
    """Real HTTP, with every request counted; after `cut_after` requests carrying chunks, the
    connection "drops"."""

    def __init__(self, cut_after: int | None = None) -> None:
        self.inner = httpx.HTTPTransport()
        self.cut_after = cut_after
        self.sent: list[tuple[str, str, int]] = []  # method, path, chunk bodies carried
        self.chunk_bytes = 0
        self.lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        carried: list[bytes] = []
        if request.method == "PUT":
            carried = [request.content]
        elif request.url.path.endswith("/blobs/batch"):
            carried = [data for _, data in frames.decode(request.content, max_chunks=10_000)]
        with self.lock:
            if carried and self.cut_after is not None and self.uploads >= self.cut_after:
                raise httpx.ConnectError("connection reset (test)", request=request)
            self.sent.append((request.method, request.url.path, len(carried)))
            self.chunk_bytes += sum(len(data) for data in carried)
        return self.inner.handle_request(request)

    @property
    def uploads(self) -> int:
        """Requests that carried chunk bodies."""
        return sum(1 for _, _, carried in self.sent if carried)

    @property
    def chunks(self) -> int:
        """Chunk bodies carried."""
        return sum(carried for _, _, carried in self.sent)

    def close(self) -> None:
        self.inner.close()


@pytest.fixture
def server(live_server: tuple[str, str]) -> tuple[str, str]:  # noqa: F811
    return live_server


@pytest.fixture
def wire() -> Wire:
    return Wire()


def connect(url: str, token: str, transport: httpx.BaseTransport | None = None) -> Registry:
    """A remote registry, typed as the embedded one it stands for."""
    return cast("Registry", RemoteRegistry(url, token, transport=transport))


@pytest.fixture
def remote(server: tuple[str, str], wire: Wire) -> Iterator[Registry]:
    url, token = server
    client = connect(url, token, wire)
    yield client
    client.close()


def token_of(registry: Registry, user: str, *roles: str) -> str:
    add_user(registry, user, *roles)
    return registry.tokens.create(user).secret


def table(path: Path, rows: int, *, start: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "text,label,score\n"
        + "".join(
            f"ticket {i} about billing and refunds,{i % 3},{i * 0.25}\n" for i in range(start, start + rows)
        )
    )
    return path


def folder_of_files(root: Path) -> Path:
    table(root / "train.csv", 3000)
    (root / "raw").mkdir(parents=True)
    (root / "raw" / "blob.bin").write_bytes(os.urandom(3 * MAX_CHUNK))
    (root / "raw" / "empty.txt").write_bytes(b"")
    return root


# --- the functions stand for the service methods ---------------------------------------------


def test_every_local_half_has_the_service_methods_parameters() -> None:
    from charter.api.signatures import service_class

    for function, (service, method) in SERVICE_OF.items():
        mine = list(inspect.signature(getattr(transfer, function)).parameters.values())[1:]
        theirs = list(inspect.signature(getattr(service_class(service), method)).parameters.values())[1:]
        assert [(p.name, p.kind, p.default) for p in mine] == [(p.name, p.kind, p.default) for p in theirs]


# --- dataset uploads -------------------------------------------------------------------------


def test_an_upload_records_what_an_embedded_add_of_the_same_files_records(
    registry: Registry, remote: Registry, wire: Wire, tmp_path: Path
) -> None:
    data = folder_of_files(tmp_path / "data")
    seen: list[int] = []
    sent = remote.datasets.add(
        "corpus", data, role="train", sources=["s3://x"], message="first", progress=seen.append
    )
    assert sent.created and sent.version.ref == "corpus@1" and sent.version.created_by == "admin"
    embedded = registry.datasets.add("twin", data, role="train", sources=["s3://x"], message="first")
    assert sum(seen) == sent.bytes_read == embedded.bytes_read
    for field in ("digest", "kind", "files", "bytes_total", "schema", "row_count", "has_fingerprints"):
        assert getattr(sent.version, field) == getattr(embedded.version, field), field
    assert sent.version.kind == "files"  # a folder holding a non-table file is not a table
    # what the upload added to the store: every chunk, the manifest; the twin added nothing
    blobs = registry.store.blobs
    manifest = json.loads(blobs.get(sent.version.digest))
    chunks = {c for f in manifest["files"] for c in f["chunks"]}
    assert sent.bytes_new == sum(blobs.size(c) for c in chunks) + blobs.size(sent.version.digest)
    assert embedded.bytes_new == 0
    assert wire.chunks == len(chunks) and wire.uploads == 1  # a few MB: one request
    event = registry.audit.log()[-2]
    assert event.action == "dataset.version_added" and event.actor == "admin"
    assert event.payload["bytes_new"] == sent.bytes_new and event.payload["digest"] == sent.version.digest


def test_a_table_is_profiled_and_fingerprinted_by_the_server_like_embedded(
    registry: Registry, remote: Registry, tmp_path: Path
) -> None:
    path = table(tmp_path / "t.csv", 5000)
    sent = remote.datasets.add("rows", path, role="eval")
    embedded = registry.datasets.add("rows-twin", path, role="eval")
    assert sent.version.kind == "table" and sent.version.row_count == 5000
    with registry.store.read() as tx:
        fingerprints = tx.datasets.versions("rows")[0].fingerprints_digest
    blobs = registry.store.blobs
    chunks = {c for f in json.loads(blobs.get(sent.version.digest))["files"] for c in f["chunks"]}
    assert fingerprints is not None and embedded.bytes_new == 0
    assert sent.bytes_new == sum(blobs.size(c) for c in {*chunks, sent.version.digest, fingerprints})
    assert registry.datasets.profile("rows@1").profile == registry.datasets.profile("rows-twin@1").profile
    assert registry.datasets.overlap("rows@1", "rows-twin@1").ratio == 1.0  # same row fingerprints


def test_unchanged_data_sends_no_chunk_and_an_append_sends_only_the_tail(
    registry: Registry, remote: Registry, wire: Wire, tmp_path: Path
) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(8 * MAX_CHUNK))
    remote.datasets.add("big", path, role="train")
    before, sent = wire.chunks, wire.chunk_bytes
    again = remote.datasets.add("big", path, role="train")
    assert wire.chunks == before and not again.created and again.version.ref == "big@1"
    assert again.bytes_new == 0
    with path.open("ab") as out:
        out.write(os.urandom(100_000))
    appended = remote.datasets.add("big", path, role="train")
    assert appended.version.ref == "big@2"
    tail = wire.chunk_bytes - sent  # the old last chunk, cut anew with the appended bytes
    assert 100_000 < tail <= MAX_CHUNK + 100_000
    assert appended.bytes_new == tail + registry.store.blobs.size(appended.version.digest)


def test_an_interrupted_upload_sends_only_what_is_still_missing(
    registry: Registry, server: tuple[str, str], tmp_path: Path
) -> None:
    url, token = server
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(12 * MAX_CHUNK))
    cut = Wire(cut_after=1)
    with connect(url, token, cut) as first, pytest.raises(StoreUnavailable):
        first.datasets.add("big", path, role="train")
    assert registry.datasets.list() == []  # nothing recorded
    resumed = Wire()
    with connect(url, token, resumed) as second:
        result = second.datasets.add("big", path, role="train")
    manifest = json.loads(registry.store.blobs.get(result.version.digest))
    chunks = {c for f in manifest["files"] for c in f["chunks"]}
    assert 0 < cut.chunks < len(chunks) and resumed.chunks == len(chunks) - cut.chunks
    # the chunks that arrived before the cut count as new: no version referenced them
    assert result.bytes_new == sum(registry.store.blobs.size(c) for c in chunks) + len(
        registry.store.blobs.get(result.version.digest)
    )


def test_uploads_are_refused_like_embedded_adds(
    registry: Registry, server: tuple[str, str], remote: Registry, tmp_path: Path
) -> None:
    path = table(tmp_path / "t.csv", 10)
    with pytest.raises(InvalidInput, match="not a dataset role"):
        remote.datasets.add("x", path, role="nope")
    with pytest.raises(InvalidInput, match="does not exist"):
        remote.datasets.add("x", tmp_path / "missing.csv", role="train")
    with pytest.raises(NotFound, match="parent"):
        remote.datasets.add("x", path, role="train", derived_from="parent@1")
    url, _ = server
    with connect(url, token_of(registry, "vera", "viewer")) as viewer, pytest.raises(MissingRole):
        viewer.datasets.add("x", path, role="train")
    assert registry.datasets.list() == []


def test_the_server_checks_every_chunk_and_every_manifest(
    registry: Registry, server: tuple[str, str], tmp_path: Path
) -> None:
    url, token = server
    api = httpx.Client(base_url=f"{url}/api/v1", headers={"Authorization": f"Bearer {token}"})
    data = os.urandom(60_000)  # under the smallest chunk: always one chunk
    digest = content_digest(data)
    assert api.post("/blobs/missing", json={"digests": [digest]}).json() == {"missing": [digest]}
    wrong = api.put(f"/blobs/{'0' * 64}", content=data)
    assert wrong.status_code == 400 and wrong.json()["error"] == "DigestMismatch"
    assert api.put("/blobs/not-a-digest", content=data).status_code == 400
    huge = os.urandom(MAX_CHUNK + 1)
    too_long = api.put(f"/blobs/{content_digest(huge)}", content=huge)
    assert too_long.status_code == 413 and too_long.headers["content-type"] == "application/problem+json"
    assert api.put(f"/blobs/{digest}", content=data).status_code == 201
    assert api.put(f"/blobs/{digest}", content=data).status_code == 200  # already there
    assert api.get(f"/blobs/{digest}").content == data
    other = os.urandom(1000)
    batch = frames.encode([(content_digest(other), other), ("3" * 64, other)])
    refused = api.post("/blobs/batch", content=batch)
    assert refused.status_code == 400 and refused.json()["error"] == "DigestMismatch"
    assert api.post("/blobs/missing", json={"digests": [content_digest(other)]}).json()[
        "missing"
    ]  # none stored
    assert api.post("/blobs/batch", content=batch[:100]).json()["error"] == "MalformedBatch"
    good = api.post("/blobs/batch", content=frames.encode([(content_digest(other), other), (digest, data)]))
    assert good.json() == {"chunks": 2, "stored": 1}
    assert api.post("/blobs/batch", content=b"\0" * (17 * 1024 * 1024)).status_code == 413
    assert api.get(f"/blobs/{'1' * 64}").status_code == 404
    assert api.post("/blobs/missing", json={"digests": ["x"]}).status_code == 400
    assert api.post("/blobs/missing", json={"digests": [digest] * 10_001}).status_code == 400

    def commit(files: list[dict[str, Any]]) -> httpx.Response:
        manifest = {"format": "charter.manifest/1", "files": files}
        return api.post("/datasets/d/uploads", json={"manifest": manifest, "role": "train"})

    whole = {"path": "a.bin", "size": len(data), "digest": digest, "chunks": [digest]}
    absent = commit([{**whole, "chunks": ["2" * 64]}])
    assert absent.status_code == 400 and absent.json()["error"] == "UploadIncomplete"
    lying = commit([{**whole, "size": len(data) + 1}])
    assert lying.status_code == 400 and lying.json()["error"] == "InconsistentUpload"
    halves = [data[:30_000], data[30_000:]]
    for half in halves:
        api.put(f"/blobs/{content_digest(half)}", content=half)
    recut = commit([{**whole, "chunks": [content_digest(h) for h in halves]}])
    assert recut.status_code == 400 and recut.json()["error"] == "NonCanonicalChunks"
    escape = commit([{**whole, "path": "../a.bin"}])
    assert escape.status_code == 400 and "not allowed" in escape.json()["message"]
    assert commit([]).status_code == 400
    assert registry.datasets.list() == []
    assert commit([whole]).status_code == 201
    assert registry.datasets.get("d@1").digest == content_digest(
        json.dumps(
            {"files": [whole], "format": "charter.manifest/1"}, sort_keys=True, separators=(",", ":")
        ).encode()
    )
    viewer = httpx.Client(
        base_url=f"{url}/api/v1", headers={"Authorization": f"Bearer {token_of(registry, 'vera', 'viewer')}"}
    )
    assert viewer.put(f"/blobs/{digest}", content=data).status_code == 403
    assert viewer.get(f"/blobs/{digest}").status_code == 200  # reading needs read access only
    assert httpx.get(f"{url}/api/v1/blobs/{digest}").status_code == 401


# --- checkouts -------------------------------------------------------------------------------


def report_digest(registry: Registry, name: str) -> str:
    return registry.datasets.versions(name)[-1].digest


def test_a_checkout_streams_every_file_back_byte_for_byte(
    registry: Registry, remote: Registry, wire: Wire, tmp_path: Path
) -> None:
    data = folder_of_files(tmp_path / "data")
    registry.datasets.add("corpus", data, role="train")
    report = remote.datasets.checkout("corpus@1", tmp_path / "out")
    embedded = registry.datasets.checkout("corpus@1", tmp_path / "embedded")
    assert (report.files, report.bytes_written, report.verified) == (3, embedded.bytes_written, True)
    assert report.target == str((tmp_path / "out").absolute())
    for name in ("train.csv", "raw/blob.bin", "raw/empty.txt"):
        assert (tmp_path / "out" / name).read_bytes() == (data / name).read_bytes()
    assert not list((tmp_path / "out").rglob("*.charter-tmp"))
    manifest = json.loads(registry.store.blobs.get(report_digest(registry, "corpus")))
    fetched = [p for method, p, _ in wire.sent if method == "GET" and "/blobs/" in p]
    assert len(fetched) == sum(len(f["chunks"]) for f in manifest["files"])  # chunk by chunk
    assert wire.uploads == 0
    with pytest.raises(InvalidInput, match="not empty"):
        remote.datasets.checkout("corpus@1", tmp_path / "out")
    assert remote.datasets.checkout("corpus@1", tmp_path / "out", force=True).files == 3
    with pytest.raises(NotFound):
        remote.datasets.checkout("corpus@7", tmp_path / "other")


# --- drift -----------------------------------------------------------------------------------


def test_drift_against_local_files_is_computed_on_the_server_as_embedded(
    registry: Registry, remote: Registry, tmp_path: Path
) -> None:
    registry.datasets.add("train", table(tmp_path / "train.csv", 3000), role="train")
    production = table(tmp_path / "prod" / "day1.csv", 800, start=2000)
    table(tmp_path / "prod" / "nested" / "day2.csv", 400, start=2500)
    single = remote.datasets.drift("train@1", production, report=tmp_path / "remote.html")
    assert single.as_dict() == registry.datasets.drift("train@1", production).as_dict()
    assert single.against == str(production)
    registry.datasets.drift("train@1", production, report=tmp_path / "embedded.html")
    assert (tmp_path / "remote.html").read_text() == (tmp_path / "embedded.html").read_text()
    folder = remote.datasets.drift("train@1", tmp_path / "prod")
    assert folder.as_dict() == registry.datasets.drift("train@1", tmp_path / "prod").as_dict()
    registry.datasets.add("prod", production, role="production-sample")
    assert (
        remote.datasets.drift("train@1", "prod@1").as_dict()
        == registry.datasets.drift("train@1", "prod@1").as_dict()
    )
    empty = tmp_path / "empty.csv"
    empty.write_text("text,label,score\n")
    with pytest.raises(InvalidInput) as refused:
        remote.datasets.drift("train@1", empty)
    assert str(empty) in refused.value.message and "charter-drift" not in refused.value.message


def test_a_reference_is_never_read_as_a_path_on_the_server(
    registry: Registry, server: tuple[str, str], tmp_path: Path
) -> None:
    url, token = server
    registry.datasets.add("train", table(tmp_path / "train.csv", 300), role="train")
    secret = table(tmp_path / "server-side.csv", 50)  # exists on the server's file system
    api = httpx.Client(base_url=f"{url}/api/v1", headers={"Authorization": f"Bearer {token}"})
    refused = api.post("/dataset-versions/train@1/drift", json={"against": str(secret)})
    assert refused.status_code == 400 and "upload" in refused.json()["message"]
    unknown = api.post("/dataset-versions/train@1/drift", json={"against": "nowhere"})
    assert unknown.status_code == 400 and "neither" in unknown.json()["message"]


# --- models ----------------------------------------------------------------------------------


def test_weights_are_uploaded_and_referenced_as_an_embedded_registration_would(
    registry: Registry, remote: Registry, wire: Wire, tmp_path: Path
) -> None:
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(os.urandom(3 * MAX_CHUNK + 123))
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        yaml.safe_dump(
            {"family": "llama", "architecture": "decoder", "parameter_count": 8_000_000,
             "weights": weights.name, "training": {"date": "2024-05-01"}, "serving": {"temperature": 0.1}}
        )
    )  # fmt: skip
    sent = remote.models.register("m", spec)
    embedded = registry.models.register("twin", spec)
    assert sent.spec_digest == embedded.spec_digest and sent.ref == "m@1.0.0"
    assert sent.spec.weights == embedded.spec.weights
    before = wire.chunks
    retuned = {**yaml.safe_load(spec.read_text()), "weights": str(weights), "serving": {"temperature": 0.2}}
    assert remote.models.register("m", retuned).ref == "m@1.0.1"
    assert wire.chunks == before  # the weights were there already
    with pytest.raises(InvalidInput, match="does not exist"):
        remote.models.register("m", {"family": "llama", "weights": str(tmp_path / "absent.bin")})


def test_reproduce_writes_the_same_training_data_and_manifest(
    registry: Registry, remote: Registry, tmp_path: Path
) -> None:
    registry.datasets.add("train", table(tmp_path / "data" / "train.csv", 1000), role="train")
    registry.models.register(
        "m",
        {"family": "claude", "provider": "anthropic", "provider_model": "claude-sonnet-4-5-20250929",
         "training": {"datasets": ["train@1"]}},
    )  # fmt: skip
    sent = remote.models.reproduce("m@1.0.0", tmp_path / "remote")
    embedded = registry.models.reproduce("m@1.0.0", tmp_path / "embedded")
    assert sent.datasets == embedded.datasets and sent.model == "m@1.0.0"
    assert Path(sent.manifest).read_bytes() == Path(embedded.manifest).read_bytes()
    assert (tmp_path / "remote" / "train@1" / "train.csv").read_bytes() == (
        tmp_path / "data" / "train.csv"
    ).read_bytes()
    with pytest.raises(InvalidInput, match="not empty"):
        remote.models.reproduce("m@1.0.0", tmp_path / "remote")


# --- prompts ---------------------------------------------------------------------------------

PROMPT = (
    "name: greet\nmodel: m@1.0.0\nparams: {temperature: 0.5}\nvariables:\n  who: string\n"
    'template: "Hello {{ who }} #N"\ntests: [{kind: contains, value: "Hello"}]\n'
)


def prompt_repository(root: Path) -> Path:
    import subprocess

    folder = root / "prompts"
    folder.mkdir(parents=True)
    (folder / "greet.prompt.yaml").write_text(PROMPT.replace("#N", "#1"))
    (folder / "team").mkdir()
    (folder / "team" / "bye.prompt.md").write_text(
        "---\nname: bye\nvariables: {who: string}\ntests: [{kind: contains, value: Bye}]\n---\n"
        "Bye {{ who }}\n"
    )
    for args in (
        ["init", "-q"],
        ["add", "."],
        ["-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "p"],
    ):
        subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)
    return folder


def test_prompt_folders_sync_check_and_export_as_embedded(
    registry: Registry, remote: Registry, tmp_path: Path
) -> None:
    registry.models.register(
        "m", {"family": "claude", "provider": "anthropic", "provider_model": "claude-sonnet-4-5-20250929"}
    )
    folder = prompt_repository(tmp_path / "repo")
    (folder / "greet.prompt.yaml").write_text(PROMPT.replace("#N", "#2"))  # uncommitted change
    synced = remote.prompts.sync(folder)
    assert synced.folder == str(folder) and synced.git_commit is not None
    assert [(i.name, i.status, i.path) for i in synced.items] == [
        ("greet", "added", "greet.prompt.yaml"),
        ("bye", "added", "team/bye.prompt.md"),
    ]
    source = registry.prompts.show("greet-v1").version.source
    assert source == {
        "path": "greet.prompt.yaml",
        "format": "yaml",
        "git_commit": synced.git_commit,
        "git_path": "prompts/greet.prompt.yaml",
        "git_dirty": True,
    }
    assert remote.prompts.sync(folder).items[0].status == "unchanged"
    assert remote.prompts.check(folder) == registry.prompts.check(folder)
    (folder / "broken.prompt.yaml").write_text("name: [unclosed\n")
    with pytest.raises(InvalidInput) as remote_error:
        remote.prompts.sync(folder)
    with pytest.raises(InvalidInput) as embedded_error:
        registry.prompts.sync(folder)
    assert remote_error.value.message == embedded_error.value.message
    assert remote.prompts.check(folder) == registry.prompts.check(folder)
    sent = remote.prompts.export(tmp_path / "remote")
    made = registry.prompts.export(tmp_path / "embedded")
    assert (sent.written, sent.unchanged) == (made.written, made.unchanged)
    for path in made.written:
        assert (tmp_path / "remote" / path).read_text() == (tmp_path / "embedded" / path).read_text()
    (tmp_path / "remote" / "greet.prompt.yaml").write_text("changed")
    with pytest.raises(InvalidInput, match="differ from the registry"):
        remote.prompts.export(tmp_path / "remote")
    assert remote.prompts.export(tmp_path / "remote", force=True).written == ("greet.prompt.yaml",)


def test_uploaded_prompt_files_are_checked(registry: Registry, server: tuple[str, str]) -> None:
    url, token = server
    api = httpx.Client(base_url=f"{url}/api/v1", headers={"Authorization": f"Bearer {token}"})

    def sync(path: str, content: bytes = b"x", **extra: Any) -> httpx.Response:
        item = {"path": path, "content": base64.b64encode(content).decode(), **extra}
        return api.post("/prompt-files/sync", json={"folder": "f", "files": [item]})

    assert sync("../escape.prompt.yaml").status_code == 400
    assert sync("notes.txt").status_code == 400
    assert (
        sync("a.prompt.yaml", git={"git_commit": "zz", "git_path": None, "git_dirty": None}).status_code
        == 400
    )
    bad = api.post(
        "/prompt-files/sync", json={"folder": "f", "files": [{"path": "a.prompt.yaml", "content": "%%"}]}
    )
    assert bad.status_code == 400
    assert registry.prompts.list() == []


def test_a_validation_runs_here_and_is_recorded_as_reported(
    registry: Registry, remote: Registry, tmp_path: Path
) -> None:
    registry.models.register(
        "m", {"family": "claude", "provider": "anthropic", "provider_model": "claude-sonnet-4-5-20250929"}
    )
    folder = tmp_path / "prompts"
    folder.mkdir()
    (folder / "greet.prompt.yaml").write_text(PROMPT.replace("#N", "#1"))
    registry.prompts.sync(folder)
    people = tmp_path / "people.csv"
    people.write_text("who\n" + "".join(f"person {i}\n" for i in range(6)))
    registry.datasets.add("people", people, role="production-sample")
    registry.policies.apply({"validation": {"min_samples": 3, "min_pass_rate": 0.5}})
    done: list[tuple[int, int]] = []
    sent = remote.prompts.validate(
        "greet-v1",
        sample="people@1",
        runner="tests.test_prompt_helpers:echo",
        progress=lambda d, t: done.append((d, t)),
    )
    embedded = registry.prompts.validate(
        "greet-v1", sample="people@1", runner="tests.test_prompt_helpers:echo"
    )
    assert (sent.passed, sent.sample_size, sent.pass_rate) == (True, 6, 1.0)
    assert (sent.sample_size, sent.passed_count, sent.runner) == (
        embedded.sample_size,
        embedded.passed_count,
        embedded.runner,
    )
    assert done[-1] == (6, 6)
    with pytest.raises(InvalidInput) as remote_error:
        remote.prompts.validate(
            "greet-v1", sample="people@1", runner="tests.test_prompt_helpers:echo", min_pass_rate=2
        )
    with pytest.raises(InvalidInput) as embedded_error:
        registry.prompts.validate(
            "greet-v1", sample="people@1", runner="tests.test_prompt_helpers:echo", min_pass_rate=2
        )
    assert remote_error.value.message == embedded_error.value.message


# --- slots -----------------------------------------------------------------------------------

TRACK = {
    "name": "instant",
    "metrics": {"quality": "higher"},
    "stages": [
        {"name": "canary", "traffic": 10, "min_duration": "0s", "max_duration": "1h"},
        {"name": "production", "traffic": 100, "rollback_window": "30d"},
    ],
}


def test_a_track_policy_file_is_read_here_and_pinned_as_embedded(
    registry: Registry, remote: Registry, tmp_path: Path
) -> None:
    policy = tmp_path / "instant.yaml"
    policy.write_text(yaml.safe_dump(TRACK))
    sent = remote.slots.create("web", policy=policy)
    embedded = registry.slots.create("twin", policy=policy)
    assert sent.as_dict() | {"name": "twin"} == embedded.as_dict()
    assert (sent.policy, sent.policy_source) == ("instant", "file")
    named = remote.slots.create("plain")
    assert named.as_dict() | {"name": "twin"} == registry.slots.create("twin-2").as_dict() | {"name": "twin"}
    assert remote.slots.create("by-name", policy="default").policy == "default"
    with pytest.raises(InvalidInput, match="cannot read track policy file"):
        remote.slots.create("x", policy=str(tmp_path / "absent.yaml"))


# --- transaction records ---------------------------------------------------------------------


def test_ingest_sends_batches_and_reports_like_embedded(
    registry: Registry,
    remote: Registry,
    wire: Wire,
    tmp_path: Path,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.test_slot_helpers import world

    w = world(registry, tmp_path, clock)
    monkeypatch.setattr("charter.service.ingest.INGEST_BATCH", 4)
    records = [
        json.dumps({"id": str(uuid.uuid4()), "time": f"2026-03-02T09:00:{i:02d}Z",
                    "release": w.production[:12], "metrics": {"quality": 0.5}})
        for i in range(10)
    ]  # fmt: skip
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join(records[:5]) + "\n\n" + "\n".join(records[5:]) + "\n")
    report = remote.ingest("agent", path)
    assert (report.slot, report.lines, report.inserted, report.duplicates) == ("agent", 10, 10, 0)
    assert dict(report.by_arm) == {"baseline": 10}
    assert sum(1 for method, p, _ in wire.sent if p.endswith("/transactions")) == 3  # 4 + 4 + 2 records
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(records[:6]) + "\n{oops\n")
    with pytest.raises(InvalidInput) as remote_error:
        remote.ingest("agent", bad)
    with pytest.raises(InvalidInput) as embedded_error:
        registry.ingest("agent", bad)
    assert remote_error.value.message == embedded_error.value.message
    assert "line 7 is not JSON" in remote_error.value.message and "after line 4" in remote_error.value.message
    again = remote.ingest("agent", iter(records[:2]))  # lines given, already stored
    assert (again.lines, again.inserted, again.duplicates) == (2, 0, 2)
