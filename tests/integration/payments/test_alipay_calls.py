"""Every call we make to Alipay's OpenAPI gateway, against its local double (tests/doubles/alipay.py):
requests signed as python-alipay-sdk signs them and checked byte for byte by the double, answers
verified over their exact text, each call's outcomes, and the precreate QR flow through our HTTP API."""

import asyncio
import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from alipay import AliPay
from alipay.exceptions import AliPayValidationError

from backend.errors import AppError, Conflict, InvalidInput, ServiceUnavailable
from payments.channels.alipay import Alipay
from payments.tables import LedgerEntry, PaymentOrder
from tests.doubles.alipay import CHINA, AlipayDouble

GATEWAY = "https://openapi.alipay.test/gateway.do"


@pytest.fixture(scope="module")
def double(channel_keys):
    """Alipay for the players' app: it knows the app's public key; its own key pair is its own."""
    _, player, _ = channel_keys
    return AlipayDouble(player.app_id, player.seller_id, player.app_key.public_key())


def _channel(player, double, *, transport=None, app_key=True):
    return Alipay(
        app_id=player.app_id,
        seller_id=player.seller_id,
        alipay_public_key=double.key.public_key(),
        app_private_key=player.app_key if app_key else None,
        notify_url="https://city.example/api/v1/payments/notify/alipay",
        gateway=GATEWAY,
        transport=transport or httpx.ASGITransport(app=double),
    )


@pytest.fixture(scope="module")
def channel(channel_keys, double):
    return _channel(channel_keys[1], double)


@pytest.fixture(scope="module")
def sdk(channel_keys, double):
    """python-alipay-sdk, configured as the app: an independent builder and checker of signed requests."""
    _, player, _ = channel_keys
    return AliPay(
        appid=player.app_id,
        app_notify_url=None,
        app_private_key_string=player.app_private_file.read_text(),
        alipay_public_key_string=double.public_pem().decode(),
        sign_type="RSA2",
    )


_n = iter(range(10**6))


def _order(amount=1234, **extra):
    return {
        "order_ref": f"al-{datetime.now(UTC).timestamp():.0f}-{next(_n)}",
        "amount": amount,
        "description": "停车费 & more",
        "expires_at": datetime.now(UTC) + timedelta(minutes=15),
        **extra,
    }


def _refund(order, ref, amount):
    return {"order_ref": order["order_ref"], "refund_ref": ref, "amount": amount, "reason": "退票"}


class Recording(httpx.AsyncBaseTransport):
    """The double behind a transport that keeps each raw answer, and may change a request after it
    was signed (``tamper``: body -> body)."""

    def __init__(self, double, tamper=None):
        self.inner = httpx.ASGITransport(app=double)
        self.tamper = tamper
        self.answers = []

    async def handle_async_request(self, request):
        if self.tamper is not None:
            request = httpx.Request(
                request.method, request.url, headers=request.headers, content=self.tamper(request.read())
            )
        response = await self.inner.handle_async_request(request)
        body = await response.aread()
        self.answers.append(body)
        return httpx.Response(response.status_code, headers=response.headers, content=body)


