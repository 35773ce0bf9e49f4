"""`charter slot …`: deployment targets, their production release and rollback."""

from __future__ import annotations

from typing import Any

import typer

from charter.cli.context import registry
from charter.cli.output import JsonFlag, emit, fields, say, table

slot_app = typer.Typer(
    help="Slots: deployment targets with one production release and at most one active rollout.",
    no_args_is_help=True,
)


def _short(digest: str | None) -> str:
    return "-" if digest is None else digest[:12]


@slot_app.command("create")
def create(
    name: str = typer.Argument(..., help="The slot's name (a slug): an agent service, an endpoint."),
    policy: str = typer.Option(
        None,
        "--policy",
        help="A track policy: the name of one in the `tracks` policy section (default: default), or a "
        "YAML file (the slot's own, pinned now).",
    ),
    json_out: bool = JsonFlag,
) -> None:
    """Create a slot (operator role)."""
    slot = registry().slots.create(name, policy=policy)
    emit(
        slot,
        json_out,
        lambda: say(f"created slot {slot.name} (track policy {slot.policy}, {slot.policy_source})"),
    )


@slot_app.command("list")
def list_slots(json_out: bool = JsonFlag) -> None:
    """List slots with their production release and active rollout."""
    slots = registry().slots.list()
    emit(
        slots,
        json_out,
        lambda: table(
            "slots",
            ["name", "policy", "production", "since", "rollout", "routing"],
            [
                (
                    s.name,
                    s.policy,
                    _short(s.production),
                    "-" if s.production_since is None else s.production_since.isoformat(timespec="seconds"),
                    "-" if s.rollout is None else f"{_short(s.rollout['candidate'])} {s.rollout['status']}",
                    s.routing_version,
                )
                for s in slots
            ],
        ),
    )


def _slot_fields(slot: Any) -> None:
    rollout = slot.rollout
    fields(
        [
            ("slot", slot.name),
            ("track policy", f"{slot.policy} ({slot.policy_source}, {_short(slot.policy_digest)})"),
            ("production", slot.production or "- (bootstrap one)"),
            ("since", None if slot.production_since is None else slot.production_since.isoformat()),
            (
                "rollout",
                "-"
                if rollout is None
                else f"{rollout['id']}: {_short(rollout['candidate'])} {rollout['status']}, "
                f"candidate {rollout['traffic']['candidate']:g} %",
            ),
            ("routing version", slot.routing_version),
            ("created", f"{slot.created_at.isoformat(timespec='seconds')} by {slot.created_by}"),
        ]
    )


@slot_app.command("show")
def show(name: str, json_out: bool = JsonFlag) -> None:
    """Show a slot: track policy, production release, active rollout, routing version."""
    slot = registry().slots.show(name)
    emit(slot, json_out, lambda: _slot_fields(slot))


@slot_app.command("bootstrap")
def bootstrap(
    name: str = typer.Argument(..., help="The slot."),
    release: str = typer.Option(..., "--release", help="A release digest (or a unique prefix of ≥ 8)."),
    json_out: bool = JsonFlag,
) -> None:
    """Make a release the first production release of a slot that has none (operator; audited).
    Every later release goes through a rollout."""
    result = registry().slots.bootstrap(name, release=release)
    emit(result, json_out, lambda: say(f"slot {name} now serves {_short(result.after)} in production"))


@slot_app.command("rollback")
def rollback(
    name: str = typer.Argument(..., help="The slot."),
    to: str = typer.Option(
        None, "--to", help="The release to restore (default: the previous production one)."
    ),
    reason: str = typer.Option("", "--reason", help="Why (recorded in the audit ledger)."),
    json_out: bool = JsonFlag,
) -> None:
    """Restore an earlier production release in one step, within its rollback window (operator).
    Outside the window it is refused: start a new rollout of that release instead."""
    result = registry().slots.rollback(name, to=to, reason=reason)

    def human() -> None:
        say(f"slot {name} rolled back from {_short(result.before)} to {_short(result.after)}")
        for item in result.moved:
            say(f"  moved back: {item}")

    emit(result, json_out, human)
