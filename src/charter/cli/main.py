"""The `charter` command. Heavy libraries are imported inside commands, so `--help` is quick.

A command of a group (`charter prompt list`) builds only that group, holding only that command:
Typer turns every registered command into a Click command on each run, and the other twenty
groups' modules and commands, or the group's other commands, cost more than the command itself.
`charter --help`, a top-level command or an unknown name builds the whole tree, and `app` (the
module attribute) is the whole tree too.
"""

from __future__ import annotations

import copy
import importlib
import sys
from functools import cache

import typer
from typer.main import get_command_name
from typer.models import CommandInfo

# What `charter` holds, in the order `charter --help` lists it: (name, module, attribute, is a group).
COMMANDS: tuple[tuple[str, str, str, bool], ...] = (
    ("init", "admin", "init", False),
    ("db", "admin", "db_app", True),
    ("user", "admin", "user_app", True),
    ("audit", "admin", "audit_app", True),
    ("policy", "admin", "policy_app", True),
    ("model", "model", "model_app", True),
    ("dataset", "dataset", "dataset_app", True),
    ("prompt", "prompt", "prompt_app", True),
    ("slot", "slot", "slot_app", True),
    ("release", "release", "release_app", True),
    ("rollout", "rollout", "rollout_app", True),
    ("incident", "rollout", "incident_app", True),
    ("txn", "trace", "txn_app", True),
    ("state", "trace", "state_app", True),
    ("route", "trace", "route", False),
    ("trace", "trace", "trace", False),
    ("changes", "trace", "changes", False),
    ("token", "token", "token_app", True),
    ("webhook", "webhook", "webhook_app", True),
    ("report", "report", "report", False),
    ("server", "server", "server", False),
)
_GROUPS = {name: (module, attribute) for name, module, attribute, group in COMMANDS if group}


def _root() -> typer.Typer:
    return typer.Typer(
        name="charter",
        help="Governance for production AI: models, prompts, datasets and deployment tracks, "
        "with a tamper-evident audit ledger.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
    )


def _member(module: str, attribute: str) -> typer.Typer:
    found: typer.Typer = getattr(importlib.import_module(f"charter.cli.{module}"), attribute)
    return found


@cache
def full_app() -> typer.Typer:
    """Every command and group."""
    root = _root()
    for name, module, attribute, group in COMMANDS:
        if group:
            root.add_typer(_member(module, attribute), name=name)
        else:
            root.command(name)(getattr(importlib.import_module(f"charter.cli.{module}"), attribute))
    return root


def app_for(args: list[str]) -> typer.Typer:
    """The command tree `args` needs: the group its first word names, with only the command its
    second word names when it names one (`charter prompt --help` builds the whole group), else
    everything."""
    found = _GROUPS.get(args[0]) if args else None
    if found is None:
        return full_app()
    group = _member(*found)
    chosen = [c for c in group.registered_commands if len(args) > 1 and _command_name(c) == args[1]]
    if chosen:
        group = copy.copy(group)  # the module's group keeps every command
        group.registered_commands = chosen
    root = _root()
    root.add_typer(group, name=args[0])
    return root


def _command_name(info: CommandInfo) -> str | None:
    if info.name is not None:
        return info.name
    return None if info.callback is None else get_command_name(info.callback.__name__)


def __getattr__(name: str) -> typer.Typer:
    if name == "app":
        return full_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; user mistakes become one paragraph on stderr and a contract exit code.

    Usage errors exit 2 (Typer's own handling); errors charter raises are mapped by
    `charter.cli.failures`.
    """
    from charter.errors import CharterError

    args = sys.argv[1:] if argv is None else argv
    try:
        app_for(args)(args=args, prog_name="charter")
    except CharterError as exc:
        from charter.cli.failures import exit_code
        from charter.cli.output import print_json

        if "--json" in args:
            print_json(exc.as_dict())
        sys.stderr.write(f"charter: {exc.message}\n")
        sys.exit(exit_code(exc))
    except KeyboardInterrupt:
        sys.stderr.write("interrupted; nothing was committed by the interrupted command\n")
        sys.exit(130)
