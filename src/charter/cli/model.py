"""`charter model …`: versioned model specs, evaluations, sign-offs, promotion and rollback."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from charter.cli.context import registry
from charter.cli.output import JsonFlag, emit, fields, print_json, say, table, yaml_text

if TYPE_CHECKING:
    from charter.domain.modelspec import ModelSpec
    from charter.service.model_results import ModelVersion

model_app = typer.Typer(
    help="The model registry: enforced semantic versions, evaluations, the promotion gate.",
    no_args_is_help=True,
)


def _esc(value: Any) -> str:
    from rich.markup import escape

    return escape("" if value is None else str(value))


def _pairs(items: list[str], what: str, example: str) -> dict[str, str]:
    """`KEY=VALUE` options as a mapping."""
    from charter.errors import InvalidInput

    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"{what} {item!r} is not KEY=VALUE; for example {example}")
        out[key.strip()] = value.strip()
    return out


def _numbers(items: list[str]) -> dict[str, float]:
    from charter.errors import InvalidInput

    out = {}
    for key, value in _pairs(items, "--metric", "accuracy=0.91").items():
        try:
            out[key] = float(value)
        except ValueError:
            raise InvalidInput(
                f"--metric {key}={value!r}: the value is not a number (accuracy=0.91)"
            ) from None
    return out


def _source(spec: ModelSpec) -> str:
    if spec.weights is not None:
        return spec.weights.uri or spec.weights.digest[:19]
    return f"{spec.provider}/{spec.provider_model}"


def _versions_table(title: str, versions: list[ModelVersion]) -> None:
    table(
        title,
        ["version", "family", "source", "spec", "aliases", "created", "by"],
        [
            (
                v.version,
                _esc(v.spec.family),
                _esc(_source(v.spec)),
                v.spec_digest[:12],
                ", ".join(v.aliases),
                v.created_at.isoformat(timespec="seconds"),
                v.created_by,
            )
            for v in versions
        ],
    )


@model_app.command("register")
def register(
    name: str = typer.Argument(..., help="The model's name (a slug)."),
    file: Path = typer.Option(
        None, "--file", "-f", help="A YAML spec file (see `charter model register --help`)."
    ),
    version: str = typer.Option(None, "--version", help="X.Y.Z; default: the next version the change needs."),
    family: str = typer.Option(None, "--family", help="Model family (llama-3, gpt-4o, …)."),
    architecture: str = typer.Option(
        None, "--architecture", help="Architecture (decoder-only transformer, …)."
    ),
    parameter_count: str = typer.Option(None, "--parameter-count", help="7000000000 or 7B."),
    weights: str = typer.Option(
        None, "--weights", help="A weights file (stored in the blob store) or a URI."
    ),
    weights_digest: str = typer.Option(
        None, "--weights-digest", help="sha256:<hex> of the weights at a URI."
    ),
    provider: str = typer.Option(None, "--provider", help="API provider (openai, anthropic, …)."),
    provider_model: str = typer.Option(None, "--provider-model", help="Pinned snapshot: gpt-4o-2024-08-06."),
    training_dataset: list[str] = typer.Option([], "--training-dataset", help="DS@N; repeatable."),
    training_date: str = typer.Option(None, "--training-date", help="YYYY-MM-DD."),
    training_source: list[str] = typer.Option([], "--training-source", help="Data source URI; repeatable."),
    base_model: str = typer.Option(None, "--base-model", help="The model this one was fine-tuned from."),
    serving: list[str] = typer.Option([], "--serving", help="Serving parameter KEY=VALUE; repeatable."),
    primary_metric: list[str] = typer.Option([], "--primary-metric", help="METRIC=higher|lower; repeatable."),
    description: str = typer.Option(None, "--description", help="Free text (outside the spec digest)."),
    tag: list[str] = typer.Option([], "--tag", help="A tag (outside the spec digest); repeatable."),
    json_out: bool = JsonFlag,
) -> None:
    """Register a model version from a YAML spec (-f) or from flags.

    Spec keys: family, architecture, parameter_count, weights (a file path, or {uri, digest}) or
    provider + provider_model, training {datasets: [DS@N], date, sources, base_model}, serving
    {temperature, max_tokens, top_p, …}, primary_metrics {METRIC: higher|lower}, description, tags.
    The version must be the bump the change needs: family/architecture/provider ⇒ major; weights,
    provider snapshot, training data, parameter count ⇒ minor; serving only ⇒ patch.
    """
    import yaml

    from charter.errors import InvalidInput

    flags: dict[str, Any] = {
        "family": family,
        "architecture": architecture,
        "parameter_count": int(parameter_count)
        if parameter_count and parameter_count.isdigit()
        else parameter_count,
        "weights": {"uri": weights, "digest": weights_digest} if weights_digest else weights,
        "provider": provider,
        "provider_model": provider_model,
        "training": {
            "datasets": training_dataset or None,
            "date": training_date,
            "sources": training_source or None,
            "base_model": base_model,
        },
        "serving": {k: yaml.safe_load(v) for k, v in _pairs(serving, "--serving", "temperature=0.2").items()},
        "primary_metrics": _pairs(primary_metric, "--primary-metric", "accuracy=higher") or None,
        "description": description,
        "tags": tag or None,
    }
    flags["training"] = {k: v for k, v in flags["training"].items() if v is not None} or None
    flags["serving"] = flags["serving"] or None
    given = {k: v for k, v in flags.items() if v is not None}
    if file is not None and given:
        raise InvalidInput(
            f"give the spec as a file (-f) or as flags, not both (flags given: {', '.join(given)})"
        )
    result = registry().models.register(name, file if file is not None else given, version=version)
    emit(result, json_out, lambda: say(f"registered {result.ref} (spec {result.spec_digest[:12]})"))


@model_app.command("list")
def list_models(json_out: bool = JsonFlag) -> None:
    """List models with their latest version, aliases and primary metrics."""
    models = registry().models.list()
    emit(
        models,
        json_out,
        lambda: table(
            "models",
            ["name", "latest", "versions", "aliases", "primary metrics"],
            [
                (
                    m.name,
                    m.latest,
                    len(m.versions),
                    ", ".join(f"{a}={v}" for a, v in m.aliases.items()),
                    ", ".join(f"{k} ({d})" for k, d in m.primary_metrics.items()),
                )
                for m in models
            ],
        ),
    )


@model_app.command("show")
def show(
    ref: str = typer.Argument(..., help="NAME, NAME@X.Y.Z or NAME@ALIAS."),
    json_out: bool = JsonFlag,
) -> None:
    """Show a model version: its spec, evaluations, sign-offs and promotions."""
    import json

    details = registry().models.describe(ref)

    def human() -> None:
        v, spec = details.version, details.version.spec
        pairs: list[tuple[str, Any]] = [
            ("version", v.ref),
            ("aliases", ", ".join(v.aliases) or "-"),
            ("family", spec.family),
            ("architecture", spec.architecture),
            ("parameters", spec.parameter_count),
            ("source", _source(spec) if spec.weights is None else json.dumps(spec.weights.as_dict())),
            ("training", json.dumps(spec.canonical().get("training", {}))),
            ("serving", json.dumps(dict(spec.serving), sort_keys=True)),
            ("spec digest", v.spec_digest),
            ("description", v.description),
            ("tags", ", ".join(v.tags)),
            ("primary metrics", json.dumps(dict(details.primary_metrics))),
            ("registered", f"{v.created_at.isoformat(timespec='seconds')} by {v.created_by}"),
        ]
        fields((key, _esc(value)) for key, value in pairs)
        table(
            "evaluations",
            ["id", "dataset", "role", "metrics", "overlap", "at", "by"],
            [
                (
                    e.id,
                    e.dataset,
                    e.dataset_role,
                    _esc(json.dumps(dict(e.metrics))),
                    ", ".join(f"{k}: {o.get('overlapping')}" for k, o in e.exact_overlap.items()) or "-",
                    e.created_at.isoformat(timespec="seconds"),
                    e.created_by,
                )
                for e in details.evaluations
            ],
        )
        table(
            "sign-offs",
            ["by", "at", "note"],
            [(s.by, s.at.isoformat(timespec="seconds"), _esc(s.note)) for s in details.signoffs],
        )
        table(
            "promotions",
            ["at", "by", "rollback to", "plan"],
            [
                (p["created_at"], p["created_by"], p["rollback_to"], _esc(p["rollback_plan"]))
                for p in details.promotions
            ],
        )

    emit(details, json_out, human)


@model_app.command("versions")
def versions(name: str, json_out: bool = JsonFlag) -> None:
    """List every version of a model, lowest first."""
    found = registry().models.versions(name)
    emit(found, json_out, lambda: _versions_table(f"versions of {name}", found))


@model_app.command("diff")
def diff(
    a: str = typer.Argument(..., help="NAME@X.Y.Z (or an alias)."),
    b: str = typer.Argument(..., help="NAME@X.Y.Z (or an alias)."),
    json_out: bool = JsonFlag,
) -> None:
    """Show what changed between two versions' specs and the version bump it needs."""
    result = registry().models.diff(a, b)

    def human() -> None:
        if result.change is None:
            say(f"{result.a} and {result.b} have identical specs")
        else:
            change = result.change
            say(f"{result.a} → {result.b}: needs a {change.bump.word} bump ({_esc(change.reason)})")
        changes = (result.change.fields if result.change else ()) + result.metadata
        table(None, ["field", result.a, result.b], [(c.field, _esc(c.old), _esc(c.new)) for c in changes])

    emit(result, json_out, human)


