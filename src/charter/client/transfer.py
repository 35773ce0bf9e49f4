"""The client's half of the operations that read or write the caller's files (remote mode).

Each function stands for the embedded service method of the same meaning, with the same
parameters and result type, and takes the `RemoteRegistry` first; `RemoteRegistry`'s proxies call
them (`remote.datasets.add(...)` → `dataset_add(remote, ...)`). Files are read and written here,
with the same engines and checks as embedded mode; the server receives chunks and documents
(`charter.api.transfer`) and does the rest with the embedded use cases, so results are the same.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from charter.client.blobs import BlobReader, Remote, UploadSink
from charter.client.ingest import ingest
from charter.errors import InvalidInput

if TYPE_CHECKING:
    from charter.data.drift import DriftReport
    from charter.service.dataset_results import AddResult, CheckoutReport
    from charter.service.model_results import ModelVersion
    from charter.service.prompt_check import CheckReport
    from charter.service.prompt_results import ExportReport, SyncReport, Validation
    from charter.service.prompt_validation import RunnerFunction
    from charter.service.reproduce import Reproduction
    from charter.service.slots import Slot

__all__ = [
    "dataset_add",
    "dataset_checkout",
    "dataset_drift",
    "ingest",
    "model_register",
    "model_reproduce",
    "prompt_check",
    "prompt_export",
    "prompt_sync",
    "prompt_validate",
    "slot_create",
]


def _segment(text: str) -> str:
    return quote(text, safe="@")


# --- datasets --------------------------------------------------------------------------------


def dataset_add(
    remote: Remote,
    name: str,
    path: str | Path,
    *,
    role: str,
    sources: Sequence[str] = (),
    derived_from: str | None = None,
    message: str = "",
    progress: Callable[[int], None] | None = None,
) -> AddResult:
    """`datasets.add`: snapshot here, send the chunks the server lacks, commit the manifest. An
    interrupted add sends, when run again, only the chunks that still did not arrive."""
    from charter.client.decode import decode
    from charter.data.snapshot import snapshot
    from charter.service.dataset_results import AddResult
    from charter.service.datasets import add_arguments, existing_source

    started = time.perf_counter()
    add_arguments(name, role, derived_from)
    source = existing_source(path)
    where = f"/datasets/{_segment(name)}/uploads"
    remote.request("POST", f"{where}/check", json={"role": role, "derived_from": derived_from})
    sink = UploadSink(remote)
    snap = snapshot(sink.as_blob_store(), source, progress=progress)
    sink.finish(snap.manifest_digest)
    body = {
        "manifest": json.loads(snap.manifest.to_bytes()),
        "role": role,
        "sources": list(sources),
        "derived_from": derived_from,
        "message": message,
    }
    result: AddResult = decode(AddResult, remote.request("POST", where, json=body).json())
    return dataclasses.replace(result, seconds=time.perf_counter() - started)


def dataset_checkout(remote: Remote, ref: str, target: str | Path, *, force: bool = False) -> CheckoutReport:
    """`datasets.checkout`: the manifest from the server, each chunk streamed and checked, each file
    written under a temporary name and renamed into place once its digest matches."""
    from charter.data.checkout import checkout
    from charter.data.reassemble import manifest_from_json
    from charter.domain.refs import parse_dataset_ref
    from charter.service.dataset_results import CheckoutReport

    parse_dataset_ref(ref)
    found = remote.request("GET", f"/dataset-versions/{_segment(ref)}/manifest").json()
    manifest = manifest_from_json(found["manifest"])
    if remote.call("datasets.get", str(found["ref"])).kind in ("iceberg", "delta"):
        from charter.service.dataset_lake import checkout_table, load_reference

        # a lake table is read here, at its pinned snapshot, from the location the version records
        reference = load_reference(BlobReader(remote).as_blob_store(), manifest)
        return checkout_table(str(found["ref"]), reference, target, force=force)
    result = checkout(BlobReader(remote).as_blob_store(), manifest, Path(target), force=force)
    return CheckoutReport(
        str(found["ref"]), str(Path(target).absolute()), result.files, result.bytes_written, True
    )


def dataset_drift(
    remote: Remote,
    ref: str,
    against: str | Path,
    *,
    report: str | Path | None = None,
    since: datetime | None = None,
) -> DriftReport:
    """`datasets.drift`: a local file or folder of tables is uploaded and compared on the server;
    a dataset version or `slot:NAME` is read there. The HTML report is written here."""
    from charter.client.decode import decode
    from charter.data.drift import DriftReport
    from charter.data.drift_report import render_html
    from charter.domain.refs import parse_dataset_ref
    from charter.service.datasets import DRIFT_SOURCES
    from charter.service.slots import Slot  # noqa: F401  (registers the slot: drift source)

    parse_dataset_ref(ref)
    text = str(against)
    where = f"/dataset-versions/{_segment(ref)}"
    local = Path(text)
    if since is None and not any(text.startswith(p) for p in DRIFT_SOURCES) and local.exists():
        response = _upload_drift_inputs(remote, f"{where}/drift-upload", local)
    else:
        body = {"against": text, "since": None if since is None else since.isoformat()}
        response = remote.request("POST", f"{where}/drift", json=body)
    result: DriftReport = decode(DriftReport, response.json())
    if report is not None:
        Path(report).write_text(render_html(result), encoding="utf-8")
    return result


def _upload_drift_inputs(remote: Remote, where: str, local: Path) -> Any:
    from contextlib import ExitStack

    from charter.data.tabular import table_format

    if local.is_dir():
        found = sorted(p for p in local.rglob("*") if p.is_file() and table_format(p.name) is not None)
        if not found:
            raise InvalidInput(f"{local} holds no table files (.parquet, .csv, .jsonl, .ndjson)")
        named = [(p.relative_to(local).as_posix(), p) for p in found]
    else:
        named = [(local.name, local)]
    with ExitStack() as stack:
        files = [
            ("files", (name, stack.enter_context(path.open("rb")), "application/octet-stream"))
            for name, path in named
        ]
        data = {"against": str(local), "folder": "true" if local.is_dir() else "false"}
        return remote.request("POST", where, data=data, files=files)


# --- models ----------------------------------------------------------------------------------


def model_register(
    remote: Remote, name: str, spec: Mapping[str, Any] | str | PathLike[str], *, version: str | None = None
) -> ModelVersion:
    """`models.register`: a YAML spec is read here; weights given as a local file are sent as
    chunks (only those the server lacks) and referenced from the spec exactly as an embedded
    registration of the same file references them."""
    from charter.client.decode import decode
    from charter.data.snapshot import store_file
    from charter.domain.refs import check_name
    from charter.service.model_inputs import WEIGHTS_FILE, load_spec_document, local_weights, version_argument
    from charter.service.model_results import ModelVersion
    from charter.wire import to_jsonable

    check_name(name, "model")
    version_argument(version)
    document, base = load_spec_document(spec)
    weights = local_weights(document, base)
    if weights is None:
        registered: ModelVersion = remote.call("models.register", name, document, version=version)
        return registered
    where = f"/models/{_segment(name)}/uploads"
    remote.request("POST", f"{where}/check", json={"version": version})
    sink = UploadSink(remote)
    stored = store_file(sink.as_blob_store(), weights, name=WEIGHTS_FILE)
    sink.finish(stored.manifest_digest)
    body = {
        "spec": to_jsonable(document),
        "weights": json.loads(stored.manifest.to_bytes()),
        "version": version,
    }
    result: ModelVersion = decode(ModelVersion, remote.request("POST", where, json=body).json())
    return result


def model_reproduce(remote: Remote, ref: str, folder: str | Path, *, force: bool = False) -> Reproduction:
    """`models.reproduce`: the training datasets streamed from the server into `folder`, verified."""
    from charter.service.reproduce import TrainingPlan, materialise, prepare_target

    target = prepare_target(folder, force=force)
    plan = TrainingPlan.from_dict(
        remote.request("GET", f"/model-versions/{_segment(ref)}/training-data").json()
    )
    return materialise(plan, BlobReader(remote).as_blob_store(), target, force=force)


# --- prompts ---------------------------------------------------------------------------------


def prompt_sync(remote: Remote, folder: str | Path) -> SyncReport:
    """`prompts.sync`: the folder's prompt files and their git facts are read here and sent."""
    from charter.client.decode import decode
    from charter.service.prompt_files import git_info
    from charter.service.prompt_results import SyncReport

    root = Path(folder)
    git = git_info(root) if root.is_dir() else None
    files = _prompt_files(root, lambda path: None if git is None else git.source(path))
    body = {"folder": str(root), "commit": None if git is None else git.commit, "files": files}
    result: SyncReport = decode(SyncReport, remote.request("POST", "/prompt-files/sync", json=body).json())
    return result


