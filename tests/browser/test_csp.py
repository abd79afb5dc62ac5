"""The site under its strict Content-Security-Policy in a real browser: typing (htmx swaps),
filters, more results, a product page, a photo search and the admin login raise no CSP
violation, neither in the console nor as a `securitypolicyviolation` event."""

import re

import pytest
from PIL import Image

from tests.browser.test_search_site import catalogue  # noqa: F401 - the shared fixture

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

WATCH = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
});
"""


@pytest.fixture
def watched(browser, live_server, site_settings):
    """A tab that enforces the CSP (the shared `page` fixture bypasses it for Playwright's
    string predicates, which use eval); this test waits with selectors only."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=live_server.url)
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    console = []
    tab.on("console", lambda m: console.append(m.text))
    tab.add_init_script(WATCH)
    yield tab, console
    context.close()


def _violations(page, console):
    events = page.evaluate("window.__csp || []")
    logged = [
        m for m in console if "Content Security Policy" in m or "Content-Security-Policy" in m
    ]
    return events + logged


def test_site_works_under_the_csp_without_violations(watched, catalogue, tmp_path):  # noqa: F811
    page, console = watched
    response = page.goto("/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.get_by_label("Search products").first.fill("vase")
    page.keyboard.press("Enter")
    page.wait_for_selector("#result-list article")
    found = []

    page.goto("/search?q=lamp")
    page.locator("#search-form input[name=q]").fill("mug")  # htmx: typed search swaps results
    page.wait_for_selector("#result-list article h3:has-text('mug')")
    found += page.locator("#result-list article h3").all_inner_texts()
    page.locator("#result-list article h3 a").first.click()
    page.wait_for_url(re.compile(r"/products/\d+"))

    photo = tmp_path / "green.png"
    Image.new("RGB", (300, 300), "green").save(photo)
    page.goto("/search/image")
    page.set_input_files("#id_image", str(photo))
    page.get_by_role("button", name="Find similar products").click()
    page.wait_for_selector("#result-list article")

    page.goto("/admin/login/")
    page.wait_for_selector("#id_username")

    assert found
    assert _violations(page, console) == []


def test_an_inline_script_in_our_page_would_be_refused_and_reported(watched, catalogue):  # noqa: F811
    """The policy and the watch work: the home page, with our real headers but an inline script
    slipped into its HTML, does not run it and reports the violation."""
    page, console = watched

    def inject(route):
        response = route.fetch()
        html = response.text().replace("</body>", "<script>window.__ran = 1</script></body>")
        route.fulfill(response=response, body=html)

    page.route(re.compile(r".*/$"), inject)
    page.goto("/")  # violations of the parser are reported before the load event

    assert page.evaluate("window.__ran") is None
    assert any("script-src" in v for v in _violations(page, console))