@model_app.command("history")
def history(name: str, json_out: bool = JsonFlag) -> None:
    """Every alias move of a model (promotions, rollbacks) with actor, time and reason, and each
    version's production periods per slot."""
    reg = registry()
    moves = reg.models.history(name)
    emit(
        moves,
        json_out,
        lambda: _history_tables(name, moves, reg.provenance.production_periods(name)),
    )


def _history_tables(name: str, moves: list[Any], periods: list[dict[str, Any]]) -> None:
    _moves_table(name, moves)
    table(
        f"production periods of {name} per slot",
        ["version", "slot", "release", "from", "to", "how"],
        [
            (p["version"], p["slot"], p["release"][:12], p["from"], p["to"] or "now", p["kind"])
            for p in periods
        ],
    )


def _moves_table(name: str, moves: list[Any]) -> None:
    table(
        f"alias history of {name}",
        ["at", "alias", "from", "to", "kind", "actor", "reason", "audit"],
        [
            (
                m.at.isoformat(timespec="seconds"),
                m.alias,
                m.from_version or "-",
                m.to_version,
                m.kind,
                m.actor,
                _esc(m.reason),
                m.audit_sequence,
            )
            for m in moves
        ],
    )


@model_app.command("eval")
def evaluate(
    ref: str = typer.Argument(..., help="NAME@X.Y.Z (or an alias)."),
    dataset: str = typer.Option(..., "--dataset", help="The evaluation dataset version, DS@N."),
    metric: list[str] = typer.Option(..., "--metric", help="METRIC=VALUE; repeatable."),
    note: str = typer.Option("", "--note", help="Free text."),
    json_out: bool = JsonFlag,
) -> None:
    """Record an evaluation (metrics on a dataset version), with its exact overlap with training data."""
    result = registry().models.eval(ref, dataset=dataset, metrics=_numbers(metric), note=note)

    def human() -> None:
        metrics = ", ".join(f"{k}={v:g}" for k, v in result.metrics.items())
        on = f"{result.dataset} ({result.dataset_role})"
        say(f"recorded evaluation {result.id} of {result.model} on {on}: {metrics}")
        for train, overlap in result.exact_overlap.items():
            say(
                f"  exact overlap with {train}: {overlap.get('overlapping')} of {overlap.get('a_total')} rows"
            )

    emit(result, json_out, human)


