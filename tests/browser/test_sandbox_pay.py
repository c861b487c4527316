"""The sandbox pay page in a real browser: a citizen opens pay_url in a fresh tab, signs in there, sees
the order in yuan and pays it with one button; signed in to the wallet, the same tab pays at once; the
page speaks the browser's language, one at a time, and its language button switches."""

import re
import uuid
from urllib.parse import urlsplit

import httpx
import pytest

pytestmark = [pytest.mark.storage, pytest.mark.browser]
CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")
LATIN = re.compile(r"[A-Za-z]")


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
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
    page = context.new_page()
    outside = _no_internet(page)
    page.goto(pay_url)  # a fresh tab: not signed in here
    page.wait_for_selector("#login-view:not(.hidden)")
    assert page.title() == "沙箱支付 · 盛事通"
    page.fill("#phone", phone)
    page.click("#send-code")
    page.wait_for_selector("#dev-inbox:not(.hidden)")
    page.fill("#code", page.text_content("#dev-sms"))
    page.click("#login")
    page.wait_for_selector("#order-view:not(.hidden)")

    assert amount == 2 * 5000
    assert page.text_content("#amount") == "¥100.00"
    assert page.text_content("#description") == "沈阳故宫博物院 门票 x2"
    assert page.text_content("#payee") == "好游玩"
    assert page.text_content("#state") == "待支付"
    assert page.is_visible("#pay") and page.text_content("#pay") == "确认支付 ¥100.00"
    page.click("#pay")
    page.wait_for_selector("#paid:not(.hidden)")
    assert page.text_content("#state") == "已支付" and not page.is_visible("#pay")
    assert _order_state(web, me, pay_url) == "paid"

    # opened again: already paid, nothing to pay
    page.reload()
    page.wait_for_selector("#order-view:not(.hidden)")
    assert page.text_content("#state") == "已支付" and not page.is_visible("#pay")
    assert outside == []
    context.close()


def test_signed_in_to_the_wallet_the_same_tab_pays_at_once(web, browser):
    phone = "13900024002"
    me = web.citizen(phone)
    pay_url, _ = _ticket(web, me)
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
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
    assert page.text_content("#error") == "未找到这笔订单，或它不属于当前登录的账号。"
    assert page.is_hidden("#order-view") and page.is_hidden("#pay")
    assert outside == []
    context.close()


def _merchants_order(web, me, merchant, amount: int, description: str) -> str:
    """A partner merchant's till order, claimed by the citizen paying it in the sandbox: its pay_url."""
    with httpx.Client(base_url=web.url, timeout=10) as c:
        r = c.post(
            "/api/v1/payments/orders",
            json={"reference": f"till-{uuid.uuid4().hex[:12]}", "amount": amount, "description": description},
            auth=(merchant["client_id"], merchant["client_secret"]),
        )
        assert r.status_code == 201, r.text
        pay = c.post(
            f"/api/v1/payments/orders/{r.json()['order_id']}/pay", json={"channel": "sandbox"}, headers=me
        )
        assert pay.status_code == 200, pay.text
    return str(pay.json()["pay"]["pay_url"])


def _shown(page) -> str:
    """What the page shows a person (hidden parts are not in innerText)."""
    return str(page.evaluate("document.body.innerText"))


def test_the_page_speaks_one_language_the_browsers_first_and_switches(web, browser):
    """An English browser gets the page in English only — but for the payee's and the description's own
    words — and the server's answers in English too; the language button turns it all Chinese, with no
    English left but the order's own words and number, and the choice is remembered."""
    phone = "13900024004"
    me = web.citizen(phone)
    pay_url, _ = _ticket(web, me)
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="en-US")
    page = context.new_page()
    outside = _no_internet(page)
    page.goto(pay_url)
    page.wait_for_selector("#login-view:not(.hidden)")
    assert page.title() == "Sandbox payment · Shengshitong"
    assert page.text_content("#lang") == "中文"  # the way to Chinese, named in its own language
    assert not CJK.search(_shown(page).replace("中文", "")), _shown(page)
    page.fill("#phone", "12")
    page.click("#send-code")
    assert page.text_content("#login-error") == "Enter a valid mobile number"
    page.fill("#phone", phone)
    page.click("#send-code")
    page.wait_for_selector("#dev-inbox:not(.hidden)")
    assert page.text_content("#login-error") == "Code sent"
    code = page.text_content("#dev-sms")
    page.fill("#code", "000000" if code != "000000" else "111111")
    page.click("#login")
    # the server's refusal, in the page's language (the page sends it as Accept-Language)
    page.wait_for_selector("#login-error:has-text('the code is wrong')")
    assert not CJK.search(_shown(page).replace("中文", "")), _shown(page)

    # Chinese with the button: the server's English words are not left on a Chinese screen
    page.click("#lang")
    assert page.text_content("#lang") == "EN" and page.title() == "沙箱支付 · 盛事通"
    assert page.text_content("#login-error") == ""
    assert not LATIN.search(_shown(page).replace("EN", "")), _shown(page)
    page.click("#lang")  # and back to English to sign in
    page.fill("#code", code)
    page.click("#login")
    page.wait_for_selector("#order-view:not(.hidden)")

    description = "沈阳故宫博物院 门票 x2"  # the mini-app's own words, shown as written
    assert page.text_content("#description") == description
    assert page.text_content("#payee") == "Tourism"  # a mini-app by its name in the page's language
    assert page.text_content("#state") == "Unpaid"
    assert page.text_content("#pay") == "Pay ¥100.00"
    assert not CJK.search(_shown(page).replace(description, "").replace("中文", "")), _shown(page)

    # Chinese: nothing English but the order's own words and its number
    page.click("#lang")
    assert page.text_content("#payee") == "好游玩" and page.text_content("#state") == "待支付"
    assert page.text_content("#pay") == "确认支付 ¥100.00"
    order_no = page.text_content("#order-id")
    chinese = _shown(page).replace(description, "").replace(order_no, "").replace("EN", "")
    assert not LATIN.search(chinese), chinese
    page.click("#pay")
    page.wait_for_selector("#paid:not(.hidden)")
    assert page.text_content("#paid") == "支付成功 ✓" and page.text_content("#state") == "已支付"

    # remembered on this device: a merchant's order opened next is in Chinese too, the payee by the name
    # it registered (its own words, whatever their language); back to English with the button
    name = "Liaoning Dumpling House 辽宁饺子馆"
    merchant = web.cli("merchants", "add", name, "--json")
    page.goto(_merchants_order(web, me, merchant, 4850, "饺子 两盘"))
    page.wait_for_selector("#order-view:not(.hidden)")
    assert page.text_content("#payee") == name
    assert page.text_content("#description") == "饺子 两盘" and page.text_content("#state") == "待支付"
    page.click("#lang")
    assert page.text_content("#payee") == name and page.text_content("#state") == "Unpaid"
    assert page.text_content("dt >> nth=0") == "Item"
    shown = _shown(page).replace(name, "").replace("饺子 两盘", "").replace("中文", "")
    assert not CJK.search(shown), shown
    assert outside == []
    context.close()
