"""Running a prompt's tests over a sample: runners, reading the sample, rows in parallel.

The runner turns a rendered prompt into an output; charter applies the assertions.

- A Python callable `run(prompt, *, params, model, row) -> str` (`--runner module:function`);
  `prompt` is the rendered text, or the rendered message list for chat prompts.
- A command (`--runner-cmd CMD`, split like a shell would, run without a shell) started once per
  row: one JSON object `{"prompt", "params", "model", "row"}` on stdin, the output on stdout (one
  trailing newline is dropped). A non-zero exit status fails the row.

A runner that raises, exits non-zero, returns something other than text or exceeds the time-out
fails that row; it never stops the validation. Nothing here touches the database.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import hashlib
import importlib
import inspect
import json
import math
import shlex
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from charter.domain.assertions import Predicate, failures
from charter.domain.prompts import Variable, coerce_sample_value
from charter.errors import CharterError, InvalidInput
from charter.service.prompt_run import DEFAULT_CONCURRENCY, DEFAULT_TIMEOUT_S, RunnerFunction, ValidationRun
from charter.service.prompt_templates import Rendered
from charter.service.prompt_version import PromptVersion

TABULAR = (".csv", ".parquet", ".pq", ".jsonl", ".ndjson", ".json")
# The run's own types and defaults live in `prompt_run` (light: the prompt service's signatures
# name them); they are re-exported here for the runners' callers.
__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_TIMEOUT_S",
    "MAX_OUTPUT_CHARS",
    "TABULAR",
    "CallableRunner",
    "CommandRunner",
    "RowOutcome",
    "Runner",
    "RunnerFailed",
    "RunnerFunction",
    "RunnerTimedOut",
    "ValidationRun",
    "importable_from",
    "load_callable",
    "load_predicates",
    "make_runner",
    "missing_columns",
    "plain",
    "read_sample",
    "row_values",
    "run_rows",
]

MAX_OUTPUT_CHARS = 2000  # of an output kept as evidence


class Runner:
    """Turns a rendered prompt into an output. `identity` is recorded with the evidence."""

    identity: dict[str, Any]

    def __call__(
        self, prompt: Rendered, params: Mapping[str, Any], model: str | None, row: Mapping[str, Any]
    ) -> Any:
        raise NotImplementedError


class CallableRunner(Runner):
    def __init__(self, function: RunnerFunction, name: str) -> None:
        self.function = function
        self.identity = {"kind": "callable", "name": name, "source_digest": _source_digest(function)}

    def __call__(
        self, prompt: Rendered, params: Mapping[str, Any], model: str | None, row: Mapping[str, Any]
    ) -> Any:
        return self.function(prompt, params=dict(params), model=model, row=dict(row))


class CommandRunner(Runner):
    def __init__(self, command: str) -> None:
        try:
            self.argv = shlex.split(command)
        except ValueError as exc:
            raise InvalidInput(f"runner command {command!r} cannot be split into words: {exc}") from None
        if not self.argv:
            raise InvalidInput("the runner command is empty; give a command such as `python runner.py`")
        self.identity = {"kind": "command", "command": command}
        self.timeout: float | None = None

    def __call__(
        self, prompt: Rendered, params: Mapping[str, Any], model: str | None, row: Mapping[str, Any]
    ) -> Any:
        payload = json.dumps({"prompt": prompt, "params": dict(params), "model": model, "row": dict(row)})
        try:
            done = subprocess.run(
                self.argv,
                input=payload,
                capture_output=True,
                text=True,
                timeout=self.timeout,
                check=False,
            )
        except FileNotFoundError:
            raise RunnerFailed(f"the runner command {self.argv[0]!r} was not found") from None
        except subprocess.TimeoutExpired:
            raise RunnerTimedOut(self.timeout or 0) from None
        if done.returncode != 0:
            tail = done.stderr.strip()[-500:]
            raise RunnerFailed(f"the runner command exited with status {done.returncode}: {tail}")
        out = done.stdout
        return out[:-2] if out.endswith("\r\n") else out[:-1] if out.endswith("\n") else out


class RunnerFailed(Exception):
    pass


class RunnerTimedOut(Exception):
    def __init__(self, seconds: float) -> None:
        super().__init__(f"the runner did not answer within {seconds:g} s")


def load_callable(spec: str, what: str) -> RunnerFunction:
    """`module:function` imported; InvalidInput says what went wrong."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise InvalidInput(f"{what} {spec!r} must be written module:function (for example my_runner:run)")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise InvalidInput(
            f"cannot import {module_name!r} for {what} {spec}: {type(exc).__name__}: {exc}"
        ) from None
    target: Any = module
    for part in attribute.split("."):
        target = getattr(target, part, None)
    if not callable(target):
        raise InvalidInput(f"{what} {spec}: {module_name} has no function {attribute!r}")
    return target  # type: ignore[no-any-return]


