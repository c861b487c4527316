"""The sandbox's pay_url is a page a person opens and pays on (the browser test drives it in chromium)."""

import re

import pytest

from payments.sandbox_page import STATIC


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
    assert "沙箱支付" in html and "Sandbox payment" in html
    assert "确认支付 <small>Pay</small>" in html  # Chinese first, with English
    for asset in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert asset.startswith("/static/payments/"), asset  # nothing from elsewhere
        r = await client.get(asset)
        assert r.status_code == 200, asset
    script = (await client.get("/static/payments/sandbox-pay.js")).text
    # the calls the page makes: the order as its citizen sees it, then the sandbox's pay API
    assert "/api/v1/payments/orders/" in script and "/api/v1/payments/sandbox/orders/" in script
    assert "sessionStorage" in script and "sst.access" in script  # the web wallet's token, this tab

    seen = await client.get(f"/api/v1/payments/orders/{oid}", headers=me)
    assert seen.json()["amount"] == 12345 and seen.json()["state"] == "paying"
    paid = await client.post(f"/api/v1/payments/sandbox/orders/{oid}/pay", headers=me)
    assert paid.status_code == 200 and paid.json()["state"] == "paid"


def test_the_page_loads_nothing_from_elsewhere():
    for path in STATIC.iterdir():
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", text), path.name
        assert "<script>" not in text and " style=" not in text and "onclick" not in text.lower()


async def test_no_page_without_the_sandbox_channel(make_client):
    async with make_client(payment_channels="") as client:
        assert (await client.get("/sandbox/pay/00000000-0000-0000-0000-000000000000")).status_code == 404
        assert (await client.get("/static/payments/sandbox-pay.js")).status_code == 404
