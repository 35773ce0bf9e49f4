"""Staging validation: runners (callables and commands) that pass, fail, crash or hang; the
assertions applied to their outputs; thresholds from the policy; the evidence recorded."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from charter.errors import InvalidInput, MissingRole, PolicyViolation, Refused
from charter.service.registry import Registry
from tests.conftest import add_user
from tests.test_prompt_helpers import (
    RELEASE,
    SQLITE_ONLY,
    allow_small_samples,
    prompt_yaml,
    register_model,
    sample,
    sync_one,
    write,
)

ECHO_RUNNER = Path(__file__).resolve().parent.parent / "examples" / "runners" / "echo_runner.py"
HELPERS = "tests.test_prompt_helpers"


@pytest.fixture
def reg(registry: Registry) -> Registry:
    register_model(registry)
    allow_small_samples(registry)  # ≥ 5 rows, ≥ 80 % passing
    return registry


def _rows(*names: str) -> list[dict[str, object]]:
    return [{"id": i, "who": name} for i, name in enumerate(names)]


def _head(reg: Registry) -> int:
    return reg.audit.log()[-1].sequence


def test_a_passing_validation_is_recorded_as_audited_evidence(reg: Registry, tmp_path: Path) -> None:
    ref = sync_one(reg, tmp_path / "p")
    ds = sample(reg, tmp_path / "d", "tickets", _rows("ann", "bob", "cy", "dee", "eve", "fay"))
    seen: list[tuple[int, int]] = []
    result = reg.prompts.validate(
        ref, sample=ds, runner=f"{HELPERS}:echo", progress=lambda done, total: seen.append((done, total))
    )
    assert result.passed and result.pass_rate == 1.0 and result.sample_size == 6 and result.failures == ()
    assert (result.min_pass_rate, result.min_samples) == (0.8, 5)
    assert result.runner["kind"] == "callable" and result.runner["name"] == f"{HELPERS}:echo"
    assert len(result.runner["source_digest"]) == 64
    assert seen[-1] == (6, 6) and len(seen) == 6
    [event] = [e for e in reg.audit.log(subject=f"prompt:{ref}") if e.action == "prompt.validated"]
    assert event.payload["pass_rate"] == 1.0 and event.payload["sample"] == ds
    assert event.evidence == {"failure_count": 0, "failures": []}
    assert result.audit_sequence == event.sequence
    assert reg.prompts.validations(ref)[0].as_dict() == result.as_dict()
    assert reg.audit.verify().ok


def test_a_failing_runner_is_recorded_with_the_failed_rows_and_their_inputs(
    reg: Registry, tmp_path: Path
) -> None:
    ref = sync_one(reg, tmp_path / "p")
    ds = sample(reg, tmp_path / "d", "tickets", _rows("ann", "xavier", "bob", "xena", "cy", "dee"))
    result = reg.prompts.validate(ref, sample=ds, runner=f"{HELPERS}:shout_when_asked")
    assert not result.passed and result.passed_count == 4 and result.sample_size == 6
    assert [f["row"] for f in result.failures] == [1, 3]
    failure = result.failures[0]
    assert failure["inputs"] == {"id": 1, "who": "xavier"} and failure["output"] == "BYE"
    assert failure["failed"] == [
        {"assertion": 'contains "Hello"', "reason": 'output does not contain "Hello"'}
    ]
    assert reg.prompts.validations(ref)[-1].failures == result.failures
    event = reg.audit.log(subject=f"prompt:{ref}")[-1]
    assert event.payload["passed"] is False and event.evidence["failure_count"] == 2


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("runner", "error"),
    [
        ("crash", "the runner raised RuntimeError: model exploded"),
        ("not_text", "the runner returned int, not text"),
    ],
)
def test_a_crashing_runner_fails_its_rows_not_the_validation(
    reg: Registry, tmp_path: Path, runner: str, error: str
) -> None:
    ref = sync_one(reg, tmp_path / "p")
    ds = sample(reg, tmp_path / "d", "tickets", _rows("ann", "xavier", "bob", "xena", "dee"))
    result = reg.prompts.validate(ref, sample=ds, runner=f"{HELPERS}:{runner}")
    failed = [f for f in result.failures if f["error"] == error]
    assert failed and result.sample_size == 5 and not result.passed


@SQLITE_ONLY
def test_a_runner_that_does_not_answer_times_out_row_by_row(reg: Registry, tmp_path: Path) -> None:
    ref = sync_one(reg, tmp_path / "p")
    ds = sample(reg, tmp_path / "d", "tickets", _rows("a", "b", "c", "d", "e"))
    RELEASE.clear()
    try:
        result = reg.prompts.validate(ref, sample=ds, runner=f"{HELPERS}:hang", timeout_s=0.2, concurrency=5)
    finally:
        RELEASE.set()
    assert result.passed_count == 0
    assert {f["error"] for f in result.failures} == {"the runner did not answer within 0.2 s"}


@SQLITE_ONLY
def test_a_python_callable_object_is_accepted_too(reg: Registry, tmp_path: Path) -> None:
    ref = sync_one(reg, tmp_path / "p")
    ds = sample(reg, tmp_path / "d", "tickets", _rows("a", "b", "c", "d", "e"))

    def run(prompt: object, *, params: dict[str, object], model: str | None, row: dict[str, object]) -> str:
        assert model == "m@1.0.0" and params == {} and set(row) == {"id", "who"}
        return str(prompt)

    result = reg.prompts.validate(ref, sample=ds, runner=run)
    assert result.passed and result.runner["name"].endswith("run")


def test_command_runners_get_json_on_stdin(reg: Registry, tmp_path: Path) -> None:
    ref = sync_one(reg, tmp_path / "p")
    ds = sample(reg, tmp_path / "d", "tickets", _rows("a", "b", "c", "d", "e"))
    result = reg.prompts.validate(ref, sample=ds, runner_cmd=f"{sys.executable} {ECHO_RUNNER}")
    assert result.passed and result.runner == {
        "kind": "command",
        "command": f"{sys.executable} {ECHO_RUNNER}",
    }


@SQLITE_ONLY
def test_a_failing_command_fails_its_rows(reg: Registry, tmp_path: Path) -> None:
    ref = sync_one(reg, tmp_path / "p")
    ds = sample(reg, tmp_path / "d", "tickets", _rows("a", "b", "c", "d", "e"))
    command = f"{sys.executable} -c \"import sys; sys.stderr.write('quota exceeded'); sys.exit(3)\""
    result = reg.prompts.validate(ref, sample=ds, runner_cmd=command)
    assert result.passed_count == 0
    assert {f["error"] for f in result.failures} == {
        "the runner command exited with status 3: quota exceeded"
    }
    missing = reg.prompts.validate(ref, sample=ds, runner_cmd="no-such-runner-command")
    assert "was not found" in missing.failures[0]["error"]


@SQLITE_ONLY
def test_predicates_schemas_and_chat_prompts(reg: Registry, tmp_path: Path) -> None:
    write(
        tmp_path / "p",
        "label.prompt.yaml",
        """\
        model: m@1.0.0
        variables: {who: string, tags: list}
        messages:
          - {role: system, content: "Reply in JSON."}
          - {role: user, content: '{"label": "{{ who }}", "tags": {{ tags | tojson }}, "note": "please"}'}
        tests:
          - kind: json_schema
            schema: {type: object, required: [label, tags], properties: {tags: {type: array, maxItems: 2}}}
          - {kind: python, function: "tests.test_prompt_helpers:is_polite"}
        """,
    )
    reg.prompts.sync(tmp_path / "p")
    rows = [{"who": f"n{i}", "tags": ["a"] * (3 if i == 0 else 1)} for i in range(5)]
    ds = sample(reg, tmp_path / "d", "labels", rows, fmt="jsonl")
    result = reg.prompts.validate("label-v1", sample=ds, runner="examples.runners.echo_runner:run")
    assert result.passed_count == 4
    [failure] = result.failures
    assert failure["row"] == 0 and "maxItems" not in failure["failed"][0]["reason"]
    assert "more than 2 items" in failure["failed"][0]["reason"]


@SQLITE_ONLY
def test_rows_that_cannot_be_rendered_fail_alone(reg: Registry, tmp_path: Path) -> None:
    write(
        tmp_path / "p",
        "count.prompt.yaml",
        prompt_yaml("count", "{{ who }} has {{ n }}", tests=None).replace(
            "  who: string\n", "  who: string\n  n: integer\n"
        ),
    )
    reg.prompts.sync(tmp_path / "p")
    ds = sample(reg, tmp_path / "d", "counts", [{"who": "Hello", "n": n} for n in (1, 2, 3, 4, "many")])
    result = reg.prompts.validate("count-v1", sample=ds, runner=f"{HELPERS}:echo")
    [failure] = result.failures
    assert failure["row"] == 4 and "cannot render" in failure["error"] and "wrong type: n" in failure["error"]


@SQLITE_ONLY
def test_refusals_record_nothing(reg: Registry, tmp_path: Path) -> None:
    ref = sync_one(reg, tmp_path / "p")
    ds = sample(reg, tmp_path / "d", "tickets", _rows("a", "b", "c", "d", "e"))
    other = sample(reg, tmp_path / "e", "other", [{"name": "x"}] * 5)
    write(tmp_path / "q", "bare.prompt.yaml", "model: m@1.0.0\ntemplate: plain\n")
    reg.prompts.sync(tmp_path / "q")
    head = _head(reg)
    cases = [
        (InvalidInput, "give exactly one runner", {"sample": ds}),
        (
            InvalidInput,
            "give exactly one runner",
            {"sample": ds, "runner": f"{HELPERS}:echo", "runner_cmd": "x"},
        ),
        (InvalidInput, "cannot import 'no_such_module'", {"sample": ds, "runner": "no_such_module:run"}),
        (InvalidInput, "has no function 'nope'", {"sample": ds, "runner": f"{HELPERS}:nope"}),
        (
            PolicyViolation,
            "below the policy minimum 0.8",
            {"sample": ds, "runner": f"{HELPERS}:echo", "min_pass_rate": 0.5},
        ),
        (
            PolicyViolation,
            "has 5 rows but a validation needs at least 6",
            {"sample": ds, "runner": f"{HELPERS}:echo", "min_samples": 6},
        ),
        (InvalidInput, "no column for variable(s) who", {"sample": other, "runner": f"{HELPERS}:echo"}),
    ]
    for error, message, kwargs in cases:
        with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
            reg.prompts.validate(ref, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(Refused, match="has no tests"):
        reg.prompts.validate("bare-v1", sample=ds, runner=f"{HELPERS}:echo")
    viewer = add_user(reg, "vera", "viewer")
    head = _head(reg)
    with pytest.raises(MissingRole, match="author"):
        viewer.prompts.validate(ref, sample=ds, runner=f"{HELPERS}:echo")
    assert _head(reg) == head


@SQLITE_ONLY
def test_the_default_policy_wants_fifty_rows(registry: Registry, tmp_path: Path) -> None:
    register_model(registry)
    ref = sync_one(registry, tmp_path / "p")
    ds = sample(registry, tmp_path / "d", "tickets", _rows(*(f"n{i}" for i in range(50))))
    result = registry.prompts.validate(ref, sample=ds, runner=f"{HELPERS}:echo", min_pass_rate=0.99)
    assert result.passed and (result.min_pass_rate, result.min_samples) == (0.99, 50)
