"""扫码挪车 in a real browser: a citizen registers a car in the wallet (/wallet#carmove) and sees it
unproven with its sticker; a stranger's phone opens the sticker's page with no login, asks the owner to
move the car; the request reaches the open wallet, the owner answers there, and the stranger's page
shows the answer; once the operators suspend the sticker, the wallet shows it suspended (nothing to
press) and the page says why it takes no request. Nothing leaves the machine, and the pages run under
their strict CSP."""

import io

import httpx
import pytest
from PIL import Image

from tests.browser.test_web import _no_internet, _until, _wallet_sign_in

pytestmark = [pytest.mark.storage, pytest.mark.browser]
PHONE = "13912345670"


def test_a_stranger_asks_through_the_sticker_page_and_sees_the_owners_answer_from_the_wallet(web, browser):
    owner = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, locale="zh-CN")
    wallet = owner.new_page()
    outside = _no_internet(wallet)
    _wallet_sign_in(wallet, web, PHONE)
    wallet.fill("#carmove-plate", "辽a·24680")
    wallet.click("#carmove-add button[type=submit]")
    wallet.wait_for_selector("#carmove-cars li[data-car]")
    assert "辽A·24680" in wallet.text_content("#carmove-cars")
    assert "未核验" in wallet.text_content("#carmove-cars")

    me = web.citizen(PHONE)
    cars = httpx.get(f"{web.url}/api/v1/apps/carmove/cars", headers=me, timeout=10).json()["items"]
    url = cars[0]["sticker"]["url"]

    stranger = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, locale="zh-CN")
    page = stranger.new_page()
    outside += _no_internet(page)
    page.goto(url)
    page.wait_for_selector("#ask:not([hidden])")
    assert page.text_content("#plate").startswith("车牌：辽A·***80")
    page.select_option("#reason", "blocking_exit")
    page.fill("#note", "堵住了地库出口")
    # a phone camera's photo: 4000 × 3000 and nearly 4 MB, over the upload's 800 kB (the page shrinks it)
    scene = Image.blend(
        Image.effect_mandelbrot((4000, 3000), (-2, -1.2, 1, 1.2), 100).convert("RGB"),
        Image.effect_noise((4000, 3000), 40).convert("RGB"),
        0.15,
    )
    camera = io.BytesIO()
    scene.save(camera, format="JPEG", quality=92)
    assert camera.tell() > 800_000
    page.set_input_files(
        "#photo", files=[{"name": "IMG_0001.jpg", "mimeType": "image/jpeg", "buffer": camera.getvalue()}]
    )
    page.click("#send")
    page.wait_for_selector("#sent:not([hidden])")
    _until(lambda: "等待回复" in page.text_content("#answer"), what="the page to wait for the answer")

    # the request reaches the open wallet (its message event); the owner answers there
    wallet.wait_for_selector("#carmove-requests li[data-request] .answer-form", timeout=15000)
    assert "挡住了出口 — 堵住了地库出口" in wallet.text_content("#carmove-requests")

    def received() -> dict:
        [one] = httpx.get(f"{web.url}/api/v1/apps/carmove/requests", headers=me, timeout=10).json()["items"]
        return dict(one)

    _until(lambda: received()["photo"] is True, what="the photo, shrunk by the page, to come")
    kept = httpx.get(
        f"{web.url}/api/v1/apps/carmove/requests/{received()['request_id']}/photo", headers=me, timeout=10
    )
    with Image.open(io.BytesIO(kept.content)) as img:
        assert img.size == (1600, 1200)
    wallet.select_option("#carmove-requests .answer-form select", "coming_5")
    wallet.click("#carmove-requests .answer-form button")
    _until(lambda: "马上到" in page.text_content("#answer"), what="the owner's answer on the page")

    # the operators suspend the sticker after a report: the wallet shows it so, with nothing to press
    # but the advice to contact the service; the stranger's page says why it takes no request
    cred = web.cli("miniapps", "credentials", "carmove", "--json")
    auth = (cred["client_id"], cred["client_secret"])
    code = cars[0]["sticker"]["code"]
    report = httpx.post(
        f"{web.url}/api/v1/apps/carmove/stickers/{code}/reports", json={"kind": "harassment"}, timeout=10
    ).json()
    closed = httpx.post(
        f"{web.url}/api/v1/apps/carmove/reports/{report['report_id']}/close",
        json={"action": "pause", "by": "李运营"},
        auth=auth,
        timeout=10,
    )
    assert closed.status_code == 200, closed.text
    wallet.reload()
    wallet.wait_for_selector("#carmove-cars li[data-car] [data-state=suspended]")
    assert "联系客服" in wallet.text_content("#carmove-cars")
    assert wallet.locator("#carmove-cars li[data-car] button").count() == 0
    page.evaluate("sessionStorage.clear()")
    page.reload()
    _until(lambda: "运营人员停用" in page.text_content("#status"), what="the page to say it is suspended")
    assert outside == []
    owner.close()
    stranger.close()
