"""The wallet's 付款码 and 非税缴费 cards in a real browser. The citizen turns the pay code on in the wallet
(the sandbox, ¥10 without asking); a merchant's till scans their code for ¥35, and the payment waits
for them: it reaches the open wallet on its live channel with the merchant, the amount and the time
left, and is approved there (the till then sees it paid). A department issues a notice to the citizen's
phone: its inbox message links to /wallet#fees, where the notice is listed; in English the cards redraw
at once, and the notice is paid by its number on the sandbox. Nothing leaves the machine, and the page
runs under its strict CSP."""

import re
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.browser.test_web import _no_internet, _until, _wallet_sign_in

pytestmark = [pytest.mark.storage, pytest.mark.browser]
PHONE = "13912345671"


def test_a_citizen_approves_a_till_payment_and_pays_a_notice_by_number(web, browser, screenshots):
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, locale="zh-CN")
    page = ctx.new_page()
    outside = _no_internet(page)
    _wallet_sign_in(page, web, PHONE)

    # 付款码: off until turned on; the limit is shown and typed in yuan
    page.wait_for_selector("#paycode-method option[value=sandbox]", state="attached")
    assert page.text_content("[data-i18n=pcTitle]") == "付款码"
    assert not page.is_checked("#paycode-enabled")
    assert page.input_value("#paycode-limit") == "200.00"
    assert page.text_content("#paycode-confirmations") == "暂无待确认的付款"
    page.fill("#paycode-limit", "300")  # over the most one payment may take without asking
    page.click("#paycode-save")
    assert page.text_content("#paycode-error") == "请输入 0.01 至 200.00 元之间的金额"
    page.check("#paycode-enabled")
    page.select_option("#paycode-method", "sandbox")
    page.fill("#paycode-limit", "10")
    page.click("#paycode-save")
    _until(lambda: page.text_content("#paycode-note") == "已保存", what="the settings saved")
    me = web.citizen(PHONE)
    settings = httpx.get(f"{web.url}/api/v1/me/paycode", headers=me, timeout=10).json()
    assert (settings["enabled"], settings["method"], settings["limit"]) == (True, "sandbox", 1000)
    assert "沙箱支付（测试） · 已签约" in page.text_content("#paycode-method")

    # a till scans the citizen's code for ¥35: over the limit, the open wallet is asked at once
    merchant = web.cli("merchants", "add", "沈阳老边饺子馆", "--json")
    till = web.cli("tills", "add", merchant["client_id"], "--place", "counter 1", "--json")
    code = httpx.get(f"{web.url}/api/v1/codes/current", headers=me, timeout=10).json()["token"]
    reference = f"sale-{uuid.uuid4().hex[:8]}"
    scanned = httpx.post(
        f"{web.url}/api/v1/payments/paycode",
        json={"code": code, "amount": 3500, "reference": reference, "description": "饺子 两盘"},
        auth=(till["client_id"], till["client_secret"]),
        timeout=10,
    ).json()
    assert scanned["result"] == "confirm_required", scanned
    asked = scanned["confirmation_id"]
    waiting = page.wait_for_selector(f"#paycode-confirmations li[data-confirmation='{asked}']")
    text = waiting.text_content()
    assert "沈阳老边饺子馆" in text and "¥35.00" in text and "饺子 两盘" in text
    left = waiting.query_selector(".countdown-left").text_content()
    assert left.startswith("剩余 4:") or left == "剩余 5:00", left  # five minutes to decide
    if screenshots:
        page.locator("#paycode").screenshot(path=str(screenshots / "wallet-paycode.png"))
    waiting.query_selector("button.approve").click()
    _until(lambda: page.text_content("#paycode-note") == "已付款 ¥35.00", what="the payment approved")
    assert page.text_content("#paycode-confirmations") == "暂无待确认的付款"
    polled = httpx.get(
        f"{web.url}/api/v1/payments/paycode/{reference}",
        auth=(till["client_id"], till["client_secret"]),
        timeout=10,
    ).json()
    assert polled["result"] == "paid"

    # a department issues a notice to the citizen's phone; its message links to the fees card
    operator = web.cli("operators", "add", "messages desk", "--json")
    approved = httpx.post(
        f"{web.url}/api/v1/admin/message-templates/platform.fee_notice/decision",
        json={"decision": "approve", "note": "checked"},
        auth=(operator["client_id"], operator["client_secret"]),
        timeout=10,
    )
    assert approved.status_code == 200, approved.text
    department = web.cli("departments", "add", "沈阳市公安局交通警察支队", "--code", "210100101", "--json")
    due = (datetime.now(UTC) + timedelta(hours=8, days=10)).date().isoformat()
    issued = httpx.post(
        f"{web.url}/api/v1/fees/notices",
        json={
            "reference": f"JJ-{uuid.uuid4().hex[:8]}",
            "item_code": "103050101",
            "item_name": "交通违法罚没收入",
            "amount": 20000,
            "payer_name": "张三丰",
            "payer_phone": PHONE,
            "due_date": due,
            "description": "沈A12345 违停",
        },
        auth=(department["client_id"], department["client_secret"]),
        timeout=10,
    )
    assert issued.status_code == 201, issued.text
    no = issued.json()["notice_no"]
    listed = page.wait_for_selector(f"#fee-notices li[data-notice='{no}']", timeout=15000)
    text = listed.text_content()
    assert "交通违法罚没收入" in text and "沈阳市公安局交通警察支队" in text and "¥200.00" in text
    assert f"缴费期限 {due}" in text and "待缴费" in text
    page.wait_for_selector("#inbox a.msg-link[href='/wallet#fees']")

    # in English at once (then fetched again), and the notice paid by its number on the sandbox
    page.click("#lang")
    assert page.text_content("[data-i18n=pcTitle]") == "Pay code"
    assert page.text_content("[data-i18n=feeTitle]") == "Non-tax fees"
    labels = page.locator("#paycode [data-i18n], #fees [data-i18n]").all_text_contents()
    assert len(labels) > 10 and not [x for x in labels if re.search(r"[\u4e00-\u9fff]", x)], labels
    assert page.text_content("#paycode-confirmations") == "No payments to confirm"
    assert "Sandbox (test) · agreement signed" in page.text_content("#paycode-method")
    assert "To pay" in page.text_content(f"#fee-notices li[data-notice='{no}']")
    page.fill("#fee-no", "1234")
    page.click("#fee-lookup button[type=submit]")
    assert page.text_content("#fee-error") == "A notice number is 20 digits: check it and type it again"
    page.fill("#fee-no", f"{no[:4]} {no[4:8]} {no[8:19]} {no[19]}")  # as printed on the notice
    page.click("#fee-lookup button[type=submit]")
    page.wait_for_selector(f"#fee-found[data-notice='{no}'] #fee-channels button[data-channel=sandbox]")
    assert "¥200.00" in page.text_content("#fee-facts") and "张**" in page.text_content("#fee-facts")
    assert page.text_content("#fee-error") == ""
    if screenshots:
        page.locator("#fees").screenshot(path=str(screenshots / "wallet-fees.png"))
    page.click("#fee-channels button[data-channel=sandbox]")
    _until(lambda: page.text_content("#fee-note") == "Paid", what="the notice paid")
    page.wait_for_selector("#fee-found[data-state=paid]", timeout=15000)
    assert page.is_hidden("#fee-choose")
    page.wait_for_selector(f"#fee-notices li[data-notice='{no}'] [data-state=paid]", timeout=15000)
    paid = httpx.get(f"{web.url}/api/v1/fees/{no}", headers=me, timeout=10).json()
    assert (paid["state"], paid["amount_due"]) == ("paid", 20000)
    assert outside == []
    ctx.close()
