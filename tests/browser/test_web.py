"""The web faces in a real browser: the wallet's rotating code scanned from a screenshot, a read-only
operator failing to edit in the console, the dashboard counting scans live, the scanner simulator."""

import io
import re
import uuid
from urllib.parse import urlsplit

import httpx
import pytest
import zxingcpp
from PIL import Image

from licences import demo as demo_licences
from ratings import demo as demo_ratings

pytestmark = [pytest.mark.storage, pytest.mark.browser]
CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")


def _decode(png: bytes) -> str:
    """Read the QR in a screenshot with zxing-cpp (independent of our encoder, segno)."""
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert found, "no QR code in the screenshot"
    return str(found[0].text)


def _no_internet(page) -> list[str]:
    """Refuse every request that would leave this machine and keep what was tried: the pages must work
    with no internet (no CDN, no web fonts), and our pages must not try (their CSP reports it)."""
    outside: list[str] = []

    def route(r) -> None:
        host = urlsplit(r.request.url).hostname
        if host in ("127.0.0.1", "localhost") or r.request.url.startswith(("data:", "blob:")):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    # what our pages' CSP stopped before it became a request is a failure too
    page.on("console", lambda m: outside.append(m.text) if "Content Security Policy" in m.text else None)
    return outside


def _shown_code(page) -> tuple[str, str]:
    """(the page's code counter, the code decoded from a screenshot of the QR), taken while the page
    did not swap the code in between."""
    while True:
        before = page.get_attribute("#qr", "data-serial")
        text = _decode(page.locator("#qr").screenshot())
        if page.get_attribute("#qr", "data-serial") == before:
            return str(before), text


def _until(check, timeout: float = 15.0, what: str = "condition") -> None:
    """Poll from the test's side: the pages' CSP forbids eval, which page.wait_for_function needs."""
    import time

    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _wallet_sign_in(page, web, phone):
    page.goto(f"{web.url}/wallet")
    page.fill("#phone", phone)
    page.click("#send-code")
    page.wait_for_selector("#dev-inbox:not(.hidden)")  # the embedded default's SMS inbox
    page.fill("#code", page.text_content("#dev-sms"))
    page.click("#login")
    page.wait_for_selector("#qr svg")


def test_the_wallet_shows_a_code_that_rotates_and_scans_at_a_gate(web, browser, screenshots):
    scanner = web.scanner("transit", "B113", "bus")
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, locale="zh-CN"
    )
    page = context.new_page()
    outside = _no_internet(page)
    _wallet_sign_in(page, web, "13800138000")

    # Chinese first
    assert page.text_content("[data-i18n=mycode]") == "我的市民码"
    assert page.locator("#entitlements .pill").count() == 5
    left = int(page.text_content("#countdown"))  # read first: decoding takes a moment on a busy machine
    assert 0 <= left <= 6
    serial, first = _shown_code(page)
    assert first.startswith("SC1:")
    if screenshots:
        page.wait_for_timeout(1200)
        page.screenshot(path=str(screenshots / "wallet.png"), full_page=True)

    # a new code arrives before the old one expires, without a reload
    _until(lambda: page.get_attribute("#qr", "data-serial") != serial, 20, "a new code")
    _, second = _shown_code(page)
    assert second.startswith("SC1:") and second != first
    # the same page (no reload) counted the codes it showed
    assert int(page.get_attribute("#qr", "data-serial")) >= 2

    decision = web.scan(scanner, second)
    assert (decision["result"], decision["reason"]) == ("allow", "ok")
    assert web.scan(scanner, second)["reason"] == "replayed"

    # the scan shows up in the wallet's recent scans; English on request, and then English only
    assert CJK.search(page.text_content("#apps"))
    page.click("#lang")
    assert page.text_content("[data-i18n=mycode]") == "My citizen code"
    _until(lambda: page.locator("#scans .pill.ok").count() >= 1, 20, "the scan in recent scans")
    _until(lambda: "Bus and metro" in page.text_content("#apps"), 10, "the mini-apps described in English")
    _until(lambda: page.text_content("#my-ratings .pill.level") == "Dissatisfied", 10, "ratings in English")
    shown = page.text_content("#home-view")
    # the demo rater's and unit's own words (好差评), the demo vehicle licence's number (its plate)
    for own in (demo_ratings.COMMENT, demo_ratings.ANSWER, demo_licences.VEHICLE["plate_number"]):
        shown = shown.replace(own, "")
    assert not CJK.search(shown), shown
    assert outside == []
    context.close()