def prompt_check(remote: Remote, folder: str | Path) -> CheckReport:
    """`prompts.check`: the folder's prompt files are read here and linted by the server."""
    from charter.client.decode import decode
    from charter.service.prompt_check import CheckReport

    root = Path(folder)
    body = {"folder": str(root), "files": _prompt_files(root, lambda _: None)}
    result: CheckReport = decode(CheckReport, remote.request("POST", "/prompt-files/check", json=body).json())
    return result


def _prompt_files(root: Path, git: Callable[[Path], dict[str, Any] | None]) -> list[dict[str, Any]]:
    from charter.service.prompt_files import prompt_paths

    return [
        {
            "path": path.relative_to(root).as_posix(),
            "content": base64.b64encode(path.read_bytes()).decode("ascii"),
            "git": git(path),
        }
        for path in prompt_paths(root)
    ]


def prompt_export(
    remote: Remote, folder: str | Path, *, environment: str | None = None, force: bool = False
) -> ExportReport:
    """`prompts.export`: the server renders the files, they are written here (never over a
    differing file without `force`)."""
    from charter.data.manifest import validate_relative_path
    from charter.domain.prompt_files import prompt_format
    from charter.service.prompt_sync import write_export

    params = {} if environment is None else {"environment": environment}
    planned = remote.request("GET", "/prompt-files/export", params=params).json()["files"]
    for path in planned:
        if prompt_format(validate_relative_path(path).rsplit("/", 1)[-1]) is None:
            raise InvalidInput(f"the server proposed to write {path!r}, which is not a prompt file name")
    return write_export(Path(folder), planned, environment=environment, force=force)


