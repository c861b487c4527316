"""一码借阅 in a real browser: a book lent at the desk with the citizen's scanned code shows in the wallet's
library card (/wallet#library) with its due date and the library's name, and the renew button renews it
(what the API then says, the card says)."""

import httpx
import pytest

from tests.browser.test_web import _no_internet, _until, _wallet_sign_in

pytestmark = [pytest.mark.storage, pytest.mark.browser]


def test_a_loan_shows_in_the_wallet_and_renews(web, browser, screenshots):
    phone = "13300000301"
    me = web.citizen(phone)
    desk = web.scanner("library", "LN-MAIN", "library-desk", "借还台")
    token = httpx.get(f"{web.url}/api/v1/codes/current", headers=me, timeout=10).json()["token"]
    r = httpx.post(
        f"{web.url}/api/v1/scans",
        json={"token": token, "meta": {"action": "checkout", "item": "LN0000004"}},
        auth=(desk["client_id"], desk["client_secret"]),
        timeout=10,
    )
    assert r.json()["result"] == "allow", r.text

    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
    page = context.new_page()
    outside = _no_internet(page)
    _wallet_sign_in(page, web, phone)
    page.wait_for_selector("#library-loans li button")
    row = page.text_content("#library-loans li")
    assert "百年孤独" in row and "辽宁省图书馆" in row and "到期" in row
    assert "信用良好" in page.text_content("#library-standing")
    page.click("#library-loans li button")
    _until(lambda: "已续借" in (page.text_content("#library-note") or ""), what="the renewal's note")
    loans = httpx.get(f"{web.url}/api/v1/apps/library/loans", headers=me, timeout=10).json()["items"]
    assert loans[0]["renewals"] == 1
    assert "已续借 1/2 次" in page.text_content("#library-loans li")
    if screenshots:
        page.screenshot(path=str(screenshots / "wallet-library.png"), full_page=True)
    assert outside == []
    context.close()