def test_the_wallet_never_offers_a_code_it_could_not_refresh(web, browser):
    """The network drops: once the code's validity is over the QR is greyed out and marked expired (a
    gate would refuse it); when the network is back a fresh code comes without a reload."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
    context.clock.install()  # the page's clock, moved forward below instead of waiting
    page = context.new_page()
    _wallet_sign_in(page, web, "13800138009")
    assert "expired" not in (page.get_attribute("#qr", "class") or "")
    page.route("**/api/v1/codes/current*", lambda route: route.abort())
    page.clock.fast_forward(45_000)  # past the 30 s validity the fixture sets
    _until(lambda: "expired" in (page.get_attribute("#qr", "class") or ""), 10, "the code marked expired")
    assert page.text_content("#countdown") == "已过期"
    _until(lambda: bool(page.text_content("#code-error")), 10, "the page to say the network is down")
    page.unroute("**/api/v1/codes/current*")
    page.clock.fast_forward(5_000)  # the next retry
    _until(lambda: "expired" not in (page.get_attribute("#qr", "class") or ""), 10, "a fresh code")
    assert page.get_attribute("#qr", "data-serial") != "1"
    context.close()


def _fare_orders(web, n: int) -> list[str]:
    """n bus fares by n citizens, one after the other: their order ids, oldest first."""
    bus = web.scanner("transit", "B113", "bus", "console bus")
    ids = []
    for i in range(n):
        me = web.citizen(f"1390000000{i}")
        token = httpx.get(f"{web.url}/api/v1/codes/current", headers=me).json()["token"]
        assert web.scan(bus, token)["result"] == "allow"

        # with Redis the gate answers first and writes the fare behind it (the journal, within a second)
        def orders(me: dict[str, str] = me) -> list[str]:
            return [
                o["order_id"] for o in httpx.get(f"{web.url}/api/v1/me/orders", headers=me).json()["items"]
            ]

        _until(lambda: bool(orders()), 10, "the fare's order")
        mine = orders()
        ids += mine
    assert len(ids) == n
    return ids


def _visible(page, selector: str) -> int:
    return sum(1 for i in range(page.locator(selector).count()) if page.locator(selector).nth(i).is_visible())


def _console_as(who, web, browser, console_sign_in, screenshots, older, newer, scanner):
    page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    outside = _no_internet(page)
    console_sign_in(page, who)
    page.goto(f"{web.url}/admin/#/payment_order/")
    page.wait_for_selector(f"text={newer}")
    _until(lambda: "支付订单" in page.text_content("body"), 10, "the tables' Chinese names")
    body = page.text_content("body")
    assert "payment order" not in body.lower()  # piccolo-admin's own name for the table is gone
    headers = [h.strip() for h in page.locator("table thead th").all_text_contents()]
    assert {"金额", "状态", "创建时间", "已退款"} <= set(headers), headers
    assert not any(h.lower() in ("amount", "created at", "state") for h in headers)
    # money in yuan: a ¥2 bus fare, nothing refunded
    amount, refunded = headers.index("金额") + 1, headers.index("已退款") + 1
    _until(
        lambda: (
            page.locator(f"tbody tr:has-text('{newer}') td:nth-child({amount})").text_content() == "¥2.00"
        ),
        10,
        "the fare in yuan",
    )
    assert page.locator(f"tbody tr:has-text('{older}') td:nth-child({refunded})").text_content() == "¥0.00"
    cells = page.locator(f"tbody td:nth-child({amount}), tbody td:nth-child({refunded})").all_text_contents()
    assert cells and all(re.fullmatch(r"¥\d+\.\d\d", c.strip()) for c in cells), cells
    # newest first
    row_text = page.locator("table tbody tr").all_text_contents()
    assert row_text.index(next(r for r in row_text if newer in r)) < row_text.index(
        next(r for r in row_text if older in r)
    )
    # nothing to add, select or delete: orders change through the payment centre only
    assert _visible(page, "text=添加行") == 0
    assert _visible(page, "tbody input[type=checkbox]") == 0
    if screenshots and who == "chief":
        page.screenshot(path=str(screenshots / "console.png"))
    # an order's page shows it, with the amount in yuan, and offers no save
    page.goto(f"{web.url}/admin/#/payment_order/{newer}/")
    page.wait_for_selector("input[name=amount]")
    _until(lambda: page.text_content(".sst-yuan") == "¥2.00", 10, "the amount in yuan")
    assert _visible(page, "[data-uitest=save_button]") == 0
    assert _visible(page, "[data-uitest=delete_row_button]") == 0

    # a credential: an admin may edit its label, place and revocation; a read-only operator may not
    page.goto(f"{web.url}/admin/#/machine_client/{scanner['id']}/")
    page.wait_for_selector("input[name=name]")
    _until(lambda: "客户端编号" in page.text_content("body"), 10, "the columns' Chinese names")
    if who == "chief":
        assert _visible(page, "[data-uitest=save_button]") == 1
    else:
        _until(
            lambda: _visible(page, "[data-uitest=save_button]") == 0,
            10,
            "no save for a read-only operator",
        )
        if screenshots:
            page.screenshot(path=str(screenshots / "console-readonly.png"))
        # the server refuses it all the same (a request made by hand)
        r = page.request.patch(
            f"{web.url}/admin/api/tables/machine_client/{scanner['id']}/",
            data={"name": "renamed by a read-only operator"},
            headers={
                "X-CSRFToken": next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
            },
        )
        assert r.status == 403 and r.json()["code"] == "read_only"
    assert outside == []
    page.close()


def test_the_console_shows_tables_in_chinese_money_in_yuan_newest_first_and_no_changes_where_none_are_allowed(
    web, browser, console_sign_in, screenshots
):
    older, newer = _fare_orders(web, 2)
    scanner = web.scanner("parking", "P-ZHONGJIE", "parking-entry", "Zhongjie barrier")
    for who in ("watcher", "chief"):
        _console_as(who, web, browser, console_sign_in, screenshots, older, newer, scanner)

    # English, picked in piccolo-admin's menu: the same screens in English only
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    context.add_init_script("localStorage.setItem('piccoloAdminDefaultLanguage', 'en')")
    page = context.new_page()
    console_sign_in(page, "chief")
    page.goto(f"{web.url}/admin/#/payment_order/")
    page.wait_for_selector(f"text={newer}")
    _until(lambda: "Payment orders" in page.text_content("body"), 10, "the tables' English names")
    headers = [h.strip() for h in page.locator("table thead th").all_text_contents()]
    assert {"Amount", "State", "Created", "Refunded"} <= set(headers), headers
    _until(lambda: not CJK.search(page.evaluate("document.body.innerText")), 10, "no Chinese left")
    context.close()


def test_the_dashboard_counts_scans_as_they_happen(web, browser, console_sign_in, screenshots):
    scanner = web.scanner("transit", "B136", "bus")
    page = browser.new_page(viewport={"width": 1400, "height": 900}, locale="zh-CN")
    outside = _no_internet(page)
    console_sign_in(page, "watcher")
    page.goto(f"{web.url}/admin/dashboard")
    page.wait_for_selector("#live.on", timeout=15_000)
    before = int(page.text_content("#kpi-scans"))

    for i in range(3):
        me = web.citizen(f"1370000000{i}")
        token = httpx.get(f"{web.url}/api/v1/codes/current", headers=me).json()["token"]
        assert web.scan(scanner, token)["result"] == "allow"
        web.scan(scanner, token)  # replayed: a refusal
        # the fare (a deferred order) is paid against the agreement: a payment in this hour. On PostgreSQL
        # + Redis the fare's order is written behind the gate's answer: paid once it is there
        _until(
            lambda me=me: (
                httpx.post(f"{web.url}/api/v1/apps/transit/fares/pay", headers=me).json()["orders"] == 1
            ),
            10,
            "the fare's order to pay",
        )

    _until(lambda: int(page.text_content("#kpi-scans")) >= before + 6, 15, "the dashboard to count the scans")
    assert int(page.text_content("#kpi-denied")) >= 3
    assert page.locator("#refusals [data-reason=replayed]").count() == 1
    assert "此码已使用" in page.text_content("#refusals")  # the reason by name, in the page's language
    assert re.fullmatch(r"更新于 ([01]\d|2[0-3]):[0-5]\d:[0-5]\d", page.text_content("#updated"))
    assert re.fullmatch(r"\d+(\.\d+)?", page.text_content("#kpi-p50").strip())
    assert "空余车位" in page.text_content("#gauges")  # parking's free spaces
    _until(lambda: "¥6.00" in page.text_content("#legend-payments"), 15, "three ¥2 fares paid this hour")
    if screenshots:
        page.screenshot(path=str(screenshots / "dashboard.png"), full_page=True)
    assert outside == []
    page.close()


def test_the_scanner_simulator_reads_an_uploaded_picture(web, browser, console_sign_in, tmp_path):
    sim = web.scanner("transit", "B113", "bus", "sim bus")
    me = web.citizen("13600000001")
    png = httpx.get(f"{web.url}/api/v1/codes/current.png", headers=me).content
    picture = tmp_path / "code.png"
    picture.write_bytes(png)

    page = browser.new_page(viewport={"width": 1000, "height": 900}, locale="zh-CN")
    console_sign_in(page, "chief")
    page.goto(f"{web.url}/admin/scanner")
    page.wait_for_selector("#scanner option", state="attached")
    page.select_option("#scanner", value=sim["client_id"])
    page.set_input_files("#image", str(picture))
    _until(lambda: page.input_value("#code").startswith("SC1:"), 10, "the decoded code")
    page.click("#scan")
    page.wait_for_selector("#gate[data-result]")
    assert page.get_attribute("#gate", "data-result") == "allow"
    assert "green" in page.get_attribute("#gate", "class")
    page.click("#scan")  # the same code again: the gate refuses it
    _until(lambda: page.get_attribute("#gate", "data-result") == "deny", 10, "the refusal")
    assert page.get_attribute("#gate", "data-reason") == "replayed"
    assert (page.text_content("#gate-title"), page.text_content("#gate-sub")) == (
        "此码已使用",
        "请刷新市民码",
    )
    # in English, the gate's screen is English too (the scan is made in the page's language)
    page.click("#lang")
    me = web.citizen("13600000002")
    page.fill("#code", httpx.get(f"{web.url}/api/v1/codes/current", headers=me).json()["token"])
    page.click("#scan")
    _until(lambda: page.get_attribute("#gate", "data-result") == "allow", 10, "the English screen")
    assert page.text_content("#gate-title") == "Welcome aboard"
    # everything but the scanners' names (operators' data) and the way back to Chinese is English
    shown = page.evaluate("document.body.innerText.replace(document.getElementById('scanner').innerText, '')")
    assert not CJK.search(shown.replace("中文", ""))
    page.close()


def test_the_dashboard_in_english_uses_24_hour_times_and_no_chinese(web, browser, console_sign_in):
    """An English browser (Accept-Language en-US) gets the dashboard in English only, with 24-hour
    times (en-US would write 7:24:03 AM)."""
    context = browser.new_context(
        viewport={"width": 1400, "height": 900}, locale="en-US", timezone_id="Asia/Shanghai"
    )
    page = context.new_page()
    console_sign_in(page, "watcher")
    page.goto(f"{web.url}/admin/dashboard")
    page.wait_for_selector("#live.on", timeout=15_000)
    updated = page.text_content("#updated")
    assert re.fullmatch(r"Updated ([01]\d|2[0-3]):[0-5]\d:[0-5]\d", updated), updated
    assert page.text_content("[data-i18n=kpiScans]") == "Scans, last 30 min"
    text = page.evaluate("document.body.innerText").replace(page.text_content("#lang"), "")
    assert not CJK.search(text), text
    assert page.text_content("#lang") == "中文"  # the way back, named in its own language
    # and back to Chinese, remembered
    page.click("#lang")
    assert page.text_content("[data-i18n=kpiScans]") == "近30分钟扫码"
    page.reload()
    page.wait_for_selector("#live.on", timeout=15_000)
    assert re.fullmatch(r"更新于 ([01]\d|2[0-3]):[0-5]\d:[0-5]\d", page.text_content("#updated"))
    context.close()


def _merchant_order(web, merchant, amount: int, description: str) -> tuple[str, str]:
    """A partner merchant's till makes an order without a citizen: (its pay link's https url, order id)."""
    r = httpx.post(
        f"{web.url}/api/v1/payments/orders",
        json={"reference": f"till-{uuid.uuid4().hex[:12]}", "amount": amount, "description": description},
        auth=(merchant["client_id"], merchant["client_secret"]),
        timeout=10,
    )
    assert r.status_code == 201, r.text
    order = r.json()
    assert order["pay_link"]["url"] == f"{web.url}/wallet?pay={order['order_id']}"
    return order["pay_link"]["url"], order["order_id"]


def _merchants_view(web, merchant, order_id: str) -> dict:
    r = httpx.get(
        f"{web.url}/api/v1/payments/orders/{order_id}",
        auth=(merchant["client_id"], merchant["client_secret"]),
        timeout=10,
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


def _sign_in_here(page, phone: str) -> None:
    """The wallet's own SMS sign-in on the page as it is (its address is kept)."""
    page.wait_for_selector("#login-view:not(.hidden)")
    page.fill("#phone", phone)
    page.click("#send-code")
    page.wait_for_selector("#dev-inbox:not(.hidden)")
    page.fill("#code", page.text_content("#dev-sms"))
    page.click("#login")


