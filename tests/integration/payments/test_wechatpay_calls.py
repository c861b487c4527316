"""WeChat Pay's API v3 calls against the local double (tests/doubles/wechatpay.py): each call, the
double refusing a request altered after it was signed, answers signed wrong refused, the platform keys
fetched and rotated, the bills; then end to end through our HTTP API."""

import asyncio
import base64
import time
import uuid
from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from backend.errors import AppError, Conflict, InvalidInput, ServiceUnavailable
from payments.channels.base import NotificationRejected
from payments.channels.wechatpay import ApiConfig, WeChatPay, WeChatPayAPI, out_trade_no
from payments.tables import LedgerEntry, OutboxEvent, PaymentOrder, Refund
from tests.doubles.wechatpay import WeChatPayDouble

CHINA = timezone(timedelta(hours=8))
MCHID, APPID = "1900000001", "wxd678efh567hg6787"
MERCHANT_SERIAL = "3775B6A45ACD588826D15E583A95F5DD04A5F2A2"
NOTIFY = "https://city.example/api/v1/payments/notify/wechatpay"


@pytest.fixture(scope="module")
def merchant_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class Tamper(httpx.AsyncBaseTransport):
    """Passes requests to the double, altering one byte of the body or the URL after they were signed
    (or a bill file on its way back)."""

    def __init__(self, inner, what):
        self.inner, self.what = inner, what

    async def handle_async_request(self, request):
        if self.what == "body" and request.content:
            body = bytearray(request.content)
            body[-3] ^= 1
            request = httpx.Request(request.method, request.url, headers=request.headers, content=bytes(body))
        elif self.what == "url":  # one more character in the out_trade_no
            url = str(request.url).replace("out-trade-no/", "out-trade-no/0", 1)
            request = httpx.Request(request.method, url, headers=request.headers, content=request.content)
        response = await self.inner.handle_async_request(request)
        if self.what == "file" and request.url.path == "/v3/billdownload/file":
            body = (await response.aread()).replace(b"`SUCCESS", b"`REVOKED", 1)
            return httpx.Response(response.status_code, headers=response.headers, content=body)
        return response


def _double(merchant_key, **kw):
    return WeChatPayDouble(
        mchid=MCHID,
        appid=APPID,
        merchant_key=merchant_key.public_key(),
        merchant_serial=MERCHANT_SERIAL,
        **kw,
    )


def _channel(double, merchant_key, *, seed=None, apiv3_key=None, transport=None, key=None):
    channel = WeChatPayAPI(
        mchid=MCHID,
        appid=APPID,
        apiv3_key=(apiv3_key or double.apiv3_key).encode(),
        platform_keys=seed or {},
        api=ApiConfig(
            base="https://api.mch.weixin.qq.com", private_key=key or merchant_key, cert_serial=MERCHANT_SERIAL
        ),
        notify_url=NOTIFY,
    )
    channel.use_client(
        httpx.AsyncClient(
            transport=transport or httpx.ASGITransport(app=double), base_url="https://api.mch.weixin.qq.com"
        )
    )
    return channel


@pytest.fixture
def wx(merchant_key):
    double = _double(merchant_key)
    return double, _channel(double, merchant_key)


def _order(amount=1234, **kw):
    return {
        "order_ref": str(uuid.uuid4()),
        "amount": amount,
        "description": "停车费",
        "expires_at": datetime.now(UTC) + timedelta(minutes=15),
        "method": "native",
        "payer": None,
        **kw,
    }


def _verifies(public, message, signature):
    public.verify(base64.b64decode(signature), message.encode(), padding.PKCS1v15(), hashes.SHA256())
    return True


async def test_native_prepay_query_and_close(wx):
    double, channel = wx
    order = _order()
    pay = await channel.start_payment(order)
    assert pay["method"] == "native" and pay["code_url"].startswith("weixin://wxpay/bizpayurl?pr=")
    trade = double.trades[uuid.UUID(order["order_ref"]).hex]  # out_trade_no: the UUID's 32 hex digits
    assert trade["amount"] == {"total": 1234, "currency": "CNY"} and trade["notify_url"] == NOTIFY
    assert trade["time_expire"].endswith("+08:00")
    assert datetime.fromisoformat(trade["time_expire"]) == order["expires_at"].replace(microsecond=0)
    # asking again: the same trade, the same QR (WeChat's idempotency on out_trade_no)
    assert (await channel.start_payment(order))["code_url"] == pay["code_url"] and len(double.trades) == 1
    assert await channel.query_payment(order) == []  # NOTPAY
    double.pay(out_trade_no(order["order_ref"]))
    [paid] = await channel.query_payment(order)
    assert (paid.kind, paid.order_ref, paid.amount, paid.refusal) == ("payment", order["order_ref"], 1234, "")
    assert paid.notify_id == f"query:{paid.channel_txn}" and paid.channel_time is not None
    with pytest.raises(Conflict) as paid_already:
        await channel.close_payment(order)
    assert paid_already.value.code == "channel_trade_paid"
    # an unpaid trade closes, and is then told closed; one never opened is closed already
    other = _order(500)
    await channel.start_payment(other)
    await channel.close_payment(other)
    [closed] = await channel.query_payment(other)
    assert (closed.kind, closed.order_ref) == ("closed", other["order_ref"])
    await channel.close_payment(_order())
    assert await channel.query_payment(_order()) == []  # ORDER_NOT_EXIST


