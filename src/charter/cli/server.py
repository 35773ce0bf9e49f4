"""`charter server`: the REST API, the web UI and the background jobs over one store."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from charter.cli.output import say

if TYPE_CHECKING:
    from charter.service.registry import Registry


def server(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0: every interface)."),
    port: int = typer.Option(8080, "--port", help="TCP port."),
    workers: int = typer.Option(1, "--workers", min=1, max=64, help="Worker processes."),
    jobs: bool = typer.Option(
        True,
        "--jobs/--no-jobs",
        help="Run the background jobs (rollout ticker, webhook deliveries, scheduled checkpoints). "
        "With several servers on one database each job runs in exactly one process at a time.",
    ),
    log_level: str = typer.Option("info", "--log-level", help="critical, error, warning, info or debug."),
    signin_link: bool = typer.Option(
        False,
        "--signin-link",
        help="Print a one-time sign-in link for the web UI for the local user (CHARTER_USER): it "
        "works once, within an hour (`make run` does this).",
    ),
) -> None:
    """Serve the REST API (/api/v1, OpenAPI at /api/v1/openapi.json), the web UI (/), /healthz,
    /readyz and Prometheus metrics (/metrics) over the store configured by CHARTER_HOME or
    CHARTER_DATABASE_URL (and CHARTER_BLOB_URL). Every API call needs a token: `charter token create`.
    """
    import os
    import tempfile

    import uvicorn

    from charter.api.logs import install_redaction
    from charter.config import Settings
    from charter.errors import InvalidInput
    from charter.service.setup import open_registry

    if log_level not in ("critical", "error", "warning", "info", "debug"):
        raise InvalidInput(f"--log-level {log_level!r}: accepted are critical, error, warning, info, debug")
    settings = Settings.from_env()
    if settings.remote:
        raise InvalidInput(
            "CHARTER_URL is set: `charter server` serves a store, not another server; unset it"
        )
    with open_registry(settings) as registry:  # refuse early, with the usual message, if not ready
        link = _signin_link(registry, host, port) if signin_link else None
    install_redaction()
    if workers > 1:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="charter-metrics-")
        os.environ["CHARTER_SERVER_JOBS"] = "1" if jobs else "0"
    say(f"charter serving on http://{host}:{port} (API /api/v1, web UI /, {workers} worker(s))")
    if link is not None:
        say("sign in to the web UI with this link (it works once, within the next hour):")
        typer.echo(link)  # on a line of its own, never wrapped, so a terminal makes it clickable
    if workers > 1:
        uvicorn.run(
            "charter.api.app:app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=log_level,
            proxy_headers=False,
        )
    else:
        from charter.api.app import create_app

        uvicorn.run(create_app(settings, jobs=jobs), host=host, port=port, log_level=log_level)


def _signin_link(registry: Registry, host: str, port: int) -> str:
    from urllib.parse import urlencode

    token = registry.tokens.create_signin_link(registry.actor)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    return f"http://{shown}:{port}/signin?{urlencode({'token': token.secret})}"
