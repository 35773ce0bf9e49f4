"""What every page shares: who is looking, rendering, errors, paging, the session cookie.

`Site` is made once per server by `create_web_router`. A page handler asks it for the `Viewer`
(the signed-in user, their roles, their registry and the CSRF token of their session), calls the
service layer through `viewer.registry`, and renders a template. Service errors never escape as a
traceback: the route class turns a `CharterError` into a page with the message and the status of
its family (400, 403, 404, 409).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote, urlencode

import jinja2
from fastapi import HTTPException, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute

from charter.domain.ledger import Verification
from charter.domain.roles import Action, Role, may
from charter.errors import (
    CharterError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    Refused,
    StoreUnavailable,
    Unauthenticated,
)
from charter.web import charts
from charter.web.session import SESSION_COOKIE, Session, SessionCodec

if TYPE_CHECKING:
    from charter.api.context import ServerContext
    from charter.service.catalog import Page
    from charter.service.registry import Registry

T = TypeVar("T")
log = logging.getLogger("charter.web")
TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
PAGE_SIZE = 25
AUTO_VERIFY_EVENTS = 50_000  # longer ledgers are verified when someone asks, not on every visit
LIVE_SECONDS = 30  # a rollout's gate and charts are recomputed at most this often per slot
LIVE_ENTRIES = 256

NAV = (
    ("/", "Overview", "overview"),
    ("/models", "Models", "models"),
    ("/prompts", "Prompts", "prompts"),
    ("/datasets", "Datasets", "datasets"),
    ("/trace", "Trace", "trace"),
    ("/state", "State", "state"),
    ("/audit", "Audit", "audit"),
)

# The error families, mapped to HTTP statuses at this edge (as the CLI maps them to exit codes).
STATUS: tuple[tuple[type[CharterError], int], ...] = (
    (NotFound, 404),
    (PermissionDenied, 403),
    (Refused, 409),
    (InvalidInput, 400),
    (StoreUnavailable, 503),
)


class SignInRequired(Exception):
    """No valid session: a page redirects to the sign-in form."""

    def __init__(self, next_url: str, reason: str = "") -> None:
        super().__init__(reason)
        self.next_url, self.reason = next_url, reason


class Forbidden(Exception):
    """A POST without a session or with a CSRF token that does not match it: refused, nothing run."""


@dataclass(frozen=True)
class Viewer:
    user: str
    roles: tuple[str, ...]
    registry: Registry
    csrf: str

    def may(self, action: Action) -> bool:
        return may([Role(r) for r in self.roles], action)


class Site:
    def __init__(self, ctx: ServerContext, codec: SessionCodec) -> None:
        self.ctx, self.codec = ctx, codec
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(TEMPLATES)),
            autoescape=True,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates.filters.update(
            when=when, short=short, num=charts.number, pct=charts.percent, size=size, pretty=pretty, q=q
        )
        self._verified: tuple[int, Verification, datetime] | None = None
        self._verify_lock = threading.Lock()
        self._live: dict[tuple[Any, ...], Any] = {}

    def now(self) -> datetime:
        return self.ctx.root.clock.now()

    # --- who is looking ---------------------------------------------------------------------

    def session(self, request: Request) -> Session | None:
        return self.codec.open(request.cookies.get(SESSION_COOKIE), self.now())

    def viewer(self, request: Request) -> Viewer:
        """The signed-in user of a page request, their token checked again now."""
        session = self.session(request)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if session is None:
            raise SignInRequired(target)
        try:
            user = self.ctx.authenticate(session.token)
        except Unauthenticated as refused:
            raise SignInRequired(target, f"your session ended: {refused.details.get('reason')}") from None
        if user != session.user:
            raise SignInRequired(target, "your session ended: the token now belongs to another user")
        registry = self.ctx.registry_for(user)
        roles = registry.users.get(user).roles
        viewer = Viewer(user, roles, registry, self.codec.csrf_token(session.sid))
        request.state.viewer = viewer
        return viewer

    def poster(self, request: Request, csrf: str | None) -> Viewer:
        """The user of a form POST: a session and its CSRF token, or `Forbidden` before anything runs."""
        session = self.session(request)
        if session is None:
            raise Forbidden("this form needs a signed-in session; sign in and submit it again")
        if not self.codec.check_csrf(session.sid, csrf):
            raise Forbidden(
                "the form's CSRF token does not match your session; reload the page and try again"
            )
        try:
            return self.viewer(request)
        except SignInRequired as ended:
            raise Forbidden(ended.reason or "your session ended; sign in again") from None

    # --- responses --------------------------------------------------------------------------

    def render(
        self, request: Request, template: str, *, status_code: int = 200, section: str = "", **context: Any
    ) -> HTMLResponse:
        page = self.templates.get_template(template).render(
            request=request,
            viewer=getattr(request.state, "viewer", None),
            nav=NAV,
            section=section,
            flash=request.query_params.get("done", ""),
            **context,
        )
        return HTMLResponse(page, status_code=status_code, headers={"Cache-Control": "no-store"})

    def error(
        self,
        request: Request,
        status: int,
        title: str,
        message: str,
        details: Mapping[str, Any] | None = None,
    ) -> HTMLResponse:
        report = (details or {}).get("report")
        return self.render(
            request, "error.html", status_code=status, title=title, message=message, report=report or None
        )

    def failure(self, request: Request, error: CharterError) -> HTMLResponse:
        status = next((code for family, code in STATUS if isinstance(error, family)), 400)
        title = {
            400: "Not accepted",
            403: "Not allowed",
            404: "Not found",
            409: "Refused",
            503: "Unavailable",
        }
        return self.error(request, status, title.get(status, "Error"), error.message, error.details)

    def redirect(self, url: str) -> RedirectResponse:
        return RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})

    def set_session(self, response: Response, request: Request, session: Session) -> None:
        response.set_cookie(
            SESSION_COOKIE,
            self.codec.seal(session),
            max_age=int(self.codec.max_age.total_seconds()),
            path="/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )

    def route_class(self) -> type[APIRoute]:
        site = self

        class WebRoute(APIRoute):
            def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
                original = super().get_route_handler()

                async def handler(request: Request) -> Response:
                    try:
                        return await original(request)
                    except SignInRequired as needed:
                        query = {"next": needed.next_url} | (
                            {"ended": needed.reason} if needed.reason else {}
                        )
                        response = site.redirect("/signin?" + urlencode(query))
                        if needed.reason:
                            response.delete_cookie(SESSION_COOKIE, path="/")
                        return response
                    except Forbidden as refused:
                        return site.error(request, 403, "Refused", str(refused))
                    except CharterError as error:
                        return site.failure(request, error)
                    except HTTPException:
                        raise
                    except Exception:
                        log.exception("unexpected error on %s", request.url.path)
                        message = "an unexpected error stopped this page; the server log has the details"
                        return site.error(request, 500, "Internal error", message)

                return handler

        return WebRoute

    # --- live aggregates ----------------------------------------------------------------------

    def live(self, registry: Registry, key: tuple[Any, ...], compute: Callable[[], T]) -> T:
        """A rollout's gate verdict or metric series: aggregates over every transaction record of
        its window, so a page reuses one for up to `LIVE_SECONDS` (of the store's clock) while the
        ledger has not moved. Every reader may read them; the viewer was authorised already."""
        newest = registry.audit.page(limit=1).events
        stamp = (newest[0].sequence if newest else 0, int(self.now().timestamp() // LIVE_SECONDS))
        found = self._live.get(key)
        if found is not None and found[0] == stamp:
            return found[1]  # type: ignore[no-any-return]
        value = compute()
        if len(self._live) >= LIVE_ENTRIES:
            self._live.clear()
        self._live[key] = (stamp, value)
        return value

    # --- the ledger's verification ----------------------------------------------------------

    def verification(
        self, registry: Registry, *, force: bool
    ) -> tuple[Verification | None, datetime | None, int]:
        """(result, when it was computed, ledger length). Recomputed when asked, or when the ledger
        grew and is short enough to verify on a page view; otherwise the last result is shown."""
        newest = registry.audit.page(limit=1).events
        head = newest[0].sequence if newest else 0
        cached = self._verified
        stale = cached is None or cached[0] != head
        if force or (stale and head <= AUTO_VERIFY_EVENTS):
            with self._verify_lock:
                result = registry.audit.verify()
                self._verified = cached = (result.events, result, self.now())
        if cached is None:
            return None, None, head
        return cached[1], cached[2], head


# --- paging and argument parsing ------------------------------------------------------------


def integer(text: str | None, name: str, default: int, low: int = 0, high: int = 10**12) -> int:
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise InvalidInput(f"{name} {text!r} is not a whole number") from None
    if not low <= value <= high:
        raise InvalidInput(f"{name} {value} is out of range; accepted: {low} to {high}")
    return value


def page_links(request: Request, page: Page[Any]) -> dict[str, str | None]:
    """Links to the previous and next pages, keeping the other query parameters."""

    def at(offset: int) -> str:
        params = {k: v for k, v in request.query_params.items() if k not in ("offset", "done")}
        if offset:
            params["offset"] = str(offset)
        return request.url.path + ("?" + urlencode(params) if params else "")

    return {
        "previous": at(max(page.offset - page.limit, 0)) if page.has_previous else None,
        "next": at(page.offset + page.limit) if page.has_next else None,
        "range": f"{page.offset + 1}–{page.offset + len(page.items)} of {page.total}"
        if page.items
        else "none",
    }


# --- template filters ----------------------------------------------------------------------


def when(value: Any) -> str:
    """A time as people read it: `2026-03-02 10:50:00 UTC`."""
    if value is None or value == "":
        return "–"
    moment = (
        value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    )
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def short(value: Any, length: int = 12) -> str:
    return "–" if value is None else str(value)[:length]


def size(value: Any) -> str:
    number = float(value or 0)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if number < 1024 or unit == "TiB":
            return f"{number:.0f} {unit}" if unit == "B" else f"{number:.1f} {unit}"
        number /= 1024
    return f"{number:.1f} TiB"


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def q(value: Any) -> str:
    """A path segment, quoted."""
    return quote(str(value), safe="")
