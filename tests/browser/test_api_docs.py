"""The API docs render in a real browser with no internet: every request stays on this machine and the
pages' CSP refuses nothing they need."""

from urllib.parse import urlsplit

import pytest

pytestmark = [pytest.mark.storage, pytest.mark.browser]


def _no_internet(page) -> list[str]:
    outside: list[str] = []

    def route(r) -> None:
        host = urlsplit(r.request.url).hostname
        if host in ("127.0.0.1", "localhost") or r.request.url.startswith(("data:", "blob:")):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.on("console", lambda m: outside.append(m.text) if "Content Security Policy" in m.text else None)
    page.on("pageerror", lambda e: outside.append(f"page error: {e}"))
    return outside


def test_swagger_ui_renders_from_this_server_alone(web, browser):
    page = browser.new_page()
    outside = _no_internet(page)
    page.goto(f"{web.url}/schema")
    # the operations are listed, and one opens with its error answers (problem+json) documented
    page.click('.opblock-summary-path[data-path="/api/v1/scans"]')
    page.wait_for_selector('.responses-table td.response-col_status >> text="503"', timeout=30000)
    assert page.locator('.responses-table option[value="application/problem+json"]').count() > 0
    assert outside == []
    page.close()
