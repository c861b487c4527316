"""The sandbox pay page in a real browser: a citizen opens pay_url in a fresh tab, signs in there, sees
the order in yuan and pays it with one button; signed in to the wallet, the same tab pays at once."""

from urllib.parse import urlsplit

import httpx
import pytest

pytestmark = [pytest.mark.storage, pytest.mark.browser]


def _no_internet(page) -> list[str]:
    """Requests leaving this machine are refused and recorded, and so are our CSP's refusals."""
    outside: list[str] = []

    def route(r) -> None:
        if urlsplit(r.request.url).hostname in ("127.0.0.1", "localhost"):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.on("console", lambda m: outside.append(m.text) if "Content Security Policy" in m.text else None)
    return outside


def _ticket(web, me) -> tuple[str, int]:
    """Two tickets for 沈阳故宫 bought through the API, and pay_url asked for: (pay_url, amount in fen)."""
    with httpx.Client(base_url=web.url, headers=me, timeout=10) as c:
        session = c.get("/api/v1/apps/tourism/sessions", params={"attraction": "A-MUKDEN"}).json()["items"][0]
        bought = c.post(
            "/api/v1/apps/tourism/tickets",
            json={"session_id": session["session_id"], "holders": ["蒋一", "蒋二"]},
        ).json()
        pay = c.post(f"/api/v1/payments/orders/{bought['order_id']}/pay", json={"channel": "sandbox"}).json()
    return pay["pay"]["pay_url"], bought["amount"]


def _order_state(web, me, pay_url) -> str:
    order_id = pay_url.rsplit("/", 1)[1]
    return str(
        httpx.get(f"{web.url}/api/v1/payments/orders/{order_id}", headers=me, timeout=10).json()["state"]
    )


def test_a_citizen_opens_pay_url_signs_in_and_pays(web, browser):
    phone = "13900024001"
    me = web.citizen(phone)
    pay_url, amount = _ticket(web, me)
    assert pay_url.startswith(f"{web.url}/sandbox/pay/")
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    outside = _no_internet(page)
    page.goto(pay_url)  # a fresh tab: not signed in here
    page.wait_for_selector("#login-view:not(.hidden)")
    assert "沙箱支付" in page.title() and "Sandbox payment" in page.title()
    page.fill("#phone", phone)
    page.click("#send-code")
    page.wait_for_selector("#dev-inbox:not(.hidden)")
    page.fill("#code", page.text_content("#dev-sms"))
    page.click("#login")
    page.wait_for_selector("#order-view:not(.hidden)")

    assert amount == 2 * 5000
    assert page.text_content("#amount") == "¥100.00"
    assert page.text_content("#description") == "沈阳故宫博物院 门票 x2"
    assert page.text_content("#payee") == "好游玩 Tourism"
    assert page.text_content("#state") == "待支付 Unpaid"
    assert page.is_visible("#pay") and "¥100.00" in page.text_content("#pay")
    page.click("#pay")
    page.wait_for_selector("#paid:not(.hidden)")
    assert page.text_content("#state") == "已支付 Paid" and not page.is_visible("#pay")
    assert _order_state(web, me, pay_url) == "paid"

    # opened again: already paid, nothing to pay
    page.reload()
    page.wait_for_selector("#order-view:not(.hidden)")
    assert page.text_content("#state") == "已支付 Paid" and not page.is_visible("#pay")
    assert outside == []
    context.close()


def test_signed_in_to_the_wallet_the_same_tab_pays_at_once(web, browser):
    phone = "13900024002"
    me = web.citizen(phone)
    pay_url, _ = _ticket(web, me)
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    outside = _no_internet(page)
    page.goto(f"{web.url}/wallet")
    page.fill("#phone", phone)
    page.click("#send-code")
    page.wait_for_selector("#dev-inbox:not(.hidden)")
    page.fill("#code", page.text_content("#dev-sms"))
    page.click("#login")
    page.wait_for_selector("#qr svg")
    page.goto(pay_url)  # the wallet's session, kept in this tab
    page.wait_for_selector("#order-view:not(.hidden)")
    assert page.is_hidden("#login-view")
    page.click("#pay")
    page.wait_for_selector("#paid:not(.hidden)")
    assert _order_state(web, me, pay_url) == "paid"

    # someone else's order: not shown, and nothing to pay
    other_url, _ = _ticket(web, web.citizen("13900024003"))
    page.goto(other_url)
    page.wait_for_selector("#error:has-text('未找到这笔订单')")
    assert page.is_hidden("#order-view") and page.is_hidden("#pay")
    assert outside == []
    context.close()
