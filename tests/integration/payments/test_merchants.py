"""Partner merchants paid by citizens, end to end through HTTP: the order QR paid in the app, the citizen
code as a pay code at the till (agreement and credit, the per-payment limit confirmed or declined in the
app, refusals), the merchant's order list and settlement read back against the ledger, and the races
(run on PostgreSQL too: the same code at two tills, a till's retry, two confirmations at once)."""

import asyncio
import base64
import csv
import io
import json
import secrets
import time
from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest
import zxingcpp
from PIL import Image

from backend.errors import InvalidInput
from payments.channels.base import channel_busy
from payments.merchant_tables import PayCodePayment, PaymentAgreement
from payments.tables import LedgerEntry, OutboxEvent, PaymentOrder
from payments.webhooks import verify_signature
from tests.integration.payments.conftest import basic

CHINA = timezone(timedelta(hours=8))


@pytest.fixture(scope="module")
async def shop(make_module_client):
    async with make_module_client() as client:
        yield client


async def _merchant(client, name="沈阳老边饺子馆"):
    cred = await client.services.auth.machines.create("merchant", name=name)
    r = await client.post("/api/v1/merchant/tills", json={"place": "counter 1"}, headers=basic(cred))
    assert r.status_code == 201, r.text
    till = r.json()
    assert till["kind"] == "till" and till["context"] == "pay" and till["app_id"] == cred["client_id"]
    listed = (await client.get("/api/v1/merchant/tills", headers=basic(cred))).json()["items"]
    assert [(t["client_id"], t["place"]) for t in listed] == [(till["client_id"], "counter 1")]
    return basic(cred), basic(till)


def _client_id(headers):
    """The client id in an HTTP Basic header."""
    return base64.b64decode(headers["Authorization"].removeprefix("Basic ")).decode().partition(":")[0]


async def _citizen(client, login, new_phone, **paycode):
    phone = new_phone()
    me = {"Authorization": f"Bearer {(await login(client, phone))['access_token']}"}
    if paycode:
        r = await client.put("/api/v1/me/paycode", json=paycode, headers=me)
        assert r.status_code == 200, r.text
    return phone, me


async def _code(client, me):
    r = await client.get("/api/v1/codes/current", headers=me)
    assert r.status_code == 200, r.text
    return r.json()["token"]


async def _fresh_code(client, login, phone):
    """A code from another sign-in of the same citizen (a new session: a new code)."""
    pair = await login(client, phone, device_id=f"phone-{secrets.token_hex(3)}")
    return await _code(client, {"Authorization": f"Bearer {pair['access_token']}"})


async def _scan(client, till, code, amount, reference=None, **extra):
    body = {"code": code, "amount": amount, "reference": reference or f"t-{secrets.token_hex(6)}", **extra}
    return await client.post("/api/v1/payments/paycode", json=body, headers=till)


async def _ledger(order_id):
    return await LedgerEntry.select().where(LedgerEntry.order == order_id).run()


