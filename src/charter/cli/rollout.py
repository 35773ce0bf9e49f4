"""`charter rollout …` and `charter incident …`: moving a candidate release through its track."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import typer

from charter.cli.context import registry
from charter.cli.output import JsonFlag, emit, fields, say, table

rollout_app = typer.Typer(
    help="Rollouts: shadow → canaries → production, gated on concurrent traffic.", no_args_is_help=True
)
incident_app = typer.Typer(help="Incidents reported against a slot's releases.", no_args_is_help=True)


def _esc(value: Any) -> str:
    from rich.markup import escape

    return escape("" if value is None else str(value))


def _verdict(verdict: Mapping[str, Any]) -> None:
    colour = {"pass": "green", "fail": "bold red", "inconclusive": "yellow"}
    mark = verdict["verdict"].upper()
    bounds = f"after {verdict['elapsed']} (min {verdict['min_duration']}, max {verdict['max_duration']})"
    say(
        f"[{colour[verdict['verdict']]}]{mark}[/] stage {verdict['stage']} {bounds}: "
        + _esc(verdict["reason"])
    )
    table(
        None,
        ["criterion", "verdict", "samples", "reason"],
        [
            (
                _esc(c["label"]),
                c["verdict"].upper() + (" (breach)" if c["breach"] else ""),
                ", ".join(f"{k} {v}" for k, v in (c["evidence"].get("samples") or {}).items()),
                _esc(c["reason"]),
            )
            for c in verdict["criteria"]
        ],
    )


def _refusals(call: Callable[[], Any], json_out: bool) -> Any:
    """Run a command; on a refused gate, show the evidence (the error itself is reported by main)."""
    from charter.errors import GateRefused

    try:
        return call()
    except GateRefused as refused:
        if not json_out:
            report = dict(refused.report)
            if "criteria" in report:
                _verdict(report)
            elif "model" in report:
                _pre_traffic(report)
        raise


def _pre_traffic(report: Mapping[str, Any]) -> None:
    model = report["model"]
    if model.get("skipped"):
        say(f"model: {_esc(model['detail'])}")
    for check in model.get("checks", []):
        mark = "[green]PASS[/]" if check["passed"] else "[bold red]FAIL[/]"
        say(f"{mark} model {check['name']}: {_esc(check['detail'])}")
    for prompt in report["prompts"]:
        mark = "[green]PASS[/]" if prompt["passed"] else "[bold red]FAIL[/]"
        say(f"{mark} prompt {prompt['ref']}: {_esc(prompt['detail'])}")


def _step(step: Any) -> None:
    transition = step.transition
    traffic = transition["traffic"]
    say(f"rollout {transition['rollout']} on {step.slot}: {transition['action']} — "
        f"{transition['from'] or 'new'} → {transition['to']} (candidate {traffic['candidate']:g} %"
        + (f", shadow sample {traffic['shadow_sample']:g}" if traffic["shadow_sample"] else "")
        + f"; routing table v{step.routing_version})")  # fmt: skip
    if transition.get("override"):
        say(
            f"  [bold]override[/] by {transition['override']['by']}: {_esc(transition['override']['reason'])}"
        )
    for item in step.moved:
        say(f"  production pointer moved: {item}")


@rollout_app.command("start")
def start(
    slot: str = typer.Argument(..., help="The slot."),
    release: str = typer.Option(..., "--release", help="The candidate release (digest or prefix ≥ 8)."),
    rollback_plan: str = typer.Option(..., "--rollback-plan", help="How to go back if it misbehaves."),
    json_out: bool = JsonFlag,
) -> None:
    """Start rolling a release out under the slot's track policy (operator). Before the first stage
    with real traffic the candidate's model version must pass the promotion gate (against the slot's
    production release) and its prompt versions must be validated and have held staging."""
    step = _refusals(
        lambda: registry().rollouts.start(slot, release=release, rollback_plan=rollback_plan), json_out
    )
    emit(step, json_out, lambda: _step(step))


@rollout_app.command("status")
def status(slot: str, json_out: bool = JsonFlag) -> None:
    """The slot's rollout: stage, traffic, the gate evaluated now with its evidence, history."""
    result = registry().rollouts.status(slot)

    def human() -> None:
        r = result.rollout
        fields(
            [
                ("rollout", r["id"]),
                ("status", r["status"]),
                ("candidate", r["candidate"]),
                ("baseline", r["baseline"]),
                (
                    "traffic",
                    f"candidate {r['traffic']['candidate']:g} %, "
                    f"shadow sample {r['traffic']['shadow_sample']:g}",
                ),
                ("stage entered", r["stage_entered_at"]),
                ("policy", f"{r['policy']} ({r['policy_digest'][:12]})"),
                (
                    "approval",
                    "not required" if not r["approval_required"] else (r["approved_by"] or "awaiting"),
                ),
                ("checked", ", ".join(r["checked"]) or "-"),
                ("rollback plan", _esc(result.rollback_plan)),
            ]
        )
        if result.verdict is not None:
            _verdict(result.verdict)
        table(
            "transitions",
            ["#", "action", "from", "to", "at", "by"],
            [
                (t["revision"], t["action"], t["from"] or "-", t["to"], t["at"], t["actor"])
                for t in result.transitions
            ],
        )

    emit(result, json_out, human)