async def test_app_and_jsapi_parameters_are_signed_by_the_merchant(wx, merchant_key):
    double, channel = wx
    public = merchant_key.public_key()
    app = await channel.start_payment(_order(method="app"))
    assert (app["appid"], app["partnerid"], app["package"]) == (APPID, MCHID, "Sign=WXPay")
    assert app["prepayid"].startswith("wx")
    assert _verifies(
        public, f"{APPID}\n{app['timestamp']}\n{app['noncestr']}\n{app['prepayid']}\n", app["sign"]
    )
    order = _order(method="jsapi", payer="oUpF8uMuAJO_M2pxb1Q9zNjWeS6o")
    js = await channel.start_payment(order)
    assert js["package"].startswith("prepay_id=wx") and js["signType"] == "RSA" and js["appId"] == APPID
    assert _verifies(
        public, f"{APPID}\n{js['timeStamp']}\n{js['nonceStr']}\n{js['package']}\n", js["paySign"]
    )
    assert double.trades[out_trade_no(order["order_ref"])]["payer"] == {
        "openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
    }
    with pytest.raises(InvalidInput) as no_payer:
        await channel.start_payment(_order(method="jsapi"))
    assert no_payer.value.code == "payer_required"


@pytest.mark.parametrize("what", ["body", "url"])
async def test_the_double_refuses_a_request_altered_after_signing(merchant_key, what):
    double = _double(merchant_key)
    ok = _channel(double, merchant_key)
    order = _order()
    await ok.start_payment(order)  # the platform keys are fetched by a request that is not altered
    tampered = _channel(
        double, merchant_key, seed=dict(ok._platform), transport=Tamper(httpx.ASGITransport(app=double), what)
    )
    tampered._certs_at = time.time()
    with pytest.raises(AppError) as refused:
        if what == "body":
            await tampered.start_payment(_order())
        else:
            await tampered.query_payment(order)
    assert refused.value.extra["channel_code"] == "SIGN_ERROR"
    method, _url, _ = double.requests[-1]
    assert method == ("POST" if what == "body" else "GET")
    # signed by another key than the merchant certificate's: refused the same way
    stranger = _channel(
        double,
        merchant_key,
        seed=dict(ok._platform),
        key=rsa.generate_private_key(public_exponent=65537, key_size=2048),
    )
    stranger._certs_at = time.time()
    with pytest.raises(Conflict) as wrong_key:
        await stranger.query_payment(order)
    assert wrong_key.value.extra["channel_code"] == "SIGN_ERROR"


async def test_the_double_checks_the_authorization_byte_for_byte(wx):
    double, channel = wx
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=double), base_url="https://api.mch.weixin.qq.com"
    ) as c:
        url = f"/v3/pay/transactions/out-trade-no/{'a' * 32}?mchid={MCHID}"
        ts, nonce = str(int(time.time())), "593BEC0C930BF1AFEB40B4A08C8FB242"
        good = channel.authorization("GET", url, b"", timestamp=ts, nonce=nonce)
        assert (
            await c.get(url, headers={"Authorization": good})
        ).status_code == 404  # ORDER_NOT_EXIST: signed well
        stale = channel.authorization("GET", url, b"", timestamp=str(int(time.time()) - 400), nonce=nonce)
        for headers in (
            {"Authorization": stale},
            {
                "Authorization": good.replace(
                    f'nonce_str="{nonce}"', 'nonce_str="593BEC0C930BF1AFEB40B4A08C8FB243"'
                )
            },
            {"Authorization": good.replace(MERCHANT_SERIAL, "0" * 40)},
            {"Authorization": good.replace("WECHATPAY2-SHA256-RSA2048", "WECHATPAY2-SHA256-RSA")},
            {},
        ):
            r = await c.get(url, headers=headers)
            assert r.status_code == 401 and r.json()["code"] == "SIGN_ERROR", headers
        r = await c.get(
            url.replace("mchid=", "mchid=1"), headers={"Authorization": good}
        )  # the query is signed too
        assert r.status_code == 401


