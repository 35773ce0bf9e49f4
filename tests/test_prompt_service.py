"""Prompt files through the service: sync, export, lint, reads, rendering, time queries, roles."""

from __future__ import annotations

import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest

from charter.clock import ManualClock
from charter.errors import (
    InvalidInput,
    MissingRole,
    NotFound,
    PromptFileError,
    PromptVariablesInvalid,
)
from charter.service.registry import Registry
from tests.conftest import add_user
from tests.test_prompt_helpers import SQLITE_ONLY, SUMMARIZE, prompt_yaml, register_model, sync_one, write

CHAT = """\
name: classify
model: m@1.0.0
params: {temperature: 0}
variables:
  text: string
  labels: {type: list, default: [positive, negative]}
messages:
  - role: system
    content: "Answer with one of: {{ labels | join(', ') }}."
  - role: user
    content: "{{ text }}"
tests:
  - {kind: one_of, values: [positive, negative]}
"""

MARKDOWN = """\
---
description: Say hello
model: m@1.0.0
variables:
  who: string
tests:
  - {kind: contains, value: Hello}
---
Hello {{ who }}!

  Indented line with trailing spaces\x20\x20\x20
"""


@pytest.fixture
def reg(registry: Registry) -> Registry:
    register_model(registry)
    return registry


def _head(registry: Registry) -> int:
    return registry.audit.log()[-1].sequence


def _library(folder: Path) -> Path:
    write(folder, "support/summarize.prompt.yaml", SUMMARIZE)
    write(folder, "classify.prompt.yaml", CHAT)
    write(folder, "greet.prompt.md", MARKDOWN)
    return folder


# --- sync and export -------------------------------------------------------------------------------


def test_sync_registers_each_prompt_with_its_source_and_audits_it(reg: Registry, tmp_path: Path) -> None:
    report = reg.prompts.sync(_library(tmp_path / "prompts"))
    assert report.names("added") == ["classify", "greet", "summarize"]
    assert report.git_commit is None and report.missing == ()
    summarize = reg.prompts.get("summarize")
    assert summarize.ref == "summarize-v1" and summarize.model == "m@1.0.0"
    assert summarize.params == {"temperature": 0.2, "max_tokens": 300}
    assert summarize.source["path"] == "support/summarize.prompt.yaml"
    assert summarize.description == "Summarize a support ticket" and summarize.tags == ("support",)
    events = reg.audit.log(subject="prompt:summarize-v1")
    assert [e.action for e in events] == ["prompt.version_added"]
    assert events[0].payload["content_hash"] == summarize.content_hash
    assert reg.audit.verify().ok


def test_sync_then_export_then_sync_is_a_no_op(reg: Registry, tmp_path: Path) -> None:
    reg.prompts.sync(_library(tmp_path / "prompts"))
    head = _head(reg)
    exported = reg.prompts.export(tmp_path / "out")
    assert sorted(exported.written) == [
        "classify.prompt.yaml",
        "greet.prompt.md",
        "support/summarize.prompt.yaml",
    ]
    again = reg.prompts.sync(tmp_path / "out")
    assert again.names("unchanged") == ["classify", "greet", "summarize"] and not again.changed_anything
    assert _head(reg) == head  # nothing was recorded
    assert reg.prompts.export(tmp_path / "out").unchanged == exported.written


@SQLITE_ONLY
def test_a_changed_file_adds_a_version_and_unchanged_content_never_does(
    reg: Registry, tmp_path: Path
) -> None:
    folder = tmp_path / "prompts"
    assert sync_one(reg, folder, template="Hello {{ who }}!") == "greet-v1"
    assert sync_one(reg, folder, template="Hi {{ who }}!") == "greet-v2"
    report = reg.prompts.sync(folder)
    assert report.names("unchanged") == ["greet"]
    assert [e.version.ref for e in reg.prompts.versions("greet")] == ["greet-v1", "greet-v2"]


def test_returning_to_earlier_content_reuses_its_version(reg: Registry, tmp_path: Path) -> None:
    folder = tmp_path / "prompts"
    sync_one(reg, folder, template="Hello {{ who }}!")
    sync_one(reg, folder, template="Hi {{ who }}!")
    write(folder, "greet.prompt.yaml", prompt_yaml("greet", "Hello {{ who }}!"))
    report = reg.prompts.sync(folder)
    assert report.items[0].status == "reverted" and report.items[0].ref == "greet-v1"
    assert report.items[0].previous == "greet-v2"
    assert reg.prompts.get("greet").ref == "greet-v1"
    assert len(reg.prompts.versions("greet")) == 2
    assert [e.action for e in reg.audit.log(subject="prompt:greet-v1")] == [
        "prompt.version_added",
        "prompt.reverted",
    ]


