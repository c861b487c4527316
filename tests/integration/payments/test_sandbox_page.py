"""The sandbox's pay_url is a page a person opens and pays on (the browser test drives it in chromium).
The page is one of the web faces (console/static): their headers, their language, their script."""

import re

import pytest

from console.controllers import STATIC

PAGE_FILES = ("sandbox-pay.html", "sandbox-pay.js", "citizen.js", "lang.js", "web.css")


@pytest.fixture
async def world(pay_client, paying_citizen, frozen_clock):
    async with pay_client(clock=frozen_clock, public_url="https://pay.example:8443/") as client:
        app_auth, me, openid = await paying_citizen(client)
        body = {"reference": "page-1", "amount": 12345, "description": "门票 x2", "openid": openid}
        order = (await client.post("/api/v1/payments/orders", json=body, headers=app_auth)).json()
        yield client, me, order["order_id"]


async def test_pay_url_is_the_page_and_the_page_pays_through_the_api(world):
    client, me, oid = world
    pay = await client.post(f"/api/v1/payments/orders/{oid}/pay", json={"channel": "sandbox"}, headers=me)
    assert pay.status_code == 200, pay.text
    assert pay.json()["pay"]["pay_url"] == f"https://pay.example:8443/sandbox/pay/{oid}"

    page = await client.get(f"/sandbox/pay/{oid}")  # a browser opening it: no token in the request
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "'unsafe-inline'" not in csp
    html = page.text
    # Chinese when the browser asks for no language, in one language: the script switches
    assert page.headers["content-language"] == "zh-CN" and '<html lang="zh-CN">' in html
    assert "<title>沙箱支付 · 盛事通</title>" in html and "Sandbox payment" not in html
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    # the web faces' own stylesheet, languages and citizen session, then the page's script
    assert assets == [
        f"/static/web/{name}" for name in ("web.css", "lang.js", "citizen.js", "sandbox-pay.js")
    ]
    for asset in assets:
        r = await client.get(asset)  # nothing from elsewhere
        assert r.status_code == 200, asset
    script = (await client.get("/static/web/sandbox-pay.js")).text
    # the calls the page makes: the order as its citizen sees it, then the sandbox's pay API
    assert "/api/v1/payments/orders/" in script and "/api/v1/payments/sandbox/orders/" in script
    session = (await client.get("/static/web/citizen.js")).text
    assert "sessionStorage" in session and "sst.access" in session  # the web wallet's token, this tab

    english = await client.get(f"/sandbox/pay/{oid}", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert english.headers["content-language"] == "en" and '<html lang="en">' in english.text
    assert "Accept-Language" in english.headers["vary"]

    seen = await client.get(f"/api/v1/payments/orders/{oid}", headers=me)
    assert seen.json()["amount"] == 12345 and seen.json()["state"] == "paying"
    paid = await client.post(f"/api/v1/payments/sandbox/orders/{oid}/pay", headers=me)
    assert paid.status_code == 200 and paid.json()["state"] == "paid"


def test_the_page_loads_nothing_from_elsewhere():
    for name in PAGE_FILES:
        text = (STATIC / name).read_text(encoding="utf-8")
        assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", text), name
        assert "<script>" not in text and " style=" not in text and "onclick" not in text.lower()


async def test_no_page_without_the_sandbox_channel(make_client):
    async with make_client(payment_channels="") as client:
        assert (await client.get("/sandbox/pay/00000000-0000-0000-0000-000000000000")).status_code == 404
        # and nothing to pay it with: the sandbox pay API is not there either
        r = await client.post("/api/v1/payments/sandbox/orders/00000000-0000-0000-0000-000000000000/pay")
        assert r.status_code == 404