@pytest.mark.parametrize("how", ["missign", "unsigned"])
async def test_an_answer_signed_wrong_is_never_trusted(wx, how):
    double, channel = wx
    order = _order()
    await channel.start_payment(order)
    double.pay(out_trade_no(order["order_ref"]))
    setattr(double, how, 1)
    with pytest.raises(ServiceUnavailable) as busy:
        await channel.query_payment(order)
    assert busy.value.code == "channel_unavailable"
    assert len(await channel.query_payment(order)) == 1  # the same call, answered well, is believed


async def test_platform_keys_are_fetched_and_rotated(merchant_key):
    double = _double(merchant_key)
    first = double.serial
    channel = _channel(double, merchant_key)
    assert channel.platform_serials == []
    await channel.start_payment(_order())
    assert channel.platform_serials == [first]
    fetches = sum(1 for _, url, _ in double.requests if url == "/v3/certificates")
    # WeChat rotates: the new certificate signs the answers; we fetch the list at once and verify
    second = double.rotate()
    await channel.start_payment(_order())
    assert channel.platform_serials == sorted([first, second])
    assert sum(1 for _, url, _ in double.requests if url == "/v3/certificates") == fetches + 1
    # a notification signed by a certificate we do not hold yet: refused, the list fetched in the
    # background, and WeChat's resend verifies
    order = _order()
    await channel.start_payment(order)
    third = double.rotate()
    channel._unknown_at = float("-inf")  # the minute between fetches for unknown serials has passed
    _, headers, body = double.pay(out_trade_no(order["order_ref"]))
    with pytest.raises(NotificationRejected):
        channel.verify(headers, body, time.time())
    for task in list(channel._tasks):
        await task
    assert third in channel.platform_serials
    [n] = channel.verify(headers, body, time.time())
    assert (n.kind, n.order_ref) == ("payment", order["order_ref"])
    # a list that does not decrypt with our APIv3 key is not believed
    wrong = _channel(double, merchant_key, apiv3_key="x" * 32)
    with pytest.raises(ServiceUnavailable):
        await wrong.start_payment(_order())
    # a seed folder's keys verify the first list; a seed that does not verify it refuses it
    seeded = _channel(
        double, merchant_key, seed={double.serial: WeChatPay.load_public_key(double.public_pem())}
    )
    await seeded.start_payment(_order())
    assert seeded.platform_serials == sorted([first, second, third])


async def test_refund_processing_then_succeeded_on_query(wx):
    double, channel = wx
    order = _order(1000)
    await channel.start_payment(order)
    double.pay(out_trade_no(order["order_ref"]))
    [paid] = await channel.query_payment(order)
    refund = {
        "order_ref": order["order_ref"],
        "refund_ref": str(uuid.uuid4()),
        "amount": 300,
        "total": 1000,
        "channel_txn": paid.channel_txn,
        "reason": "退还多收",
    }
    double.refund_processing()
    assert await channel.request_refund(refund) == []
    assert len(double.refunds) == 1
    [done] = await channel.query_refund(refund)
    assert (done.kind, done.amount, done.refund_ref, done.order_ref, done.payment_txn) == (
        "refund",
        300,
        refund["refund_ref"],
        order["order_ref"],
        paid.channel_txn,
    )
    # asking again with the same out_refund_no: the same refund, not a second one
    [again] = await channel.request_refund(refund)
    assert again.notify_id == done.notify_id and len(double.refunds) == 1
    # a refund answered SUCCESS at once is a refund notification; one WeChat closed is refund_failed
    other = {**refund, "refund_ref": str(uuid.uuid4()), "amount": 200}
    [now] = await channel.request_refund(other)
    assert now.kind == "refund" and now.amount == 200
    double.refunds[out_trade_no(other["refund_ref"])]["status"] = "CLOSED"
    [failed] = await channel.query_refund(other)
    assert (failed.kind, failed.failure) == ("refund_failed", "CLOSED")
    assert await channel.query_refund({**refund, "refund_ref": str(uuid.uuid4())}) == []
    with pytest.raises(Conflict):  # more than was paid: WeChat refuses before doing anything
        await channel.request_refund({**refund, "refund_ref": str(uuid.uuid4()), "amount": 900})


