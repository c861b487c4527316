"""The payment centre's own work against WeChat Pay's local double (tests/doubles/wechatpay.py), as the
background loop does it (``PaymentRecovery.run_once``): a payment whose notification is lost is found by
query; a refund answered PROCESSING succeeds on the retry; an expired order's trade is closed at WeChat;
the day's trade bill, as WeChat publishes it, is downloaded and reconciled with one planted difference
reported."""

import json
import time
import uuid
from datetime import datetime, timedelta, timezone
from datetime import time as clock_time

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from backend.clock import FrozenClock
from payments.tables import ChannelStatement, LedgerEntry, PaymentOrder, ReconciliationRun, Refund
from tests.doubles import wechatpay as wechatpay_double
from tests.doubles.wechatpay import WeChatPayDouble

CHINA = timezone(timedelta(hours=8))
MCHID, APPID = "1900000001", "wxd678efh567hg6787"
MERCHANT_SERIAL = "3775B6A45ACD588826D15E583A95F5DD04A5F2A2"
# the double stamps payments with the real time: our clock is the next morning, once WeChat's bill of
# today is out (10:00), so that today is "yesterday" for the daily run
TODAY = datetime.now(CHINA).date()
CLOCK = FrozenClock(datetime.combine(TODAY + timedelta(days=1), clock_time(10, 1), CHINA))


@pytest.fixture(scope="module", autouse=True)
def _one_business_day():
    """The double's trades land on TODAY's bill even when the run crosses midnight in China."""
    wechatpay_double.pin_business_day(TODAY)
    yield
    wechatpay_double.pin_business_day(None)


@pytest.fixture(scope="module")
def merchant_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def double(merchant_key):
    return WeChatPayDouble(
        mchid=MCHID, appid=APPID, merchant_key=merchant_key.public_key(), merchant_serial=MERCHANT_SERIAL
    )


@pytest.fixture(scope="module")
async def client(make_module_client, merchant_key, double, tmp_path_factory):
    key_file = tmp_path_factory.mktemp("wechat-centre") / "apiclient_key.pem"
    key_file.write_bytes(
        merchant_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    async with make_module_client(
        clock=CLOCK,
        payment_channels="wechatpay",
        wechatpay_mchid=MCHID,
        wechatpay_appid=APPID,
        wechatpay_apiv3_key=double.apiv3_key,
        wechatpay_private_key_file=str(key_file),
        wechatpay_cert_serial=MERCHANT_SERIAL,
    ) as c:
        c.services.payments.channels["wechatpay"].use_client(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=double))
        )
        yield c


async def _paying(client, people, amount):
    app_auth, me, openid = people
    body = {"reference": f"wxc-{time.time_ns()}", "amount": amount, "openid": openid}
    r = await client.post("/api/v1/payments/orders", json=body, headers=app_auth)
    assert r.status_code == 201, r.text
    oid = r.json()["order_id"]
    r = await client.post(
        f"/api/v1/payments/orders/{oid}/pay", json={"channel": "wechatpay", "method": "native"}, headers=me
    )
    assert r.status_code == 200, r.text
    return oid


async def _state(oid):
    return (await PaymentOrder.select(PaymentOrder.state).where(PaymentOrder.id == oid).first().run())[
        "state"
    ]


async def test_the_centre_drives_wechat_pay(client, double, paying_citizen):
    recovery = client.services.payments.recovery
    people = await paying_citizen(client)

    # a payment whose notification is lost: asked about once payment_query_after has passed
    kept = await _paying(client, people, 880)
    double.pay(uuid.UUID(kept).hex)  # the citizen paid; WeChat's notification never reaches us
    CLOCK.advance(121)
    assert (await recovery.run_once(kinds=("query",))).get("recovered") == 1
    assert await _state(kept) == "paid"

    # a refund WeChat answers PROCESSING: pending, then succeeded when the retry asks
    double.refund_processing()
    r = await client.post(
        f"/api/v1/payments/orders/{kept}/refunds", json={"reference": "r1", "amount": 80}, headers=people[0]
    )
    assert r.status_code == 202 and r.json()["state"] == "pending", r.text
    CLOCK.advance(61)
    assert (await recovery.run_once(kinds=("refund",))).get("succeeded") == 1
    assert (await Refund.select(Refund.state).where(Refund.id == r.json()["refund_id"]).first().run())[
        "state"
    ] == "succeeded"

    # a payment WeChat will leave off its bill: the planted difference
    planted = await _paying(client, people, 300)
    double.pay(uuid.UUID(planted).hex)
    CLOCK.advance(121)
    assert (await recovery.run_once(kinds=("query",))).get("recovered") == 1

    # an order left unpaid past its window: closed here, then at WeChat
    unpaid = await _paying(client, people, 500)
    CLOCK.advance(1801)
    await client.services.payments.orders.close_expired()
    assert (await recovery.run_once(kinds=("close",))).get("closed", 0) >= 1
    assert double.trades[uuid.UUID(unpaid).hex]["trade_state"] == "CLOSED"

    # the day's bill as WeChat publishes it, without the planted payment: reconciled by the daily run
    del double.trades[uuid.UUID(planted).hex]
    double.publish_bill(TODAY)
    await recovery.run_once(kinds=("bill",))
    statement = (
        await ChannelStatement.select()
        .where(ChannelStatement.channel_day == f"wechatpay/{TODAY}")
        .first()
        .run()
    )
    assert statement is not None and statement["rows"] == 2  # the kept payment and its refund
    [run] = await ReconciliationRun.select().where(ReconciliationRun.day == TODAY.isoformat()).run()
    mismatches = run["mismatches"]
    mismatches = json.loads(mismatches) if isinstance(mismatches, str) else mismatches
    assert [(m["kind"], m["order_id"], m["our_amount"]) for m in mismatches] == [
        ("missing_theirs", planted, 300)
    ]
    booked = await LedgerEntry.count().where(LedgerEntry.account == "channel:wechatpay").run()
    assert run["ledger_rows"] == booked == 3
