"""The example payment channel (examples/example-channel), installed as a separate package the way
`make install` installs it: enabled by settings alone, it takes an order end to end through the one
notify route (paid, ledger balanced, the merchant's webhook sent), refunds through the bank's API and
its notice, and refuses forged and stale notices without changing anything. A channel package whose
settings are missing stops start-up naming every missing variable."""

import base64
import hashlib
import hmac
import json
import secrets
import time
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from backend.settings import SettingsError
from payments.tables import LedgerEntry, OutboxEvent, PaymentOrder
from payments.webhooks import SIGNATURE_HEADER, verify_signature

MERCHANT = "M100200"
CHECKOUT = "https://checkout.bank.example/pay"
API = "https://api.bank.example/v1"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class Bank:
    """Plays Example Bank: signs its notices as its protocol says (written here, not taken from the
    package), and answers its refund API."""

    def __init__(self, clock):
        self.key = secrets.token_bytes(32)
        self.clock = clock
        self.refund_requests = []

    @property
    def settings(self):
        return {
            "examplebank_merchant_id": MERCHANT,
            "examplebank_notify_key": _b64(self.key),
            "examplebank_checkout_url": CHECKOUT,
            "examplebank_api_url": API,
        }

    def mac(self, ts, body, key=None):
        return hmac.new(key or self.key, f"{ts}.".encode() + body, hashlib.sha256).hexdigest()

    def notice(self, type_, order_no, amount, *, ts=None, key=None, **fields):
        body = json.dumps(
            {
                "id": "ntf_" + secrets.token_hex(8),
                "type": type_,
                "merchant_id": MERCHANT,
                "order_no": order_no,
                "amount": amount,
                "currency": "CNY",
                "txn_id": "EB" + secrets.token_hex(6),
                "at": "2026-11-28T10:00:00+08:00",
                **fields,
            },
            separators=(",", ":"),
        ).encode()
        ts = int(self.clock.time()) if ts is None else ts
        return {
            "Examplebank-Timestamp": str(ts),
            "Examplebank-Signature": f"v1={self.mac(ts, body, key)}",
            "Content-Type": "application/json",
        }, body

    def api(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        ts = request.headers["Examplebank-Timestamp"]
        if request.headers["Examplebank-Signature"] != f"v1={self.mac(ts, body)}":
            return httpx.Response(401)
        self.refund_requests.append((request.url.path, json.loads(body)))
        return httpx.Response(202, json={"accepted": True})


@pytest.fixture
def bank(frozen_clock):
    return Bank(frozen_clock)


@pytest.fixture
async def world(make_client, testgate_app, paying_citizen, frozen_clock, bank):
    async with make_client(
        miniapps=[testgate_app],
        clock=frozen_clock,
        payment_channels="sandbox,examplebank",
        webhook_interval=0,
        background=True,
        **bank.settings,
    ) as client:
        app_auth, me, openid = await paying_citizen(client)
        yield client, app_auth, me, openid


async def _order(client, app_auth, openid, amount=2500):
    r = await client.post(
        "/api/v1/payments/orders",
        json={"reference": f"eb-{time.time_ns()}", "amount": amount, "description": "测试", "openid": openid},
        headers=app_auth,
    )
    assert r.status_code == 201, r.text
    return r.json()["order_id"]


async def _notify(client, notice):
    headers, body = notice
    return await client.post("/api/v1/payments/notify/examplebank", content=body, headers=headers)


async def _balanced(oid):
    rows = await LedgerEntry.select(LedgerEntry.amount).where(LedgerEntry.order == oid).run()
    assert rows and sum(r["amount"] for r in rows) == 0
    return len(rows)


async def _events(oid):
    rows = await OutboxEvent.select(OutboxEvent.type).where(OutboxEvent.order == oid).run()
    return sorted(r["type"] for r in rows)


async def test_an_order_paid_and_refunded_through_the_example_channel(world, bank, frozen_clock):
    client, app_auth, me, openid = world
    payments = client.services.payments
    assert (await client.get("/api/v1/payments/channels")).json() == {"channels": ["sandbox", "examplebank"]}
    endpoint = await payments.endpoints.add("miniapp:testgate", "https://merchant.example/hooks")
    seen = []
    dispatcher = payments.webhooks
    await dispatcher._http.aclose()
    dispatcher._http = httpx.AsyncClient(
        transport=httpx.MockTransport(lambda r: seen.append(r) or httpx.Response(200))
    )
    payments.channels["examplebank"].transport = httpx.MockTransport(bank.api)

    oid = await _order(client, app_auth, openid)
    pay = await client.post(f"/api/v1/payments/orders/{oid}/pay", json={"channel": "examplebank"}, headers=me)
    assert pay.status_code == 200, pay.text
    url = urlsplit(pay.json()["pay"]["checkout_url"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == CHECKOUT
    query = dict(parse_qsl(url.query))
    assert query["order_no"] == oid and query["amount"] == "2500" and query["merchant_id"] == MERCHANT
    assert query["notify_url"].endswith("/api/v1/payments/notify/examplebank")

    paid = bank.notice("payment.succeeded", oid, 2500)
    r = await _notify(client, paid)
    assert r.status_code == 200 and r.json() == {"received": True}
    assert (await _notify(client, paid)).json() == {"received": True}  # a resend changes nothing
    order = (await client.get(f"/api/v1/payments/orders/{oid}", headers=me)).json()
    assert order["state"] == "paid" and order["channel"] == "examplebank"
    assert await _balanced(oid) == 2
    assert await _events(oid) == ["order.paid"]
    await dispatcher.tick()
    await dispatcher.drain()
    (delivered,) = [s for s in seen if s.url.host == "merchant.example"]
    event = json.loads(delivered.read())
    assert event["type"] == "order.paid" and event["data"]["order_id"] == oid
    assert verify_signature(
        delivered.headers[SIGNATURE_HEADER], delivered.read(), endpoint["secret"], now=frozen_clock.time()
    )

    # a refund: asked at the bank's API (signed), confirmed by the bank's notice
    asked = await client.post(
        f"/api/v1/payments/orders/{oid}/refunds", json={"reference": "rf-1", "amount": 1000}, headers=app_auth
    )
    assert asked.status_code == 202 and asked.json()["state"] == "pending", asked.text
    refund_id = asked.json()["refund_id"]
    ((path, sent),) = bank.refund_requests
    assert path == "/v1/refunds"
    assert sent["refund_no"] == refund_id and sent["amount"] == 1000 and sent["order_no"] == oid
    done = bank.notice(
        "refund.succeeded", oid, 1000, refund_no=refund_id, payment_txn_id=json.loads(paid[1])["txn_id"]
    )
    assert (await _notify(client, done)).status_code == 200
    order = (await client.get(f"/api/v1/payments/orders/{oid}", headers=app_auth)).json()
    assert order["state"] == "partially_refunded" and order["refunded"] == 1000
    assert [r["state"] for r in order["refunds"]] == ["succeeded"]
    assert await _balanced(oid) == 4
    assert await _events(oid) == ["order.paid", "order.refunded"]
    await dispatcher.tick()
    await dispatcher.drain()
    events = [json.loads(s.read()) for s in seen if s.url.host == "merchant.example"]
    assert [e["type"] for e in events] == ["order.paid", "order.refunded"]
    assert events[1]["data"]["refunded"] == 1000


async def test_forged_stale_and_mismatched_notices_change_nothing(world, bank, frozen_clock):
    client, app_auth, _me, openid = world
    oid = await _order(client, app_auth, openid, amount=1800)
    headers, body = bank.notice("payment.succeeded", oid, 1800)
    now = int(frozen_clock.time())
    attempts = {
        "another key": bank.notice("payment.succeeded", oid, 1800, key=secrets.token_bytes(32)),
        "a changed body": (headers, body.replace(b"1800", b"1801")),
        "no signature": ({"Content-Type": "application/json"}, body),
        "ten minutes old": bank.notice("payment.succeeded", oid, 1800, ts=now - 600),
        "from the future": bank.notice("payment.succeeded", oid, 1800, ts=now + 600),
        "signed but not a notice": (
            {"Examplebank-Timestamp": str(now), "Examplebank-Signature": f"v1={bank.mac(now, b'[1]')}"},
            b"[1]",
        ),
        "another amount": bank.notice("payment.succeeded", oid, 1),
        "another merchant": bank.notice("payment.succeeded", oid, 1800, merchant_id="M999"),
        "another currency": bank.notice("payment.succeeded", oid, 1800, currency="USD"),
    }
    reasons = {}
    for what, notice in attempts.items():
        r = await _notify(client, notice)
        assert 400 <= r.status_code < 500, (what, r.status_code, r.text)
        assert r.json()["received"] is False, what
        reasons[what] = r.json()["error"]
    signature, stale = (
        "the signature does not match the raw body",
        "the notice's timestamp is too far from now",
    )
    assert reasons == {
        "another key": signature,
        "a changed body": signature,
        "no signature": "Examplebank-Signature or Examplebank-Timestamp is missing or malformed",
        "ten minutes old": stale,
        "from the future": stale,
        "signed but not a notice": "not an Example Bank notice",
        "another amount": "amount_mismatch",
        "another merchant": "merchant_mismatch",
        "another currency": "currency_mismatch",
    }
    row = await PaymentOrder.select().where(PaymentOrder.id == oid).first().run()
    assert row["state"] == "created"
    assert await LedgerEntry.count().where(LedgerEntry.order == oid).run() == 0
    assert await OutboxEvent.count().where(OutboxEvent.order == oid).run() == 0
    # the genuine one still pays it
    assert (await _notify(client, (headers, body))).status_code == 200


async def test_installed_but_not_enabled_it_has_no_route(client, bank):
    """The default deployment (the sandbox only): the example is installed, not enabled."""
    r = await _notify(client, bank.notice("payment.succeeded", "1f0c0000-0000-4000-8000-000000000000", 1))
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    assert r.headers["content-type"].startswith("application/problem+json")


def test_missing_settings_stop_start_up_naming_every_one(make_runtime):
    from backend.app import create_app

    with pytest.raises(SettingsError) as err:
        create_app(runtime=make_runtime(payment_channels="examplebank"))
    for var in ("MERCHANT_ID", "NOTIFY_KEY", "CHECKOUT_URL", "API_URL"):
        assert f"SHENGSHI_EXAMPLEBANK_{var} is required" in str(err.value)
    assert len(err.value.problems) == 4


def test_bad_settings_are_named_and_the_key_never_shown(make_runtime, bank):
    from backend.app import create_app

    leaked = "not-a-real-key-but-secret"
    with pytest.raises(SettingsError) as err:
        create_app(
            runtime=make_runtime(
                payment_channels="examplebank",
                **{**bank.settings, "examplebank_notify_key": leaked, "examplebank_window_seconds": "soon"},
            )
        )
    assert "SHENGSHI_EXAMPLEBANK_WINDOW_SECONDS='soon'" in str(err.value)
    with pytest.raises(SettingsError) as err:
        create_app(
            runtime=make_runtime(
                payment_channels="examplebank",
                **{**bank.settings, "examplebank_notify_key": leaked, "examplebank_api_url": "ftp://x"},
            )
        )
    text = str(err.value)
    assert "SHENGSHI_EXAMPLEBANK_NOTIFY_KEY" in text and "SHENGSHI_EXAMPLEBANK_API_URL" in text
    assert leaked not in text
