"""Investigation and data: `charter trace`, `charter state show|diff`, `charter changes`,
`charter route`, `charter txn ingest`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from charter.cli.context import registry
from charter.cli.output import JsonFlag, emit, fields, say, table

state_app = typer.Typer(help="What a slot was running at any time, and what changed.", no_args_is_help=True)
txn_app = typer.Typer(help="Transaction records (data, not audit events).", no_args_is_help=True)


def _esc(value: Any) -> str:
    from rich.markup import escape

    return escape("" if value is None else str(value))


def _time(text: str | None) -> Any:
    from charter.domain.times import parse_time

    return None if text is None else parse_time(text)


def trace(
    txn_id: str = typer.Argument(..., help="A transaction id (UUIDv7)."),
    json_out: bool = JsonFlag,
) -> None:
    """The whole chain of one transaction: slot, stage and arm, release and effective parameters,
    model version (spec, training data, evaluations and overlap checks, sign-offs, gate evidence),
    prompt versions (text), routing-table version, approvals."""
    result = registry().trace(txn_id)

    def human() -> None:
        t, release, model = result.transaction, result.release, result.model
        rollout = result.rollout
        fields(
            [
                ("transaction", t["id"]),
                ("time", t["time"]),
                ("slot", f"{result.slot} (production then: {(result.production_at_time or '-')[:12]})"),
                ("arm / stage", f"{t['arm']} / {t['stage'] or '-'}"),
                ("routing table", f"v{t['table_version']}" + (" [bold red]STALE[/]" if t["stale"] else "")),
                ("metrics", _esc(json.dumps(t["metrics"]))),
                ("release", release["digest"]),
                ("model", f"{model['ref']} (spec {model['spec_digest'][:12]}, by {model['created_by']})"),
                ("training data", ", ".join(d["ref"] for d in model["training_datasets"]) or "-"),
                ("retrieval index", release["retrieval_index"] or "-"),
                ("app version", release["app_version"] or "-"),
                ("sign-offs", ", ".join(f"{s['by']} {s['at']}" for s in model["signoffs"]) or "-"),
                ("rollout", "-" if rollout is None else f"{rollout['id']} ({rollout['status_now']})"),
                ("started by", "-" if rollout is None else rollout["started_by"]),
                ("approved by", "-" if rollout is None else (rollout["approved_by"] or "-")),
                (
                    "overrides",
                    "-" if rollout is None else (", ".join(o["by"] for o in rollout["overrides"]) or "-"),
                ),
            ]
        )
        table(
            "evaluations",
            ["dataset", "role", "metrics", "exact overlap"],
            [
                (
                    e["dataset"],
                    e["dataset_role"],
                    _esc(json.dumps(e["metrics"])),
                    _overlap(e["exact_overlap"]),
                )
                for e in model["evaluations"]
            ],
        )
        for prompt in result.prompts:
            say(f"[bold]{prompt['ref']}[/] ({prompt['content_hash'][:12]})")
            say(_esc(prompt["template"] or json.dumps(prompt["messages"])))
        table(
            "effective parameters",
            ["prompt", "parameter", "value", "from"],
            [
                (p, k, v["value"], v["source"])
                for p, vs in release["effective_params"].items()
                for k, v in vs.items()
            ],
        )

    emit(result, json_out, human)


def _overlap(measured: dict[str, Any]) -> str:
    return ", ".join(f"{k}: {v.get('overlapping')}" for k, v in measured.items()) or "-"


def _state_fields(state: Any) -> None:
    production = state.production
    rollout = state.rollout
    fields(
        [
            ("slot", state.slot),
            ("at", state.at.isoformat()),
            ("production", "-" if production is None else production["digest"]),
            ("model", "-" if production is None else production["model"]),
            ("prompts", "-" if production is None else ", ".join(production["prompts"])),
            ("rollout", "-" if rollout is None else f"{rollout['rollout']} {rollout['status']}"),
            ("candidate", "-" if rollout is None else rollout["candidate"]),
            (
                "traffic",
                f"candidate {state.traffic['candidate']:g} %, shadow {state.traffic['shadow_sample']:g}",
            ),
            ("routing version", state.routing_version),
            (
                "policy",
                "-"
                if state.policy is None
                else f"{state.policy['name']} ({(state.policy['digest'] or '-')[:12]})",
            ),
        ]
    )


@state_app.command("show")
def state_show(
    slot: str,
    at: str = typer.Option(None, "--at", help="ISO 8601 time (no zone: UTC); default now."),
    json_out: bool = JsonFlag,
) -> None:
    """A slot's production release, active rollout, stage and traffic split at an instant."""
    state = registry().state(slot, _time(at))
    emit(state, json_out, lambda: _state_fields(state))


