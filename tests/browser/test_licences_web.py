"""电子证照 in a real browser: a citizen signed in to the wallet before their real name is verified is told
so; verified, a driving licence issued through the issuer's API reaches the open wallet; they view it,
tick name and licence class and show it: the QR on the screen, read from a screenshot (zxing-cpp), is a
presentation the inspector's standalone verifier (licences/verifier.py) accepts offline with only those
two fields, against the trust list and root key the platform publishes and the status list the
credential names; the wallet's device key and credential stay on the device (shown again after a reload:
no new credential). A mini-app's requests for fields arrive while the wallet is open: one approved (the
mini-app then receives exactly those fields), one refused (it receives nothing), a standing one approved
then withdrawn; the use log shows what was shown and what was shared, in English too. An admin registers
an issuer on the console's 电子证照 page (its secret shown once, and it works), rotates its key and revokes
it; a read-only operator sees the register without its forms."""

from __future__ import annotations

import base64
import json
import re
import time

import httpx
import pytest

from licences import verifier
from tests.browser.test_web import CJK, _decode, _no_internet, _until, _wallet_sign_in

pytestmark = [pytest.mark.storage, pytest.mark.browser]
INSPECT = "urn:shengshitong:inspect"
DRIVING = {
    "name": "刘洋",
    "sex": "女",
    "nationality": "中国",
    "birth_date": "1992-08-15",
    "address": "辽宁省沈阳市和平区三好街7号",
    "licence_class": "C1",
    "first_issued": "2013-09-01",
    "valid_from": "2023-09-01",
    "valid_until": "2033-09-01",
    "issuing_authority": "沈阳市公安局交通警察支队和平大队",
}
INSPECTOR = "交警 和平 0007"
ISSUER = {
    "code": "hp-traffic",
    "name_zh": "和平交警大队",
    "name_en": "Heping Traffic Police",
    "department": "traffic_police",
    "types": ["driving_licence"],
}


def _basic(cred: dict) -> tuple[str, str]:
    return cred["client_id"], cred["client_secret"]


@pytest.fixture(scope="module")
def issuer(web) -> tuple[str, str]:
    """A traffic police brigade registered through the operators' API: its credential."""
    operator = _basic(web.cli("operators", "add", "证照办", "--json"))
    r = httpx.post(f"{web.url}/api/v1/admin/licences/issuers", json=ISSUER, auth=operator, timeout=10)
    assert r.status_code == 201, r.text
    return _basic(r.json())


def _issue(web, issuer, id_number: str, **fields) -> dict:
    body = {
        "type": "driving_licence",
        "id_number": id_number,
        "fields": {**DRIVING, "licence_number": id_number, **fields},
    }
    r = httpx.post(f"{web.url}/api/v1/licences/issued", json=body, auth=issuer, timeout=10)
    assert r.status_code == 201, r.text
    return dict(r.json())


def _verify_real_name(web, me: dict[str, str], name: str, id_number: str) -> None:
    r = httpx.patch(
        f"{web.url}/api/v1/me", json={"real_name": name, "id_number": id_number}, headers=me, timeout=10
    )
    assert r.status_code == 200 and r.json()["real_name_verified"] is True, r.text


def _claims(text: str) -> dict:
    return dict(json.loads(verifier._unb64u(text.split("~")[0].split(".")[1])))


def _inspect(web, text: str, guard: verifier.ReplayGuard) -> verifier.Verified:
    """What an inspector's device does with the QR it read: the trust list (checked with the pinned root
    key) and the status list the credential names, fetched while online; then the check, offline."""
    (root,) = httpx.get(f"{web.url}/api/v1/licences/trust-root", timeout=10).json()["keys"]
    signed = httpx.get(f"{web.url}/api/v1/licences/trust-list", timeout=10).json()
    trust = verifier.IssuerTrustList.from_document(
        verifier.verify_trust_list(signed, verifier.public_key_from_jwk(root))
    )
    uri = _claims(text)["status"]["status_list"]["uri"]
    r = httpx.get(uri, timeout=10)  # the URI inside the credential
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/statuslist+jwt")
    now = int(time.time())
    statuses = {uri: verifier.StatusList.from_token(r.text, trust)}
    return verifier.verify_presentation(text, trust, statuses, now=now, audience=INSPECT, replay=guard)


def _shown_qr(page) -> str:
    """The QR on the screen, read from a screenshot of it (zxing-cpp: not the encoder that drew it)."""
    while True:
        before = page.get_attribute("#show-box", "data-serial")
        text = _decode(page.locator("#show-qr").screenshot())
        if page.get_attribute("#show-box", "data-serial") == before:
            return text


