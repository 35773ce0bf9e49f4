"""Signing in with an API token (a form, or a one-time link), and signing out."""

from __future__ import annotations

import logging
import secrets

from fastapi import APIRouter, Form, Request, Response

from charter.errors import Unauthenticated
from charter.web.session import DEFAULT_MAX_AGE, SESSION_COOKIE, SIGNIN_COOKIE
from charter.web.site import Forbidden, Site

log = logging.getLogger("charter.web")


def safe_next(target: str) -> str:
    """Only a path on this server (never `//host` or a full URL): where to go after signing in."""
    if not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target


def add(router: APIRouter, site: Site) -> None:
    def form(request: Request, *, next_url: str, message: str = "", status: int = 200) -> Response:
        nonce = request.cookies.get(SIGNIN_COOKIE) or secrets.token_urlsafe(18)
        response = site.render(
            request,
            "signin.html",
            status_code=status,
            title="Sign in",
            csrf=site.codec.csrf_token(nonce, "signin"),
            next_url=safe_next(next_url),
            message=message,
        )
        response.set_cookie(
            SIGNIN_COOKIE,
            nonce,
            max_age=3600,
            path="/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    def sign_in(request: Request, token: str, target: str, *, link: bool = False) -> Response:
        secret = token.strip()
        try:
            if link:  # one-time: the link's token is revoked and a session token takes its place
                tokens = site.ctx.root.tokens
                user, session = tokens.redeem_signin_link(secret, session_lifetime=DEFAULT_MAX_AGE)
                secret = session.secret
            else:
                user = site.ctx.authenticate(secret)
        except Unauthenticated as refused:
            reason = refused.details.get("reason", "the token was refused")
            return form(request, next_url=target, message=f"Sign-in failed: {reason}.", status=401)
        response = site.redirect(safe_next(target))
        site.set_session(response, request, site.codec.new(secret, user, site.now()))
        response.delete_cookie(SIGNIN_COOKIE, path="/")
        log.info("web sign-in: %s", user)
        return response

    @router.get("/signin")
    def signin_page(request: Request, token: str = "", next: str = "/", ended: str = "") -> Response:
        if token:  # a one-time link: sign in, then land on a URL without the token
            return sign_in(request, token, "/", link=True)
        if not ended and site.session(request) is not None:
            return site.redirect(safe_next(next))
        return form(request, next_url=next, message=ended)

    @router.post("/signin")
    def signin_submit(
        request: Request,
        token: str = Form(""),
        csrf: str = Form(""),
        next: str = Form("/"),
    ) -> Response:
        nonce = request.cookies.get(SIGNIN_COOKIE)
        if not nonce or not site.codec.check_csrf(nonce, csrf, "signin"):
            raise Forbidden("the sign-in form expired or did not come from this server; load it again")
        if not token.strip():
            return form(request, next_url=next, message="Paste an API token (chtr_…).", status=400)
        return sign_in(request, token, next)

    @router.post("/signout")
    def signout(request: Request, csrf: str = Form("")) -> Response:
        viewer = site.poster(request, csrf)
        session = site.session(request)
        if session is not None:  # a session opened by a sign-in link ends for good
            site.ctx.root.tokens.end_session(session.token)
        log.info("web sign-out: %s", viewer.user)
        response = site.redirect("/signin")
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response