@state_app.command("diff")
def state_diff(
    slot: str,
    from_: str = typer.Option(..., "--from", help="ISO 8601 time (no zone: UTC)."),
    to: str = typer.Option(..., "--to", help="ISO 8601 time (no zone: UTC)."),
    json_out: bool = JsonFlag,
) -> None:
    """What changed on a slot between two instants: model, prompts, parameters, datasets, policy,
    rollout, stage, traffic — and the audit events in between."""
    diff = registry().state_diff(slot, _time(from_), _time(to))

    def human() -> None:
        table(
            f"{slot}: {diff.before.at.isoformat()} → {diff.after.at.isoformat()}",
            ["field", "from", "to"],
            [(c["field"], _esc(json.dumps(c["from"])), _esc(json.dumps(c["to"]))) for c in diff.changes],
        )
        table(
            "events",
            ["#", "time", "actor", "action"],
            [(e["sequence"], e["time"], e["actor"], e["action"]) for e in diff.events],
        )

    emit(diff, json_out, human)


def changes(
    since: str = typer.Option(..., "--since", help="ISO 8601 time (no zone: UTC)."),
    until: str = typer.Option(None, "--until", help="ISO 8601 time (default: now)."),
    slot: str = typer.Option(None, "--slot", help="Only the slot and the models, prompts, datasets it uses."),
    json_out: bool = JsonFlag,
) -> None:
    """Every audited change across the four registries in a window, in order."""
    events = registry().changes(_time(since), _time(until), slot=slot)
    emit(
        events,
        json_out,
        lambda: table(
            "changes",
            ["#", "time", "actor", "action", "subject"],
            [(e.sequence, e.time, e.actor, e.action, _esc(e.subject)) for e in events],
        ),
    )


def route(
    slot: str,
    key: str = typer.Argument(..., help="The routing key (a user, session or conversation id)."),
    json_out: bool = JsonFlag,
) -> None:
    """Show which release a key is routed to on a slot, with the bucket arithmetic."""
    result = registry().router.explain(slot, key)

    def human() -> None:
        decision = result["decision"]
        fields(
            [
                ("slot", slot),
                ("key", key),
                (
                    "bucket",
                    f"{result['bucket']} of 10,000 (candidate < {result['candidate_buckets']}, "
                    f"shadow < {result['shadow_buckets']})",
                ),
                ("release", f"{decision['release']} ({decision['arm']})"),
                ("model", decision["model"]),
                ("prompts", ", ".join(decision["prompts"]) or "-"),
                ("shadow", decision["shadow"] or "-"),
                ("stage", decision["stage"] or "-"),
                ("routing table", f"v{decision['table_version']}" + (" (stale)" * decision["stale"])),
            ]
        )

    emit(result, json_out, human)


@txn_app.command("ingest")
def ingest(
    slot: str,
    file: Path = typer.Argument(..., help="A JSONL file: one record per line (schema in docs/rollouts.md)."),
    json_out: bool = JsonFlag,
) -> None:
    """Bulk-load transaction records (service role). Records whose id is already stored are skipped."""
    report = registry().ingest(slot, file)
    arms = ", ".join(f"{k} {v}" for k, v in sorted(report.by_arm.items()))
    emit(
        report,
        json_out,
        lambda: say(
            f"loaded {report.inserted} of {report.lines} records into {slot} ({report.duplicates} already "
            f"stored) in {report.seconds:.2f} s; by arm: {arms}"
        ),
    )
