"""Every text a person reads in one language, zh-CN unless the request's Accept-Language asks for
English: API errors, what a gate shows, the mini-app catalogue."""

import re

import pytest

from backend.i18n import PROBLEMS


@pytest.fixture(scope="module")
async def client(make_module_client):
    """One app for the module: its tests make citizens of their own and count nothing of another's."""
    async with make_module_client() as c:
        yield c


pytestmark = pytest.mark.storage

CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")
LATIN = re.compile(r"[A-Za-z]")
EN = {"Accept-Language": "en-US,en;q=0.9"}


def screen(decision: dict) -> str:
    return decision["display"]["title"] + " " + decision["display"]["subtitle"]


def chinese_only(text: str) -> bool:
    """Chinese, with numbers and amounts (¥2.00) at most: no Latin letters."""
    return bool(CJK.search(text)) and not LATIN.search(text)


def english_only(text: str) -> bool:
    return bool(LATIN.search(text)) and not CJK.search(text)


async def test_an_api_error_is_chinese_by_default_and_english_on_request(client):
    r = await client.post("/api/v1/auth/otp", json={"phone": "12345"})
    assert r.status_code == 422
    body = r.json()
    assert body["code"] == "invalid_phone"  # the machine key never changes with the language
    assert (body["title"], body["detail"]) == ("请求内容无效", PROBLEMS["invalid_phone"][0])
    assert r.headers["content-language"] == "zh-CN"
    assert chinese_only(body["title"])

    r = await client.post("/api/v1/auth/otp", json={"phone": "12345"}, headers=EN)
    body = r.json()
    assert body["code"] == "invalid_phone"
    assert body["title"] == "The request is not valid"
    assert body["detail"] == "phone must be a mainland mobile number, e.g. 13812345678"
    assert r.headers["content-language"] == "en"

    # q-values decide, not the order; a language we do not speak gives Chinese
    r = await client.post(
        "/api/v1/auth/otp", json={"phone": "1"}, headers={"Accept-Language": "en;q=0.4, zh"}
    )
    assert r.headers["content-language"] == "zh-CN"
    r = await client.post(
        "/api/v1/auth/otp", json={"phone": "1"}, headers={"Accept-Language": "fr, en;q=0.1"}
    )
    assert r.headers["content-language"] == "en" and english_only(r.json()["detail"])


async def test_routing_errors_come_in_the_request_s_language(client):
    r = await client.get("/api/v1/no-such-thing")
    assert (r.status_code, r.json()["code"]) == (404, "not_found")
    assert r.json()["title"] == "未找到" and chinese_only(r.json()["detail"])
    r = await client.get("/api/v1/no-such-thing", headers=EN)
    assert r.json()["title"] == "Not found" and english_only(r.json()["detail"])
    r = await client.get("/api/v1/me")  # no token
    assert r.status_code == 401 and chinese_only(r.json()["detail"])


@pytest.fixture
async def city(make_client, frozen_clock, login, new_phone, enrol_scanner):
    async with make_client(clock=frozen_clock) as client:
        await client.services.miniapps.apps["transit"].seed_demo()
        pair = await login(client, new_phone())
        me = {"Authorization": f"Bearer {pair['access_token']}"}
        gates = {
            "bus": await enrol_scanner(client, "transit", context="bus", place="B113"),
            "metro": await enrol_scanner(client, "transit", context="metro-entry", place="M1-01"),
        }
        yield client, me, gates, frozen_clock


async def _scan(client, me, gate, clock, headers=None, token=None):
    if token is None:
        clock.advance(60)
        token = (await client.get("/api/v1/codes/current", headers=me)).json()["token"]
    r = await client.post(
        "/api/v1/scans", json={"token": token}, headers={**gate["headers"], **(headers or {})}
    )
    assert r.status_code == 200, r.text
    return token, r.json()


async def test_a_gate_shows_one_language_its_scanner_s(city):
    client, me, gates, clock = city
    # a mini-app's screen (transit's bus fare)
    token, zh = await _scan(client, me, gates["bus"], clock)
    assert zh["result"] == "allow" and (zh["display"]["title"], zh["display"]["subtitle"]) == (
        "请通行",
        "¥2.00",
    )
    assert chinese_only(screen(zh))
    _, en = await _scan(client, me, gates["bus"], clock, EN)
    assert en["result"] == "allow" and en["display"]["title"] == "Welcome aboard" and english_only(screen(en))

    # the platform's own refusal (the same code again)
    _, again = await _scan(client, me, gates["bus"], clock, token=token)
    assert again["reason"] == "replayed" and chinese_only(screen(again))
    assert again["display"] == {"color": "red", "title": "此码已使用", "subtitle": "请刷新市民码"}
    _, again = await _scan(client, me, gates["bus"], clock, EN, token=token)
    assert again["display"] == {"color": "red", "title": "Code already used", "subtitle": "Refresh it"}

    # a place's name: the station's Chinese name, or its English one (Shenyang Metro's pinyin)
    _, zh = await _scan(client, me, gates["metro"], clock)
    assert (zh["display"]["title"], zh["display"]["subtitle"]) == ("请进站", "十三号街")
    _, en = await _scan(client, me, gates["metro"], clock, EN)  # a new entry closes the open trip first
    assert (en["display"]["title"], en["display"]["subtitle"]) == ("Please enter", "Shisanhao Jie")

    # an unreadable code
    r = await client.post("/api/v1/scans", json={"token": "SC1:x"}, headers={**gates["bus"]["headers"], **EN})
    assert r.json()["result"] == "deny" and english_only(screen(r.json()))
    r = await client.post("/api/v1/scans", json={"token": "SC1:x"}, headers=gates["bus"]["headers"])
    assert chinese_only(screen(r.json()))


