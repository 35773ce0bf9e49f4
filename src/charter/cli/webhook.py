"""`charter webhook …`: audited events delivered to HTTP receivers as signed JSON."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from charter.cli.context import registry
from charter.cli.output import JsonFlag, emit, fields, say, table

if TYPE_CHECKING:
    from datetime import datetime

    from charter.service.webhooks import Delivery, Webhook

webhook_app = typer.Typer(
    help="Webhooks: every matching audited event is POSTed as JSON signed with HMAC-SHA256, at least once.",
    no_args_is_help=True,
)


def _time(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


def _webhooks_table(hooks: list[Webhook]) -> None:
    table(
        "webhooks",
        ["id", "url", "events", "created", "by", "removed"],
        [
            (w.id, w.url, ",".join(w.events), _time(w.created_at), w.created_by, _time(w.removed_at))
            for w in hooks
        ],
    )


def _result(delivery: Delivery) -> str:
    if delivery.last_error is not None:
        return delivery.last_error
    return "" if delivery.last_status is None else f"HTTP {delivery.last_status}"


def _deliveries_table(deliveries: tuple[Delivery, ...]) -> None:
    table(
        "deliveries",
        ["id", "seq", "action", "status", "attempts", "last attempt", "result", "next attempt"],
        [
            (
                d.id,
                d.sequence,
                d.action,
                d.status.value,
                d.attempts,
                _time(d.last_attempt_at),
                _result(d),
                _time(d.next_attempt_at),
            )
            for d in deliveries
        ],
    )


@webhook_app.command("add")
def webhook_add(
    url: str = typer.Argument(..., help="The receiver: an http:// or https:// URL (no credentials in it)."),
    events: str = typer.Option(
        ..., "--events", help="Comma-separated globs over audit actions: `model.*,rollout.*`, `*`."
    ),
    secret: str = typer.Option(
        None, "--secret", help="HMAC-SHA256 key (16-200 printable characters); generated when left out."
    ),
    json_out: bool = JsonFlag,
) -> None:
    """Add a webhook (admin only). A generated secret is printed once: store it with the receiver."""
    created = registry().webhooks.add(url, events, secret=secret)

    def human() -> None:
        hook = created.webhook
        say(f"added webhook {hook.id}: {', '.join(hook.events)} → {hook.url}")
        if created.secret is not None:
            say(f"secret (shown only now): {created.secret}")

    emit(created, json_out, human)


@webhook_app.command("list")
def webhook_list(
    all_: bool = typer.Option(False, "--all", help="Include removed webhooks."), json_out: bool = JsonFlag
) -> None:
    """List webhooks (never their secrets)."""
    hooks = registry().webhooks.list(include_removed=all_)
    emit(hooks, json_out, lambda: _webhooks_table(hooks))


@webhook_app.command("remove")
def webhook_remove(
    webhook_id: int = typer.Argument(..., metavar="ID", help="The webhook's id (`charter webhook list`)."),
    json_out: bool = JsonFlag,
) -> None:
    """Remove a webhook (admin only): no new deliveries; its pending ones are given up."""
    hook = registry().webhooks.remove(webhook_id)
    emit(hook, json_out, lambda: say(f"webhook {hook.id} removed ({hook.url})"))


@webhook_app.command("deliveries")
def webhook_deliveries(
    webhook_id: int = typer.Argument(..., metavar="ID", help="The webhook's id (`charter webhook list`)."),
    status: str = typer.Option(
        None, "--status", help="Only deliveries in this status: pending|delivered|failed."
    ),
    limit: int = typer.Option(50, "--limit", min=1, help="At most this many deliveries, newest event first."),
    json_out: bool = JsonFlag,
) -> None:
    """A webhook's delivery status: counts by status, the latest attempt, recent deliveries."""
    result = registry().webhooks.deliveries(webhook_id, status=status, limit=limit)

    def human() -> None:
        hook, last = result.webhook, result.last_attempt
        fields(
            [
                ("webhook", f"{hook.id} → {hook.url}" + ("" if hook.active else " (removed)")),
                ("events", ", ".join(hook.events)),
                *((name, count) for name, count in result.counts.items()),
                (
                    "last attempt",
                    "none yet"
                    if last is None
                    else f"{_time(last.last_attempt_at)} delivery {last.id} ({last.action}): {_result(last)}",
                ),
            ]
        )
        _deliveries_table(result.deliveries)

    emit(result, json_out, human)


@webhook_app.command("deliver")
def webhook_deliver(
    limit: int = typer.Option(100, "--limit", min=1, help="At most this many delivery attempts."),
    json_out: bool = JsonFlag,
) -> None:
    """Attempt every due delivery once, now (admin only). The server does this in the background."""
    report = registry().webhooks.deliver_due(limit=limit)
    emit(
        report,
        json_out,
        lambda: say(
            f"{report.count('delivered')} delivered, {report.count('retrying')} to retry, "
            f"{report.count('failed') + report.abandoned} failed"
        ),
    )


@webhook_app.command("prune")
def webhook_prune(
    older_than: str = typer.Option(
        "30d", "--older-than", help="Keep finished deliveries of events newer than this (30d, 12h, …)."
    ),
    json_out: bool = JsonFlag,
) -> None:
    """Delete delivered and failed deliveries of old events (admin only; pending ones stay). The
    server does this hourly for deliveries older than 30 days; the events stay in the ledger."""
    from charter.domain.times import parse_duration

    report = registry().webhooks.prune(older_than=parse_duration(older_than))
    emit(
        report,
        json_out,
        lambda: say(
            f"{report.deleted} finished deliveries of events before {report.before.isoformat()} deleted"
        ),
    )
