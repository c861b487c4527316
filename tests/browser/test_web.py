"""The web faces in a real browser: the wallet's rotating code scanned from a screenshot, a read-only
operator failing to edit in the console, the dashboard counting scans live, the scanner simulator."""

import io
import re
from urllib.parse import urlsplit

import httpx
import pytest
import zxingcpp
from PIL import Image

pytestmark = [pytest.mark.storage, pytest.mark.browser]


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
        viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True
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

    # the scan shows up in the wallet's recent scans; English on request
    page.click("#lang")
    assert page.text_content("[data-i18n=mycode]") == "My citizen code"
    _until(lambda: page.locator("#scans .pill.ok").count() >= 1, 20, "the scan in recent scans")
    assert outside == []
    context.close()


def test_the_wallet_never_offers_a_code_it_could_not_refresh(web, browser):
    """The network drops: once the code's validity is over the QR is greyed out and marked expired (a
    gate would refuse it); when the network is back a fresh code comes without a reload."""
    context = browser.new_context(viewport={"width": 390, "height": 844})
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


def test_a_readonly_operator_cannot_edit_in_the_console(web, browser, console_sign_in, screenshots):
    scanner = web.scanner("parking", "P-ZHONGJIE", "parking-entry", "Zhongjie barrier")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    outside = _no_internet(page)
    console_sign_in(page, "watcher")
    page.goto(f"{web.url}/admin/#/machine_client")
    page.wait_for_selector(f"text={scanner['client_id']}")  # the list shows the new scanner
    if screenshots:
        page.screenshot(path=str(screenshots / "console.png"))
    page.goto(f"{web.url}/admin/#/machine_client/{scanner['id']}")
    page.wait_for_selector("input[name=name]")
    page.fill("input[name=name]", "renamed by a read-only operator")
    with page.expect_response(lambda r: r.request.method == "PATCH") as answer:
        page.click("[data-uitest=save_button]")
    assert answer.value.status == 403
    assert answer.value.json()["code"] == "read_only"
    if screenshots:
        page.wait_for_timeout(500)
        page.screenshot(path=str(screenshots / "console-readonly.png"))
    row = page.request.get(f"{web.url}/admin/api/tables/machine_client/{scanner['id']}/").json()
    assert row["name"] == "Zhongjie barrier"
    assert outside == []
    page.close()


def test_the_dashboard_counts_scans_as_they_happen(web, browser, console_sign_in, screenshots):
    scanner = web.scanner("transit", "B136", "bus")
    page = browser.new_page(viewport={"width": 1400, "height": 900})
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
        # the fare (a deferred order) is paid against the agreement: a payment in this hour
        paid = httpx.post(f"{web.url}/api/v1/apps/transit/fares/pay", headers=me).json()
        assert paid["orders"] == 1

    _until(lambda: int(page.text_content("#kpi-scans")) >= before + 6, 15, "the dashboard to count the scans")
    assert int(page.text_content("#kpi-denied")) >= 3
    assert "replayed" in page.text_content("#refusals")
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

    page = browser.new_page(viewport={"width": 1000, "height": 900})
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
    assert "replayed" in page.text_content("#gate-sub")
    page.close()
