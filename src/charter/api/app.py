"""The server's FastAPI application: the REST API under /api/v1, health, metrics and the web UI."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from charter import __version__
from charter.api.context import ServerContext
from charter.api.limits import BodySizeLimit
from charter.api.metrics import Metrics
from charter.api.problems import error_response, invalid_request, problem
from charter.api.routes import WireFormat, build_router
from charter.errors import CharterError

if TYPE_CHECKING:
    from charter.clock import Clock
    from charter.config import Settings

log = logging.getLogger("charter.server")

API_PREFIX = "/api/v1"
DEFAULT_MAX_BODY = 64 * 1024 * 1024  # bytes; chunk uploads have their own, smaller limit


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    jobs: bool = False,
    web: bool = True,
    max_body: int = DEFAULT_MAX_BODY,
    metrics_multiprocess: bool = False,
) -> FastAPI:
    """The application over the store `settings` names (which must exist and be up to date).

    `jobs` starts the background jobs (rollout ticker, webhook deliverer, checkpoint signer) under
    leases, so that several server processes share them; tests leave it off and drive jobs directly.
    """
    from charter.service.setup import open_registry

    root = open_registry(settings, clock=clock)
    ctx = ServerContext(settings, root)
    runner: Any = None

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        nonlocal runner
        if jobs:
            from charter.service.jobs import start_server_jobs

            runner = start_server_jobs(ctx.root)
        try:
            yield
        finally:
            if runner is not None:
                runner.stop()
            ctx.close()

    app = FastAPI(
        title="charter",
        version=__version__,
        description="Governance for production AI: the REST API of the model, prompt, dataset and "
        "deployment registries, and the audit ledger. Authenticate with `Authorization: Bearer "
        "<token>` (`charter token create USER`).",
        lifespan=lifespan,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None,  # the interactive page would load its assets from a CDN; read the document
        redoc_url=None,
    )
    app.state.charter = ctx
    metrics = Metrics(multiprocess=metrics_multiprocess)
    app.state.metrics = metrics

    _install_error_handlers(app)
    app.include_router(build_router(), prefix=API_PREFIX)
    from charter.api.transfer import build_transfer_router

    app.include_router(build_transfer_router(), prefix=API_PREFIX)
    from charter.api.reports import build_reports_router

    app.include_router(build_reports_router(), prefix=API_PREFIX)
    from charter.api.ledger import build_ledger_router

    app.include_router(build_ledger_router(), prefix=API_PREFIX)
    _install_health(app, ctx, metrics)
    if web:
        _install_web(app, ctx)
    app.add_middleware(BodySizeLimit, max_body=max_body)
    app.add_middleware(WireFormat)
    app.add_middleware(_Measured, metrics=metrics)
    return app


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(CharterError)
    async def charter_error(_request: Request, exc: CharterError) -> Response:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> Response:
        problems = [_describe(error) for error in exc.errors()]
        return invalid_request(
            "the request is not valid: " + "; ".join(problems),
            problems=problems,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> Response:
        message = {
            404: "no such endpoint; the API is described at /api/v1/openapi.json",
            405: "this endpoint does not accept that HTTP method; see /api/v1/openapi.json",
        }.get(exc.status_code, str(exc.detail))
        headers = dict(exc.headers) if exc.headers else None
        return problem(exc.status_code, {"error": "HTTPError", "message": message}, headers)

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> Response:
        log.exception("unexpected error")
        return problem(500, {"error": "InternalError", "message": "internal error; see the server log"})


def _describe(error: Any) -> str:
    where = ".".join(str(part) for part in error.get("loc", ()) if part not in ("body",))
    return f"{where or 'body'}: {error.get('msg', 'invalid')}"


def _install_health(app: FastAPI, ctx: ServerContext, metrics: Metrics) -> None:
    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    def readyz() -> Response:
        """Readiness: the database answers at the schema this server needs, the blob store exists."""
        from charter.storage import migrate

        try:
            current = migrate.current_revision(ctx.root.store.engine)
        except Exception as exc:
            return JSONResponse({"status": "unavailable", "database": str(exc)[:200]}, status_code=503)
        if current != migrate.head_revision():
            body = {"status": "unavailable", "schema": current, "needs": migrate.head_revision()}
            return JSONResponse(body, status_code=503)
        if not ctx.root.store.blobs.exists():
            return JSONResponse({"status": "unavailable", "blobs": "missing"}, status_code=503)
        return JSONResponse({"status": "ready", "schema": current})

    @app.get("/metrics", include_in_schema=False)
    def prometheus() -> Response:
        return metrics.exposition()


def _install_web(app: FastAPI, ctx: ServerContext) -> None:
    from charter.web import SecurityHeadersMiddleware, create_web_router

    app.include_router(create_web_router(ctx, session_secret=ctx.settings.session_secret))
    app.add_middleware(SecurityHeadersMiddleware)


def app_from_env() -> FastAPI:
    """The app for each worker process of `charter server --workers N` (configured like the CLI)."""
    from charter.api.logs import install_redaction
    from charter.config import Settings

    install_redaction()
    settings = Settings.from_env()
    return create_app(settings, jobs=settings.server_jobs, metrics_multiprocess=settings.metrics_multiprocess)


class _Measured:
    """Installs `Metrics.middleware` (the form `add_middleware` expects: a class over the app)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.inner = metrics.middleware(app)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.inner(scope, receive, send)