# ---- requests and answers ------------------------------------------------------------------------
async def test_a_request_is_signed_as_python_alipay_sdk_signs_it(channel, double, sdk):
    order = _order()
    await channel.start_payment({**order, "method": "precreate"})
    ours = double.requests[-1]
    assert ours["method"] == "alipay.trade.precreate" and ours["format"] == "JSON"
    assert ours["sign_type"] == "RSA2" and ours["charset"] == "utf-8" and ours["version"] == "1.0"
    assert ours["notify_url"] == "https://city.example/api/v1/payments/notify/alipay"
    when = datetime.strptime(ours["timestamp"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=CHINA)
    assert abs((when - datetime.now(UTC)).total_seconds()) < 60  # China time
    biz = json.loads(ours["biz_content"])
    assert biz["time_expire"] == order["expires_at"].astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S")
    data = sdk.build_body(
        "alipay.trade.precreate",
        biz_content=biz,
        notify_url=ours["notify_url"],
        timestamp=ours["timestamp"],
        format="JSON",
    )
    theirs = dict(parse_qsl(sdk.sign_data(data), keep_blank_values=True, strict_parsing=True))
    assert theirs == ours  # every parameter, the compact biz_content and the signature


async def test_the_double_refuses_a_request_changed_after_signing(channel_keys, double):
    def tamper(body):
        return body.replace(b"12.34", b"0.01")

    wire = Recording(double, tamper=tamper)
    channel = _channel(channel_keys[1], double, transport=wire)
    with pytest.raises(ServiceUnavailable) as caught:
        await channel.start_payment({**_order(), "method": "precreate"})
    assert caught.value.code == "channel_unavailable"  # its refusal is unsigned: no answer to trust
    answer = json.loads(wire.answers[-1])["alipay_trade_precreate_response"]
    assert (answer["code"], answer["sub_code"]) == ("40002", "isv.invalid-signature")
    assert "sign" not in json.loads(wire.answers[-1])
    # and one signed by a key Alipay does not know for the app
    from cryptography.hazmat.primitives.asymmetric import rsa

    stranger = _channel(channel_keys[1], double, transport=wire)
    stranger._app_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    wire.tamper = None
    with pytest.raises(ServiceUnavailable):
        await stranger.query_payment(_order())
    assert json.loads(wire.answers[-1])["alipay_trade_query_response"]["sub_code"] == "isv.invalid-signature"


async def test_an_answer_whose_sign_does_not_verify_is_no_answer(channel_keys, channel, double, sdk):
    order = _order()
    await channel.start_payment({**order, "method": "precreate"})
    double.pay(order["order_ref"])
    wire = Recording(double)
    watched = _channel(channel_keys[1], double, transport=wire)
    [paid] = await watched.query_payment(order)
    # the double's signed answer verifies by python-alipay-sdk's own rule too
    checked = sdk._verify_and_return_sync_response(wire.answers[-1].decode(), "alipay_trade_query_response")
    assert checked["trade_no"] == paid.channel_txn
    double.missign_next = True
    with pytest.raises(ServiceUnavailable) as caught:
        await watched.query_payment(order)
    assert caught.value.code == "channel_unavailable"
    with pytest.raises(AliPayValidationError):
        sdk._verify_and_return_sync_response(wire.answers[-1].decode(), "alipay_trade_query_response")
    double.busy_next = True  # 20000: the outcome is unknown, asked again later
    with pytest.raises(ServiceUnavailable) as caught:
        await watched.query_payment(order)
    assert caught.value.code == "channel_unavailable"
    assert len(await watched.query_payment(order)) == 1  # and the next call is answered


async def test_without_the_apps_private_key_every_call_is_unavailable(channel_keys, double):
    keyless = _channel(channel_keys[1], double, app_key=False)
    assert keyless.requests_refunds is False and keyless.capabilities == frozenset()
    for call in (
        keyless.start_payment({**_order(), "method": "app"}),
        keyless.query_payment(_order()),
        keyless.close_payment(_order()),
    ):
        with pytest.raises(ServiceUnavailable) as caught:
            await call
        assert caught.value.code == "channel_unavailable"


# ---- the calls -----------------------------------------------------------------------------------
async def test_app_and_page_payments_are_signed_for_alipay(channel, double):
    order = _order()
    app = await channel.start_payment({**order, "method": "app"})
    trade = double.open_order_string(app["order_string"])  # Alipay checks the app's order string
    assert trade.total == 1234 and trade.notify_url.endswith("/notify/alipay")
    assert "format" not in dict(parse_qsl(app["order_string"]))  # as the SDKs write the order string

    other = _order(500)
    page = await channel.start_payment({**other, "method": "page", "return_url": "https://city.example/done"})
    url = urlsplit(page["url"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == GATEWAY
    params = dict(parse_qsl(url.query, strict_parsing=True))
    assert params["method"] == "alipay.trade.page.pay" and params["return_url"] == "https://city.example/done"
    assert json.loads(params["biz_content"])["product_code"] == "FAST_INSTANT_TRADE_PAY"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=double)) as browser:
        r = await browser.get(page["url"])
    assert r.status_code == 200 and other["order_ref"] in r.text  # the double opened the trade
    assert double.trades[other["order_ref"]].status == "WAIT_BUYER_PAY"


async def test_query_payment(channel, double):
    order = _order()
    assert await channel.query_payment(order) == []  # ACQ.TRADE_NOT_EXIST: nothing yet
    qr = await channel.start_payment({**order, "method": "precreate"})
    assert qr["qr_code"].startswith("https://qr.alipay.com/")
    assert await channel.query_payment(order) == []  # WAIT_BUYER_PAY
    trade = double.pay(order["order_ref"])
    [n] = await channel.query_payment(order)
    assert (n.kind, n.amount, n.channel_txn, n.notify_id) == (
        "payment",
        1234,
        trade.trade_no,
        f"query:{trade.trade_no}",
    )
    assert n.refusal == "" and n.channel_time is not None
    assert n.channel_time == datetime.strptime(trade.paid_at, "%Y-%m-%d %H:%M:%S").replace(tzinfo=CHINA)
    closing = _order()
    await channel.start_payment({**closing, "method": "precreate"})
    await channel.close_payment(closing)
    [n] = await channel.query_payment(closing)
    assert n.kind == "closed"


async def test_close_payment(channel, double):
    await channel.close_payment(_order())  # never opened there: closed already
    order = _order()
    await channel.start_payment({**order, "method": "precreate"})
    await channel.close_payment(order)
    assert double.trades[order["order_ref"]].status == "TRADE_CLOSED"
    await channel.close_payment(order)  # closed twice: still closed
    paid = _order()
    await channel.start_payment({**paid, "method": "precreate"})
    double.pay(paid["order_ref"])
    with pytest.raises(Conflict) as caught:
        await channel.close_payment(paid)
    assert caught.value.code == "channel_trade_paid"


async def test_refunds_now_later_and_asked_twice(channel, double):
    order = _order(1000)
    await channel.start_payment({**order, "method": "precreate"})
    trade = double.pay(order["order_ref"])
    [n] = await channel.request_refund(_refund(order, "rf-1", 300))
    assert (n.kind, n.amount, n.cumulative, n.refund_ref) == ("refund", 300, True, "rf-1")
    assert (n.payment_txn, n.channel_txn) == (trade.trade_no, f"{trade.trade_no}/rf-1")
    assert await channel.request_refund(_refund(order, "rf-1", 300)) == []  # asked twice: no money moved
    assert trade.refunded == 300
    double.refund_later = True
    try:
        assert await channel.request_refund(_refund(order, "rf-2", 200)) == []  # processing
        [q] = await channel.query_refund(_refund(order, "rf-2", 200))
        assert (q.kind, q.amount, q.cumulative, q.refund_ref) == ("refund", 200, False, "rf-2")
        assert q.channel_txn == f"{trade.trade_no}/rf-2" and q.channel_time is not None
    finally:
        double.refund_later = False
    assert await channel.query_refund(_refund(order, "rf-none", 100)) == []  # no such refund: empty
    with pytest.raises(InvalidInput) as caught:  # more than is left: Alipay refuses, nothing done
        await channel.request_refund(_refund(order, "rf-3", 600))
    assert caught.value.code == "channel_refused"
    assert caught.value.extra["channel_code"] == "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL"


async def test_charging_an_agreement(channel, double):
    with pytest.raises(Conflict) as caught:
        await channel.charge_agreement({**_order(), "agreement_no": ""})
    assert caught.value.code == "agreement_missing"
    with pytest.raises(AppError) as refused:
        await channel.charge_agreement({**_order(), "agreement_no": "20215000000000000001"})
    assert refused.value.extra["channel_code"] == "ACQ.AGREEMENT_NOT_EXIST"
    double.agreements.add("20215000000000000002")
    order = {**_order(800), "agreement_no": "20215000000000000002"}
    [n] = await channel.charge_agreement(order)
    assert (n.kind, n.amount, n.order_ref) == ("payment", 800, order["order_ref"])
    params = double.requests[-1]
    biz = json.loads(params["biz_content"])
    assert biz["product_code"] == "GENERAL_WITHHOLDING"
    assert biz["agreement_params"] == {"agreement_no": "20215000000000000002"}
    double.withhold_waiting = True
    try:
        assert await channel.charge_agreement({**_order(), "agreement_no": "20215000000000000002"}) == []
    finally:
        double.withhold_waiting = False


async def test_the_days_bill_downloaded_and_checked(channel, double):
    day = datetime.now(CHINA).date() + timedelta(days=0)
    paid = _order(2500)
    await channel.start_payment({**paid, "method": "precreate"})
    trade = double.pay(paid["order_ref"])
    await channel.request_refund(_refund(paid, "rf-bill", 500))
    double.bills.pop(day.isoformat(), None)
    with pytest.raises(ServiceUnavailable) as caught:
        await channel.download_bill(day)
    assert caught.value.code == "bill_not_ready"
    double.publish_bill(day)
    statement = await channel.download_bill(day)
    assert statement.day == day and statement.media_type == "application/zip"
    ours = [r for r in statement.rows if r.order_id == paid["order_ref"]]
    assert [(r.type, r.amount, r.txn_id, r.refund_ref) for r in ours] == [
        ("payment", 2500, trade.trade_no, ""),
        ("refund", 500, f"{trade.trade_no}/rf-bill", "rf-bill"),
    ]
    assert ours[0].fee == 15 and ours[0].channel_time is not None
    assert statement.totals["count"] == len(statement.rows)
    double.publish_bill(day, plant=1)  # its payments total one fen more than its rows
    with pytest.raises(ServiceUnavailable) as caught:
        await channel.download_bill(day)
    assert caught.value.code == "bill_invalid"


class Fetched(httpx.AsyncBaseTransport):
    """The double behind a transport that notes every URL asked for."""

    def __init__(self, double):
        self.inner = httpx.ASGITransport(app=double)
        self.urls = []

    async def handle_async_request(self, request):
        self.urls.append(str(request.url))
        return await self.inner.handle_async_request(request)


@pytest.mark.parametrize(
    "host", ["169.254.169.254", "127.0.0.1:6379", "openapi.alipay.test.evil.example", "localhost"]
)
async def test_a_bill_url_off_alipays_hosts_is_never_fetched(channel_keys, double, host):
    """The bill's URL comes in a signed answer, but the file is fetched unsigned from wherever it points:
    a URL off Alipay's hosts is refused before any request (our own network is no bill server)."""
    day = datetime.now(CHINA).date()
    double.publish_bill(day)
    wire = Fetched(double)
    watched = _channel(channel_keys[1], double, transport=wire)
    double.bill_host = host
    try:
        with pytest.raises(ServiceUnavailable) as caught:
            await watched.download_bill(day)
    finally:
        double.bill_host = None
    assert caught.value.code == "channel_unavailable"
    assert [u for u in wire.urls if "/bill/" in u] == []
    double.bill_host = "dwbillcenter.alipay.test"  # Alipay's own bill host, beside its gateway's
    try:
        assert (await watched.download_bill(day)).day == day
    finally:
        double.bill_host = None


async def test_a_bill_download_past_the_cap_is_cut_off(channel_keys, double, monkeypatch):
    import payments.channels.alipay as alipay

    day = datetime.now(CHINA).date()
    double.publish_bill(day)
    monkeypatch.setattr(alipay, "BILL_MAX_BYTES", len(double.bills[day.isoformat()]) - 1)
    with pytest.raises(ServiceUnavailable) as caught:
        await _channel(channel_keys[1], double).download_bill(day)
    assert caught.value.code == "channel_unavailable" and "bytes" in caught.value.detail


# ---- through our API -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
async def app(make_module_client, channel_keys, double, tmp_path_factory):
    """One app for the module, Alipay's calls going to the double."""
    _, player, _ = channel_keys
    alipay_public = tmp_path_factory.mktemp("alipay_double") / "alipay_public.pem"
    alipay_public.write_bytes(double.public_pem())
    async with make_module_client(
        payment_channels="sandbox,alipay",
        alipay_app_id=player.app_id,
        alipay_seller_id=player.seller_id,
        alipay_public_key_file=str(alipay_public),
        alipay_app_private_key_file=str(player.app_private_file),
        alipay_gateway=GATEWAY,
        alipay_timeout_seconds="5",
        webhook_interval=0,
    ) as client:
        channel = client.services.payments.channels["alipay"]
        assert channel.gateway == GATEWAY and channel.timeout == 5
        channel.transport = httpx.ASGITransport(app=double)
        yield client


async def _new_order(client, app_auth, openid, amount):
    r = await client.post(
        "/api/v1/payments/orders",
        json={
            "reference": f"qr-{datetime.now(UTC).timestamp()}-{next(_n)}",
            "amount": amount,
            "description": "停车费",
            "openid": openid,
        },
        headers=app_auth,
    )
    assert r.status_code == 201, r.text
    return r.json()["order_id"]


async def _balanced(oid):
    rows = await LedgerEntry.select(LedgerEntry.amount).where(LedgerEntry.order == oid).run()
    assert sum(r["amount"] for r in rows) == 0
    return len(rows)


async def test_the_precreate_qr_paid_end_to_end(app, double, paying_citizen):
    client = app
    app_auth, me, openid = await paying_citizen(client)
    oid = await _new_order(client, app_auth, openid, 1880)
    r = await client.post(
        f"/api/v1/payments/orders/{oid}/pay", json={"channel": "alipay", "method": "precreate"}, headers=me
    )
    assert r.status_code == 200, r.text
    assert r.json()["pay"]["qr_code"] == f"https://qr.alipay.com/{double.trades[oid].trade_no}"
    double.pay(oid)  # the citizen scans the QR with Alipay and pays
    answer = await double.deliver(client, oid)  # Alipay's notify reaches us
    assert answer.status_code == 200 and answer.text == "success"
    order = (await client.get(f"/api/v1/payments/orders/{oid}", headers=app_auth)).json()
    assert order["state"] == "paid" and order["channel"] == "alipay"
    assert await _balanced(oid) > 0


async def test_a_lost_notify_recovered_by_query_and_a_refund_settled_on_query(app, double, paying_citizen):
    client = app
    services = client.services.payments
    channel = services.channels["alipay"]
    app_auth, me, openid = await paying_citizen(client)
    oid = await _new_order(client, app_auth, openid, 2000)
    r = await client.post(
        f"/api/v1/payments/orders/{oid}/pay", json={"channel": "alipay", "method": "precreate"}, headers=me
    )
    assert r.status_code == 200, r.text
    double.pay(oid)  # paid; the notify is lost
    assert await services.notifications.take("alipay", await channel.query_payment({"order_ref": oid}))
    assert (await PaymentOrder.select().where(PaymentOrder.id == oid).first().run())["state"] == "paid"
    entries = await _balanced(oid)
    await services.notifications.take(
        "alipay", await channel.query_payment({"order_ref": oid})
    )  # asked twice
    late = await double.deliver(client, oid)  # and the notify comes late after all
    assert late.text == "success" and await _balanced(oid) == entries  # one payment

    double.refund_later = True
    try:
        r = await client.post(
            f"/api/v1/payments/orders/{oid}/refunds",
            json={"reference": "rf-q", "amount": 600},
            headers=app_auth,
        )
    finally:
        double.refund_later = False
    assert r.status_code in (200, 201, 202), r.text
    refund = r.json()
    assert refund["state"] == "pending"  # Alipay answered: no money moved yet
    done = await channel.query_refund({"order_ref": oid, "refund_ref": refund["refund_id"], "amount": 600})
    await services.notifications.take("alipay", done)
    order = (await client.get(f"/api/v1/payments/orders/{oid}", headers=app_auth)).json()
    assert order["state"] == "partially_refunded" and order["refunded"] == 600
    assert [(x["amount"], x["state"]) for x in order["refunds"]] == [(600, "succeeded")]
    # a refund Alipay settles at once: applied from its answer (refund_fee, the running total)
    r = await client.post(
        f"/api/v1/payments/orders/{oid}/refunds",
        json={"reference": "rf-now", "amount": 400},
        headers=app_auth,
    )
    assert r.json()["state"] == "succeeded", r.text
    order = (await client.get(f"/api/v1/payments/orders/{oid}", headers=app_auth)).json()
    assert order["refunded"] == 1000
    await _balanced(oid)


async def test_an_unknown_pay_method_is_refused(app, paying_citizen):
    client = app
    app_auth, me, openid = await paying_citizen(client)
    oid = await _new_order(client, app_auth, openid, 100)
    r = await client.post(
        f"/api/v1/payments/orders/{oid}/pay", json={"channel": "alipay", "method": "jsapi"}, headers=me
    )
    assert r.status_code == 422 and r.json()["code"] == "unknown_pay_method"
    assert r.json()["available"] == ["app", "page", "precreate"]


async def test_a_payment_told_at_once_by_queries_and_notifies_is_booked_once(app, double, paying_citizen):
    """Two queries and two deliveries of the notify for one paid trade, concurrently: one payment."""
    client = app
    services = client.services.payments
    channel = services.channels["alipay"]
    app_auth, me, openid = await paying_citizen(client)
    oid = await _new_order(client, app_auth, openid, 990)
    r = await client.post(
        f"/api/v1/payments/orders/{oid}/pay", json={"channel": "alipay", "method": "precreate"}, headers=me
    )
    assert r.status_code == 200, r.text
    double.pay(oid)
    answers = [await channel.query_payment({"order_ref": oid}) for _ in range(2)]
    headers, body = double.notification(oid)
    url = "/api/v1/payments/notify/alipay"
    results = await asyncio.gather(
        *(services.notifications.take("alipay", a) for a in answers),
        *(client.post(url, content=body, headers=headers) for _ in range(2)),
    )
    assert [x.text for x in results[2:]] == ["success", "success"]
    order = (await client.get(f"/api/v1/payments/orders/{oid}", headers=app_auth)).json()
    assert order["state"] == "paid" and order["overpayments"] == []
    paid = (
        await LedgerEntry.select().where((LedgerEntry.order == oid) & (LedgerEntry.kind == "payment")).run()
    )
    assert sorted(e["amount"] for e in paid) == [-990, 990]  # one payment: one pair of entries
    await _balanced(oid)