@SQLITE_ONLY
def test_description_and_tags_are_metadata_outside_the_hash(reg: Registry, tmp_path: Path) -> None:
    folder = tmp_path / "prompts"
    write(folder, "summarize.prompt.yaml", SUMMARIZE)
    reg.prompts.sync(folder)
    write(folder, "summarize.prompt.yaml", SUMMARIZE.replace("Summarize a support ticket", "Shorter"))
    report = reg.prompts.sync(folder)
    assert report.items[0].status == "unchanged" and report.items[0].metadata_changed
    assert reg.prompts.get("summarize").description == "Shorter"
    assert [e.action for e in reg.audit.log(subject="prompt:summarize")] == ["prompt.metadata_changed"]


@SQLITE_ONLY
def test_prompts_missing_from_the_folder_are_reported_and_kept(reg: Registry, tmp_path: Path) -> None:
    reg.prompts.sync(_library(tmp_path / "prompts"))
    (tmp_path / "prompts" / "greet.prompt.md").unlink()
    report = reg.prompts.sync(tmp_path / "prompts")
    assert report.missing == ("greet",)
    assert reg.prompts.get("greet").ref == "greet-v1"


@SQLITE_ONLY
def test_sync_records_the_git_commit_and_whether_the_file_was_committed(
    reg: Registry, tmp_path: Path
) -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "app"
    folder = repo / "prompts"
    write(folder, "greet.prompt.yaml", prompt_yaml("greet"))
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "prompts"], check=True)
    commit = subprocess.run(
        [*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    report = reg.prompts.sync(folder)
    assert report.git_commit == commit
    source = reg.prompts.get("greet").source
    assert source == {
        "path": "greet.prompt.yaml",
        "format": "yaml",
        "git_commit": commit,
        "git_path": "prompts/greet.prompt.yaml",
        "git_dirty": False,
    }
    write(folder, "greet.prompt.yaml", prompt_yaml("greet", "Hey {{ who }}"))
    reg.prompts.sync(folder)
    assert reg.prompts.get("greet").source["git_dirty"] is True


@SQLITE_ONLY
def test_export_refuses_to_overwrite_a_different_file_unless_forced(reg: Registry, tmp_path: Path) -> None:
    sync_one(reg, tmp_path / "prompts")
    out = tmp_path / "out"
    write(out, "greet.prompt.yaml", "name: greet\n# edited by hand\n")
    with pytest.raises(InvalidInput, match="differ from the registry"):
        reg.prompts.export(out)
    assert reg.prompts.export(out, force=True).written == ("greet.prompt.yaml",)
    assert reg.prompts.sync(out).names("unchanged") == ["greet"]


# --- bad files -----------------------------------------------------------------------------------


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("a.prompt.yaml", "name: a\ntemplate: [unclosed\n", "invalid YAML on line"),
        ("a.prompt.yaml", "name: a\ntemplate: x\ntemprature: 1\n", "unknown key(s) temprature"),
        (
            "a.prompt.yaml",
            "name: a\ntemplate: 'Hi {{ who '\nvariables: {who: string}\n",
            "template syntax error on line 1",
        ),
        ("a.prompt.yaml", "name: a\ntemplate: 'Hi {{ who }}'\n", "undeclared variable(s) who"),
        ("a.prompt.yaml", "name: a\ntemplate: x\nmodel: m@production\n", "is not pinned"),
        (
            "a.prompt.yaml",
            "name: a\ntemplate: x\nmodel: other@1.0.0\n",
            "model other@1.0.0 is not registered",
        ),
        ("a.prompt.md", "no front matter\n", "must start with YAML front matter"),
        ("a.prompt.yaml", "- a list\n", "must be a mapping"),
    ],
)
def test_a_bad_file_refuses_the_whole_sync_naming_the_file(
    reg: Registry, tmp_path: Path, name: str, text: str, message: str
) -> None:
    folder = tmp_path / "prompts"
    write(folder, "good.prompt.yaml", prompt_yaml("good"))
    write(folder, name, text)
    head = _head(reg)
    with pytest.raises(PromptFileError) as caught:
        reg.prompts.sync(folder)
    assert name in caught.value.message and message in caught.value.message
    assert _head(reg) == head and reg.prompts.list() == []


