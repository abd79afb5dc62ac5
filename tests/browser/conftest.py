"""Real-browser fixtures: Debian's Chromium driven by Playwright against pytest-django's live_server,
over a small catalogue with real thumbnails, embedded by the tiny CLIP and indexed for real."""

import os
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in this thread; Django's ORM calls from the test body
# are still plain synchronous calls, so allow them.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make test-deps` (apt-get install chromium)")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def site_settings(settings):
    settings.MEEPO_SERVE_MEDIA = True
    return settings


@pytest.fixture
def page(browser, live_server, site_settings, request):
    # Playwright evaluates string predicates (wait_for_function) with eval, which the site's CSP
    # forbids; the CSP itself is asserted on the responses, not by breaking the test driver.
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, base_url=live_server.url, bypass_csp=True
    )
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    yield tab
    ARTIFACTS.mkdir(exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / f"{request.node.name}-final.png"), full_page=True)
    context.close()


def shot(tab, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
