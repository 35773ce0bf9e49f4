"""`charter token create | list | revoke`: API tokens for the charter server (admin only)."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import typer

from charter.cli.context import registry
from charter.cli.output import JsonFlag, emit, say, table

if TYPE_CHECKING:
    from charter.service.tokens import TokenInfo

token_app = typer.Typer(
    help="API tokens for the charter server: create (shown once), list, revoke.", no_args_is_help=True
)


def _lifetime(text: str) -> timedelta | None:
    from charter.domain.times import parse_duration

    return None if text.strip().lower() == "never" else parse_duration(text)


def _when(token: TokenInfo, attribute: str) -> str:
    value = getattr(token, attribute)
    return "" if value is None else value.isoformat(timespec="seconds")


@token_app.command("create")
def token_create(
    user: str = typer.Argument(..., help="The user the token acts as (it gets that user's roles)."),
    expires: str = typer.Option("90d", "--expires", help="Lifetime: 30m, 12h, 90d, 2w, … or never."),
    name: str = typer.Option("", "--name", help="A label to recognise the token by (CI, app name, …)."),
    json_out: bool = JsonFlag,
) -> None:
    """Create an API token for USER and print its secret once (admin only).

    Only a hash of the secret is stored: it cannot be shown again. Use it as CHARTER_TOKEN or as
    `Authorization: Bearer <secret>`.
    """
    created = registry().tokens.create(user, name=name, expires=_lifetime(expires))

    def human() -> None:
        typer.echo(created.secret)  # alone on stdout, so `TOKEN=$(charter token create …)` works
        expiry = _when(created, "expires_at") or "never"
        typer.echo(
            f"token {created.id} for {created.user} (expires: {expiry}): copy the secret now, "
            "it will not be shown again",
            err=True,
        )

    emit(created, json_out, human)


@token_app.command("list")
def token_list(
    user: str = typer.Option(None, "--user", help="Only this user's tokens."), json_out: bool = JsonFlag
) -> None:
    """List API tokens with their status: active, expired or revoked (admin only; never the secrets)."""
    tokens = registry().tokens.list(user)
    emit(
        tokens,
        json_out,
        lambda: table(
            "API tokens",
            ["id", "user", "name", "purpose", "status", "created", "by", "expires", "revoked"],
            [
                (
                    t.id,
                    t.user,
                    t.name,
                    t.purpose,
                    t.status,
                    _when(t, "created_at"),
                    t.created_by,
                    _when(t, "expires_at") or "never",
                    _when(t, "revoked_at") + (f" by {t.revoked_by}" if t.revoked_by else ""),
                )
                for t in tokens
            ],
        ),
    )


@token_app.command("revoke")
def token_revoke(
    token_id: int = typer.Argument(..., metavar="ID", help="The token's id (see `charter token list`)."),
    reason: str = typer.Option("", "--reason", help="Why, for the audit ledger."),
    json_out: bool = JsonFlag,
) -> None:
    """Revoke an API token (admin only); the server refuses it from the next request on."""
    token = registry().tokens.revoke(token_id, reason=reason)
    emit(token, json_out, lambda: say(f"token {token.id} of {token.user} is revoked"))