@SQLITE_ONLY
def test_duplicate_names_are_refused_naming_both_files(reg: Registry, tmp_path: Path) -> None:
    folder = tmp_path / "prompts"
    write(folder, "one.prompt.yaml", prompt_yaml("same"))
    write(folder, "sub/two.prompt.yaml", prompt_yaml("same"))
    with pytest.raises(PromptFileError, match=r"also used by sub/two\.prompt\.yaml") as caught:
        reg.prompts.sync(folder)
    assert [p for p, _ in caught.value.problems] == ["one.prompt.yaml", "sub/two.prompt.yaml"]


@SQLITE_ONLY
def test_a_missing_folder_is_invalid_input(reg: Registry, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="is not a folder"):
        reg.prompts.sync(tmp_path / "nowhere")


# --- lint ----------------------------------------------------------------------------------------


@SQLITE_ONLY
def test_check_reports_each_kind_of_finding(reg: Registry, tmp_path: Path) -> None:
    folder = tmp_path / "prompts"
    write(folder, "fine.prompt.yaml", prompt_yaml("fine"))
    write(
        folder,
        "unused.prompt.yaml",
        "model: m@1.0.0\nvariables: {who: string, n: integer}\n"
        "template: 'Hi {{ who }}'\ntests: [{kind: json}]\n",
    )
    write(folder, "untested.prompt.yaml", "model: m@1.0.0\ntemplate: plain\n")
    write(folder, "renamed.prompt.yaml", prompt_yaml("other-name"))
    write(folder, "floating.prompt.yaml", prompt_yaml("floating", model="m@production"))
    write(folder, "unknown.prompt.yaml", prompt_yaml("unknown", model="ghost@1.0.0"))
    write(folder, "broken.prompt.yaml", prompt_yaml("broken", "{% if who %}"))
    report = reg.prompts.check(folder)
    codes = {(f.file, f.code) for f in report.findings}
    assert codes == {
        ("unused.prompt.yaml", "unused-variable"),
        ("untested.prompt.yaml", "missing-tests"),
        ("renamed.prompt.yaml", "name-mismatch"),
        ("floating.prompt.yaml", "model-not-pinned"),
        ("unknown.prompt.yaml", "model-not-registered"),
        ("broken.prompt.yaml", "template-syntax"),
    }
    assert report.errors == 4 and report.warnings == 2 and not report.ok()
    assert all(f.prompt for f in report.findings)


# --- reads ---------------------------------------------------------------------------------------


def test_list_versions_and_show(reg: Registry, tmp_path: Path) -> None:
    folder = tmp_path / "prompts"
    sync_one(reg, folder, template="Hello {{ who }}!")
    sync_one(reg, folder, template="Hi {{ who }}!")
    reg.prompts.promote("greet-v1", to="development")
    [summary] = reg.prompts.list()
    assert summary.as_dict()["latest"] == "greet-v2" and summary.versions == 2
    assert summary.environments == {"development": "greet-v1", "staging": None, "production": None}
    entries = reg.prompts.versions("greet")
    assert [(e.version.ref, e.latest, e.environments) for e in entries] == [
        ("greet-v1", False, ("development",)),
        ("greet-v2", True, ()),
    ]
    details = reg.prompts.show("greet@development")
    assert details.version.ref == "greet-v1" and details.environments == ("development",)
    assert details.as_dict()["environment"] == "development"
    for ref in ("greet-v2", "greet@2", "greet"):
        assert reg.prompts.show(ref).version.ref == "greet-v2"
    with pytest.raises(NotFound, match="greet-v9"):
        reg.prompts.show("greet-v9")
    with pytest.raises(NotFound, match="in staging"):
        reg.prompts.show("greet@staging")
    with pytest.raises(NotFound, match="prompt 'nope'"):
        reg.prompts.versions("nope")


def test_diff_shows_text_params_variables_model_and_tests(reg: Registry, tmp_path: Path) -> None:
    folder = tmp_path / "prompts"
    write(folder, "summarize.prompt.yaml", SUMMARIZE)
    reg.prompts.sync(folder)
    changed = (
        SUMMARIZE.replace("temperature: 0.2", "temperature: 0.5")
        .replace("Summarize in", "Briefly summarize in")
        .replace("{type: integer, default: 50}", "{type: integer, default: 80}")
        .replace("- {kind: max_length, value: 2000}", '- {kind: not_contains, value: "sorry"}')
    )
    write(folder, "summarize.prompt.yaml", changed)
    reg.prompts.sync(folder)
    d = reg.prompts.diff("summarize-v1", "summarize-v2")
    assert not d.identical
    assert (
        "-Summarize in {{ words }} words:" in d.text and "+Briefly summarize in {{ words }} words:" in d.text
    )
    assert d.params["changed"] == {"temperature": {"a": 0.2, "b": 0.5}}
    assert d.variables["changed"]["words"] == {
        "a": {"type": "integer", "default": 50},
        "b": {"type": "integer", "default": 80},
    }
    assert d.tests == {
        "added": [{"kind": "not_contains", "value": "sorry"}],
        "removed": [{"kind": "max_length", "value": 2000}],
    }
    assert not d.model["changed"]
    assert d.as_dict()["validations"] == {"a": None, "b": None}
    assert d.as_dict()["production_metrics"] == {"a": None, "b": None}
    assert reg.prompts.diff("summarize-v1", "summarize@1").identical