@model_app.command("signoff")
def signoff(
    ref: str = typer.Argument(..., help="NAME@X.Y.Z."),
    note: str = typer.Option("", "--note", help="What you reviewed."),
    json_out: bool = JsonFlag,
) -> None:
    """Sign off a model version (reviewer role; never its author; designated reviewers only, if any)."""
    result = registry().models.signoff(ref, note=note)
    emit(result, json_out, lambda: say(f"{result.by} signed off {result.model}"))


@model_app.command("waive")
def waive(
    ref: str = typer.Argument(
        ..., help="NAME@X.Y.Z (its latest eval/holdout evaluation) or an evaluation id."
    ),
    reason: str = typer.Option(..., "--reason", help="Why the near-duplicate overlap is acceptable."),
    json_out: bool = JsonFlag,
) -> None:
    """Waive an evaluation's near-duplicate contamination (reviewer role; never the evaluation's author)."""
    result = registry().models.waive(ref, reason=reason)
    emit(
        result,
        json_out,
        lambda: say(f"{result.created_by} waived near-duplicate overlap of evaluation {result.evaluation}"),
    )


@model_app.command("reproduce")
def reproduce(
    ref: str = typer.Argument(..., help="NAME@X.Y.Z."),
    folder: Path = typer.Argument(..., help="An empty or new folder."),
    force: bool = typer.Option(False, "--force", help="Write into a non-empty folder."),
    json_out: bool = JsonFlag,
) -> None:
    """Materialise the training datasets of a model version at their exact snapshots, verified byte
    for byte, plus a manifest (model spec, dataset digests)."""
    result = registry().models.reproduce(ref, folder, force=force)
    emit(
        result,
        json_out,
        lambda: say(
            f"{result.model}: {len(result.datasets)} training datasets written to {result.target}; "
            f"manifest {result.manifest}"
        ),
    )