async def test_the_days_bills_downloaded_and_checked(wx):
    double, channel = wx
    today = datetime.now(CHINA).date()
    with pytest.raises(ServiceUnavailable) as not_yet:
        await channel.download_bill(today)
    assert not_yet.value.code == "bill_not_ready"
    order = _order(2000, description="停车费, 含夜间")
    await channel.start_payment(order)
    double.pay(out_trade_no(order["order_ref"]))
    [paid] = await channel.query_payment(order)
    refund_ref = str(uuid.uuid4())
    await channel.request_refund(
        {"order_ref": order["order_ref"], "refund_ref": refund_ref, "amount": 500, "total": 2000}
    )
    double.publish_bill(today)
    statement = await channel.download_bill(today)
    assert [(r.type, r.order_id, r.amount, r.fee) for r in statement.rows] == [
        ("payment", order["order_ref"], 2000, 12),
        ("refund", order["order_ref"], 500, -3),
    ]
    assert statement.rows[0].txn_id == paid.channel_txn and statement.rows[1].refund_ref == refund_ref
    assert statement.totals == {"count": 2, "payments": 2000, "refunds": 500, "fees": 9}
    assert statement.raw.startswith("交易时间,".encode()) and b"`" in statement.raw
    double.publish_bill(today, totals_off=1)  # a bill whose totals do not add up is not believed
    with pytest.raises(ServiceUnavailable) as unreadable:
        await channel.download_bill(today)
    assert "does not add up" in unreadable.value.detail and unreadable.value.code == "bill_invalid"
    flow = "\r\n".join(
        [
            "记账时间,微信支付业务单号,资金流水单号,业务名称,业务类型,收支类型,收支金额（元）,账户结余（元）,"
            "资金变更提交申请人,备注,业务凭证号",
            "`2026-11-28 10:00:00,`4200001,`1900000001202611280001,`交易,`交易,`收入,`20.00,`20.00,"
            "`system,`,`",
            "资金流水总笔数,收入笔数,收入金额,支出笔数,支出金额",
            "`1,`1,`20.00,`0,`0.00",
            "",
        ]
    )
    double.publish_fund_flow_bill(today, flow.encode())
    [row] = await channel.download_fund_flow_bill(today)
    assert row["收支金额（元）"] == "20.00" and row["微信支付业务单号"] == "4200001"


