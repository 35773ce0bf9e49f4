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
def audit_verify(
    checkpoints: Path = typer.Option(
        None, "--checkpoints", help="Also check the signed checkpoints exported to this JSON file."
    ),
    public_key: Path = typer.Option(
        None, "--public-key", help="The Ed25519 public key (PEM or hex) the checkpoints must be signed with."
    ),
    json_out: bool = JsonFlag,
) -> None:
    """Recompute the hash chain; exit 4 naming the first bad event if any row was edited, deleted or
    reordered. With --checkpoints and --public-key, also prove the ledger still extends every signed
    head: exit 4 naming the first checkpoint that fails (bad signature, wrong key, event missing,
    hash differs)."""
    if (checkpoints is None) != (public_key is None):
        from charter.errors import InvalidInput

        raise InvalidInput("--checkpoints and --public-key go together: give both, or neither")
    if checkpoints is not None and public_key is not None:
        _verify_checkpoints(checkpoints, public_key, json_out)
        return
    result = registry().audit.verify()
    if json_out:
        print_json(result)
    elif result.ok:
        say(f"ledger verified: {result.events} events, head {result.head_hash}")
    else:
        say(f"[bold red]ledger does NOT verify[/]: event {result.first_bad}: {result.reason}")
    if not result.ok:
        raise typer.Exit(4)


def _verify_checkpoints(file: Path, key_file: Path, json_out: bool) -> None:
    import json

    from charter.domain.checkpoints import parse_checkpoints
    from charter.errors import InvalidInput
    from charter.service.checkpoints import load_public_key

    try:
        document = json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidInput(f"cannot read checkpoint file {file}: {exc.strerror}") from None
    except ValueError as exc:
        raise InvalidInput(f"checkpoint file {file} is not JSON: {exc}") from None
    report = registry().checkpoints.verify(parse_checkpoints(document), load_public_key(key_file))
    failure = report.first_failure
    if json_out:
        print_json(report)
    elif report.ok:
        say(
            f"ledger verified: {report.chain.events} events, head {report.chain.head_hash}; it extends all "
            f"{len(report.checkpoints)} signed checkpoints (key {report.key_id[:16]}…)"
        )
    elif failure is not None:
        say(f"[bold red]checkpoint at sequence {failure.sequence} does NOT hold[/]: {failure.reason}")
    else:
        chain = report.chain
        say(f"[bold red]ledger does NOT verify[/]: event {chain.first_bad}: {chain.reason}")
    if not report.ok:
        raise typer.Exit(4)


@audit_app.command("keygen")
def audit_keygen(
    private_key: Path = typer.Option(
        ..., "--private-key", help="Where to write the private key (mode 0600)."
    ),
    public_key: Path = typer.Option(..., "--public-key", help="Where to write the public key."),
    json_out: bool = JsonFlag,
) -> None:
    """Create an Ed25519 key pair (PEM) for signing ledger checkpoints; never overwrites a file.

    Keep the private key outside the database host's backups; give the public key to auditors."""
    from charter.service.checkpoints import generate_key_pair

    signer = generate_key_pair(private_key, public_key)
    result = {"private_key": str(private_key), "public_key": str(public_key), "key_id": signer}
    emit(result, json_out, lambda: fields(list(result.items())))


@audit_app.command("checkpoint")
def audit_checkpoint(
    key: Path = typer.Option(
        None, "--key", help="Ed25519 private key (PEM); default: CHARTER_CHECKPOINT_KEY."
    ),
    json_out: bool = JsonFlag,
) -> None:
    """Sign the ledger's current head with the checkpoint key (admin only); the signature is stored and
    audited as `ledger.checkpointed`, the event right after the signed head."""
    checkpoint = registry().checkpoints.sign(key)
    assert checkpoint is not None  # only sign(if_changed=True) may skip
    emit(
        checkpoint,
        json_out,
        lambda: say(
            f"signed head {checkpoint.sequence} ({checkpoint.hash[:16]}…) with key {checkpoint.key_id[:16]}…"
        ),
    )


@audit_app.command("checkpoints")
def audit_checkpoints(
    export: Path = typer.Option(
        None, "--export", help="Write them to this JSON file, for `charter audit verify --checkpoints`."
    ),
    json_out: bool = JsonFlag,
) -> None:
    """List signed ledger checkpoints, or export them to a file kept outside the database."""
    import json

    checkpoints = registry().checkpoints.list()
    if export is not None:
        from charter.errors import InvalidInput

        body = json.dumps([c.as_dict() for c in checkpoints], indent=2) + "\n"
        try:
            export.write_text(body, encoding="utf-8")
        except OSError as exc:
            raise InvalidInput(f"cannot write {export}: {exc.strerror}") from None
        emit(
            {"exported": len(checkpoints), "file": str(export)},
            json_out,
            lambda: say(f"exported {len(checkpoints)} checkpoints to {export}"),
        )
        return
    emit(
        checkpoints,
        json_out,
        lambda: table(
            "ledger checkpoints",
            ["sequence", "signed at", "by", "key", "hash"],
            [(c.sequence, c.signed_at, c.signed_by, c.key_id[:16], c.hash[:16]) for c in checkpoints],
        ),
    )


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