# ---- the order QR ---------------------------------------------------------------------------------
async def test_a_merchants_order_qr_is_paid_in_the_app(shop, login, new_phone, monkeypatch):
    client = shop
    merchant, _ = await _merchant(client)
    other, _ = await _merchant(client, "另一家店")
    owner = f"merchant:{_client_id(merchant)}"
    endpoint = await client.services.payments.endpoints.add(owner, "https://shop.example/hooks")
    r = await client.post(
        "/api/v1/payments/orders",
        json={"reference": "qr-1", "amount": 2600, "description": "锅包肉"},
        headers=merchant,
    )
    assert r.status_code == 201, r.text
    oid = r.json()["order_id"]
    svg = await client.get(f"/api/v1/payments/orders/{oid}/qr.svg", headers=merchant)
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in svg.content
    png = await client.get(f"/api/v1/payments/orders/{oid}/qr.png", headers=merchant)
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    # the QR says the pay link (read back by a decoder we did not write)
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(png.content)))
    assert [d.text for d in decoded] == [r.json()["pay_link"]["url"]]
    assert (await client.get(f"/api/v1/payments/orders/{oid}/qr.svg", headers=other)).status_code == 404
    # the citizen's app opens the link and pays in the sandbox
    _, me = await _citizen(client, login, new_phone)
    seen = await client.get(f"/api/v1/payments/orders/{oid}", headers=me)
    assert seen.status_code == 200 and seen.json()["merchant_name"] == "沈阳老边饺子馆"
    paid = await client.post(f"/api/v1/payments/sandbox/orders/{oid}/pay", headers=me)
    assert paid.status_code == 200 and paid.json()["state"] == "paid", paid.text
    # the merchant sees it paid, and is told by its webhook
    order = (await client.get(f"/api/v1/payments/orders/{oid}", headers=merchant)).json()
    assert order["state"] == "paid" and order["channel"] == "sandbox"
    received = []
    receiver = httpx.AsyncClient(
        transport=httpx.MockTransport(lambda req: received.append(req) or httpx.Response(204))
    )
    dispatcher = client.services.payments.webhooks
    monkeypatch.setattr(dispatcher, "_http", receiver)
    await dispatcher.tick()
    await dispatcher.drain()
    await receiver.aclose()
    assert [str(q.url) for q in received] == ["https://shop.example/hooks"]
    body = received[0].read()
    assert verify_signature(
        received[0].headers["Shengshitong-Signature"], body, endpoint["secret"], now=time.time()
    )
    event = json.loads(body)
    assert (event["type"], event["data"]["order_id"], event["data"]["amount"]) == ("order.paid", oid, 2600)
    # a paid order has no pay link to show any more
    gone = await client.get(f"/api/v1/payments/orders/{oid}/qr.png", headers=merchant)
    assert gone.status_code == 409 and gone.json()["code"] == "no_pay_link"


# ---- the pay code at the till -----------------------------------------------------------------------
async def test_a_citizen_pays_at_the_till_by_code_through_the_sandbox_agreement(shop, login, new_phone):
    client = shop
    merchant, till = await _merchant(client)
    phone, me = await _citizen(client, login, new_phone)
    settings = (await client.get("/api/v1/me/paycode", headers=me)).json()
    assert settings["enabled"] is False and settings["limit"] == 20000
    assert settings["methods"] == ["credit", "sandbox"]
    code = await _code(client, me)
    off = await _scan(client, till, code, 3500)
    assert off.status_code == 422 and off.json()["code"] == "paycode_off"
    r = await client.put("/api/v1/me/paycode", json={"enabled": True, "method": "sandbox"}, headers=me)
    assert r.status_code == 200 and [a["channel"] for a in r.json()["agreements"]] == ["sandbox"]
    # the refused scan used nothing up: the same code pays now
    paid = await _scan(client, till, code, 3500, "sale-1", description="两盘饺子")
    assert paid.status_code == 200, paid.text
    answer = paid.json()
    assert answer["result"] == "paid" and answer["order_state"] == "paid" and answer["method"] == "sandbox"
    # the till's retry: the same answer, no second charge, no fresh code needed
    again = await _scan(client, till, code, 3500, "sale-1")
    assert again.status_code == 200 and again.json() == answer
    polled = await client.get("/api/v1/payments/paycode/sale-1", headers=till)
    assert polled.json() == answer
    oid = answer["order_id"]
    order = (await client.get(f"/api/v1/payments/orders/{oid}", headers=merchant)).json()
    assert order["state"] == "paid" and order["amount"] == 3500 and order["channel"] == "sandbox"
    ledger = await _ledger(oid)
    assert sorted(e["amount"] for e in ledger) == [-3500, 3500] and sum(e["amount"] for e in ledger) == 0
    mine = (await client.get("/api/v1/me/orders", headers=me)).json()["items"]
    assert [o["order_id"] for o in mine] == [oid]
    # the code paid once: another sale with it is refused
    replayed = await _scan(client, till, code, 100, "sale-2")
    assert replayed.status_code == 409 and replayed.json()["code"] == "paycode_code_replayed"
    # the same reference for another amount is a different sale: refused
    reused = await _scan(client, till, await _fresh_code(client, login, phone), 3600, "sale-1")
    assert reused.status_code == 409 and reused.json()["code"] == "reference_reused"
    # the merchant refunds it as any order
    r = await client.post(
        f"/api/v1/payments/orders/{oid}/refunds", json={"reference": "r1", "amount": 500}, headers=merchant
    )
    assert r.status_code == 202 and r.json()["state"] == "succeeded", r.text