# ---- end to end through our HTTP API ------------------------------------------------------------------
@pytest.fixture(scope="module")
def merchant_files(tmp_path_factory, merchant_key):
    path = tmp_path_factory.mktemp("wechat-api") / "apiclient_key.pem"
    path.write_bytes(
        merchant_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return path


@pytest.fixture(scope="module")
def e2e_double(merchant_key):
    return _double(merchant_key)


@pytest.fixture(scope="module")
async def e2e(make_module_client, merchant_files, e2e_double, testgate_app):
    double = e2e_double
    async with make_module_client(
        miniapps=[testgate_app],
        payment_channels="sandbox,wechatpay",
        wechatpay_mchid=MCHID,
        wechatpay_appid=APPID,
        wechatpay_apiv3_key=double.apiv3_key,
        wechatpay_private_key_file=str(merchant_files),
        wechatpay_cert_serial=MERCHANT_SERIAL,
        webhook_interval=0,
        background=True,
    ) as client:
        channel = client.services.payments.notifications.channels["wechatpay"]
        channel.use_client(httpx.AsyncClient(transport=httpx.ASGITransport(app=double)))
        yield client, double, channel


async def _citizen_order(client, paying_citizen, amount):
    app_auth, me, openid = await paying_citizen(client)
    r = await client.post(
        "/api/v1/payments/orders",
        json={
            "reference": f"wx-{time.time_ns()}",
            "amount": amount,
            "description": "停车费",
            "openid": openid,
        },
        headers=app_auth,
    )
    assert r.status_code == 201, r.text
    return app_auth, me, r.json()["order_id"]


async def test_native_payment_end_to_end_with_the_lost_notification_recovered(e2e, paying_citizen):
    client, double, channel = e2e
    app_auth, me, oid = await _citizen_order(client, paying_citizen, 880)
    r = await client.post(
        f"/api/v1/payments/orders/{oid}/pay", json={"channel": "wechatpay", "method": "native"}, headers=me
    )
    assert r.status_code == 200, r.text
    assert r.json()["pay"]["code_url"].startswith("weixin://")
    r = await client.post(
        f"/api/v1/payments/orders/{oid}/pay", json={"channel": "wechatpay", "method": "card"}, headers=me
    )
    assert r.status_code == 422 and r.json()["code"] == "unknown_pay_method"
    double.pay(uuid.UUID(oid).hex)  # the citizen scanned and paid; WeChat's notification is lost
    assert (await PaymentOrder.select(PaymentOrder.state).where(PaymentOrder.id == oid).first().run())[
        "state"
    ] == "paying"
    services = client.services.payments
    answers = [await channel.query_payment({"order_ref": oid}) for _ in range(2)]
    # asked twice (two workers at once, each with its answer): applied once
    await asyncio.gather(*(services.notifications.take("wechatpay", a) for a in answers * 3))
    credits = await LedgerEntry.select().where((LedgerEntry.order == oid) & (LedgerEntry.amount > 0)).run()
    assert [c["amount"] for c in credits] == [880]
    assert (
        await OutboxEvent.count().where((OutboxEvent.order == oid) & (OutboxEvent.type == "order.paid")).run()
        == 1
    )
    row = await PaymentOrder.select().where(PaymentOrder.id == oid).first().run()
    assert (
        row["state"] == "paid" and row["channel_txn"] == double.trades[uuid.UUID(oid).hex]["transaction_id"]
    )
    # the notification arrives after all (WeChat resends): the same payment, acknowledged
    _url, headers, body = double.pay(uuid.UUID(oid).hex)
    r = await client.post("/api/v1/payments/notify/wechatpay", content=body, headers=headers)
    assert r.status_code == 204, r.text
    # a refund: answered processing, then succeeded on query
    double.refund_processing()
    r = await client.post(
        f"/api/v1/payments/orders/{oid}/refunds", json={"reference": "r1", "amount": 80}, headers=app_auth
    )
    assert r.status_code == 202 and r.json()["state"] == "pending", r.text
    refund_id = r.json()["refund_id"]
    await services.notifications.take(
        "wechatpay", await channel.query_refund({"order_ref": oid, "refund_ref": refund_id})
    )
    assert (await Refund.select(Refund.state).where(Refund.id == refund_id).first().run())[
        "state"
    ] == "succeeded"


async def test_jsapi_payment_end_to_end_needs_the_payer(e2e, paying_citizen):
    client, double, _channel = e2e
    _, me, oid = await _citizen_order(client, paying_citizen, 1500)
    r = await client.post(
        f"/api/v1/payments/orders/{oid}/pay", json={"channel": "wechatpay", "method": "jsapi"}, headers=me
    )
    assert r.status_code == 422 and r.json()["code"] == "payer_required"
    r = await client.post(
        f"/api/v1/payments/orders/{oid}/pay",
        json={"channel": "wechatpay", "method": "jsapi", "payer": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
        headers=me,
    )
    assert r.status_code == 200, r.text
    assert r.json()["pay"]["package"].startswith("prepay_id=")
    _, headers, body = double.pay(uuid.UUID(oid).hex)
    r = await client.post("/api/v1/payments/notify/wechatpay", content=body, headers=headers)
    assert r.status_code == 204, r.text
    assert (await PaymentOrder.select(PaymentOrder.state).where(PaymentOrder.id == oid).first().run())[
        "state"
    ] == "paid"


async def test_a_bill_file_is_believed_only_by_its_hash_and_from_the_api_host(merchant_key):
    double = _double(merchant_key)
    today = datetime.now(CHINA).date()
    order = _order(700)
    await _channel(double, merchant_key).start_payment(order)
    double.pay(out_trade_no(order["order_ref"]))
    double.publish_bill(today)
    altered = _channel(double, merchant_key, transport=Tamper(httpx.ASGITransport(app=double), "file"))
    with pytest.raises(ServiceUnavailable) as bad_hash:
        await altered.download_bill(today)
    assert "does not match its SHA1 hash" in bad_hash.value.detail
    double.base_url = "https://files.elsewhere.example"
    with pytest.raises(ServiceUnavailable) as elsewhere:
        await _channel(double, merchant_key).download_bill(today)
    assert "download_url is not on api.mch.weixin.qq.com" in elsewhere.value.detail


async def test_a_bill_download_past_the_cap_is_cut_off(merchant_key, monkeypatch):
    """The file is read as it streams in and dropped past the cap, never held whole in memory."""
    import payments.channels.wechatpay as wechatpay

    double = _double(merchant_key)
    today = datetime.now(CHINA).date()
    order = _order(700)
    await _channel(double, merchant_key).start_payment(order)
    double.pay(out_trade_no(order["order_ref"]))
    double.publish_bill(today)
    monkeypatch.setattr(wechatpay, "BILL_MAX_BYTES", 64)
    with pytest.raises(ServiceUnavailable) as caught:
        await _channel(double, merchant_key).download_bill(today)
    assert caught.value.code == "channel_unavailable" and "more than 64 bytes" in caught.value.detail
