"""The `charter` command. Heavy libraries are imported inside commands, so `--help` is quick."""

from __future__ import annotations

import sys

import typer

from charter.cli import admin

app = typer.Typer(
    name="charter",
    help="Governance for production AI: models, prompts, datasets and deployment tracks, "
    "with a tamper-evident audit ledger.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
app.command("init")(admin.init)
app.add_typer(admin.db_app, name="db")
app.add_typer(admin.user_app, name="user")
app.add_typer(admin.audit_app, name="audit")
app.add_typer(admin.policy_app, name="policy")


def _register_registries() -> None:
    from charter.cli import dataset, model, prompt

    app.add_typer(model.model_app, name="model")
    app.add_typer(dataset.dataset_app, name="dataset")
    app.add_typer(prompt.prompt_app, name="prompt")
    _register_tracks()


def _register_tracks() -> None:
    from charter.cli import release, rollout, slot, trace

    app.add_typer(slot.slot_app, name="slot")
    app.add_typer(release.release_app, name="release")
    app.add_typer(rollout.rollout_app, name="rollout")
    app.add_typer(rollout.incident_app, name="incident")
    app.add_typer(trace.txn_app, name="txn")
    app.add_typer(trace.state_app, name="state")
    app.command("route")(trace.route)
    app.command("trace")(trace.trace)
    app.command("changes")(trace.changes)


def _register_server() -> None:
    from charter.cli import report, server, token, webhook

    app.add_typer(token.token_app, name="token")
    app.add_typer(webhook.webhook_app, name="webhook")
    app.command("report")(report.report)
    app.command("server")(server.server)


_register_registries()
_register_server()


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; user mistakes become one paragraph on stderr and a contract exit code.

    Usage errors exit 2 (Typer's own handling); errors charter raises are mapped by
    `charter.cli.failures`.
    """
    from charter.errors import CharterError

    args = sys.argv[1:] if argv is None else argv
    try:
        app(args=args, prog_name="charter")
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