async def test_a_citizen_pays_at_the_till_on_credit_within_the_credit_limit(shop, login, new_phone):
    client = shop
    merchant, till = await _merchant(client)
    phone, me = await _citizen(client, login, new_phone, enabled=True, method="credit")
    r = await _scan(client, till, await _code(client, me), 4000, "credit-1")
    assert r.status_code == 200, r.text
    assert r.json()["result"] == "deferred" and r.json()["order_state"] == "created"
    oid = r.json()["order_id"]
    order = (await client.get(f"/api/v1/payments/orders/{oid}", headers=merchant)).json()
    assert order["deferred"] is True and order["state"] == "created"
    unpaid = (await client.get("/api/v1/me/orders?unpaid=true", headers=me)).json()
    assert unpaid["unpaid_total"] == 4000 and [o["order_id"] for o in unpaid["items"]] == [oid]
    # over the credit limit (50000 fen owed at most)
    over = await _scan(client, till, await _fresh_code(client, login, phone), 46001, "credit-2")
    assert over.status_code == 422 and over.json()["code"] == "paycode_credit_limit"
    assert over.json()["unpaid"] == 4000
    # the merchant charges the credit order against the citizen's agreement: paid, told once
    charged = await client.post(f"/api/v1/merchant/orders/{oid}/charge", headers=merchant)
    assert charged.status_code == 200 and charged.json()["state"] == "paid", charged.text
    assert (await client.get("/api/v1/me/orders?unpaid=true", headers=me)).json()["unpaid_total"] == 0
    again = await client.post(f"/api/v1/merchant/orders/{oid}/charge", headers=merchant)
    assert again.status_code == 200 and again.json()["state"] == "paid" and len(await _ledger(oid)) == 2
    plain = await client.post(
        "/api/v1/payments/orders", json={"reference": "p-1", "amount": 5}, headers=merchant
    )
    r = await client.post(f"/api/v1/merchant/orders/{plain.json()['order_id']}/charge", headers=merchant)
    assert r.status_code == 409 and r.json()["code"] == "not_deferred"


async def test_the_credit_limit_holds_when_approved_later_and_at_two_tills_at_once(shop, login, new_phone):
    client = shop
    _, till = await _merchant(client)
    _, other_till = await _merchant(client, "隔壁超市")
    phone, me = await _citizen(client, login, new_phone, enabled=True, method="credit", limit=100)
    waiting = [
        (await _scan(client, till, await _fresh_code(client, login, phone), amount)).json()
        for amount in (20000, 20000, 15000)
    ]
    assert [w["result"] for w in waiting] == ["confirm_required"] * 3
    decided = []
    for w in waiting:
        r = await client.post(
            f"/api/v1/me/paycode/confirmations/{w['confirmation_id']}",
            json={"decision": "approve"},
            headers=me,
        )
        decided.append((r.json()["result"], r.json()["reason"], r.json()["order_state"]))
    # the third would take what the citizen owes past 50000 fen: refused when approved, its order closed
    assert decided == [
        ("deferred", "", "created"),
        ("deferred", "", "created"),
        ("failed", "paycode_credit_limit", "closed"),
    ]
    assert (await client.get("/api/v1/me/orders?unpaid=true", headers=me)).json()["unpaid_total"] == 40000
    # two phones of one citizen at two tills at once: 40000 owed, 6000 each, room for one
    codes = [await _fresh_code(client, login, phone) for _ in range(2)]
    await client.put("/api/v1/me/paycode", json={"enabled": True, "method": "credit"}, headers=me)
    replies = await asyncio.gather(
        _scan(client, till, codes[0], 6000), _scan(client, other_till, codes[1], 6000)
    )
    assert sorted(r.status_code for r in replies) == [200, 422], [r.text for r in replies]
    assert {r.json().get("code") for r in replies if r.status_code == 422} == {"paycode_credit_limit"}
    assert (await client.get("/api/v1/me/orders?unpaid=true", headers=me)).json()["unpaid_total"] == 46000


