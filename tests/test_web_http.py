"""The web UI over real HTTP on loopback, on both engines: sign-in and sessions, CSRF, who sees which
buttons, an operator's advance reaching the ledger, error pages, security headers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from charter.clock import ManualClock
from charter.config import Settings
from charter.service.registry import Registry
from charter.web.security import SECURITY_HEADERS
from tests.test_web_helpers import Story, build_story, serve, signed_in


@pytest.fixture
def story(registry: Registry, tmp_path: Path, clock: ManualClock) -> Story:
    return build_story(registry, tmp_path, clock)


@pytest.fixture
def base(story: Story, settings: Settings, clock: ManualClock) -> Iterator[str]:
    with serve(settings, clock) as url:
        yield url


def ledger_length(reg: Registry) -> int:
    return reg.audit.page(limit=1).events[0].sequence


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def test_signing_in_sets_a_sealed_http_only_strict_cookie(story: Story, base: str) -> None:
    client = httpx.Client(base_url=base, follow_redirects=False)
    assert client.get("/models").status_code == 303  # not signed in: to the sign-in form
    form = client.get("/signin", params={"next": "/models"})
    assert form.status_code == 200 and "API token" in form.text
    assert client.post("/signin", data={"token": story.tokens["olga"], "csrf": "x"}).status_code == 403
    wrong = client.post("/signin", data={"token": "chtr_not-a-real-token", "csrf": csrf_of(form.text)})
    assert wrong.status_code == 401 and "Sign-in failed" in wrong.text
    assert "charter_session=" not in str(wrong.headers.get("set-cookie"))
    response = client.post(
        "/signin", data={"token": story.tokens["olga"], "csrf": csrf_of(form.text), "next": "/models"}
    )
    assert response.status_code == 303 and response.headers["location"] == "/models"
    cookie = response.headers["set-cookie"]
    assert "charter_session=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert story.tokens["olga"] not in cookie and story.tokens["olga"][5:20] not in cookie
    assert "Secure" not in cookie  # plain http on loopback; https requests get Secure
    page = client.get("/models")
    assert page.status_code == 200 and "olga" in page.text
    off_site = httpx.Client(base_url=base, follow_redirects=False)
    form = off_site.get("/signin")
    response = off_site.post(
        "/signin", data={"token": story.tokens["vic"], "csrf": csrf_of(form.text), "next": "//evil.example/"}
    )
    assert response.headers["location"] == "/"
    # an API token is never accepted in a URL (it would end up in histories and logs)
    link = httpx.Client(base_url=base, follow_redirects=False)
    response = link.get("/signin", params={"token": story.tokens["vic"]})
    assert response.status_code == 401 and "not a sign-in link" in response.text


def test_a_signin_link_works_once_and_opens_a_session_that_signing_out_ends(story: Story, base: str) -> None:
    admin = story.w.admin
    link = admin.tokens.create_signin_link("vic")
    before = ledger_length(admin)
    browser = httpx.Client(base_url=base, follow_redirects=False)
    response = browser.get("/signin", params={"token": link.secret, "next": "/audit"})
    assert response.status_code == 303 and response.headers["location"] == "/"  # no token in the URL
    assert link.secret not in response.headers["set-cookie"]
    page = browser.get("/")
    assert page.status_code == 200 and "vic" in page.text
    tokens = {t.id: t for t in admin.tokens.list("vic")}
    assert tokens[link.id].status == "revoked" and tokens[link.id].revoked_by == "vic"
    (session,) = [t for t in tokens.values() if t.purpose == "web-session"]
    assert session.status == "active" and session.expires_at == session.created_at + timedelta(hours=12)
    events = admin.audit.log()[before:]
    assert [e.action for e in events] == ["token.signin"]
    assert events[0].actor == "vic" and events[0].payload["session_token"] == session.id
    # a second use, from anywhere, is refused and writes nothing
    again = httpx.Client(base_url=base, follow_redirects=False).get("/signin", params={"token": link.secret})
    assert again.status_code == 401 and "already used" in again.text
    assert ledger_length(admin) == before + 1
    # a link, used or not, is never an API token
    unused = admin.tokens.create_signin_link("vic")
    for secret, reason in ((link.secret, "revoked"), (unused.secret, "sign-in link")):
        api = httpx.get(f"{base}/api/v1/models", headers={"Authorization": f"Bearer {secret}"})
        assert api.status_code == 401 and reason in api.text
    # signing out revokes the session token: replaying the old cookie does not sign in again
    cookie = browser.cookies.get("charter_session")
    out = browser.post("/signout", data={"csrf": csrf_of(page.text)})
    assert out.status_code == 303
    assert {t.id: t.status for t in admin.tokens.list("vic")}[session.id] == "revoked"
    replay = httpx.Client(base_url=base, follow_redirects=False, cookies={"charter_session": cookie or ""})
    assert replay.get("/").status_code == 303


def test_an_expired_signin_link_is_refused(story: Story, base: str, clock: ManualClock) -> None:
    admin = story.w.admin
    late = admin.tokens.create_signin_link("olga")
    clock.advance(timedelta(hours=1, seconds=1))
    response = httpx.get(f"{base}/signin", params={"token": late.secret})
    assert response.status_code == 401 and "expired" in response.text
    assert {t.id: t.status for t in admin.tokens.list("olga")}[late.id] == "expired"


def test_a_session_ends_with_its_token_its_expiry_or_signing_out(
    story: Story, base: str, clock: ManualClock
) -> None:
    admin = story.w.admin
    client = signed_in(base, story.tokens["rita"])
    assert client.get("/").status_code == 200
    token_id = next(t.id for t in admin.tokens.list("rita"))
    admin.tokens.revoke(token_id, reason="test")
    ended = client.get("/prompts")
    assert ended.status_code == 303 and "ended" in ended.headers["location"]
    other = signed_in(base, story.tokens["vic"])
    page = other.get("/")
    assert other.post("/signout", data={"csrf": "forged"}).status_code == 403
    out = other.post("/signout", data={"csrf": csrf_of(page.text)})
    assert out.status_code == 303 and 'charter_session=""' in out.headers["set-cookie"]
    other.cookies.clear()
    assert other.get("/").status_code == 303
    late = signed_in(base, story.tokens["olga"])
    clock.advance(timedelta(hours=13))  # sessions last 12 hours
    assert late.get("/").status_code == 303


def test_a_forged_post_is_refused_and_changes_nothing(story: Story, base: str) -> None:
    reg = story.w.admin
    before = ledger_length(reg)
    olga = signed_in(base, story.tokens["olga"])
    confirm = olga.get("/slots/agent/actions/advance")
    assert confirm.status_code == 200
    reason = {"reason": "looks good"}
    assert olga.post("/slots/agent/actions/advance", data=reason).status_code == 403  # no token
    assert olga.post("/slots/agent/actions/advance", data={**reason, "csrf": "x" * 43}).status_code == 403
    vic = signed_in(base, story.tokens["vic"])
    other_session = csrf_of(vic.get("/").text)  # a valid token, of another session
    assert (
        olga.post("/slots/agent/actions/advance", data={**reason, "csrf": other_session}).status_code == 403
    )
    anonymous = httpx.Client(base_url=base)
    token = csrf_of(confirm.text)
    assert anonymous.post("/slots/agent/actions/advance", data={**reason, "csrf": token}).status_code == 403
    assert ledger_length(reg) == before
    assert reg.rollouts.status("agent").rollout["stage"] == "shadow"


def test_a_viewer_sees_no_action_buttons_and_cannot_act(story: Story, base: str) -> None:
    reg = story.w.admin
    vic = signed_in(base, story.tokens["vic"])
    page = vic.get("/slots/agent")
    assert page.status_code == 200 and "Stage gate now" in page.text
    assert "/actions/" not in page.text and "Advance" not in page.text
    assert vic.get("/slots/agent/actions/advance").status_code == 403
    before = ledger_length(reg)
    refused = vic.post("/slots/agent/actions/abort", data={"reason": "no", "csrf": csrf_of(page.text)})
    assert refused.status_code == 403 and "may not" in refused.text
    assert ledger_length(reg) == before
    olga = signed_in(base, story.tokens["olga"]).get("/slots/agent").text
    assert "/slots/agent/actions/advance" in olga and "/slots/agent/actions/abort" in olga
    assert "/slots/agent/actions/approve" not in olga  # the policy needs no approval for this change
    rita = signed_in(base, story.tokens["rita"]).get("/slots/agent").text
    assert "/actions/advance" not in rita  # a reviewer does not operate rollouts


def test_an_operator_advances_with_a_reason_and_the_ledger_shows_it(story: Story, base: str) -> None:
    reg = story.w.admin
    olga = signed_in(base, story.tokens["olga"])
    confirm = olga.get("/slots/agent/actions/advance")
    assert "Confirm advance" in confirm.text and "Override" not in confirm.text  # not an admin
    csrf = csrf_of(confirm.text)
    empty = olga.post("/slots/agent/actions/advance", data={"csrf": csrf, "reason": "  "})
    assert empty.status_code == 400 and "needs a reason" in empty.text
    before = ledger_length(reg)
    done = olga.post("/slots/agent/actions/advance", data={"csrf": csrf, "reason": "shadow is clean"})
    assert done.status_code == 303 and done.headers["location"].startswith("/slots/agent?done=")
    assert "shadow" in olga.get(done.headers["location"]).text
    event = reg.audit.page(limit=1).events[0]
    assert event.sequence == before + 1 and (event.action, event.actor) == ("rollout.advance", "olga")
    assert event.payload["note"] == "shadow is clean" and event.payload["to"] == "canary"
    audit = olga.get("/audit", params={"action": "rollout.*"}).text
    assert "rollout.advance" in audit and "shadow is clean" in audit
    again = olga.post("/slots/agent/actions/advance", data={"csrf": csrf, "reason": "again"})
    assert again.status_code == 409 and "cannot leave stage canary" in again.text  # the gate, with evidence
    assert "quality within 0.02 of baseline" in again.text and ledger_length(reg) == before + 1


def test_errors_render_as_pages_with_the_right_status_and_every_response_has_security_headers(
    story: Story, base: str
) -> None:
    client = signed_in(base, story.tokens["vic"])
    missing = client.get("/models/nope")
    assert missing.status_code == 404 and "model &#39;nope&#39; not found" in missing.text
    assert "Traceback" not in missing.text and missing.headers["content-type"].startswith("text/html")
    assert client.get("/prompts/greet/99").status_code == 404
    assert client.get("/models/m/not-a-version").status_code == 400
    assert client.get("/audit", params={"since": "yesterday"}).status_code == 400
    assert client.get("/models", params={"offset": "-3"}).status_code == 400
    assert client.get("/slots/agent/actions/launch").status_code == 404
    disk = client.get("/datasets/tickets/1/drift", params={"against": "/etc/passwd"})
    assert disk.status_code == 400  # the web never reads files on the server's disk
    for path in ("/", "/signin", "/static/charter.css", "/models/nope"):
        response = client.get(path)
        for name, value in SECURITY_HEADERS:
            assert response.headers.get(name) == value, (path, name)
    csp = dict(SECURITY_HEADERS)["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert client.get("/").headers["cache-control"] == "no-store"


def test_every_page_renders_evidence_downloads_and_the_ledger_pages(story: Story, base: str) -> None:
    client = signed_in(base, story.tokens["vic"])
    for path in PAGES:
        response = client.get(path.replace("TXN", story.txn))
        assert response.status_code == 200, (path, response.text[:500])
        assert '<p class="error"' not in response.text, path
    pack = client.get("/evidence", params={"target": "m@1.1.0"})
    assert pack.status_code == 200
    assert pack.headers["content-disposition"] == 'attachment; filename="evidence-m_1.1.0.html"'
    assert "m@1.1.0" in pack.text
    for i in range(20):  # more than one page of 50 ledger events
        story.w.admin.users.add(f"user-{i}", ["viewer"])
    audit = client.get("/audit").text
    assert "VERIFIED" in audit
    older = re.search(r'href="(/audit\?before=\d+)" rel="next"', audit)
    assert older is not None
    second = client.get(older.group(1).replace("&amp;", "&")).text
    assert 'rel="prev"' in second and "store.initialised" in second


PAGES = (
    "/",
    "/models",
    "/models/m",
    "/models/m/1.1.0",
    "/prompts",
    "/prompts/greet",
    "/prompts/greet/3",
    "/prompts/greet/diff?a=1&b=3",
    "/datasets",
    "/datasets/tickets",
    "/datasets/tickets/1",
    "/datasets/tickets/1/drift?against=tickets-prod@1",
    "/datasets/tickets/1/drift?against=slot:agent",
    "/slots/agent",
    "/trace",
    "/trace?id=TXN",
    "/state",
    "/state?slot=agent",
    "/state?slot=agent&at=2026-03-02T09:30&to=2026-03-02T10:30",
    "/audit",
    "/audit?subject=model:m*&actor=admin&action=model.*&since=2026-03-01",
)
