"""Parity: the same story, told through the CLI embedded and against a server, prints the same.

The scenario below is run twice on each database engine: once against an embedded store, once
with CHARTER_URL/CHARTER_TOKEN against `charter server` on loopback. Every command's exit code,
stdout and stderr must be identical once the values that differ between any two runs (times,
hashes that cover times, transaction ids) are masked. It covers every registry, the tables for
people and `--json`, refusals of each family, and the commands that move local files.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from charter.config import Settings
from charter.service.setup import init_store, open_registry
from tests.cli_runner import Cli, Run
from tests.remote_fixtures import serving

_MASKS = (
    (re.compile(r"\d{4}-\d\d-\d\d[T ][0-9:.+]*…"), "<time>…"),  # cut short in a table column
    (re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)?"), "<time>"),
    (re.compile(r"\b\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?"), "<clock>"),  # a time wrapped apart
    (re.compile(r"\b\d{4}-\d\d-\d\d\b"), "<date>"),
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "<uuid>"),
    (re.compile(r"\b[0-9a-f]{8,64}\b"), "<hex>"),
    (re.compile(r"chtr_[A-Za-z0-9_\-]+"), "<token>"),
    (re.compile(r"/tmp/[^\s\"']*"), "<path>"),
    (re.compile(r"\b\d+(\.\d+)? ?(ms|s|µs|MB/s|GB/s)\b"), "<duration>"),
    (
        re.compile(r'"(seconds|elapsed_s|elapsed_seconds|duration_s|mb_per_s|records_per_second)": [-.e\d]+'),
        r'"\1": <n>',
    ),
)

TRACK = {
    "name": "instant",
    "metrics": {"quality": "higher"},
    "stages": [
        {"name": "shadow", "traffic": 0, "min_duration": "0s", "max_duration": "1h"},
        {"name": "canary", "traffic": 10, "min_duration": "0s", "max_duration": "1h", "criteria": [
            {"kind": "checklist", "items": ["smoke-tested"]}]},
        {"name": "production", "traffic": 100, "rollback_window": "30d"},
    ],
}  # fmt: skip

PROMPT = (
    "name: greet\nmodel: m@1.0.0\nparams: {temperature: 0.5}\nvariables:\n  who: string\n"
    'template: "Hello {{ who }} #N"\ntests: [{kind: contains, value: "Hello"}]\n'
)


def mask(text: str) -> str:
    for pattern, replacement in _MASKS:
        text = pattern.sub(replacement, text)
    return " ".join(text.split())  # tables wrap where masked values had other lengths


@dataclass
class Harness:
    """Runs CLI commands as named users, embedded or remote; records what each printed."""

    cli: Cli
    monkeypatch: pytest.MonkeyPatch
    settings: Settings
    url: str | None
    tokens: dict[str, str] = field(default_factory=dict)
    transcript: list[tuple[str, int, str, str]] = field(default_factory=list)

    def token(self, user: str) -> str:
        if user not in self.tokens:
            with open_registry(self.settings) as registry:
                self.tokens[user] = registry.tokens.create(user, name="parity").secret
        return self.tokens[user]

    def __call__(self, user: str, *args: str) -> Run:
        if self.url is not None:
            self.monkeypatch.setenv("CHARTER_TOKEN", self.token(user))
        else:
            self.token(user)  # the same ledger events in both modes
            self.monkeypatch.setenv("CHARTER_USER", user)
        run = self.cli(*args)
        self.transcript.append((" ".join(args), run.code, mask(run.out), mask(run.err)))
        return run


def scenario(h: Harness, work: Path) -> None:
    ok: Callable[[Run], Run] = _ok
    # identities and policies
    ok(h("admin", "user", "add", "alice", "--role", "author"))
    ok(h("admin", "user", "add", "rita", "--role", "reviewer"))
    ok(h("admin", "user", "add", "olga", "--role", "operator"))
    ok(h("admin", "user", "add", "sam", "--role", "service"))
    ok(h("admin", "user", "list"))
    ok(h("admin", "user", "list", "--json"))
    (work / "policy.yaml").write_text(
        yaml.safe_dump({"validation": {"min_samples": 3, "min_pass_rate": 0.5}})
    )
    ok(h("admin", "policy", "apply", str(work / "policy.yaml"), "--json"))
    ok(h("admin", "policy", "show"))
    assert h("alice", "policy", "apply", str(work / "policy.yaml")).code == 5
    # datasets, moved over the wire in remote mode
    data = work / "data"
    data.mkdir()
    (data / "train.csv").write_text(
        "text,label\n" + "".join(f"ticket {i} about billing,{i % 3}\n" for i in range(200))
    )
    (data / "eval.csv").write_text(
        "text,label\n" + "".join(f"question {i} on refunds,{i % 2}\n" for i in range(60))
    )
    ok(h("alice", "dataset", "add", "train", str(data / "train.csv"), "--role", "train", "--json"))
    ok(h("alice", "dataset", "add", "golden", str(data / "eval.csv"), "--role", "holdout"))
    ok(h("alice", "dataset", "list"))
    ok(h("alice", "dataset", "show", "train@1", "--json"))
    ok(h("alice", "dataset", "profile", "train@1", "--json"))
    ok(h("alice", "dataset", "overlap", "train@1", "golden@1", "--json"))
    ok(h("alice", "dataset", "checkout", "golden@1", str(work / "out")))
    assert (work / "out" / "eval.csv").read_bytes() == (data / "eval.csv").read_bytes()
    assert h("alice", "dataset", "show", "nope@1").code == 3
    # models: register, evaluate, sign off, promote through the gate
    spec = ["--family", "claude", "--provider", "anthropic", "--primary-metric", "accuracy=higher"]
    ok(h("alice", "model", "register", "m", *spec, "--provider-model", "claude-sonnet-4-5-20250929",
         "--training-dataset", "train@1", "--json"))  # fmt: skip
    ok(h("alice", "model", "register", "m", *spec, "--provider-model", "claude-sonnet-4-5-20251001",
         "--training-dataset", "train@1"))  # fmt: skip
    assert h("alice", "model", "register", "m", *spec, "--provider-model", "claude-latest").code == 4
    ok(h("alice", "model", "eval", "m@1.0.0", "--dataset", "golden@1", "--metric", "accuracy=0.90", "--json"))
    ok(h("alice", "model", "eval", "m@1.1.0", "--dataset", "golden@1", "--metric", "accuracy=0.92"))
    assert h("alice", "model", "signoff", "m@1.0.0").code == 5
    ok(h("rita", "model", "signoff", "m@1.0.0", "--json"))
    ok(h("rita", "model", "signoff", "m@1.1.0"))
    ok(h("olga", "model", "promote", "m@1.0.0", "--rollback-plan", "previous", "--dry-run", "--json"))
    ok(h("olga", "model", "promote", "m@1.0.0", "--rollback-plan", "previous"))
    ok(h("alice", "model", "show", "m@production", "--json"))
    ok(h("alice", "model", "versions", "m"))
    ok(h("alice", "model", "diff", "m@1.0.0", "m@1.1.0"))
    ok(h("alice", "model", "history", "m", "--json"))
    # prompts: files synced from the caller's folder, validated, promoted
    prompts = work / "prompts"
    prompts.mkdir()
    for n in (1, 2):
        (prompts / "greet.prompt.yaml").write_text(PROMPT.replace("#N", f"#{n}"))
        ok(h("alice", "prompt", "sync", str(prompts), "--json"))
    ok(h("alice", "prompt", "check", str(prompts)))
    ok(h("alice", "prompt", "list"))
    ok(h("alice", "prompt", "show", "greet-v2", "--json"))
    ok(h("alice", "prompt", "diff", "greet-v1", "greet-v2"))
    ok(h("alice", "prompt", "render", "greet-v2", "--var", "who=Ada", "--json"))
    assert h("alice", "prompt", "render", "greet-v2").code == 1
    ok(h("alice", "prompt", "promote", "greet-v1", "--to", "development"))
    assert h("alice", "prompt", "promote", "greet-v1", "--to", "production").code in (4, 5)
    (data / "people.csv").write_text("who\n" + "".join(f"person {i}\n" for i in range(5)))
    ok(h("alice", "dataset", "add", "people", str(data / "people.csv"), "--role", "production-sample"))
    runner = "tests.test_prompt_helpers:echo"
    ok(h("alice", "prompt", "validate", "greet-v2", "--sample", "people@1", "--runner", runner, "--json"))
    ok(h("alice", "prompt", "validations", "greet-v2"))
    ok(h("alice", "prompt", "promote", "greet-v2", "--to", "development"))
    ok(h("alice", "prompt", "promote", "greet-v2", "--to", "staging"))
    ok(h("alice", "prompt", "history", "greet", "--json"))
    # slots, releases and a rollout
    (work / "instant.yaml").write_text(yaml.safe_dump(TRACK))
    ok(h("olga", "slot", "create", "web", "--policy", str(work / "instant.yaml"), "--json"))
    first = ok(h("alice", "release", "create", "web", "--model", "m@1.0.0", "--prompt", "greet-v1", "--json"))
    second = ok(
        h("alice", "release", "create", "web", "--model", "m@1.1.0", "--prompt", "greet-v2", "--json")
    )
    one, two = first.json()["digest"][:10], second.json()["digest"][:10]
    ok(h("olga", "slot", "bootstrap", "web", "--release", one))
    ok(h("olga", "rollout", "start", "web", "--release", two, "--rollback-plan", "slot rollback", "--json"))
    ok(h("olga", "rollout", "status", "web"))
    ok(h("olga", "rollout", "advance", "web", "--json"))
    refused = h("olga", "rollout", "advance", "web", "--json")
    assert refused.code == 4 and refused.json()["error"] == "AdvanceRefused"
    assert h("alice", "rollout", "check", "web", "--item", "smoke-tested").code == 5
    ok(h("olga", "rollout", "check", "web", "--item", "smoke-tested"))
    ok(h("olga", "rollout", "advance", "web"))
    # transactions, traced back to every version
    record = {"time": "2026-11-27T10:00:00Z", "release": two, "metrics": {"quality": 0.9}}
    (work / "t.jsonl").write_text(json.dumps(record) + "\n")
    ok(h("sam", "txn", "ingest", "web", str(work / "t.jsonl"), "--json"))
    ok(h("olga", "state", "show", "web", "--json"))
    ok(h("olga", "changes", "--since", "2020-01-01", "--slot", "web"))
    assert h("olga", "trace", "019cadc6-9a80-7000-8a37-1af978ea08cc").code == 3
    ok(h("olga", "incident", "report", "web", "--severity", "P2", "--release", two, "--summary", "slow"))
    ok(h("olga", "slot", "rollback", "web", "--reason", "complaints", "--json"))
    # evidence for auditors, written where the caller runs
    ok(h("admin", "report", "m@1.0.0", "--out", str(work / "m.html"), "--json"))
    assert "m@1.0.0" in (work / "m.html").read_text()
    # administration
    ok(h("admin", "token", "list", "--json"))
    hook = ["webhook", "add", "https://hooks.example.com/charter", "--events", "model.*,rollout.*"]
    ok(h("admin", *hook, "--secret", "s3cret-of-twenty-chars", "--json"))
    ok(h("admin", "webhook", "list"))
    assert h("alice", *hook).code == 5
    # the ledger
    ok(h("admin", "audit", "log", "--subject", "slot:web"))
    ok(h("admin", "audit", "verify", "--json"))


def _ok(run: Run) -> Run:
    assert run.code == 0, run.err
    return run


@pytest.fixture
def harness_for(
    tmp_path: Path,
    database_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[[bool], AbstractContextManager[Harness]]]:
    from contextlib import contextmanager

    @contextmanager
    def make(remote: bool) -> Iterator[Harness]:
        settings = Settings.for_home(tmp_path / "home", user="admin", database_url=database_url)
        init_store(settings)
        monkeypatch.delenv("CHARTER_URL", raising=False)
        monkeypatch.delenv("CHARTER_TOKEN", raising=False)
        monkeypatch.setenv("CHARTER_HOME", str(settings.home))
        monkeypatch.setenv("CHARTER_DATABASE_URL", database_url)
        server: AbstractContextManager[Any] = serving(settings, web=False) if remote else nullcontext(None)
        with server as url:
            if url is not None:
                _check_every_decoding(monkeypatch)
                monkeypatch.setenv("CHARTER_URL", url)
                monkeypatch.setenv("CHARTER_HOME", str(tmp_path / "elsewhere"))  # nothing local
                monkeypatch.setenv("CHARTER_DATABASE_URL", "sqlite:////nonexistent/remote-mode.db")
            yield Harness(Cli(capsys, monkeypatch), monkeypatch, settings, url)

    yield make


def test_the_cli_prints_the_same_embedded_and_remote(
    harness_for: Callable[[bool], AbstractContextManager[Harness]],
    tmp_path_factory: pytest.TempPathFactory,
    database_url: str,
) -> None:
    transcripts = []
    for remote in (False, True):
        with harness_for(remote) as h:
            work = tmp_path_factory.mktemp("work")  # the same path length both times
            try:
                scenario(h, work)
            finally:
                transcripts.append(h.transcript)
        _reset(database_url, h.settings)
    embedded, remote_run = transcripts
    for (command, *left), (_, *right) in zip(embedded, remote_run, strict=True):
        assert left == right, f"`charter {mask(command)}` differs:\nembedded: {left}\nremote:   {right}"


def _check_every_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """In remote mode, every result decoded from the API must encode back to exactly the JSON the
    server sent: the client's objects are the service's objects, nothing lost."""
    import charter.client.decode as decoding
    from charter.wire import to_fields

    original = decoding.decode
    depth = [0]

    def checked(tp: Any, data: Any) -> Any:
        depth[0] += 1
        try:
            result = original(tp, data)
        finally:
            depth[0] -= 1
        if depth[0] == 0 and data is not None:  # a whole result, as the server sent it
            assert to_fields(result) == data, f"decoding {tp} loses information:\n{data}"
        return result

    monkeypatch.setattr(decoding, "decode", checked)


def _reset(database_url: str, settings: Settings) -> None:
    """Empty the store between the two runs (same database, fresh schema)."""
    import shutil

    from charter.storage import migrate
    from charter.storage.engine import create_engine
    from charter.storage.schema import metadata

    engine = create_engine(database_url)
    with engine.begin() as conn:
        metadata.drop_all(conn)
        conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    migrate.upgrade(engine)
    engine.dispose()
    shutil.rmtree(settings.home / "blobs", ignore_errors=True)