async def test_over_the_limit_the_citizen_confirms_in_the_app(shop, login, new_phone):
    client = shop
    _, till = await _merchant(client)
    _, me = await _citizen(client, login, new_phone, enabled=True, method="sandbox", limit=1000)
    r = await _scan(client, till, await _code(client, me), 2500, "big-1")
    assert r.status_code == 200, r.text
    waiting = r.json()
    assert waiting["result"] == "confirm_required" and waiting["order_state"] == "created"
    assert waiting["confirmation_id"] and waiting["confirm_by"]
    assert (await client.get("/api/v1/payments/paycode/big-1", headers=till)).json()[
        "result"
    ] == "confirm_required"
    pending = (await client.get("/api/v1/me/paycode/confirmations", headers=me)).json()["items"]
    assert [(p["confirmation_id"], p["amount"], p["merchant_name"]) for p in pending] == [
        (waiting["confirmation_id"], 2500, "沈阳老边饺子馆")
    ]
    url = f"/api/v1/me/paycode/confirmations/{waiting['confirmation_id']}"
    _, stranger = await _citizen(client, login, new_phone)
    assert (await client.post(url, json={"decision": "approve"}, headers=stranger)).status_code == 404
    ok = await client.post(url, json={"decision": "approve"}, headers=me)
    assert ok.status_code == 200 and ok.json()["result"] == "paid", ok.text
    assert (await client.get("/api/v1/payments/paycode/big-1", headers=till)).json()["result"] == "paid"
    # approving again answers the same; declining now is too late
    assert (await client.post(url, json={"decision": "approve"}, headers=me)).json()["result"] == "paid"
    late = await client.post(url, json={"decision": "decline"}, headers=me)
    assert late.status_code == 409 and late.json()["code"] == "confirmation_decided"
    assert (await client.get("/api/v1/me/paycode/confirmations", headers=me)).json()["items"] == []
    assert len(await _ledger(ok.json()["order_id"])) == 2


async def test_a_declined_payment_closes_the_order(shop, login, new_phone):
    client = shop
    _, till = await _merchant(client)
    _, me = await _citizen(client, login, new_phone, enabled=True, method="credit", limit=500)
    waiting = (await _scan(client, till, await _code(client, me), 800, "no-1")).json()
    assert waiting["result"] == "confirm_required"
    url = f"/api/v1/me/paycode/confirmations/{waiting['confirmation_id']}"
    r = await client.post(url, json={"decision": "decline"}, headers=me)
    assert r.status_code == 200 and r.json()["result"] == "declined" and r.json()["order_state"] == "closed"
    assert (await client.get("/api/v1/payments/paycode/no-1", headers=till)).json()["result"] == "declined"
    events = await OutboxEvent.select(OutboxEvent.type).where(OutboxEvent.order == waiting["order_id"]).run()
    assert [e["type"] for e in events] == ["order.closed"]
    late = await client.post(url, json={"decision": "approve"}, headers=me)
    assert late.status_code == 409 and late.json()["code"] == "confirmation_decided"
    assert await _ledger(waiting["order_id"]) == []
    assert (await client.get("/api/v1/me/orders?unpaid=true", headers=me)).json()["unpaid_total"] == 0


