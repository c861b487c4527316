"""扫码门禁 in a real browser: a resident added by the manager's backend sees their community and the
visitor pass they issued in the wallet (/wallet#doors), cancels the pass there, and reads the card in
English too. The server is seeded like ``make run`` (万科城 is demo data)."""

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.browser.test_web import _no_internet, _wallet_sign_in

pytestmark = [pytest.mark.storage, pytest.mark.browser]
APP = "/api/v1/apps/doors"


def test_a_resident_sees_their_home_and_cancels_a_visitor_pass_in_the_wallet(web, browser):
    cred = web.cli("miniapps", "credentials", "doors", "--json")
    manager = (cred["client_id"], cred["client_secret"])
    host, guest = "13300000401", "13300000402"
    me = web.citizen(host)
    web.citizen(guest)  # the visitor uses the app
    r = httpx.post(
        f"{web.url}{APP}/places/WANKE-CITY/residents",
        json={"phone": host, "building": "WANKE-CITY-1"},
        auth=manager,
        timeout=10,
    )
    assert r.status_code == 201, r.text
    now = datetime.now(UTC)
    r = httpx.post(
        f"{web.url}{APP}/passes",
        json={
            "place": "WANKE-CITY",
            "phone": guest,
            "doors": ["WK-GATE-N"],
            "starts_at": now.isoformat(),
            "ends_at": (now + timedelta(hours=2)).isoformat(),
            "entries": 2,
        },
        headers=me,
        timeout=10,
    )
    assert r.status_code == 201, r.text

    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
    page = context.new_page()
    outside = _no_internet(page)
    _wallet_sign_in(page, web, host)
    home = page.wait_for_selector("#door-homes li[data-residence]")
    assert "万科城 · 1号楼" in home.text_content() and "已生效" in home.text_content()
    issued = page.wait_for_selector("#door-passes-issued li[data-pass]")
    assert "133****0402" in issued.text_content() and "剩余 2/2 次" in issued.text_content()
    page.click("#door-passes-issued .pass-cancel")
    page.wait_for_selector("#door-passes-issued .pill[data-state=cancelled]")
    assert page.locator("#door-passes-issued .pass-cancel").count() == 0
    page.click("#lang")
    page.wait_for_selector("#door-homes li:has-text('Vanke City · Building 1')")
    assert "Cancelled" in page.text_content("#door-passes-issued")
    assert outside == []
    context.close()