# --- rendering -------------------------------------------------------------------------------------


@SQLITE_ONLY
def test_render_is_strict_about_variables(reg: Registry, tmp_path: Path) -> None:
    folder = tmp_path / "prompts"
    write(folder, "summarize.prompt.yaml", SUMMARIZE)
    reg.prompts.sync(folder)
    version = reg.prompts.get("summarize")
    assert version.render(ticket="Printer on fire") == "Summarize in 50 words:\nPrinter on fire\n"
    assert str(version.render(ticket="x", words=10)).startswith("Summarize in 10 words")
    with pytest.raises(PromptVariablesInvalid, match="missing: ticket"):
        version.render()
    with pytest.raises(PromptVariablesInvalid, match="not declared: tone"):
        version.render(ticket="x", tone="warm")
    with pytest.raises(PromptVariablesInvalid, match="wrong type: words"):
        version.render(ticket="x", words="ten")
    rendered = reg.prompts.render("summarize-v1", {"ticket": "x", "words": "7"}, as_text=True)
    assert str(rendered).startswith("Summarize in 7 words")


@SQLITE_ONLY
def test_chat_prompts_render_to_messages(reg: Registry, tmp_path: Path) -> None:
    write(tmp_path / "prompts", "classify.prompt.yaml", CHAT)
    reg.prompts.sync(tmp_path / "prompts")
    assert reg.prompts.get("classify").render(text="Great!") == [
        {"role": "system", "content": "Answer with one of: positive, negative."},
        {"role": "user", "content": "Great!"},
    ]


@SQLITE_ONLY
def test_the_sandbox_refuses_unsafe_templates(reg: Registry, tmp_path: Path) -> None:
    sync_one(reg, tmp_path / "prompts", template="{{ who.__class__.__mro__ }}")
    with pytest.raises(InvalidInput, match="rendering failed"):
        reg.prompts.get("greet").render(who="x")


# --- time ----------------------------------------------------------------------------------------


def test_time_queries_answer_what_was_current(reg: Registry, tmp_path: Path, clock: ManualClock) -> None:
    folder = tmp_path / "prompts"
    t0 = clock.now()
    clock.advance(timedelta(hours=1))
    sync_one(reg, folder, template="Hello {{ who }}!")
    reg.prompts.promote("greet-v1", to="development")
    t1 = clock.advance(timedelta(hours=1))
    clock.advance(timedelta(hours=1))
    sync_one(reg, folder, template="Hi {{ who }}!")
    clock.advance(timedelta(hours=1))
    reg.prompts.promote("greet-v2", to="development")
    t3 = clock.advance(timedelta(hours=1))
    assert reg.prompts.show("greet@development", at=t1).version.ref == "greet-v1"
    assert reg.prompts.show("greet@development", at=t3).version.ref == "greet-v2"
    assert reg.prompts.get("greet", at=t1).ref == "greet-v1"
    assert reg.prompts.get("greet", at=t3).ref == "greet-v2"
    with pytest.raises(NotFound, match="at 2026"):
        reg.prompts.show("greet@development", at=t0)
    with pytest.raises(NotFound):
        reg.prompts.get("greet-v2", at=t1)


# --- roles ---------------------------------------------------------------------------------------


def test_viewers_read_and_authors_sync(reg: Registry, tmp_path: Path) -> None:
    folder = tmp_path / "prompts"
    write(folder, "greet.prompt.yaml", prompt_yaml("greet"))
    viewer = add_user(reg, "vera", "viewer")
    head = _head(reg)
    with pytest.raises(MissingRole, match="author"):
        viewer.prompts.sync(folder)
    assert _head(reg) == head
    author = add_user(reg, "ann", "author")
    author.prompts.sync(folder)
    assert viewer.prompts.get("greet").created_by == "ann"