async def test_a_confirmation_not_given_in_time_closes_the_order(shop, login, new_phone):
    client = shop
    _, till = await _merchant(client)
    _, me = await _citizen(client, login, new_phone, enabled=True, method="sandbox", limit=100)
    waiting = (await _scan(client, till, await _code(client, me), 300, "late-1")).json()
    past = datetime.now(UTC) - timedelta(seconds=1)  # the window ran out
    await (
        PayCodePayment.update({PayCodePayment.confirm_by: past})
        .where(PayCodePayment.id == waiting["confirmation_id"])
        .run()
    )
    await (
        PaymentOrder.update({PaymentOrder.expires_at: past})
        .where(PaymentOrder.id == waiting["order_id"])
        .run()
    )
    url = f"/api/v1/me/paycode/confirmations/{waiting['confirmation_id']}"
    late = await client.post(url, json={"decision": "approve"}, headers=me)
    assert late.status_code == 409 and late.json()["code"] == "confirmation_expired"
    assert (await client.get("/api/v1/payments/paycode/late-1", headers=till)).json()["result"] == "expired"
    assert (await client.get("/api/v1/me/paycode/confirmations", headers=me)).json()["items"] == []
    await client.services.payments.orders.close_expired()
    order = (
        await PaymentOrder.select(PaymentOrder.state)
        .where(PaymentOrder.id == waiting["order_id"])
        .first()
        .run()
    )
    assert order["state"] == "closed" and await _ledger(waiting["order_id"]) == []


async def test_a_charge_the_channel_did_not_answer_is_asked_again(shop, login, new_phone, monkeypatch):
    """Unknown outcome (the channel timed out): the till shows pending; its poll a while later asks the
    channel again for the same order, which charges it once."""
    client = shop
    _, till = await _merchant(client)
    _, me = await _citizen(client, login, new_phone, enabled=True, method="sandbox")
    sandbox = client.services.payments.channels["sandbox"]
    real = sandbox.charge_agreement
    calls = []

    async def flaky(order):
        calls.append(order["order_ref"])
        if len(calls) == 1:
            raise channel_busy("sandbox", "timed out")
        return await real(order)

    monkeypatch.setattr(sandbox, "charge_agreement", flaky)
    r = await _scan(client, till, await _code(client, me), 1800, "busy-1")
    assert r.status_code == 200 and r.json()["result"] == "pending", r.text
    # polled at once: not asked again yet
    assert (await client.get("/api/v1/payments/paycode/busy-1", headers=till)).json()["result"] == "pending"
    assert len(calls) == 1
    await (
        PayCodePayment.update({PayCodePayment.created_at: datetime.now(UTC) - timedelta(minutes=1)})
        .where(PayCodePayment.order == r.json()["order_id"])
        .run()
    )
    polled = await client.get("/api/v1/payments/paycode/busy-1", headers=till)
    assert polled.json()["result"] == "paid" and calls == [r.json()["order_id"]] * 2
    assert len(await _ledger(r.json()["order_id"])) == 2


async def test_a_charge_the_channel_refused_fails_and_closes_the_order(shop, login, new_phone, monkeypatch):
    client = shop
    _, till = await _merchant(client)
    _, me = await _citizen(client, login, new_phone, enabled=True, method="sandbox")

    async def refuse(order):
        raise InvalidInput("the agreement was cancelled", code="agreement_cancelled")

    monkeypatch.setattr(client.services.payments.channels["sandbox"], "charge_agreement", refuse)
    r = await _scan(client, till, await _code(client, me), 700, "no-money")
    assert r.status_code == 200, r.text
    assert (r.json()["result"], r.json()["reason"], r.json()["order_state"]) == (
        "failed",
        "agreement_cancelled",
        "closed",
    )


