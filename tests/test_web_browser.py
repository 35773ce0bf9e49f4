"""The web UI in a real headless Chromium (Debian's `chromium`, driven by Playwright; no browser is
downloaded): every page renders without console errors, an operator advances a rollout by clicking,
a viewer sees no buttons and a cross-site forged POST is refused. Screenshots of the main pages go
to tests/artifacts/screenshots/."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from charter.clock import ManualClock
from charter.config import Settings
from charter.service.registry import Registry
from tests.test_web_helpers import Story, build_story, serve

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).parent / "artifacts" / "screenshots"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.parametrize("backend", ["sqlite"], indirect=True),  # the engines are covered over HTTP
    pytest.mark.skipif(
        shutil.which(CHROMIUM) is None,
        reason=f"no Chromium at {CHROMIUM}: install Debian's package with `apt-get install -y chromium`",
    ),
]

MAIN_PAGES = (
    ("overview", "/"),
    ("models", "/models"),
    ("model", "/models/m"),
    ("model-version", "/models/m/1.1.0"),
    ("prompts", "/prompts"),
    ("prompt", "/prompts/greet"),
    ("prompt-version", "/prompts/greet/3"),
    ("prompt-diff", "/prompts/greet/diff?a=1&b=3"),
    ("datasets", "/datasets"),
    ("dataset", "/datasets/tickets"),
    ("dataset-version", "/datasets/tickets/1"),
    ("drift", "/datasets/tickets/1/drift?against=tickets-prod@1"),
    ("slot", "/slots/agent"),
    ("confirm-advance", "/slots/agent/actions/advance"),
    ("trace", "/trace?id=TXN"),
    ("state", "/state?slot=agent"),
    ("audit", "/audit"),
)


@pytest.fixture
def story(registry: Registry, tmp_path: Path, clock: ManualClock) -> Story:
    return build_story(registry, tmp_path, clock)


@pytest.fixture
def base(story: Story, settings: Settings, clock: ManualClock) -> Iterator[str]:
    with serve(settings, clock) as url:
        yield url


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)
        yield launched
        launched.close()


class Watched:
    """A page whose console errors, uncaught errors and failed requests are collected."""

    def __init__(self, browser: Any) -> None:
        self.page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        self.problems: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        self.page.on("requestfailed", self._failed)
        self.page.on("response", self._response)

    def _failed(self, request: Any) -> None:
        # ERR_ABORTED: the browser itself cancelled the fetch (the favicon, when the test navigates
        # on before it arrived); a missing resource is a 404 response, which `_response` reports.
        if "ERR_ABORTED" not in (request.failure or ""):
            self.problems.append(f"request failed: {request.url} ({request.failure})")

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.problems.append(f"console: {message.text}")

    def _response(self, response: Any) -> None:
        if response.status >= 400:
            self.problems.append(f"HTTP {response.status}: {response.url}")

    def sign_in(self, base: str, token: str) -> None:
        """Through the form, as a person would."""
        self.page.goto(f"{base}/")
        assert "/signin" in self.page.url
        self.page.fill("#token", token)
        self.page.click("button:has-text('Sign in')")
        assert self.page.url == f"{base}/", self.page.url


def test_every_page_renders_without_console_errors(story: Story, base: str, browser: Any) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    watched = Watched(browser)
    watched.sign_in(base, story.tokens["admin"])
    for name, path in MAIN_PAGES:
        response = watched.page.goto(base + path.replace("TXN", story.txn))
        assert response is not None and response.status == 200, path
        assert watched.page.locator("main h1").count() == 1, path
        assert watched.page.locator(".error").count() == 0, (
            path,
            watched.page.locator(".error").all_inner_texts(),
        )
        watched.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    assert watched.problems == []
    charts = watched.page.goto(f"{base}/slots/agent") and watched.page.locator("svg.chart")
    assert charts.count() >= 4  # the stage pipeline, the split, and one chart per gated metric


def test_an_operator_advances_a_rollout_by_clicking_and_the_audit_page_shows_it(
    story: Story, base: str, browser: Any
) -> None:
    watched = Watched(browser)
    watched.sign_in(base, story.tokens["olga"])
    page = watched.page
    page.locator("a[href='/slots/agent']").first.click()
    page.click("button:has-text('Advance…')")
    assert page.locator("h1").inner_text() == "Advance on slot agent"
    page.click("button:has-text('Confirm advance')")  # the browser refuses: a reason is required
    assert page.locator("h1").inner_text() == "Advance on slot agent"
    page.fill("#reason", "shadow ran clean for an hour")
    page.click("button:has-text('Confirm advance')")
    assert page.locator(".flash").inner_text() == "advanced: shadow → canary"
    assert "canary" in page.locator("table.kv", has_text="rollback plan").inner_text()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "slot-after-advance.png"), full_page=True)
    page.click("nav a:has-text('Audit')")
    newest = page.locator("table.grid tbody tr").first
    assert "rollout.advance" in newest.inner_text() and "olga" in newest.inner_text()
    newest.locator("summary").click()
    assert "shadow ran clean for an hour" in newest.inner_text()
    assert watched.problems == []
    assert story.w.admin.audit.page(limit=1).events[0].payload["note"] == "shadow ran clean for an hour"


def test_a_viewer_sees_no_buttons_and_a_cross_site_post_is_refused(
    story: Story, base: str, browser: Any
) -> None:
    watched = Watched(browser)
    watched.sign_in(base, story.tokens["vic"])
    page = watched.page
    page.goto(f"{base}/slots/agent")
    assert page.locator("text=Stage gate now").count() == 1
    assert page.locator("main button").count() == 0 and page.locator("a:has-text('check off')").count() == 0
    assert watched.problems == []
    before = story.w.admin.audit.page(limit=1).events[0].sequence
    operator = Watched(browser)
    operator.sign_in(base, story.tokens["olga"])
    # another site's page posting to the server in the operator's browser: the SameSite=Strict
    # session cookie is not sent and the form has no CSRF token, so it is refused
    operator.page.set_content(
        f'<form method="post" action="{base}/slots/agent/actions/abort">'
        '<input name="reason" value="forged"><button>win a prize</button></form>'
    )
    with operator.page.expect_navigation():
        operator.page.click("button")
    assert "Refused" in operator.page.locator("h1").inner_text()
    assert story.w.admin.audit.page(limit=1).events[0].sequence == before
    assert story.w.admin.rollouts.status("agent").rollout["phase"] == "running"
