"""The citizen code as a pay code at a merchant's till, charged through Alipay's agreement withholding
(alipay.trade.pay, GENERAL_WITHHOLDING) against its local double (tests/doubles/alipay.py): the agreement
an operator recorded, the charge paid at once, one the buyer must confirm at Alipay (its notify
completes it), and one Alipay refuses."""

import json
import secrets

import httpx
import pytest

from payments.tables import ChannelTask, LedgerEntry, PaymentOrder
from tests.doubles.alipay import AlipayDouble
from tests.integration.payments.conftest import basic

GATEWAY = "https://openapi.alipay.test/gateway.do"


@pytest.fixture(scope="module")
def double(channel_keys):
    _, player, _ = channel_keys
    return AlipayDouble(player.app_id, player.seller_id, player.app_key.public_key())


@pytest.fixture(scope="module")
async def app(make_module_client, channel_keys, double, tmp_path_factory):
    _, player, _ = channel_keys
    alipay_public = tmp_path_factory.mktemp("alipay_double") / "alipay_public.pem"
    alipay_public.write_bytes(double.public_pem())
    async with make_module_client(
        payment_channels="alipay,sandbox",
        alipay_app_id=player.app_id,
        alipay_seller_id=player.seller_id,
        alipay_public_key_file=str(alipay_public),
        alipay_app_private_key_file=str(player.app_private_file),
        alipay_gateway=GATEWAY,
    ) as client:
        client.services.payments.channels["alipay"].transport = httpx.ASGITransport(app=double)
        yield client


async def _setup(client, double, login, new_phone, *, agreement=True):
    cred = await client.services.auth.machines.create("merchant", name="中街冰点")
    till = (await client.post("/api/v1/merchant/tills", json={"place": "1"}, headers=basic(cred))).json()
    pair = await login(client, new_phone())
    me = {"Authorization": f"Bearer {pair['access_token']}"}
    citizen = (await client.get("/api/v1/me", headers=me)).json()["id"]
    refused = await client.put("/api/v1/me/paycode", json={"enabled": True, "method": "alipay"}, headers=me)
    assert refused.status_code == 422 and refused.json()["code"] == "paycode_no_agreement"  # sign it first
    agreement_no = "2021" + "".join(secrets.choice("0123456789") for _ in range(16))
    if agreement:
        double.agreements.add(agreement_no)
    # recorded as Alipay confirmed it (here by the operator's command's service)
    await client.services.merchants.paycode.record_agreement(
        citizen, "alipay", agreement_no=agreement_no, signed_by="operator:test"
    )
    r = await client.put("/api/v1/me/paycode", json={"enabled": True, "method": "alipay"}, headers=me)
    assert r.status_code == 200 and r.json()["methods"] == ["credit", "alipay", "sandbox"], r.text
    code = (await client.get("/api/v1/codes/current", headers=me)).json()["token"]
    return basic(cred), basic(till), code, agreement_no


async def _scan(client, till, code, amount, reference):
    return await client.post(
        "/api/v1/payments/paycode",
        json={"code": code, "amount": amount, "reference": reference, "description": "冰点 两支"},
        headers=till,
    )


async def test_paid_by_code_through_alipays_withholding(app, double, login, new_phone):
    merchant, till, code, agreement_no = await _setup(app, double, login, new_phone)
    r = await _scan(app, till, code, 1250, "ice-1")
    assert r.status_code == 200, r.text
    assert (r.json()["result"], r.json()["method"], r.json()["order_state"]) == ("paid", "alipay", "paid")
    oid = r.json()["order_id"]
    params = next(p for p in reversed(double.requests) if p.get("method") == "alipay.trade.pay")
    biz = json.loads(params["biz_content"])
    assert biz["product_code"] == "GENERAL_WITHHOLDING" and biz["out_trade_no"] == oid
    assert biz["agreement_params"] == {"agreement_no": agreement_no} and biz["total_amount"] == "12.50"
    order = (await app.get(f"/api/v1/payments/orders/{oid}", headers=merchant)).json()
    assert order["state"] == "paid" and order["channel"] == "alipay"
    ledger = await LedgerEntry.select().where(LedgerEntry.order == oid).run()
    assert sorted((e["account"], e["amount"]) for e in ledger) == sorted(
        [("channel:alipay", 1250), (f"payable:{order['owner']}", -1250)]
    )


async def test_a_withholding_alipay_has_not_finished_is_completed_by_its_notify(
    app, double, login, new_phone
):
    _, till, code, _ = await _setup(app, double, login, new_phone)
    double.withhold_waiting = True
    try:
        r = await _scan(app, till, code, 800, "ice-2")
    finally:
        double.withhold_waiting = False
    assert r.status_code == 200 and r.json()["result"] == "pending", r.text
    oid = r.json()["order_id"]
    double.pay(oid)
    delivered = await double.deliver(app, oid)
    assert delivered.status_code == 200 and delivered.text == "success"
    polled = await app.get("/api/v1/payments/paycode/ice-2", headers=till)
    assert polled.json()["result"] == "paid" and polled.json()["order_state"] == "paid"


async def test_a_withholding_whose_notify_is_lost_is_recovered_by_the_centres_query(
    app, double, login, new_phone
):
    """Alipay is still waiting when it answers the charge (10003); the buyer then pays at Alipay and the
    notify never comes, and the till does not poll again (the cashier gave up waiting). The payment
    centre asks Alipay about it like any payment whose notice has not come: the citizen's money is never
    left behind an order that stays unpaid and never expires."""
    _, till, code, _ = await _setup(app, double, login, new_phone)
    double.withhold_waiting = True
    try:
        r = await _scan(app, till, code, 900, "ice-lost")
    finally:
        double.withhold_waiting = False
    assert r.status_code == 200 and r.json()["result"] == "pending", r.text
    oid = r.json()["order_id"]
    double.pay(oid)  # paid at Alipay; its notify is lost
    task = await ChannelTask.select().where(ChannelTask.key == f"query/alipay/{oid}").first().run()
    assert task is not None and task["done_at"] is None  # the centre owes Alipay a query
    # its time comes (query_after later): one pass of the recovery, as every worker runs it
    await (
        ChannelTask.update({ChannelTask.next_at: app.services.payments.recovery.clock.now()})
        .where(ChannelTask.id == task["id"])
        .run()
    )
    await app.services.payments.recovery.run_once(("query",))
    order = await PaymentOrder.select().where(PaymentOrder.id == oid).first().run()
    assert order["state"] == "paid"
    polled = await app.get("/api/v1/payments/paycode/ice-lost", headers=till)
    assert polled.json()["result"] == "paid"
    entries = await LedgerEntry.select().where(LedgerEntry.order == oid).run()
    assert sum(e["amount"] for e in entries) == 0 and len(entries) == 2
    late = await double.deliver(app, oid)  # the notify comes after all: nothing more
    assert late.text == "success"
    assert len(await LedgerEntry.select().where(LedgerEntry.order == oid).run()) == 2


async def test_a_withholding_alipay_refuses_fails_and_closes_the_order(app, double, login, new_phone):
    _, till, code, _ = await _setup(app, double, login, new_phone, agreement=False)  # unknown at Alipay
    r = await _scan(app, till, code, 600, "ice-3")
    assert r.status_code == 200, r.text
    assert (r.json()["result"], r.json()["reason"], r.json()["order_state"]) == (
        "failed",
        "channel_refused",
        "closed",
    )