async def test_what_the_till_is_refused(shop, login, new_phone):
    client = shop
    merchant, till = await _merchant(client)
    _phone, me = await _citizen(client, login, new_phone, enabled=True, method="sandbox")
    bad = await _scan(client, till, "HC1:NOT-A-CODE", 100)
    assert bad.status_code == 422 and bad.json()["code"] == "paycode_code_invalid"
    # the agreement ended (at the channel): nothing is charged, and the till says why
    citizen = (await client.get("/api/v1/me", headers=me)).json()["id"]
    ended = await client.services.merchants.paycode.end_agreement(citizen, "sandbox")
    assert ended["changed"] is True
    code = await _code(client, me)
    r = await _scan(client, till, code, 100)
    assert (
        r.status_code == 422
        and r.json()["code"] == "paycode_no_agreement"
        and r.json()["channel"] == "sandbox"
    )
    # a merchant's own credential is not a till's, and a till is not a gate's scanner
    wrong = await _scan(client, merchant, code, 100)
    assert wrong.status_code == 401 and wrong.json()["code"] == "wrong_client_kind"
    scan = await client.post("/api/v1/scans", json={"token": code}, headers=till)
    assert scan.status_code in (401, 403)
    assert (await client.get("/api/v1/payments/paycode/a%20b", headers=till)).status_code == 404
    # a revoked merchant's tills take nothing
    revoked_merchant, revoked_till = await _merchant(client, "已关门的店")
    await client.services.auth.machines.revoke(_client_id(revoked_merchant), kind="merchant")
    r = await _scan(client, revoked_till, code, 100)
    assert r.status_code == 403 and r.json()["code"] == "merchant_revoked"
    # the citizen's choice is checked
    r = await client.put("/api/v1/me/paycode", json={"enabled": True, "method": "wechatpay"}, headers=me)
    assert r.status_code == 422 and r.json()["code"] == "paycode_bad_method"
    r = await client.put(
        "/api/v1/me/paycode", json={"enabled": True, "method": "credit", "limit": 30000}, headers=me
    )
    assert r.status_code == 422 and r.json()["code"] == "paycode_bad_limit"
    zh = await client.put(
        "/api/v1/me/paycode",
        json={"enabled": True, "method": "credit", "limit": 30000},
        headers={**me, "Accept-Language": "zh-CN"},
    )
    assert "限额" in zh.json()["detail"]


async def test_an_operator_records_an_agreement_a_channel_confirmed(shop, shengshi_cli, new_phone, login):
    """Until a real channel's sign notice is handled here, an operator records the agreement it
    confirmed; the citizen can then choose that channel for the pay code."""
    client = shop
    _, me = await _citizen(client, login, new_phone)
    citizen = (await client.get("/api/v1/me", headers=me)).json()["id"]
    r = shengshi_cli("agreements", "add", citizen, "alipay", "--agreement-no", "20885123456789")
    assert r.returncode == 0, r.stderr
    row = await PaymentAgreement.select().where(PaymentAgreement.citizen_id == citizen).first().run()
    assert (row["channel"], row["agreement_no"], row["state"]) == ("alipay", "20885123456789", "signed")
    assert row["signed_by"].startswith("operator:")
    shown = (await client.get("/api/v1/me/paycode", headers=me)).json()["agreements"]
    assert [(a["channel"], a["state"]) for a in shown] == [("alipay", "signed")]