def make_runner(runner: str | RunnerFunction | None, command: str | None) -> Runner:
    """Exactly one of a callable (or its `module:function`) and a command."""
    if (runner is None) == (command is None):
        raise InvalidInput(
            "give exactly one runner: --runner module:function (a Python callable) or --runner-cmd CMD "
            "(a command reading JSON on stdin); the examples ship examples.runners.echo_runner:run"
        )
    if command is not None:
        return CommandRunner(command)
    if isinstance(runner, str):
        return CallableRunner(load_callable(runner, "runner"), runner)
    assert runner is not None
    name = f"{getattr(runner, '__module__', '?')}:{getattr(runner, '__qualname__', repr(runner))}"
    return CallableRunner(runner, name)


def load_predicates(version: PromptVersion) -> dict[str, Predicate]:
    specs = {t.argument for t in version.tests if t.kind == "python"}
    return {spec: load_callable(spec, "python assertion") for spec in sorted(specs)}


def _source_digest(function: Any) -> str | None:
    try:
        source = inspect.getsourcefile(function)
    except TypeError:
        return None
    if not source:
        return None
    try:
        return hashlib.sha256(Path(source).read_bytes()).hexdigest()
    except OSError:
        return None


# --- the sample -----------------------------------------------------------------------------------


def read_sample(folder: Path, variables: Sequence[Variable]) -> list[dict[str, Any]]:
    """Every row of the tabular files in `folder` (path order). CSV columns of string variables are
    read as text, so `007` stays `007`."""
    import pyarrow as pa

    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in TABULAR)
    if not files:
        raise InvalidInput(
            "the sample has no tabular file (CSV, Parquet or JSON Lines); snapshot one with "
            "`charter dataset add NAME FILE --role production-sample`"
        )
    strings = {v.name: pa.string() for v in variables if v.type == "string"}
    rows: list[dict[str, Any]] = []
    for path in files:
        rows.extend(_read_table(path, strings).to_pylist())
    return rows


def _read_table(path: Path, strings: Mapping[str, Any]) -> Any:
    import pyarrow.csv
    import pyarrow.json
    import pyarrow.parquet

    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            options = pyarrow.csv.ConvertOptions(column_types=dict(strings), strings_can_be_null=False)
            return pyarrow.csv.read_csv(path, convert_options=options)
        if suffix in (".parquet", ".pq"):
            return pyarrow.parquet.read_table(path)
        return pyarrow.json.read_json(path)
    except Exception as exc:  # pyarrow.ArrowInvalid and friends
        raise InvalidInput(f"the sample file {path.name} cannot be read as a table: {exc}") from None


def row_values(row: Mapping[str, Any], variables: Sequence[Variable]) -> dict[str, Any]:
    """The row's values for the declared variables (missing or null cells use the defaults)."""
    values = {}
    for variable in variables:
        value = row.get(variable.name)
        if value is not None:
            values[variable.name] = coerce_sample_value(variable, value)
    return values


def missing_columns(columns: Sequence[str], variables: Sequence[Variable]) -> list[str]:
    return sorted(v.name for v in variables if v.required and v.name not in columns)


