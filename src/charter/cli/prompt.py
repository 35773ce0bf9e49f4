"""`charter prompt …`: git-native prompts, environments, staging validation, diff and rollback."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from charter.cli.context import registry
from charter.cli.output import JsonFlag, emit, escape, fields, say, table

if TYPE_CHECKING:
    from charter.service.prompt_results import Validation

prompt_app = typer.Typer(
    help="The prompt library: versioned prompt files, environments, validation, rollback.",
    no_args_is_help=True,
)


def _when(value: Any) -> str:
    return "" if value is None else value.isoformat(timespec="seconds")


def _rate(validation: Validation | None) -> str:
    if validation is None:
        return ""
    verdict = "pass" if validation.passed else "FAIL"
    return f"{verdict} {validation.pass_rate:.1%} of {validation.sample_size} ({validation.sample})"


# --- files ----------------------------------------------------------------------------------------


@prompt_app.command("sync")
def sync(
    folder: Path = typer.Argument(
        ..., help="Folder of *.prompt.yaml / *.prompt.md files (searched recursively)."
    ),
    json_out: bool = JsonFlag,
) -> None:
    """Register a new version of every changed prompt file (same content adds nothing), recording
    the git commit and path; list registered prompts missing from the folder (never deleted)."""
    report = registry().prompts.sync(folder)

    def human() -> None:
        for item in report.items:
            if item.status == "unchanged" and not item.metadata_changed:
                continue
            detail = {
                "added": f"added {item.ref}",
                "changed": f"{item.previous} → {item.ref}",
                "reverted": f"back to {item.ref} (was {item.previous})",
                "unchanged": f"{item.ref}, description/tags updated",
            }[item.status]
            say(f"  {item.name}: {detail}  [dim]{item.path}[/dim]")
        counts = {s: len(report.names(s)) for s in ("added", "changed", "reverted", "unchanged")}
        say(
            f"synced {folder}: {counts['added']} added, {counts['changed']} changed, "
            f"{counts['reverted']} reverted, {counts['unchanged']} unchanged"
            + (f" at commit {report.git_commit[:12]}" if report.git_commit else "")
        )
        if report.missing:
            say(f"[yellow]in the registry but not in the folder (kept):[/] {', '.join(report.missing)}")

    emit(report, json_out, human)


@prompt_app.command("export")
def export(
    folder: Path = typer.Argument(..., help="Folder to write the prompt files into."),
    env: str = typer.Option(
        None, "--env", help="Export the versions this environment holds (default: latest)."
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite files whose content differs."),
    json_out: bool = JsonFlag,
) -> None:
    """Write each prompt's latest version (or an environment's versions) back to prompt files."""
    report = registry().prompts.export(folder, environment=env, force=force)
    emit(
        report,
        json_out,
        lambda: say(
            f"exported to {report.folder}: {len(report.written)} written, {len(report.unchanged)} unchanged"
        ),
    )


@prompt_app.command("check")
def check(
    folder: Path = typer.Argument(..., help="Folder of prompt files to lint."),
    offline: bool = typer.Option(
        False, "--offline", help="Do not open the store (model registration unchecked)."
    ),
    strict: bool = typer.Option(False, "--strict", help="Fail on warnings too."),
    json_out: bool = JsonFlag,
) -> None:
    """Lint prompt files for CI: syntax, undeclared/unused variables, unpinned or unregistered
    models, missing tests. Exits 1 when there are errors (or warnings, with --strict)."""
    if offline:
        from charter.service.prompt_check import lint_folder

        report = lint_folder(folder)
    else:
        report = registry().prompts.check(folder)

    def human() -> None:
        if report.findings:
            table(
                f"prompt check {folder}",
                ["file", "severity", "code", "message"],
                [(f.file, f.severity, f.code, f.message) for f in report.findings],
            )
        say(f"{report.files} files: {report.errors} errors, {report.warnings} warnings")

    emit(report, json_out, human)
    if not report.ok(strict=strict):
        raise typer.Exit(1)


# --- reads ----------------------------------------------------------------------------------------


@prompt_app.command("list")
def list_(json_out: bool = JsonFlag) -> None:
    """Every prompt with its latest version and what each environment holds."""
    found = registry().prompts.list()

    def human() -> None:
        envs = list(dict.fromkeys(e for p in found for e in p.environments))  # the policy's order
        table(
            "prompts",
            ["prompt", "latest", "versions", *envs, "description"],
            [
                (p.name, p.latest, p.versions, *(p.environments.get(e) or "" for e in envs), p.description)
                for p in found
            ],
        )

    emit(found, json_out, human)


@prompt_app.command("versions")
def versions(name: str, json_out: bool = JsonFlag) -> None:
    """Every version of a prompt, oldest first: where it came from, where it is, its validation."""
    found = registry().prompts.versions(name)
    emit(
        found,
        json_out,
        lambda: table(
            f"versions of {name}",
            ["version", "created", "by", "hash", "model", "environments", "validation", "source"],
            [
                (
                    e.version.ref + (" (latest)" if e.latest else ""),
                    _when(e.version.created_at),
                    e.version.created_by,
                    e.version.content_hash[:12],
                    e.version.model,
                    ", ".join(e.environments),
                    _rate(e.validation),
                    _source(e.version.source),
                )
                for e in found
            ],
        ),
    )


def _source(source: Any) -> str:
    commit = source.get("git_commit")
    path = source.get("git_path") or source.get("path") or ""
    return (
        path + (f" @ {commit[:10]}" if commit else "") + (" (uncommitted)" if source.get("git_dirty") else "")
    )


@prompt_app.command("show")
def show(
    ref: str = typer.Argument(..., help="NAME-vN, NAME@N, NAME@ENV or NAME (the latest)."),
    at: str = typer.Option(None, "--at", help="The version the reference named at this time (ISO 8601)."),
    json_out: bool = JsonFlag,
) -> None:
    """One prompt version: text, variables, model, params, tests, environments, validations."""
    from charter.domain.times import parse_time

    details = registry().prompts.show(ref, at=parse_time(at) if at else None)
    v = details.version

    def human() -> None:
        fields(
            [
                ("version", v.ref),
                ("content hash", v.content_hash),
                ("model", v.model),
                ("params", ", ".join(f"{k}={val}" for k, val in v.params.items())),
                (
                    "variables",
                    ", ".join(
                        f"{x.name}: {x.type}" + ("" if x.required else f" = {x.default!r}")
                        for x in v.variables
                    ),
                ),
                ("tests", "; ".join(t.describe() for t in v.tests)),
                ("environments", ", ".join(details.environments)),
                ("description", v.description),
                ("tags", ", ".join(v.tags)),
                ("source", _source(v.source)),
                ("created", f"{_when(v.created_at)} by {v.created_by}"),
            ]
        )
        say("")
        if v.messages is not None:
            for m in v.messages:
                say(f"[bold]{m.role}[/bold]")
                say(escape(m.content))
        else:
            say(escape(v.template or ""))
        if details.validations:
            table(
                "validations",
                ["when", "by", "sample", "result", "rows", "runner"],
                [
                    (
                        _when(x.created_at),
                        x.created_by,
                        x.sample,
                        ("pass" if x.passed else "FAIL") + f" {x.pass_rate:.1%}",
                        x.sample_size,
                        x.runner.get("name") or x.runner.get("command"),
                    )
                    for x in details.validations
                ],
            )

    emit(details, json_out, human)


@prompt_app.command("diff")
def diff(
    a: str = typer.Argument(..., help="The old version (NAME-vN, NAME@ENV, …)."),
    b: str = typer.Argument(..., help="The new version."),
    json_out: bool = JsonFlag,
) -> None:
    """What changed from A to B: text, variables, model, params, tests, with each version's
    validation results (and production metrics, once recorded) side by side."""
    d = registry().prompts.diff(a, b)

    def human() -> None:
        if d.identical:
            say(f"{d.a} and {d.b} have the same content")
        for line in d.text:
            style = "green" if line.startswith("+") else "red" if line.startswith("-") else None
            say(f"[{style}]{escape(line)}[/{style}]" if style else escape(line))
        for label, changes in (("variable", d.variables), ("param", d.params)):
            for key, value in changes["added"].items():
                say(f"+ {label} {key}: {value}")
            for key, value in changes["removed"].items():
                say(f"- {label} {key}: {value}")
            for key, value in changes["changed"].items():
                say(f"~ {label} {key}: {value['a']} → {value['b']}")
        if d.model["changed"]:
            say(f"~ model: {d.model['a']} → {d.model['b']}")
        for test in d.tests["added"]:
            say(f"+ test {test}")
        for test in d.tests["removed"]:
            say(f"- test {test}")
        table(
            "evidence",
            ["", d.a, d.b],
            [
                ("validation", _summary(d.validations["a"]), _summary(d.validations["b"])),
                (
                    "production metrics",
                    _metrics(d.production_metrics.get("a")),
                    _metrics(d.production_metrics.get("b")),
                ),
            ],
        )

    emit(d, json_out, human)


def _summary(v: Any) -> str:
    if v is None:
        return "none"
    verdict = "pass" if v["passed"] else "FAIL"
    return f"{verdict} {v['pass_rate']:.1%} of {v['sample_size']} on {v['sample']}"


def _metrics(m: Any) -> str:
    return "not recorded" if not m else ", ".join(f"{k}={v}" for k, v in m.items())


@prompt_app.command("render")
def render(
    ref: str = typer.Argument(..., help="The version to render (NAME-vN, NAME@ENV, NAME)."),
    var: list[str] = typer.Option(
        [], "--var", help="A variable, NAME=VALUE (repeatable; lists/objects as JSON)."
    ),
    json_out: bool = JsonFlag,
) -> None:
    """Render a prompt with strict variable checking: missing or undeclared variables are errors."""
    from charter.errors import InvalidInput

    values: dict[str, str] = {}
    for item in var:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidInput(f"--var {item!r} must be NAME=VALUE")
        if key in values:
            raise InvalidInput(f"--var {key} is given twice")
        values[key] = value
    prompts = registry().prompts
    rendered = prompts.render(ref, values, as_text=True)

    def human() -> None:
        import sys

        if isinstance(rendered, str):
            sys.stdout.write(rendered if rendered.endswith("\n") else rendered + "\n")
        else:
            for message in rendered:
                sys.stdout.write(f"[{message['role']}]\n{message['content']}\n")

    emit({"ref": prompts.get(ref).ref, "rendered": rendered}, json_out, human)


@prompt_app.command("history")
def history(
    name: str,
    env: str = typer.Option(None, "--env", help="Only this environment."),
    json_out: bool = JsonFlag,
) -> None:
    """Every environment move of a prompt: promotions and rollbacks, who, when, why."""
    moves = registry().prompts.history(name, environment=env)
    emit(
        moves,
        json_out,
        lambda: table(
            f"history of {name}" + (f" in {env}" if env else ""),
            ["when", "environment", "kind", "from", "to", "by", "reason"],
            [
                (_when(m.at), m.environment, m.kind, m.from_ref or "", m.to_ref, m.actor, m.reason)
                for m in moves
            ],
        ),
    )


# --- environments ---------------------------------------------------------------------------------


@prompt_app.command("promote")
def promote(
    ref: str = typer.Argument(..., help="The version to promote, NAME-vN."),
    to: str = typer.Option(..., "--to", help="The environment (development, staging, production, …)."),
    reason: str = typer.Option("", "--reason", help="Why (recorded with the move)."),
    json_out: bool = JsonFlag,
) -> None:
    """Move an environment to a version. Environments are passed in order (no skipping);
    production needs a passing staging validation of this exact version."""
    result = registry().prompts.promote(ref, to=to, reason=reason)
    emit(
        result,
        json_out,
        lambda: say(
            f"{result.environment} now holds {result.ref}"
            + (f" (was {result.move.from_ref})" if result.move and result.move.from_ref else "")
            + ("" if result.moved else " (already)")
        ),
    )


@prompt_app.command("rollback")
def rollback(
    name: str,
    env: str = typer.Option(..., "--env", help="The environment to roll back."),
    reason: str = typer.Option("", "--reason", help="Why (recorded with the move)."),
    json_out: bool = JsonFlag,
) -> None:
    """Move an environment back to the version it held before the current one."""
    result = registry().prompts.rollback(name, environment=env, reason=reason)
    emit(
        result,
        json_out,
        lambda: say(
            f"{env} rolled back to {result.ref}" + (f" (was {result.move.from_ref})" if result.move else "")
        ),
    )


# --- validation -----------------------------------------------------------------------------------


@prompt_app.command("validate")
def validate(
    ref: str = typer.Argument(..., help="The version to validate, NAME-vN."),
    sample: str = typer.Option(..., "--sample", help="The dataset version to run over, DS@N."),
    runner: str = typer.Option(None, "--runner", help="A Python callable, module:function."),
    runner_cmd: str = typer.Option(None, "--runner-cmd", help="A command: JSON on stdin, output on stdout."),
    min_pass_rate: float = typer.Option(
        None, "--min-pass-rate", help="Tighten the policy's minimum pass rate."
    ),
    min_samples: int = typer.Option(None, "--min-samples", help="Tighten the policy's minimum sample size."),
    concurrency: int = typer.Option(8, "--concurrency", help="Rows run at once."),
    timeout: float = typer.Option(60.0, "--timeout", help="Seconds a row may take before it fails."),
    json_out: bool = JsonFlag,
) -> None:
    """Run the prompt's tests over every row of a sample (columns map to variables) with your
    runner, and record pass rate, sample size, failures, runner and duration as evidence. Exits 4
    when the validation does not pass."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from charter.service.prompt_validation import importable_from

    reg = registry()
    with (
        importable_from(Path.cwd()),
        Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
            disable=json_out,
        ) as bar,
    ):
        task = bar.add_task(f"validate {ref}", total=None)
        result = reg.prompts.validate(
            ref,
            sample=sample,
            runner=runner,
            runner_cmd=runner_cmd,
            min_pass_rate=min_pass_rate,
            min_samples=min_samples,
            concurrency=concurrency,
            timeout_s=timeout,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )

    def human() -> None:
        verdict = "[green]passed[/green]" if result.passed else "[red]did not pass[/red]"
        say(
            f"{result.ref} {verdict} on {result.sample}: {result.passed_count} of {result.sample_size} rows "
            f"({result.pass_rate:.1%}; needs ≥ {result.min_pass_rate:.0%} of ≥ {result.min_samples}) "
            f"in {result.duration_s:.1f} s"
        )
        for failure in result.failures[:10]:
            why = failure["error"] or "; ".join(f["reason"] for f in failure["failed"])
            say(f"  row {failure['row']}: {escape(why)}")
        if len(result.failures) > 10:
            say(f"  … {result.sample_size - result.passed_count - 10} more (see --json)")

    emit(result, json_out, human)
    if not result.passed:
        raise typer.Exit(4)


@prompt_app.command("validations")
def validations(ref: str, json_out: bool = JsonFlag) -> None:
    """Every validation of a version, with its failed rows."""
    found = registry().prompts.validations(ref)
    emit(
        found,
        json_out,
        lambda: table(
            f"validations of {ref}",
            ["when", "by", "sample", "result", "rows", "failed"],
            [
                (
                    _when(x.created_at),
                    x.created_by,
                    x.sample,
                    _rate(x),
                    x.sample_size,
                    x.sample_size - x.passed_count,
                )
                for x in found
            ],
        ),
    )


@prompt_app.command("lock")
def lock(
    env: str = typer.Argument(..., help="The environment to pin (production, staging, …)."),
    json_out: bool = JsonFlag,
) -> None:
    """Print a lockfile pinning every prompt of an environment, with its text, variables, model and
    params: `charter prompt lock production > prompts.lock`. Applications load it with
    `charter.prompts.from_lockfile("prompts.lock")` and never fetch at start-up."""
    import sys

    del json_out  # the lockfile is JSON already
    sys.stdout.write(registry().prompts.lock(env).text())
