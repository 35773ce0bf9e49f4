"""The web UI: server-rendered pages over the service layer, served by `charter server` at `/`.

`create_web_router(ctx)` returns the router the server app includes; `security_headers_middleware`
(an HTTP middleware function) or `SecurityHeadersMiddleware` (the same as ASGI middleware) adds
the security headers to every response. See docs/web.md.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from fastapi import APIRouter, HTTPException, Response

from charter.web.security import SecurityHeadersMiddleware, security_headers_middleware
from charter.web.session import DEFAULT_MAX_AGE, SessionCodec, stored_secret
from charter.web.site import STATIC, Site

if TYPE_CHECKING:
    from charter.api.context import ServerContext

__all__ = ["SecurityHeadersMiddleware", "create_web_router", "security_headers_middleware"]

_TYPES = {".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}


def create_web_router(
    ctx: ServerContext, *, session_secret: bytes | None = None, session_max_age: timedelta = DEFAULT_MAX_AGE
) -> APIRouter:
    """The pages. `session_secret`: the key material session cookies are sealed with; every process
    serving the same users must use the same one. Without it, the secret kept in the store's home
    folder (`web-session.key`, made on first use) is used, so the workers of one server and its
    restarts share sessions; if that folder cannot be written, each process draws its own."""
    from charter.web.pages import audit, datasets, investigate, models, overview, prompts, signin, slots

    secret = session_secret if session_secret is not None else stored_secret(ctx.settings.home)
    site = Site(ctx, SessionCodec(secret, max_age=session_max_age))
    router = APIRouter(route_class=site.route_class(), include_in_schema=False)
    files = {p.name: (p.read_bytes(), _TYPES[p.suffix]) for p in STATIC.iterdir() if p.suffix in _TYPES}

    @router.get("/static/{name}")
    def static(name: str) -> Response:
        if name not in files:
            raise HTTPException(404)
        body, media = files[name]
        return Response(body, media_type=media, headers={"Cache-Control": "public, max-age=3600"})

    for group in (signin, overview, models, prompts, datasets, slots, investigate, audit):
        group.add(router, site)
    return router