@model_app.command("reviewers")
def reviewers(
    name: str,
    add: list[str] = typer.Option([], "--add", help="User to designate; repeatable."),
    remove: list[str] = typer.Option([], "--remove", help="User to remove; repeatable."),
    json_out: bool = JsonFlag,
) -> None:
    """Show a model's designated reviewers, or change them (admin). With any, only they may sign off."""
    result = registry().models.reviewers(name, add=add, remove=remove)
    emit(result, json_out, lambda: say(f"{name} reviewers: {', '.join(result.reviewers) or 'any reviewer'}"))


@model_app.command("metrics")
def metrics(
    name: str,
    set_: list[str] = typer.Option(
        [], "--set", help="METRIC=higher|lower; repeatable; replaces the declaration."
    ),
    json_out: bool = JsonFlag,
) -> None:
    """Show a model's primary metrics, or declare them with --set (admin; applies to later gates)."""
    models = registry().models
    result = (
        models.set_primary_metrics(name, _pairs(set_, "--set", "accuracy=higher"))
        if set_
        else models.model(name)
    )
    declared = ", ".join(f"{k} ({d} is better)" for k, d in result.primary_metrics.items()) or "none declared"
    emit(result, json_out, lambda: say(f"{name} primary metrics: {declared}"))


def _render_gate(report: dict[str, Any]) -> None:
    for check in report["checks"]:
        mark = "[green]PASS[/]" if check["passed"] else "[bold red]FAIL[/]"
        say(f"{mark} {check['name']}: {_esc(check['detail'])}")
        evidence = yaml_text(check["evidence"])
        say(_esc("\n".join("      " + line for line in evidence.splitlines())))


@model_app.command("promote")
def promote(
    ref: str = typer.Argument(..., help="NAME@X.Y.Z: the candidate."),
    rollback_plan: str = typer.Option(..., "--rollback-plan", help="How to go back if it misbehaves."),
    rollback_to: str = typer.Option(None, "--rollback-to", help="X.Y.Z to roll back to (default: none)."),
    eval_: str = typer.Option(
        None, "--eval", help="DS@N: the held-out evaluation to judge (default: latest)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Evaluate and report the checks; move nothing."),
    json_out: bool = JsonFlag,
) -> None:
    """Promote a model version to production through the four-check gate (operator role).

    Checks: a held-out evaluation with zero exact overlap with training data; matches or beats the
    champion (the current production version) on every primary metric on that dataset; a sign-off
    by a reviewer who is not the author; a rollback plan and target. Every check is reported with
    its evidence; a refusal exits 4 and changes nothing.
    """
    from charter.errors import GateRefused

    try:
        report = registry().models.promote(
            ref, rollback_plan=rollback_plan, rollback_to=rollback_to, eval=eval_, dry_run=dry_run
        )
    except GateRefused as refused:
        if not json_out:
            _render_gate(dict(refused.report))
        raise
    if json_out:
        print_json(report)
    else:
        _render_gate(report.as_dict())
        verdict = "would be promoted" if report.passed else "would be refused"
        say(
            f"dry run: {report.candidate} {verdict}; nothing moved"
            if dry_run
            else f"promoted {report.candidate} to production"
        )
    if not report.passed:
        raise typer.Exit(4)


@model_app.command("rollback")
def rollback(
    name: str,
    reason: str = typer.Option("", "--reason", help="Why (recorded in the history and the audit ledger)."),
    json_out: bool = JsonFlag,
) -> None:
    """Move a model's production alias back to the version it held before (operator role)."""
    move = registry().models.rollback(name, reason=reason)
    emit(
        move,
        json_out,
        lambda: say(f"{name}@production moved back from {move.from_version} to {move.to_version}"),
    )