def prompt_validate(
    remote: Remote,
    ref: str,
    *,
    sample: str,
    runner: str | RunnerFunction | None = None,
    runner_cmd: str | None = None,
    min_pass_rate: float | None = None,
    min_samples: int | None = None,
    concurrency: int = 8,
    timeout_s: float | None = 60.0,
    progress: Callable[[int, int], None] | None = None,
) -> Validation:
    """`prompts.validate`: the plan (version, sample, thresholds) from the server, the sample
    checked out here, the runner run here; the run is then recorded by the server as reported by
    the authenticated user (`prompts.record_validation`)."""
    from charter.client.decode import decode
    from charter.domain.refs import parse_dataset_ref, parse_prompt_ref
    from charter.service.dataset_results import DatasetVersion
    from charter.service.prompt_validation import load_predicates, make_runner, run_rows
    from charter.service.prompt_version import PromptVersion
    from charter.service.validation_plan import ValidationPlan, sample_rows

    parse_prompt_ref(ref)
    parse_dataset_ref(sample)
    body = {"sample": sample, "min_pass_rate": min_pass_rate, "min_samples": min_samples}
    found = remote.request("POST", f"/prompt-versions/{_segment(ref)}/validation-plan", json=body).json()
    plan = ValidationPlan(
        decode(PromptVersion, found["version"]),
        decode(DatasetVersion, found["sample"]),
        float(found["min_pass_rate"]),
        int(found["min_samples"]),
    )
    run_with = make_runner(runner, runner_cmd)
    predicates = load_predicates(plan.version)
    rows = sample_rows(plan, lambda ref, target: dataset_checkout(remote, ref, target))
    run = run_rows(
        plan.version,
        rows,
        run_with,
        predicates=predicates,
        concurrency=concurrency,
        timeout_s=timeout_s,
        progress=progress,
    )
    recorded: Validation = remote.call(
        "prompts.record_validation",
        plan.version.ref,
        sample=plan.sample.ref,
        run=dataclasses.asdict(run),
        min_pass_rate=min_pass_rate,
        min_samples=min_samples,
    )
    return recorded


# --- slots -----------------------------------------------------------------------------------


def slot_create(
    remote: Remote, name: str, *, policy: str | Mapping[str, Any] | PathLike[str] | None = None
) -> Slot:
    """`slots.create`: a track policy given as a YAML file is read here and sent as a mapping; a
    policy name is sent as it is."""
    from charter.domain.refs import check_name
    from charter.service.slots import policy_argument

    check_name(name, "slot")
    policy_name, document = policy_argument(policy)
    sent = None if policy is None else (document if document is not None else policy_name)
    slot: Slot = remote.call("slots.create", name, policy=sent)
    return slot