async def test_the_catalogue_describes_each_mini_app_in_both_languages(client):
    items = (await client.get("/api/v1/miniapps")).json()["items"]
    transit = next(i for i in items if i["id"] == "transit")
    assert transit["description"] == transit["description_zh"] and chinese_only(transit["description_zh"])
    assert english_only(transit["description_en"])
    for item in (i for i in items if i["id"] in ("transit", "parking", "hospital", "tourism")):
        assert CJK.search(item["description_zh"]) and not CJK.search(item["description_en"]), item["id"]

    items = (await client.get("/api/v1/miniapps", headers=EN)).json()["items"]
    transit = next(i for i in items if i["id"] == "transit")
    assert transit["description"] == transit["description_en"]


async def test_payment_errors_with_specifics_come_in_one_language(client, login, new_phone):
    """An error whose detail names a state, an amount, a channel or a day: in Chinese the catalogue's
    words with those values in them, in English the detail as it always was; the values are members."""
    import base64

    machines = client.services.auth.machines

    def basic(cred):
        raw = f"{cred['client_id']}:{cred['client_secret']}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}

    app = basic(await machines.create("miniapp", app_id="testgate"))
    operator = basic(await machines.create("operator", name="ops"))
    me = {"Authorization": f"Bearer {(await login(client, new_phone()))['access_token']}"}

    async def both(method, path, body=None, headers=None):
        zh = await client.request(method, path, json=body, headers=headers)
        en = await client.request(method, path, json=body, headers={**(headers or {}), **EN})
        assert (zh.status_code, zh.json()["code"]) == (en.status_code, en.json()["code"]), en.text
        assert zh.headers["content-language"] == "zh-CN" and en.headers["content-language"] == "en"
        return zh.json(), en.json()

    r = await client.post(
        "/api/v1/payments/orders", json={"reference": "lang-1", "amount": 1000}, headers=app
    )
    oid = r.json()["order_id"]
    zh, en = await both(
        "POST", f"/api/v1/payments/orders/{oid}/refunds", {"reference": "r", "amount": 1}, app
    )
    assert zh["code"] == "order_not_refundable" and zh["state"] == "created"
    assert zh["detail"] == "只有已支付的订单才能退款；此订单尚未支付"
    assert en["detail"] == "only a paid order can be refunded; this one is created"

    zh, en = await both("POST", f"/api/v1/payments/orders/{oid}/pay", {"channel": "wechatpay"}, me)
    assert zh["code"] == "unknown_channel" and chinese_only(zh["detail"])
    assert "沙箱支付" in zh["detail"] and zh["available"] == ["sandbox"]
    assert en["detail"] == "unknown channel 'wechatpay' (available: ['sandbox'])"

    assert (await client.post(f"/api/v1/payments/sandbox/orders/{oid}/pay", headers=me)).status_code == 200
    zh, en = await both("POST", f"/api/v1/payments/orders/{oid}/pay", {"channel": "sandbox"}, me)
    assert zh["code"] == "order_not_payable" and zh["detail"] == "此订单已支付，不能再支付"
    assert en["detail"] == "the order is paid"
    refund = {"reference": "r-big", "amount": 2000}
    zh, en = await both("POST", f"/api/v1/payments/orders/{oid}/refunds", refund, app)
    assert zh["code"] == "refund_exceeds_payment" and zh["detail"] == "此订单最多还能退款 1000 分"
    assert en["detail"] == "at most 1000 fen can still be refunded" and en["refundable"] == 1000

    query = "?date=2026-11-27&channel=sandbox"
    zh, en = await both("GET", f"/api/v1/payments/reconciliation{query}", headers=operator)
    assert zh["code"] == "no_reconciliation" and zh["detail"].startswith("沙箱支付 2026-11-27 尚未对账")
    assert en["detail"] == "no reconciliation of sandbox for 2026-11-27; run 'shengshi payments reconcile'"
