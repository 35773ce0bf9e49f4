"""`charter init`, `charter db …`, `charter user …`, `charter audit …`, `charter policy …`."""

from __future__ import annotations

from pathlib import Path

import typer

from charter.cli.context import registry
from charter.cli.output import JsonFlag, emit, fields, print_json, say, table

db_app = typer.Typer(help="The metadata database: schema migrations.", no_args_is_help=True)
user_app = typer.Typer(help="Users and their roles.", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident audit ledger.", no_args_is_help=True)
policy_app = typer.Typer(
    help="Versioned policies (pins, contamination, environments, …).", no_args_is_help=True
)


def init(json_out: bool = JsonFlag) -> None:
    """Create the store (SQLite file and blob folder under CHARTER_HOME), or bring it up to date.

    Idempotent. On a store without users, the acting user (CHARTER_USER, default: your OS user)
    gets every role so one person can start alone.
    """
    from charter.config import Settings
    from charter.service.setup import init_store

    result = init_store(Settings.from_env())

    def human() -> None:
        say(("Created" if result.created else "Checked") + f" the charter store in {result.home}")
        fields([("database", result.database), ("blobs", result.blobs), ("schema", result.revision)])
        if result.admin:
            say(f"{result.admin} holds every role: add teammates with `charter user add NAME --role …`")

    emit(result, json_out, human)


@db_app.command("upgrade")
def db_upgrade(json_out: bool = JsonFlag) -> None:
    """Apply pending schema migrations (SQLite or PostgreSQL)."""
    from charter.config import Settings
    from charter.service.setup import upgrade_store

    before, after = upgrade_store(Settings.from_env())
    emit(
        {"before": before, "after": after},
        json_out,
        lambda: say(f"schema at {after}" + ("" if before == after else f" (was {before or 'empty'})")),
    )


def _users_table(users: list) -> None:  # type: ignore[type-arg]
    table(
        "users",
        ["name", "roles", "disabled", "created"],
        [
            (
                u.name,
                ", ".join(u.roles),
                "yes" if u.disabled else "",
                u.created_at.isoformat(timespec="seconds"),
            )
            for u in users
        ],
    )


@user_app.command("add")
def user_add(
    name: str,
    role: list[str] = typer.Option(
        ..., "--role", help="viewer|service|author|reviewer|operator|admin; repeatable."
    ),
    json_out: bool = JsonFlag,
) -> None:
    """Add a user with one or more roles (admin only)."""
    user = registry().users.add(name, role)
    emit(user, json_out, lambda: say(f"added {user.name} with roles {', '.join(user.roles)}"))


@user_app.command("list")
def user_list(json_out: bool = JsonFlag) -> None:
    """List users and their roles."""
    users = registry().users.list()
    emit(users, json_out, lambda: _users_table(users))


@user_app.command("roles")
def user_roles(
    name: str,
    add: list[str] = typer.Option([], "--add", help="Role to grant; repeatable."),
    remove: list[str] = typer.Option([], "--remove", help="Role to take away; repeatable."),
    json_out: bool = JsonFlag,
) -> None:
    """Show a user's roles, or change them with --add / --remove (admin only)."""
    reg = registry()
    user = reg.users.change_roles(name, add=add, remove=remove) if add or remove else reg.users.get(name)
    emit(user, json_out, lambda: say(f"{user.name}: {', '.join(user.roles) or 'no roles'}"))


@user_app.command("disable")
def user_disable(name: str, json_out: bool = JsonFlag) -> None:
    """Disable a user (users are never deleted: the ledger names them)."""
    user = registry().users.disable(name)
    emit(user, json_out, lambda: say(f"{user.name} is disabled"))


@user_app.command("enable")
def user_enable(name: str, json_out: bool = JsonFlag) -> None:
    """Enable a disabled user again."""
    user = registry().users.enable(name)
    emit(user, json_out, lambda: say(f"{user.name} is enabled"))


@audit_app.command("log")
def audit_log(
    subject: str = typer.Option(
        None,
        "--subject",
        help="model:NAME@X.Y.Z, dataset:NAME@N, user:NAME, …; a trailing * matches by prefix.",
    ),
    since: str = typer.Option(None, "--since", help="ISO 8601 time (no zone means UTC)."),
    until: str = typer.Option(None, "--until", help="ISO 8601 time (no zone means UTC)."),
    limit: int = typer.Option(None, "--limit", min=1, help="At most this many events."),
    json_out: bool = JsonFlag,
) -> None:
    """List audit events in sequence order."""
    from charter.domain.times import parse_time

    events = registry().audit.log(
        subject=subject,
        since=parse_time(since) if since else None,
        until=parse_time(until) if until else None,
        limit=limit,
    )
    emit(
        events,
        json_out,
        lambda: table(
            "audit events",
            ["seq", "time", "actor", "action", "subject"],
            [(e.sequence, e.time, e.actor, e.action, e.subject) for e in events],
        ),
    )


@audit_app.command("verify")
def audit_verify(json_out: bool = JsonFlag) -> None:
    """Recompute the hash chain; exit 4 naming the first bad event if any row was edited, deleted or
    reordered."""
    result = registry().audit.verify()
    if json_out:
        print_json(result)
    elif result.ok:
        say(f"ledger verified: {result.events} events, head {result.head_hash}")
    else:
        say(f"[bold red]ledger does NOT verify[/]: event {result.first_bad}: {result.reason}")
    if not result.ok:
        raise typer.Exit(4)


@policy_app.command("apply")
def policy_apply(
    file: Path = typer.Argument(
        ..., help="YAML with sections pins, contamination, environments, validation, drift, tracks."
    ),
    json_out: bool = JsonFlag,
) -> None:
    """Apply a policy file (admin only): the sections it names replace the current ones."""
    from charter.errors import InvalidInput

    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read policy file {file}: {exc.strerror}") from None
    result = registry().policies.apply(text)
    emit(result, json_out, lambda: say(f"policy version {result.version} in force ({result.digest[:12]})"))


@policy_app.command("show")
def policy_show(
    at: str = typer.Option(None, "--at", help="The policy in force at this time."), json_out: bool = JsonFlag
) -> None:
    """Show the policies in force (now, or at a time)."""
    import yaml

    from charter.domain.times import parse_time

    result = registry().policies.show(parse_time(at) if at else None)

    def human() -> None:
        say(
            f"# policy version {result.version}"
            + (
                " (built-in defaults)"
                if result.version == 0
                else f", applied by {result.created_by} at {result.created_at}"
            )
        )
        say(yaml.safe_dump(result.document, sort_keys=True).rstrip())

    emit(result, json_out, human)


@policy_app.command("history")
def policy_history(json_out: bool = JsonFlag) -> None:
    """Every version of the policy, with who applied it and when."""
    history = registry().policies.history()
    emit(
        history,
        json_out,
        lambda: table(
            "policy history",
            ["version", "applied", "by", "digest"],
            [(p.version, p.created_at, p.created_by, p.digest[:12]) for p in history],
        ),
    )