# ---- the merchant's list and settlement ----------------------------------------------------------------
async def test_the_merchants_orders_and_settlement_match_the_ledger(shop, login, new_phone):
    client = shop
    merchant, till = await _merchant(client)
    amounts = [1200, 3400, 560]
    ids = []
    for i, amount in enumerate(amounts):
        _, me = await _citizen(client, login, new_phone, enabled=True, method="sandbox")
        r = await _scan(client, till, await _code(client, me), amount, f"day-{i}")
        assert r.json()["result"] == "paid", r.text
        ids.append(r.json()["order_id"])
    open_ = await client.post(
        "/api/v1/payments/orders", json={"reference": "open-1", "amount": 999}, headers=merchant
    )
    r = await client.post(
        f"/api/v1/payments/orders/{ids[1]}/refunds",
        json={"reference": "back", "amount": 400},
        headers=merchant,
    )
    assert r.status_code == 202 and r.json()["state"] == "succeeded"
    # the list: newest first, by state, by day (China time), in pages
    items = (await client.get("/api/v1/merchant/orders", headers=merchant)).json()["items"]
    assert [o["order_id"] for o in items] == [open_.json()["order_id"], *reversed(ids)]
    paid = (await client.get("/api/v1/merchant/orders?state=paid", headers=merchant)).json()["items"]
    assert [o["order_id"] for o in paid] == [ids[2], ids[0]]
    today = datetime.now(CHINA).date()
    got = (await client.get(f"/api/v1/merchant/orders?day={today}", headers=merchant)).json()["items"]
    assert len(got) == 4
    yesterday = today - timedelta(days=1)
    assert (await client.get(f"/api/v1/merchant/orders?day={yesterday}", headers=merchant)).json()[
        "items"
    ] == []
    first = (await client.get("/api/v1/merchant/orders?limit=3", headers=merchant)).json()
    assert len(first["items"]) == 3 and first["next_offset"] == 3
    rest = (await client.get(first["next"], headers=merchant)).json()
    assert [o["order_id"] for o in rest["items"]] == [ids[0]] and rest["next"] is None
    bad = await client.get("/api/v1/merchant/orders?state=lost", headers=merchant)
    assert bad.status_code == 422 and bad.json()["code"] == "unknown_state"
    # the settlement, against the ledger's own rows
    owner = paid[0]["owner"]
    rows = (
        await LedgerEntry.select()
        .where(LedgerEntry.account == owner.replace("merchant:", "payable:merchant:"))
        .run()
    )
    ledger_paid = -sum(e["amount"] for e in rows if e["kind"] == "payment")
    ledger_refunded = sum(e["amount"] for e in rows if e["kind"] == "refund")
    assert (ledger_paid, ledger_refunded) == (sum(amounts), 400)
    r = await client.get(f"/api/v1/merchant/settlements?from={yesterday}&to={today}", headers=merchant)
    assert r.status_code == 200, r.text
    days = r.json()["days"]
    assert [d["day"] for d in days] == [yesterday.isoformat(), today.isoformat()]
    assert days[0]["paid_count"] == 0 and days[0]["by_channel"] == {}
    day = days[1]
    assert (day["paid_count"], day["paid_amount"], day["refunded_amount"], day["net"]) == (
        3,
        ledger_paid,
        ledger_refunded,
        ledger_paid - ledger_refunded,
    )
    assert day["by_channel"] == {
        "sandbox": {"paid_count": 3, "paid_amount": 5160, "refunded_amount": 400, "net": 4760}
    }
    text = (
        await client.get(f"/api/v1/merchant/settlements?from={today}&to={today}&format=csv", headers=merchant)
    ).text
    assert list(csv.reader(io.StringIO(text))) == [
        ["day", "channel", "paid_count", "paid_amount", "refunded_amount", "net"],
        [today.isoformat(), "sandbox", "3", "5160", "400", "4760"],
        [today.isoformat(), "all", "3", "5160", "400", "4760"],
    ]
    wrong = await client.get(f"/api/v1/merchant/settlements?from={today}&to={yesterday}", headers=merchant)
    assert wrong.status_code == 422 and wrong.json()["code"] == "bad_period"
    for query in ("from=0001-01-01&to=0001-01-02", "from=9999-12-31&to=9999-12-31", "from=x&to=y"):
        r = await client.get(f"/api/v1/merchant/settlements?{query}", headers=merchant)
        assert r.status_code == 422 and r.json()["code"] == "bad_period", query
    r = await client.get("/api/v1/merchant/orders?day=9999-12-31", headers=merchant)
    assert r.status_code == 422 and r.json()["code"] == "invalid_date"


# ---- races (meaningful on PostgreSQL, where requests really run at once) -------------------------------
async def test_a_reference_or_label_ending_in_a_newline_is_refused(shop):
    """The schemas' patterns end in ``$``, which also matches before a final newline: ``ref\n`` made an
    order (a reference the till can then never poll by), and a till's place kept its control character."""
    client = shop
    merchant, till = await _merchant(client, "换行小店")
    body = {"reference": "nl-1\n", "amount": 100}
    r = await client.post("/api/v1/payments/orders", json=body, headers=merchant)
    assert r.status_code == 400 and r.json()["code"] == "invalid_body", r.text
    r = await _scan(client, till, "HC1:x", 100, reference="nl-2\n")
    assert r.status_code == 400 and r.json()["code"] == "invalid_body", r.text
    r = await _scan(client, till, "HC1:x", 100, description="两盘饺子\n")
    assert r.status_code == 400 and r.json()["code"] == "invalid_body", r.text
    r = await client.post("/api/v1/merchant/tills", json={"place": "counter 3\n"}, headers=merchant)
    assert r.status_code == 400 and r.json()["code"] == "invalid_body", r.text