def plain(value: Any) -> Any:
    """A cell as JSON can hold it (times as ISO text, decimals and bytes as text)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


# --- running --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RowOutcome:
    index: int
    inputs: dict[str, Any]
    output: str | None
    error: str | None  # the row could not be run: render error, runner error or time-out
    failed: tuple[dict[str, str], ...]  # assertions the output failed

    @property
    def passed(self) -> bool:
        return self.error is None and not self.failed

    def as_evidence(self) -> dict[str, Any]:
        output = self.output
        if output is not None and len(output) > MAX_OUTPUT_CHARS:
            output = output[:MAX_OUTPUT_CHARS] + "…"
        return {
            "row": self.index,
            "inputs": self.inputs,
            "output": output,
            "error": self.error,
            "failed": list(self.failed),
        }


def run_rows(
    version: PromptVersion,
    rows: Sequence[Mapping[str, Any]],
    runner: Runner,
    *,
    predicates: Mapping[str, Predicate],
    concurrency: int = DEFAULT_CONCURRENCY,
    timeout_s: float | None = DEFAULT_TIMEOUT_S,
    progress: Callable[[int, int], None] | None = None,
) -> ValidationRun:
    """Render, run and check every row, `concurrency` at a time; progress(done, total) is called
    from the calling thread as rows finish."""
    if concurrency < 1:
        raise InvalidInput(f"concurrency must be at least 1, not {concurrency}")
    if isinstance(runner, CommandRunner):
        runner.timeout = timeout_s
    started = time.perf_counter()
    outcomes: list[RowOutcome] = []
    total = len(rows)
    with ThreadPoolExecutor(
        max_workers=min(concurrency, max(total, 1)), thread_name_prefix="charter-row"
    ) as pool:
        futures = [
            pool.submit(_run_row, version, i, row, runner, predicates, timeout_s)
            for i, row in enumerate(rows)
        ]
        for done, future in enumerate(as_completed(futures), start=1):
            outcomes.append(future.result())
            if progress is not None:
                progress(done, total)
    outcomes.sort(key=lambda o: o.index)
    return ValidationRun(
        total,
        sum(1 for o in outcomes if o.passed),
        tuple(o.as_evidence() for o in outcomes if not o.passed),
        time.perf_counter() - started,
        dict(runner.identity),
    )


def _run_row(
    version: PromptVersion,
    index: int,
    row: Mapping[str, Any],
    runner: Runner,
    predicates: Mapping[str, Predicate],
    timeout_s: float | None,
) -> RowOutcome:
    inputs = {str(k): plain(v) for k, v in row.items()}
    try:
        prompt = version.render_values(row_values(row, version.variables))
    except CharterError as exc:
        return RowOutcome(index, inputs, None, f"cannot render: {exc.message}", ())
    try:
        output = _call(runner, prompt, version, inputs, timeout_s)
    except RunnerTimedOut as exc:
        return RowOutcome(index, inputs, None, str(exc), ())
    except RunnerFailed as exc:
        return RowOutcome(index, inputs, None, str(exc), ())
    except Exception as exc:
        return RowOutcome(index, inputs, None, f"the runner raised {type(exc).__name__}: {exc}", ())
    if not isinstance(output, str):
        return RowOutcome(index, inputs, None, f"the runner returned {type(output).__name__}, not text", ())
    return RowOutcome(index, inputs, output, None, tuple(failures(version.tests, output, inputs, predicates)))


def _call(
    runner: Runner, prompt: Rendered, version: PromptVersion, row: Mapping[str, Any], timeout_s: float | None
) -> Any:
    params, model = version.params, version.model
    if timeout_s is None or isinstance(runner, CommandRunner):
        return runner(prompt, params, model, row)
    # A Python callable cannot be interrupted: it runs in a daemon thread we stop waiting for.
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = runner(prompt, params, model, row)
        except BaseException as exc:
            result["error"] = exc

    worker = threading.Thread(target=target, name="charter-runner", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        raise RunnerTimedOut(timeout_s)
    if "error" in result:
        raise result["error"]
    return result.get("value")


@contextlib.contextmanager
def importable_from(folder: Path | None) -> Any:
    """Let `module:function` names resolve against `folder` (the CLI passes the working folder)."""
    import sys

    if folder is None or str(folder) in sys.path:
        yield
        return
    sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(str(folder))
