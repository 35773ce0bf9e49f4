"""Who is calling: the bearer token of every API request, resolved to a registry acting as its user."""

from __future__ import annotations

from fastapi import Request

from charter.api.context import ServerContext
from charter.errors import Unauthenticated
from charter.service.registry import Registry

_SCHEME = "bearer "


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    if not header:
        raise Unauthenticated("the request has no Authorization header")
    if header[: len(_SCHEME)].lower() != _SCHEME or not header[len(_SCHEME) :].strip():
        raise Unauthenticated("the Authorization header is not `Bearer <token>`")
    return header[len(_SCHEME) :].strip()


def context(request: Request) -> ServerContext:
    ctx = request.app.state.charter
    assert isinstance(ctx, ServerContext)
    return ctx


def caller(request: Request) -> Registry:
    """The registry acting as the token's user; roles are then enforced by the service layer."""
    ctx = context(request)
    user = ctx.authenticate(bearer_token(request))
    request.state.user = user
    return ctx.registry_for(user)
