"""`charter prompt …` from the command line: the whole flow, exit codes, --json, lint for CI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import charter
import charter.prompts
from tests.cli_runner import Cli
from tests.test_prompt_helpers import MODEL_SPEC, SUMMARIZE, prompt_yaml, write


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.setenv("CHARTER_HOME", str(tmp_path / "store"))
    monkeypatch.setenv("CHARTER_USER", "alice")
    monkeypatch.delenv("CHARTER_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    return Cli(capsys, monkeypatch)


@pytest.fixture
def store(cli: Cli, tmp_path: Path) -> Path:
    """An initialised store with model m@1.0.0, small-sample validation policy and a sample."""
    assert cli("init").code == 0
    with charter.open(str(tmp_path / "store"), user="alice") as reg:
        reg.models.register("m", MODEL_SPEC)
        reg.policies.apply({"validation": {"min_samples": 5, "min_pass_rate": 0.8}})
    rows = "who\n" + "".join(f"person{i}\n" for i in range(6))
    (tmp_path / "sample.csv").write_text(rows)
    assert cli("dataset", "add", "people", "sample.csv", "--role", "production-sample").code == 0
    write(tmp_path / "prompts", "greet.prompt.yaml", prompt_yaml("greet"))
    write(tmp_path / "prompts", "summarize.prompt.yaml", SUMMARIZE)
    return tmp_path


def test_the_whole_flow(cli: Cli, store: Path) -> None:
    synced = cli("prompt", "sync", "prompts", "--json")
    assert synced.code == 0 and synced.json()["added"] == ["greet", "summarize"]
    assert cli("prompt", "sync", "prompts", "--json").json()["unchanged"] == ["greet", "summarize"]
    listed = cli("prompt", "list", "--json").json()
    assert [(p["name"], p["latest"]) for p in listed] == [
        ("greet", "greet-v1"),
        ("summarize", "summarize-v1"),
    ]

    rendered = cli("prompt", "render", "greet-v1", "--var", "who=Ada")
    assert rendered.code == 0 and rendered.out == "Hello Ada!\n"
    assert cli("prompt", "render", "summarize", "--var", "ticket=x", "--var", "words=5", "--json").json() == {
        "ref": "summarize-v1",
        "rendered": "Summarize in 5 words:\nx\n",
    }
    missing = cli("prompt", "render", "greet-v1")
    assert missing.code == 1 and "missing: who" in missing.err and "Traceback" not in missing.err
    assert cli("prompt", "render", "greet-v1", "--var", "who=a", "--var", "mood=b").code == 1
    assert cli("prompt", "render", "greet-v1", "--var", "who").code == 1

    assert cli("prompt", "promote", "greet-v1", "--to", "staging").code == 4  # skipping development
    assert cli("prompt", "promote", "greet-v1", "--to", "development").code == 0
    assert cli("prompt", "promote", "greet-v1", "--to", "staging", "--reason", "ready").code == 0
    gate = cli("prompt", "promote", "greet-v1", "--to", "production")
    assert gate.code == 4 and "no staging validation" in gate.err

    failing = cli(
        "prompt",
        "validate",
        "greet-v1",
        "--sample",
        "people@1",
        "--runner",
        "tests.test_prompt_helpers:not_text",
    )
    assert failing.code == 4 and "did not pass" in failing.out
    passing = cli(
        "prompt",
        "validate",
        "greet-v1",
        "--sample",
        "people@1",
        "--runner-cmd",
        f"{sys.executable} {Path(__file__).resolve().parent.parent / 'examples/runners/echo_runner.py'}",
        "--json",
    )
    assert passing.code == 0 and passing.json()["passed"] and passing.json()["sample_size"] == 6
    assert len(cli("prompt", "validations", "greet-v1", "--json").json()) == 2

    promoted = cli("prompt", "promote", "greet-v1", "--to", "production", "--json")
    assert promoted.code == 0 and promoted.json()["validation"]["passed"]
    history = cli("prompt", "history", "greet", "--json").json()
    assert [(m["environment"], m["to"]) for m in history] == [
        ("development", "greet-v1"),
        ("staging", "greet-v1"),
        ("production", "greet-v1"),
    ]
    assert cli("prompt", "show", "greet@production", "--json").json()["environments"] == [
        "development",
        "staging",
        "production",
    ]
    assert cli("prompt", "show", "greet@production", "--at", "2000-01-01").code == 3
    assert cli("prompt", "rollback", "greet", "--env", "production").code == 4  # nothing before it

    lock = cli("prompt", "lock", "production")
    assert lock.code == 0
    (store / "prompts.lock").write_text(lock.out)
    assert (
        charter.prompts.from_lockfile(store / "prompts.lock").get("greet@production").render(who="x")
        == "Hello x!"
    )

    exported = cli("prompt", "export", "out", "--json").json()
    assert sorted(exported["written"]) == ["greet.prompt.yaml", "summarize.prompt.yaml"]


def test_people_get_tables_not_json(cli: Cli, store: Path) -> None:
    cli("prompt", "sync", "prompts")
    write(store / "prompts", "greet.prompt.yaml", prompt_yaml("greet", "Hello there {{ who }}, welcome."))
    assert "greet-v1 → greet-v2" in cli("prompt", "sync", "prompts").out
    cli("prompt", "promote", "greet-v1", "--to", "development")
    cli("prompt", "promote", "greet-v2", "--to", "development")
    for args in (
        ("list",),
        ("versions", "greet"),
        ("show", "greet-v2"),
        ("diff", "greet-v1", "greet-v2"),
        ("history", "greet"),
        ("rollback", "greet", "--env", "development"),
        ("validate", "greet-v2", "--sample", "people@1", "--runner", "tests.test_prompt_helpers:echo"),
    ):
        run = cli("prompt", *args)
        assert run.code == 0, (args, run.err)
        assert run.out.strip() and not run.out.lstrip().startswith(("{", "["))
    diff = cli("prompt", "diff", "greet-v1", "greet-v2").out
    assert (
        "-Hello {{ who }}!" in diff and "+Hello there {{ who }}, welcome." in diff and "not recorded" in diff
    )


def test_check_fails_ci_on_errors_and_optionally_on_warnings(cli: Cli, tmp_path: Path) -> None:
    folder = tmp_path / "lint"
    write(folder, "ok.prompt.yaml", prompt_yaml("ok", model="m@1.0.0"))
    offline = cli("prompt", "check", str(folder), "--offline", "--json")  # no store needed
    assert offline.code == 0 and offline.json()["registry_checked"] is False
    write(folder, "renamed.prompt.yaml", prompt_yaml("other"))
    assert cli("prompt", "check", str(folder), "--offline").code == 0
    assert cli("prompt", "check", str(folder), "--offline", "--strict").code == 1
    write(folder, "bad.prompt.yaml", "name: bad\ntemplate: x\nvariabels: {}\n")
    run = cli("prompt", "check", str(folder), "--offline", "--json")
    assert run.code == 1
    [error] = [f for f in run.json()["findings"] if f["severity"] == "error"]
    assert error["file"] == "bad.prompt.yaml" and "variabels" in error["message"]
    cli("init")
    online = cli("prompt", "check", str(folder), "--json").json()  # m@1.0.0 is not registered here
    assert {f["code"] for f in online["findings"]} >= {"model-not-registered", "invalid-file"}


def test_bad_files_are_one_clear_paragraph(cli: Cli, store: Path) -> None:
    write(store / "prompts", "broken.prompt.yaml", "name: broken\ntemplate: '{{ oops'\n")
    run = cli("prompt", "sync", "prompts")
    assert run.code == 1 and "broken.prompt.yaml: template syntax error on line 1" in run.err
    assert "Traceback" not in run.err and "nothing was synced" in run.err


def test_every_command_documents_itself(cli: Cli) -> None:
    commands = [
        *("sync", "export", "check", "list", "versions", "show", "diff", "render", "history"),
        *("promote", "rollback", "validate", "validations", "lock"),
    ]
    for command in commands:
        run = cli("prompt", command, "--help")
        assert run.code == 0 and "--json" in run.out, command


def test_the_command_line_does_not_import_heavy_libraries_for_help() -> None:
    probe = (
        "import sys, charter.cli.main; "
        "print(sorted(m for m in ('jinja2', 'pyarrow', 'yaml') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout.replace("'", '"')) == []
