"""Browser fixtures: the app on a real port, Debian's chromium driven by Playwright, screenshots.

Playwright never downloads a browser here: it launches /usr/bin/chromium (Debian's package).
Screenshots go to $RELAIS_ARTIFACTS/screenshots (default: test-artifacts/ at the repository root).
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
TIMEOUT_MS = 10_000  # a page of this app answers in milliseconds; fail fast, not after 30 s
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2,
         "is_mobile": True, "has_touch": True}


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    path = Path(os.environ.get("RELAIS_ARTIFACTS") or ROOT / "test-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def screenshots_dir(artifacts_dir: Path) -> Path:
    path = artifacts_dir / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


def closed_before_sent(app: Any) -> Any:
    """`app` with each response read whole and closed before werkzeug's test server writes it: when
    the browser drops a connection (a favicon request cut by the next page), that server skips
    the response's close(), and the static file left open failed a later test with a
    ResourceWarning (gunicorn closes it)."""
    def wsgi(environ: Any, start_response: Any) -> Any:
        result = app(environ, start_response)
        try:
            return [b"".join(result)]
        finally:
            if hasattr(result, "close"):
                result.close()
    return wsgi


@pytest.fixture
def live_server(app: Flask) -> Iterator[str]:
    """`app` served on a free port of 127.0.0.1 by a real WSGI server; yields its base URL."""
    server = make_server("127.0.0.1", 0, closed_before_sent(app), threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="relais-live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def playwright_instance() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright_instance: Playwright) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: sudo apt-get install chromium")
    instance = playwright_instance.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    yield instance
    instance.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
        item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the item, so fixtures know whether the test failed."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


class Contexts:
    """Browser contexts opened for one test (a desk browser, a phone …), closed after it."""

    def __init__(self, browser: Browser, base_url: str) -> None:
        self.browser = browser
        self.base_url = base_url
        self.opened: list[BrowserContext] = []

    def new(self, **options: object) -> BrowserContext:
        context = self.browser.new_context(base_url=self.base_url, locale="fr-FR",
                                           timezone_id="Europe/Paris", **options)  # type: ignore[arg-type]
        context.set_default_timeout(TIMEOUT_MS)
        context.set_default_navigation_timeout(TIMEOUT_MS)
        self.opened.append(context)
        return context

    def phone(self) -> BrowserContext:
        """A fresh context sized and behaving like a small phone (touch, mobile viewport)."""
        return self.new(**PHONE)

    def close(self, failed_shot: Callable[[Page, str], None] | None) -> None:
        for n, context in enumerate(self.opened):
            if failed_shot is not None:
                for m, page in enumerate(context.pages):
                    failed_shot(page, f"context{n}-page{m}")
            context.close()


@pytest.fixture
def contexts(request: pytest.FixtureRequest, browser: Browser, live_server: str,
             screenshots_dir: Path) -> Iterator[Contexts]:
    opened = Contexts(browser, live_server)
    yield opened
    report = getattr(request.node, "rep_call", None)

    def failed_shot(page: Page, suffix: str) -> None:
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
        # A failed screenshot must not hide the real failure.
        with contextlib.suppress(Exception):
            page.screenshot(path=str(screenshots_dir / f"FAILED-{name}-{suffix}.png"),
                            full_page=True)

    opened.close(failed_shot if report is not None and report.failed else None)


@pytest.fixture
def context(contexts: Contexts) -> BrowserContext:
    """A fresh desktop-sized browser context for this test, on the live server."""
    return contexts.new(viewport={"width": 1280, "height": 900})


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


@pytest.fixture
def screenshot(screenshots_dir: Path) -> Callable[[Page, str], Path]:
    """`screenshot(page, "name")` saves a full-page PNG under the screenshots folder."""

    def take(page: Page, name: str) -> Path:
        path = screenshots_dir / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


# --- accessibility: axe-core (npm, tests/browser/package-lock.json) run inside the page ----------

AXE = Path(__file__).resolve().parent / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING_IMPACTS = ("serious", "critical")


class AxeViolations(AssertionError):
    """Serious or critical accessibility violations on a page."""


@pytest.fixture(scope="session")
def axe_source() -> str:
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run `npm ci --prefix tests/browser` (scripts/test does it)")
    return AXE.read_text(encoding="utf-8")


def axe_violations(page: Page, source: str) -> list[dict[str, object]]:
    """axe-core's violations on the page as it is now (WCAG 2.x A/AA and best practices).

    The pages' Content-Security-Policy forbids inline scripts, so `add_script_tag` (an inline
    <script>) is refused; evaluating the library through the DevTools protocol is not, and the
    page keeps the CSP its users get.
    """
    if page.evaluate("typeof window.axe") == "undefined":
        page.evaluate(source)
    result: list[dict[str, object]] = page.evaluate("""async () => {
        const r = await window.axe.run(document, {resultTypes: ['violations']});
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.map(n => n.target.join(' ') + ' → ' + n.failureSummary)}));
    }""")
    return result


@pytest.fixture
def check_accessibility(axe_source: str) -> Callable[[Page, str], list[dict[str, object]]]:
    """`check_accessibility(page, "where")`: fail on any serious or critical axe violation;
    return the minor and moderate ones (for the record)."""

    def check(page: Page, where: str) -> list[dict[str, object]]:
        violations = axe_violations(page, axe_source)
        blocking = [v for v in violations if v["impact"] in BLOCKING_IMPACTS]
        if blocking:
            lines = [f"{v['impact']} {v['id']}: {v['help']}\n    " + "\n    ".join(
                str(n) for n in v["nodes"][:5]) for v in blocking]  # type: ignore[index]
            raise AxeViolations(f"{where} ({page.url}):\n" + "\n".join(lines))
        return [v for v in violations if v["impact"] not in BLOCKING_IMPACTS]

    return check