@rollout_app.command("advance")
def advance(
    slot: str,
    override: bool = typer.Option(False, "--override", help="Advance without a PASS (admin only; audited)."),
    reason: str = typer.Option(None, "--reason", help="Why the override (required with --override)."),
    json_out: bool = JsonFlag,
) -> None:
    """Move to the next stage (or into production) when the stage's gate passes (operator). A refusal
    shows every criterion with its evidence and exits 4."""
    step = _refusals(lambda: registry().rollouts.advance(slot, override=override, reason=reason), json_out)
    emit(step, json_out, lambda: _step(step))


@rollout_app.command("approve")
def approve(slot: str, json_out: bool = JsonFlag) -> None:
    """Approve the candidate's model change before real traffic (reviewer; never who started the
    rollout or authored the model version)."""
    step = registry().rollouts.approve(slot)
    emit(step, json_out, lambda: _step(step))


@rollout_app.command("check")
def check(
    slot: str,
    item: str = typer.Option(
        ..., "--item", help="A checklist item of the track policy (rollback-tested, …)."
    ),
    json_out: bool = JsonFlag,
) -> None:
    """Check off a manual checklist item (operator)."""
    step = registry().rollouts.check(slot, item=item)
    emit(step, json_out, lambda: say(f"checked {item} on {slot}"))


@rollout_app.command("pause")
def pause(
    slot: str,
    reason: str = typer.Option("", "--reason", help="Why (recorded)."),
    json_out: bool = JsonFlag,
) -> None:
    """Hold the rollout: the traffic split stays, the stage clock stops (operator)."""
    step = registry().rollouts.pause(slot, reason=reason)
    emit(step, json_out, lambda: _step(step))


@rollout_app.command("resume")
def resume(slot: str, json_out: bool = JsonFlag) -> None:
    """Resume a paused rollout (operator)."""
    step = registry().rollouts.resume(slot)
    emit(step, json_out, lambda: _step(step))


@rollout_app.command("abort")
def abort(
    slot: str,
    reason: str = typer.Option(..., "--reason", help="Why (recorded in the audit ledger)."),
    json_out: bool = JsonFlag,
) -> None:
    """Stop the rollout: every request back to the production release (operator)."""
    step = registry().rollouts.abort(slot, reason=reason)
    emit(step, json_out, lambda: _step(step))


@rollout_app.command("tick")
def tick(
    slot: str = typer.Option(None, "--slot", help="Only this slot's rollout (default: every active one)."),
    json_out: bool = JsonFlag,
) -> None:
    """Evaluate active rollouts and apply the automatic rules (operator): a safety breach or a failed
    stage rolls the candidate back at once; an expired stage expires."""
    report = registry().rollouts.tick(slot)
    emit(
        report,
        json_out,
        lambda: table(
            f"tick at {report.at.isoformat(timespec='seconds')}",
            ["slot", "status", "verdict", "action", "reason"],
            [(i.slot, i.status, i.verdict.upper(), i.action or "-", _esc(i.reason)) for i in report.items],
        ),
    )


@incident_app.command("report")
def report(
    slot: str,
    severity: str = typer.Option(..., "--severity", help="P0 (critical) … P3."),
    release: str = typer.Option(..., "--release", help="The release it is against (digest or prefix ≥ 8)."),
    summary: str = typer.Option(..., "--summary", help="What happened."),
    json_out: bool = JsonFlag,
) -> None:
    """Report an incident (operator). A P0 against a rollout's candidate rolls it back at once."""
    result = registry().rollouts.incident(slot, severity=severity, release=release, summary=summary)

    def human() -> None:
        incident = result.incident
        say(f"incident {incident['id']} ({incident['severity']}) recorded against {incident['release'][:12]}")
        if result.rollback is not None:
            say(f"[bold red]rolled back[/]: {_esc(result.rollback.transition.get('reason'))}")

    emit(result, json_out, human)


@incident_app.command("list")
def list_incidents(slot: str, json_out: bool = JsonFlag) -> None:
    """Every incident reported on a slot."""
    found = registry().rollouts.incidents(slot)
    emit(
        found,
        json_out,
        lambda: table(
            f"incidents of {slot}",
            ["id", "severity", "release", "at", "by", "summary"],
            [
                (i["id"], i["severity"], i["release"][:12], i["at"], i["reported_by"], _esc(i["summary"]))
                for i in found
            ],
        ),
    )