async def test_one_code_at_two_tills_at_once_pays_once(shop, login, new_phone):
    client = shop
    _, till_a = await _merchant(client)
    _, till_b = await _merchant(client, "隔壁超市")
    _, me = await _citizen(client, login, new_phone, enabled=True, method="sandbox")
    code = await _code(client, me)
    replies = await asyncio.gather(
        *(_scan(client, t, code, 700, f"race-{i}") for i, t in enumerate([till_a, till_b] * 3))
    )
    paid = [r for r in replies if r.status_code == 200]
    assert len(paid) == 1 and paid[0].json()["result"] == "paid", [r.text for r in replies]
    assert {r.json()["code"] for r in replies if r.status_code != 200} == {"paycode_code_replayed"}
    citizen = (await client.get("/api/v1/me", headers=me)).json()["id"]
    assert await PayCodePayment.count().where(PayCodePayment.citizen_id == citizen) == 1


async def test_a_tills_retries_at_once_charge_once(shop, login, new_phone):
    client = shop
    _, till = await _merchant(client)
    _, me = await _citizen(client, login, new_phone, enabled=True, method="sandbox")
    code = await _code(client, me)
    replies = await asyncio.gather(*(_scan(client, till, code, 900, "retry-1") for _ in range(5)))
    assert [r.status_code for r in replies] == [200] * 5, [r.text for r in replies]
    assert len({r.json()["order_id"] for r in replies}) == 1
    oid = replies[0].json()["order_id"]
    assert (await client.get("/api/v1/payments/paycode/retry-1", headers=till)).json()["result"] == "paid"
    assert len(await _ledger(oid)) == 2  # one payment: two entries


async def test_a_code_that_lost_the_race_for_a_reference_is_not_used_up(shop, login, new_phone, monkeypatch):
    """Two scans with one reference at once, each with another citizen's code: the one whose order was
    written second is answered 409 reference_reused (or the payment, for the same amount), and its
    code, which paid nothing, is not used up. The race is made certain here: the second scan does not
    see the first one's order when it looks, only when it writes."""
    client = shop
    _, till = await _merchant(client)
    _, first = await _citizen(client, login, new_phone, enabled=True, method="sandbox")
    _, second = await _citizen(client, login, new_phone, enabled=True, method="sandbox")
    won = await _scan(client, till, await _code(client, first), 700, "race-ref")
    assert won.status_code == 200 and won.json()["result"] == "paid", won.text
    service = client.services.merchants.paycode
    real = service._existing
    calls = []

    async def not_yet(owner, reference):
        calls.append(reference)
        return None if len(calls) == 1 else await real(owner, reference)

    monkeypatch.setattr(service, "_existing", not_yet)
    code = await _code(client, second)
    lost = await _scan(client, till, code, 800, "race-ref")
    assert lost.status_code == 409 and lost.json()["code"] == "reference_reused", lost.text
    monkeypatch.undo()
    again = await _scan(client, till, code, 800, "race-ref-2")  # the same code, at the next sale
    assert again.status_code == 200 and again.json()["result"] == "paid", again.text


async def test_two_confirmations_at_once_charge_once(shop, login, new_phone):
    client = shop
    _, till = await _merchant(client)
    _, me = await _citizen(client, login, new_phone, enabled=True, method="sandbox", limit=100)
    waiting = (await _scan(client, till, await _code(client, me), 1500, "both-1")).json()
    url = f"/api/v1/me/paycode/confirmations/{waiting['confirmation_id']}"
    replies = await asyncio.gather(
        *(client.post(url, json={"decision": "approve"}, headers=me) for _ in range(4))
    )
    assert {r.status_code for r in replies} == {200}, [r.text for r in replies]
    assert (await client.get("/api/v1/payments/paycode/both-1", headers=till)).json()["result"] == "paid"
    assert len(await _ledger(waiting["order_id"])) == 2
    events = await OutboxEvent.select(OutboxEvent.type).where(OutboxEvent.order == waiting["order_id"]).run()
    assert [e["type"] for e in events] == ["order.paid"]