def _civic(web, me: dict[str, str]) -> tuple[tuple[str, str], str]:
    """The civic services mini-app's backend credential, and its (pairwise) openid of the citizen, who
    authorised it."""
    app = _basic(web.cli("miniapps", "credentials", "civic", "--json"))
    r = httpx.post(f"{web.url}/api/v1/miniapps/civic/authorize", json={}, headers=me, timeout=10)
    assert r.status_code == 200, r.text
    r = httpx.post(f"{web.url}/api/v1/miniapps/civic/token", json={"code": r.json()["code"]}, auth=app)
    assert r.status_code == 200, r.text
    return app, str(r.json()["openid"])


def _ask(web, app, openid: str, fields: list[str], purpose: str, mode: str = "once") -> str:
    body = {"type": "driving_licence", "fields": fields, "purpose": purpose, "mode": mode, "openid": openid}
    r = httpx.post(f"{web.url}/api/v1/licences/requests", json=body, auth=app, timeout=10)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def test_a_citizen_shows_a_licence_and_answers_requests_in_the_wallet(
    web, browser, issuer, new_id_number, screenshots
):
    phone, id_number = "13300000301", new_id_number()
    me = web.citizen(phone)
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, locale="zh-CN"
    )
    page = context.new_page()
    outside = _no_internet(page)
    _wallet_sign_in(page, web, phone)

    # not verified yet: nothing can reach the account, and the wallet says why
    page.wait_for_selector("#licences-unverified:not(.hidden)")
    assert (
        page.text_content("#licences-unverified") == "完成实名认证后，部门为你签发的电子证照才会出现在这里。"
    )
    assert page.text_content("#licence-list") == "暂无电子证照"

    # verified, and the brigade issues a driving licence: it reaches the open wallet (the message's event)
    _verify_real_name(web, me, "刘洋", id_number)
    issued = _issue(web, issuer, id_number)
    item = page.locator(f"#licence-list li[data-licence='{issued['id']}']")
    item.wait_for(timeout=15000)
    assert page.is_hidden("#licences-unverified")
    assert "机动车驾驶证" in item.text_content() and "和平交警大队" in item.text_content()
    assert item.locator(".pill").get_attribute("data-status") == "valid"
    assert id_number not in item.text_content()  # the number masked in the list
    assert id_number[:4] + "*" * 10 + id_number[-4:] in item.text_content()
    note = page.locator("#inbox li.msg", has_text="您的机动车驾驶证已签发")
    note.wait_for(timeout=15000)
    assert note.locator("a.msg-link").get_attribute("href") == "/wallet#licences"

    # one licence: every field with its label, the issuer, no device holding it yet
    item.locator(".licence-open").click()
    page.wait_for_selector("#licence-detail:not(.hidden)")
    fields = page.locator("#licence-fields li")
    shown = {
        fields.nth(i).get_attribute("data-field"): (
            fields.nth(i).locator(".field-label").text_content(),
            fields.nth(i).locator(".field-value").text_content(),
        )
        for i in range(fields.count())
    }
    assert len(shown) == 11
    assert shown["name"] == ("姓名", "刘洋") and shown["licence_class"] == ("准驾车型", "C1")
    assert shown["licence_number"] == ("证号", id_number)  # the holder sees it in full
    assert "和平交警大队" in page.text_content("#detail-facts")
    assert page.text_content("#detail-status") == "有效"
    assert page.text_content("#licence-devices") == "尚无设备领取"

    # 亮证: name and licence class only
    assert page.is_disabled("#show-licence")
    page.check("#licence-fields input[data-field=name]")
    page.check("#licence-fields input[data-field=licence_class]")
    page.click("#show-licence")
    page.wait_for_selector("#show-box[data-mode=inline]:not(.hidden)", timeout=20000)
    assert 250 <= int(page.text_content("#show-countdown")) <= 300
    assert page.text_content("#show-fields") == "出示的字段：姓名、准驾车型"
    if screenshots:
        _until(lambda: page.is_hidden("#toast"), 15, "the message's banner gone")
        page.locator("#licence-detail").screenshot(path=str(screenshots / "wallet-licence.png"))
    presentation = _shown_qr(page)
    guard = verifier.ReplayGuard()
    checked = _inspect(web, presentation, guard)
    assert checked.fields == {"name": "刘洋", "licence_class": "C1"}
    assert (checked.issuer, checked.issuer_name_zh, checked.status) == ("hp-traffic", "和平交警大队", "valid")
    assert checked.vct == "urn:shengshitong:licence:driving_licence:1"
    # the issuer's JWT, the two disclosures chosen, the key-binding JWT: nothing else, in the clear or not
    issuer_jwt, *disclosures, _ = presentation.split("~")
    assert len(disclosures) == 2
    for hidden in (id_number, DRIVING["address"], DRIVING["birth_date"]):
        assert hidden not in presentation
        assert hidden not in base64.urlsafe_b64decode(issuer_jwt.split(".")[1] + "==").decode()
    # bound to this browser's device key: the credential's key signed the key-binding JWT (the
    # verifier checked it); a screenshot shown twice is refused
    with pytest.raises(verifier.PresentationError) as replayed:
        _inspect(web, presentation, guard)
    assert replayed.value.code == "replayed"
    # this device now holds the licence, and the use is logged
    _until(lambda: page.locator("#licence-devices li[data-device]").count() == 1, 10, "the device")
    assert page.locator("#licence-devices .this-device").count() == 1
    _until(lambda: page.locator("#licence-uses li[data-kind=shown]").count() == 1, 10, "the use")
    use = page.locator("#licence-uses li[data-kind=shown]")
    assert "你亮证" in use.text_content() and "姓名、准驾车型" in use.text_content()

    # handed over online instead: the QR is a one-time reference the inspector's device fetches
    page.click("#show-handover")
    page.wait_for_selector("#show-box[data-mode=reference]", timeout=20000)
    reference = _shown_qr(page)
    assert re.fullmatch(rf"SSTL1:{re.escape(web.url)}/api/v1/licences/handover/[\w-]+", reference)
    assert "120 秒内有效" in page.text_content("#show-mode")
    fetch = reference.removeprefix("SSTL1:")
    assert httpx.get(fetch, timeout=10).status_code == 401  # an inspector's device only
    inspector = _basic(web.cli("licences", "credential", "inspector", "--name", INSPECTOR, "--json"))
    r = httpx.get(fetch, auth=inspector, timeout=10)
    assert r.status_code == 200, r.text
    assert _inspect(web, r.json()["presentation"], guard).fields == {"name": "刘洋", "licence_class": "C1"}
    assert httpx.get(fetch, auth=inspector, timeout=10).status_code == 404  # once
    # the credential was fetched once: the same device, one credential
    one = httpx.get(f"{web.url}/api/v1/me/licences/{issued['id']}", headers=me, timeout=10).json()
    assert len(one["devices"]) == 1

    # requests for fields from a mini-app arrive while the wallet is open
    app, openid = _civic(web, me)
    once = _ask(web, app, openid, ["name", "licence_class"], "网约车驾驶员资格核验")
    refused = _ask(web, app, openid, ["name", "address"], "停车月卡实名登记", "standing")
    standing = _ask(web, app, openid, ["licence_class"], "共享汽车准驾车型核验", "standing")
    rows = page.locator("#licence-requests li[data-request]")
    _until(lambda: rows.count() == 3, 15, "the requests in the wallet")
    ask = page.locator(f"#licence-requests li[data-request='{once}']")
    assert ask.locator(".requester").text_content() == "市民服务"  # the mini-app by its catalogue name
    assert ask.locator(".asks").text_content() == "申请字段：姓名、准驾车型"
    assert ask.locator(".purpose").text_content() == "用途：网约车驾驶员资格核验"
    assert ask.locator(".mode").text_content().startswith("一次性使用 · ")
    assert ask.locator(".request-state").text_content() == "待授权"
    assert (
        page.locator(f"#licence-requests li[data-request='{standing}'] .mode")
        .text_content()
        .startswith("长期授权，至 ")
    )
    r = httpx.post(f"{web.url}/api/v1/licences/requests/{once}/presentation", auth=app, timeout=10)
    assert r.status_code == 409 and r.json()["code"] == "consent_pending"

    # newest first; once one is answered, those still waiting lead the list

    def order() -> list[str | None]:
        return [rows.nth(i).get_attribute("data-request") for i in range(rows.count())]

    assert order() == [standing, refused, once]
    held = page.locator(f"#licence-requests li[data-request='{standing}']")
    held.locator("button.approve").click()
    _until(lambda: held.get_attribute("data-state") == "approved", 10, "standing approved")
    assert order() == [refused, once, standing]
    assert held.locator(".request-state").text_content() == "已授权"
    assert held.locator("button.revoke").count() == 1 and held.locator("button.approve").count() == 0
    ask.locator("button.approve").click()
    _until(lambda: ask.get_attribute("data-state") == "approved", 10, "approved")
    page.locator(f"#licence-requests li[data-request='{refused}'] button.refuse").click()
    _until(
        lambda: (
            page.get_attribute(f"#licence-requests li[data-request='{refused}']", "data-state") == "refused"
        ),
        10,
        "refused",
    )
    assert page.locator("#licence-requests li[data-state=refused] button").count() == 0

    # the mini-app receives exactly the approved fields; the refused request gives it nothing
    r = httpx.post(f"{web.url}/api/v1/licences/requests/{once}/presentation", auth=app, timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["fields"] == {"name": "刘洋", "licence_class": "C1"}
    r = httpx.post(f"{web.url}/api/v1/licences/requests/{refused}/presentation", auth=app, timeout=10)
    assert r.status_code == 409 and r.json()["code"] == "consent_refused"
    r = httpx.post(f"{web.url}/api/v1/licences/requests/{standing}/presentation", auth=app, timeout=10)
    assert r.status_code == 200 and r.json()["fields"] == {"licence_class": "C1"}
    # the standing consent withdrawn: nothing more from it
    held.locator("button.revoke").click()
    _until(lambda: held.get_attribute("data-state") == "revoked", 10, "withdrawn")
    assert held.locator(".request-state").text_content() == "已撤回"
    r = httpx.post(f"{web.url}/api/v1/licences/requests/{standing}/presentation", auth=app, timeout=10)
    assert r.status_code == 409 and r.json()["code"] == "consent_revoked"

    # after a reload (the session and the device's key and credential stay): the use log has the shares
    page.reload()
    page.wait_for_selector("#qr svg")
    shared = page.locator("#licence-uses li[data-kind=shared]")
    _until(lambda: shared.count() == 2, 15, "the shares in the use log")
    texts = [shared.nth(i).text_content() for i in range(2)]
    assert all(t.startswith("市民服务 · 机动车驾驶证") for t in texts), texts
    assert "字段：准驾车型" in texts[0] and "共享汽车准驾车型核验" in texts[0]  # newest first
    assert "字段：姓名、准驾车型" in texts[1] and "网约车驾驶员资格核验" in texts[1]
    assert "停车月卡实名登记" not in page.text_content("#licence-uses")  # refused: nothing shared
    assert page.locator("#licence-uses li[data-kind=shown]").count() == 2  # inline, then handed over
    fetched = page.locator("#licence-uses li[data-kind=handover]").text_content()
    assert f"{INSPECTOR} 读取（在线交接）" in fetched and "字段：姓名、准驾车型" in fetched
    page.locator(f"#licence-list li[data-licence='{issued['id']}'] .licence-open").click()
    page.wait_for_selector("#licence-detail:not(.hidden)")
    page.check("#licence-fields input[data-field=licence_class]")
    page.click("#show-licence")
    page.wait_for_selector("#show-box[data-mode=inline]:not(.hidden)", timeout=20000)
    again = _shown_qr(page)
    assert _inspect(web, again, guard).fields == {"licence_class": "C1"}
    one = httpx.get(f"{web.url}/api/v1/me/licences/{issued['id']}", headers=me, timeout=10).json()
    assert len(one["devices"]) == 1  # the credential kept on the device served again

    # in English: the wallet's words and the licence's labels (the citizen's and requesters' own stay)
    page.click("#lang")
    _until(lambda: page.text_content("#licences h2") == "E-licences", 5, "the licences in English")
    assert page.text_content("#detail-status") == "valid"
    assert page.locator("#licence-fields li[data-field=licence_class] .field-label").text_content() == (
        "Licence class"
    )
    assert page.text_content("#show-fields") == "Shown: Licence class"
    assert held.locator(".request-state").text_content() == "Withdrawn"
    assert held.locator(".requester").text_content() == "Civic services"
    assert "You showed it" in page.text_content("#licence-uses")
    words = page.text_content("#licences")
    for own in [
        *DRIVING.values(),
        INSPECTOR,
        "网约车驾驶员资格核验",
        "停车月卡实名登记",
        "共享汽车准驾车型核验",
    ]:
        words = words.replace(own, "")
    assert not CJK.search(words), words
    assert outside == []
    context.close()


def test_an_admin_registers_rotates_and_revokes_an_issuer_on_the_console(
    web, browser, console_sign_in, new_id_number, screenshots
):
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, locale="zh-CN")
    page = context.new_page()
    outside = _no_internet(page)
    console_sign_in(page, "chief")
    # the console's menu links the page
    page.wait_for_selector("a[href='/admin/licences']", timeout=15000)
    page.goto(f"{web.url}/admin/licences")
    page.wait_for_selector("body[data-ready=yes]")
    demo = page.locator("#issuers tbody tr[data-code='sy-traffic']")  # the demo's (seed-demo)
    assert demo.get_attribute("data-status") == "active"
    assert demo.locator("ul.keys li[data-state=signing]").count() == 1
    assert "机动车驾驶证、机动车行驶证" in demo.text_content()

    page.fill("#issuer-code", "hn-traffic")
    page.fill("#issuer-name-zh", "浑南交警大队")
    page.fill("#issuer-name-en", "Hunnan Traffic Police")
    page.select_option("#issuer-department", "traffic_police")
    page.click("#register")
    _until(lambda: page.text_content("#register-error") == "请至少选择一种证照类型", 5, "a type asked for")
    page.check("#issuer-types input[data-type=driving_licence]")
    page.click("#register")
    page.wait_for_selector("#secret-box:not(.hidden)")
    client_id = page.text_content("#new-client-id")
    secret = page.text_content("#new-client-secret")
    assert client_id and len(secret) >= 20
    row = page.locator("#issuers tbody tr[data-code='hn-traffic']")
    row.wait_for()
    assert row.get_attribute("data-status") == "active" and client_id in row.text_content()
    assert row.locator("ul.keys li[data-state=signing]").count() == 1
    assert page.text_content("#issuers-note") == "已登记 hn-traffic"
    # the secret shown is the issuer's credential: it issues a licence to a citizen's ID number
    number = new_id_number()
    r = httpx.post(
        f"{web.url}/api/v1/licences/issued",
        json={
            "type": "driving_licence",
            "id_number": number,
            "fields": {**DRIVING, "licence_number": number},
        },
        auth=(client_id, secret),
        timeout=10,
    )
    assert r.status_code == 201, r.text
    # shown once: never again, not even to the page
    page.click("#secret-done")
    assert page.is_hidden("#secret-box") and page.text_content("#new-client-secret") == ""
    listed = page.request.get(f"{web.url}/admin/licences/issuers").json()
    assert {i["code"]: i["client_secret"] for i in listed}["hn-traffic"] is None
    assert secret not in json.dumps(listed)

    # a new key: published now, signing once every inspector's trust list can hold it
    row.locator("button.rotate").click()
    _until(lambda: row.locator("ul.keys li").count() == 2, 10, "the new key")
    assert row.locator("ul.keys li[data-state=waiting]").count() == 1
    assert row.locator("ul.keys li[data-state=signing]").count() == 1
    assert "生成新密钥" in page.text_content("#issuers-note")
    signed = httpx.get(f"{web.url}/api/v1/licences/trust-list", timeout=10).json()
    doc = json.loads(verifier._unb64u(signed["payload"]))
    (trusted,) = [i for i in doc["issuers"] if i["code"] == "hn-traffic"]
    assert len(trusted["keys"]) == 2
    if screenshots:
        page.screenshot(path=str(screenshots / "console-licences.png"), full_page=True)

    # revoked, with a second click: out of the trust list, its credential refused
    row.locator("button.revoke").click()
    assert row.locator("button.revoke").text_content() == "确认吊销？"
    assert row.get_attribute("data-status") == "active"
    row.locator("button.revoke").click()
    _until(lambda: row.get_attribute("data-status") == "revoked", 10, "revoked")
    assert row.locator(".status").text_content() == "已吊销"
    assert row.locator("button").count() == 0
    signed = httpx.get(f"{web.url}/api/v1/licences/trust-list", timeout=10).json()
    assert "hn-traffic" not in {i["code"] for i in json.loads(verifier._unb64u(signed["payload"]))["issuers"]}
    r = httpx.get(f"{web.url}/api/v1/licences/issued/{r.json()['id']}", auth=(client_id, secret), timeout=10)
    assert r.status_code == 401
    assert outside == []
    context.close()

    # a read-only operator reads the register, with no form and no button to change it
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, locale="en-GB")
    page = context.new_page()
    console_sign_in(page, "watcher")
    page.goto(f"{web.url}/admin/licences")
    page.wait_for_selector("body[data-ready=yes]")
    assert page.text_content("h1") == "E-licences · Issuers"
    assert page.is_hidden("#register-card")
    assert page.locator("#issuers tbody tr[data-code='sy-traffic']").count() == 1
    assert page.locator("#issuers button").count() == 0
    context.close()