def test_a_merchants_pay_link_opens_in_the_wallet_and_is_paid_by_one_citizen(web, browser, screenshots):
    """The till's QR code opened on a phone without the app: the wallet asks the citizen to sign in, keeps
    the order through the SMS sign-in, shows it in yuan and pays it in the sandbox. A second citizen who
    opened the same link meanwhile is told it is taken; opened again, it is no longer payable."""
    merchant = web.cli("merchants", "add", "沈阳老边饺子馆", "--json")
    url, order_id = _merchant_order(web, merchant, 4850, "饺子 两盘")

    alice_ctx = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
    alice = alice_ctx.new_page()
    outside = _no_internet(alice)
    alice.goto(url)  # not signed in: the order waits while the citizen signs in
    alice.wait_for_selector("#pay-signin:not(.hidden)")
    assert alice.text_content("#pay-signin") == "登录后即可查看并支付这笔订单"
    _sign_in_here(alice, "13500000001")
    alice.wait_for_selector("#pay-order:not(.hidden)")
    assert alice.url == url  # still the pay link
    assert alice.text_content("#pay-amount") == "¥48.50"
    assert alice.text_content("#pay-payee") == "沈阳老边饺子馆"  # the name the merchant was registered under
    assert alice.text_content("#pay-description") == "饺子 两盘"
    assert alice.text_content("#pay-state") == "待支付"
    channels = alice.locator("#pay-channels button")
    assert [channels.nth(i).get_attribute("data-channel") for i in range(channels.count())] == [
        "sandbox",
        "wechatpay",
        "alipay",
    ]
    assert channels.all_text_contents() == ["沙箱支付（测试）", "微信支付", "支付宝"]

    # a second citizen, in an English browser, opens the same link before Alice pays: it is still open
    bob_ctx = browser.new_context(viewport={"width": 390, "height": 844}, locale="en-US")
    bob = bob_ctx.new_page()
    outside += _no_internet(bob)
    bob.goto(url)
    _sign_in_here(bob, "13500000002")
    bob.wait_for_selector("#pay-order:not(.hidden)")
    assert (bob.text_content("#pay-amount"), bob.text_content("#pay-state")) == ("¥48.50", "Unpaid")
    assert bob.text_content("#pay-payee") == "沈阳老边饺子馆"  # a name is not translated

    if screenshots:
        alice.locator("#pay-card").screenshot(path=str(screenshots / "wallet-pay.png"))
    alice.click("#pay-channels button[data-channel=sandbox]")
    alice.wait_for_selector("#pay-state[data-state=paid]")
    assert alice.text_content("#pay-state") == "已支付"
    assert alice.text_content("#pay-message") == "支付成功"
    assert alice.is_hidden("#pay-choose") and alice.text_content("#pay-error") == ""
    alice.wait_for_selector("#qr svg")  # the rest of the wallet is there as before
    seen = _merchants_view(web, merchant, order_id)
    assert (seen["state"], seen["channel"], seen["amount"]) == ("paid", "sandbox", 4850)

    # Bob's page still offers it; paying is refused: the order is Alice's
    bob.click("#pay-channels button[data-channel=sandbox]")
    bob.wait_for_selector("#pay-error:has-text('Another citizen')")
    taken = "Another citizen has taken this order to pay it; you cannot pay it."
    assert bob.text_content("#pay-error") == taken
    assert bob.is_hidden("#pay-order")
    # opened again: no longer payable, said in English only
    bob.reload()
    bob.wait_for_selector("#pay-error:has-text('no longer')")
    assert bob.text_content("#pay-error") == (
        "This order can no longer be paid: another citizen has paid it or it has closed, "
        "or the link is wrong."
    )
    assert bob.is_hidden("#pay-order")
    bob.wait_for_selector("#qr svg")  # the wallet as before: its code comes by its own request
    assert not CJK.search(bob.evaluate("document.getElementById('pay-card').innerText"))
    assert _merchants_view(web, merchant, order_id)["state"] == "paid"
    bob_ctx.close()

    # WeChat Pay and Alipay cannot be finished in a browser: the page says so, in its language
    url, order_id = _merchant_order(web, merchant, 1200, "锅包肉")
    alice.goto(url)  # signed in already in this tab
    alice.wait_for_selector("#pay-order:not(.hidden)")
    alice.click("#pay-channels button[data-channel=wechatpay]")
    alice.wait_for_selector("#pay-error:has-text('微信支付')")
    # the server's 503 channel_unavailable, in the page's language
    assert alice.text_content("#pay-error").startswith("微信支付：此支付渠道暂不可用")
    assert alice.is_visible("#pay-choose")  # another channel may still be chosen
    alice.click("#pay-channels button[data-channel=alipay]")
    alice.wait_for_selector("#pay-message:has-text('支付宝 App')")
    assert alice.text_content("#pay-error") == ""
    assert alice.get_attribute("#pay-app", "href") == f"shengshitong://pay?order={order_id}"
    _until(lambda: alice.text_content("#pay-state") == "支付中", 10, "the order to show the payment started")
    seen = _merchants_view(web, merchant, order_id)
    assert (seen["state"], seen["channel"]) == ("paying", "alipay")
    # English: the same card in English only
    alice.click("#lang")
    assert alice.text_content("#pay-state") == "Payment started"
    assert "Alipay app" in alice.text_content("#pay-message")
    card = alice.evaluate("document.getElementById('pay-card').innerText")
    # but the merchant's own words: its name and the item
    assert not CJK.search(card.replace("锅包肉", "").replace("沈阳老边饺子馆", ""))
    # closed: the wallet as before, without the pay link
    alice.click("#pay-close")
    assert alice.is_hidden("#pay-card") and alice.url == f"{web.url}/wallet"
    assert outside == []
    alice_ctx.close()
