"""The channels' edges: disabled channels, signed-but-malformed bodies, notices for another merchant,
and Alipay's two signing rules checked against python-alipay-sdk."""

import asyncio
import base64
import json
import secrets
import time
from urllib.parse import parse_qsl

import pytest
from alipay import AliPay
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from payments.tables import ChannelNotification, LedgerEntry, OutboxEvent, PaymentOrder
from tests.integration.payments.conftest import basic


@pytest.fixture
async def env(pay_client, merchant_of):
    async with pay_client() as client:
        yield client, await merchant_of(client)


async def _order(client, headers, amount=1234, **extra):
    r = await client.post(
        "/api/v1/payments/orders",
        json={"reference": f"ch-{time.time_ns()}", "amount": amount, "description": "停车费", **extra},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    return r.json()["order_id"]


async def _untouched(oid):
    row = await PaymentOrder.select().where(PaymentOrder.id == oid).first().run()
    assert row["state"] == "created"
    assert await LedgerEntry.count().where(LedgerEntry.order == oid).run() == 0
    assert await OutboxEvent.count().where(OutboxEvent.order == oid).run() == 0


async def test_a_disabled_channels_notify_route_is_a_404_problem(client, players):
    """The default deployment enables the sandbox only: WeChat's and Alipay's routes are not there."""
    wechat, alipay = players
    for path, (headers, body) in (
        ("wechatpay", wechat.paid("1f0c0000-0000-4000-8000-000000000000", 100)),
        ("alipay", alipay.notify("1f0c0000-0000-4000-8000-000000000000", "1.00")),
    ):
        r = await client.post(f"/api/v1/payments/notify/{path}", content=body, headers=headers)
        assert r.status_code == 404, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["code"] == "not_found"
    # the enabled one is there (and refuses an unsigned body in its own words)
    r = await client.post("/api/v1/payments/notify/sandbox", content=b"{}")
    assert r.status_code == 400 and r.json()["ok"] is False
    paths = (await client.get("/schema/openapi.json")).json()["paths"]
    assert "/api/v1/payments/notify/sandbox" in paths
    assert "/api/v1/payments/notify/wechatpay" not in paths


def _envelope(resource, **over):
    return json.dumps(
        {
            "id": "EV-" + secrets.token_hex(6),
            "event_type": "TRANSACTION.SUCCESS",
            "resource": resource,
            **over,
        }
    ).encode()


async def test_signed_but_malformed_wechat_bodies_are_refused_and_recorded_nowhere(env, players):
    client, merchant = env
    wechat, _ = players
    oid = await _order(client, merchant)
    good_headers, good = wechat.paid(oid, 1234)
    resource = json.loads(good)["resource"]
    bodies = {
        "resource a string": _envelope("not an object"),
        "resource a list": _envelope([1, 2]),
        "nonce a number": _envelope({**resource, "nonce": 123456789012}),
        "ciphertext a number": _envelope({**resource, "ciphertext": 7}),
        "ciphertext not base64": _envelope({**resource, "ciphertext": "%%%"}),
        "nonce too long": _envelope({**resource, "nonce": "x" * 40}),
        "no resource": json.dumps({"id": "EV-1", "event_type": "TRANSACTION.SUCCESS"}).encode(),
        "id an object": _envelope(resource, id={"a": 1}),
        "a JSON list": b"[1, 2, 3]",
        "JSON null": b"null",
    }
    for name, body in bodies.items():
        r = await client.post("/api/v1/payments/notify/wechatpay", content=body, headers=wechat.signed(body))
        assert 400 <= r.status_code < 500, (name, r.status_code, r.text)
        assert r.json()["code"] == "FAIL", name
    # decrypted, but not a transaction: fields missing or of the wrong type
    for name, data in {
        "amount a string": {"amount": {"total": "1234", "currency": "CNY"}},
        "amount missing": {"amount": None},
        "out_trade_no a number": {"out_trade_no": 5},
        "out_trade_no too long for any order": {"out_trade_no": "x" * 200},
        "transaction_id too long": {"transaction_id": "4" * 200},
        "amount beyond any order": {"amount": {"total": 2**40, "currency": "CNY"}},
    }.items():
        headers, body = wechat.paid(oid, 1234, resource=data)
        r = await client.post("/api/v1/payments/notify/wechatpay", content=body, headers=headers)
        assert r.status_code == 400 and r.json()["code"] == "FAIL", (name, r.text)
    assert await ChannelNotification.count().run() == 0
    await _untouched(oid)
    # and the genuine one still pays
    r = await client.post("/api/v1/payments/notify/wechatpay", content=good, headers=good_headers)
    assert r.status_code == 204


async def test_notices_for_another_merchant_app_or_currency_are_recorded_and_refused(env, players):
    client, merchant = env
    wechat, alipay = players
    oid = await _order(client, merchant, 1000)
    cases = {
        "merchant_mismatch": wechat.paid(oid, 1000, resource={"mchid": "1900000999"}),
        "app_mismatch": wechat.paid(oid, 1000, resource={"appid": "wx0000000000000000"}),
        "currency_mismatch": wechat.paid(
            oid, 1000, resource={"amount": {"total": 1000, "payer_total": 1000, "currency": "USD"}}
        ),
    }
    for reason, (headers, body) in cases.items():
        r = await client.post("/api/v1/payments/notify/wechatpay", content=body, headers=headers)
        assert r.status_code == 400 and r.json() == {"code": "FAIL", "message": reason}
        # WeChat's resend is answered the same, and changes nothing more
        r = await client.post("/api/v1/payments/notify/wechatpay", content=body, headers=headers)
        assert r.status_code == 400 and r.json()["message"] == reason
    for reason, extra in {
        "merchant_mismatch": {"seller_id": "2088000000000000"},
        "app_mismatch": {"app_id": "2021000000009999"},
    }.items():
        headers, body = alipay.notify(oid, "10.00", extra=extra)
        r = await client.post("/api/v1/payments/notify/alipay", content=body, headers=headers)
        assert r.content == b"fail", reason
    refused = (
        await ChannelNotification.select(ChannelNotification.channel, ChannelNotification.reason)
        .where(ChannelNotification.status == "rejected")
        .run()
    )
    assert sorted((r["channel"], r["reason"]) for r in refused) == [
        ("alipay", "app_mismatch"),
        ("alipay", "merchant_mismatch"),
        ("wechatpay", "app_mismatch"),
        ("wechatpay", "currency_mismatch"),
        ("wechatpay", "merchant_mismatch"),
    ]
    await _untouched(oid)


async def test_the_alipay_order_string_is_signed_as_python_alipay_sdk_signs_it(
    pay_client, paying_citizen, players
):
    _, alipay_player = players
    async with pay_client() as client:
        app_auth, me, openid = await paying_citizen(client)
        # a Chinese subject, with characters that mean something in a form and in JSON
        oid = await _order(client, app_auth, 1999, openid=openid, description='停车费 & more=1 "沈阳"')
        r = await client.post(f"/api/v1/payments/orders/{oid}/pay", json={"channel": "alipay"}, headers=me)
        assert r.status_code == 200, r.text
        order_string = r.json()["pay"]["order_string"]
    ours = dict(parse_qsl(order_string, keep_blank_values=True, strict_parsing=True))
    assert ours["sign_type"] == "RSA2" and ours["method"] == "alipay.trade.app.pay"
    biz = json.loads(ours["biz_content"])
    assert biz["total_amount"] == "19.99" and biz["subject"] == '停车费 & more=1 "沈阳"'
    sdk = AliPay(
        appid=alipay_player.app_id,
        app_notify_url=None,
        app_private_key_string=alipay_player.app_private_file.read_text(),
        alipay_public_key_string=alipay_player.public_file.read_text(),
        sign_type="RSA2",
    )
    data = sdk.build_body(
        "alipay.trade.app.pay",
        biz_content=biz,  # the SDK writes the JSON itself (with ensure_ascii: 停 is \u505c)
        notify_url=ours["notify_url"],
        timestamp=ours["timestamp"],
    )
    assert sdk.sign_data(data) == order_string  # byte for byte, signature included
    # Alipay checks the signature over every parameter but sign: sign_type is part of it
    app_public = alipay_player.app_key.public_key()
    signed = "&".join(f"{k}={v}" for k, v in sorted(ours.items()) if k != "sign")
    app_public.verify(base64.b64decode(ours["sign"]), signed.encode(), padding.PKCS1v15(), hashes.SHA256())


async def test_alipay_notifications_are_verified_as_alipays_sdk_does_empty_values_included(env, players):
    client, merchant = env
    _, alipay = players
    oid = await _order(client, merchant, 1000)
    # an empty parameter is part of what Alipay signed
    headers, body = alipay.notify(oid, "10.00", extra={"body": "", "passback_params": ""})
    params = dict(parse_qsl(body.decode(), keep_blank_values=True))
    assert params["body"] == ""
    sdk = AliPay(
        appid=alipay.app_id,
        app_notify_url=None,
        app_private_key_string=alipay.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode(),
        alipay_public_key_string=alipay.public_file.read_text(),
    )
    signature = params.pop("sign")
    assert sdk.verify(dict(params), signature)  # the SDK's own rule accepts what the player signed
    r = await client.post("/api/v1/payments/notify/alipay", content=body, headers=headers)
    assert r.content == b"success"
    row = await PaymentOrder.select(PaymentOrder.state).where(PaymentOrder.id == oid).first().run()
    assert row["state"] == "paid"


async def test_malformed_signature_headers_get_the_channels_failure_reply(env, players):
    """A signature header no channel would send (non-ASCII, digits of another script) is a clean
    refusal in the channel's own format, never a 500; nothing is recorded."""
    client, merchant = env
    wechat, _ = players
    oid = await _order(client, merchant)
    now = str(int(time.time()))
    arabic_indic = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
    sandbox_headers = {
        "non-ASCII v1 (latin-1)": f"t={now},v1=é".encode("latin-1"),
        "non-ASCII v1 (UTF-8)": f"t={now},v1=签名".encode(),
        "Arabic-Indic digits in t": f"t={now.translate(arabic_indic)},v1=00".encode(),
        "a huge t": b"t=" + b"9" * 5000 + b",v1=00",
        "t a float": b"t=1e999,v1=00",
    }
    for name, value in sandbox_headers.items():
        r = await client.post(
            "/api/v1/payments/notify/sandbox",
            content=b"{}",
            headers=[(b"Sandbox-Signature", value), (b"Content-Type", b"application/json")],
        )
        assert 400 <= r.status_code < 500, (name, r.status_code, r.text)
        assert r.json()["ok"] is False, name
    headers, body = wechat.paid(oid, 1234)
    for name, (key, value) in {
        "timestamp in Arabic-Indic digits": (
            "Wechatpay-Timestamp",
            headers["Wechatpay-Timestamp"].translate(arabic_indic).encode(),
        ),
        "timestamp with a sign": ("Wechatpay-Timestamp", b"+" + headers["Wechatpay-Timestamp"].encode()),
        "non-ASCII serial": ("Wechatpay-Serial", "序列".encode()),
        "non-ASCII nonce": ("Wechatpay-Nonce", "随机".encode()),
        "non-ASCII signature": ("Wechatpay-Signature", "签名".encode()),
    }.items():
        sent = [(k.encode(), v.encode()) for k, v in headers.items() if k != key] + [(key.encode(), value)]
        r = await client.post("/api/v1/payments/notify/wechatpay", content=body, headers=sent)
        assert 400 <= r.status_code < 500 and r.json()["code"] == "FAIL", (name, r.status_code, r.text)
    assert await ChannelNotification.count().run() == 0
    await _untouched(oid)


async def test_signed_notices_with_values_nothing_could_record_are_refused(env, players):
    """Genuinely signed, but holding what no channel sends: a control character in an id (PostgreSQL
    cannot store NUL), an amount that is not one (Infinity, NaN, 1e999999999), JSON nested 50,000 deep.
    Each is the channel's failure reply with a 4xx, recorded nowhere, and the order is untouched."""
    client, merchant = env
    wechat, alipay = players
    oid = await _order(client, merchant, 1000)

    async def refused_by_wechat(name, headers, body):
        r = await client.post("/api/v1/payments/notify/wechatpay", content=body, headers=headers)
        assert 400 <= r.status_code < 500 and r.json()["code"] == "FAIL", (name, r.status_code, r.text)

    for name, resource in {
        "NUL in out_trade_no": {"out_trade_no": oid + "\x00"},
        "NUL in transaction_id": {"transaction_id": "4200\x00"},
        "a control character in transaction_id": {"transaction_id": "4200\x1b[31m"},
        "NUL in success_time": {"success_time": "\x00"},
    }.items():
        await refused_by_wechat(name, *wechat.paid(oid, 1000, resource=resource))
    await refused_by_wechat("NUL in the notification id", *wechat.paid(oid, 1000, event_id="EV\x00"))
    await refused_by_wechat(
        "NUL in a refund's out_refund_no", *wechat.refunded(oid, "rf\x00", 100, 1000, transaction_id="42")
    )
    deep = b'{"id":"EV-1","event_type":"TRANSACTION.SUCCESS","z":' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    await refused_by_wechat("50,000 nested arrays", wechat.signed(deep), deep)

    async def refused_by_alipay(name, headers, body):
        r = await client.post("/api/v1/payments/notify/alipay", content=body, headers=headers)
        assert 400 <= r.status_code < 500 and r.content == b"fail", (name, r.status_code, r.content)

    for name, (yuan, kw) in {
        "NUL in notify_id": ("10.00", {"notify_id": "\x00nid"}),
        "NUL in trade_no": ("10.00", {"trade_no": "2026\x00"}),
        "NUL in gmt_payment": ("10.00", {"extra": {"gmt_payment": "\x00"}}),
        "total_amount Infinity": ("Infinity", {}),
        "total_amount 1e999999999": ("1e999999999", {}),
        "total_amount NaN": ("NaN", {}),
        "total_amount sNaN": ("sNaN", {}),
        "total_amount -0": ("-0", {}),
        "total_amount in full-width digits": ("１０.００", {}),
        "total_amount 1e3": ("1e3", {}),
        "total_amount with three decimals": ("10.001", {}),
        "refund_fee sNaN": ("10.00", {"extra": {"refund_fee": "sNaN", "out_biz_no": "RF-1"}}),
        "refund_fee NaN": ("10.00", {"extra": {"refund_fee": "NaN", "out_biz_no": "RF-1"}}),
        "refund_fee Infinity": ("10.00", {"extra": {"refund_fee": "Infinity", "out_biz_no": "RF-1"}}),
    }.items():
        await refused_by_alipay(name, *alipay.notify(oid, yuan, **kw))
    await refused_by_alipay("NUL in out_trade_no", *alipay.notify(oid + "\x00", "10.00"))
    assert await ChannelNotification.count().run() == 0
    await _untouched(oid)
    # amounts as Alipay writes them still pay
    headers, body = alipay.notify(oid, "10")
    r = await client.post("/api/v1/payments/notify/alipay", content=body, headers=headers)
    assert r.content == b"success"
    row = await PaymentOrder.select(PaymentOrder.state).where(PaymentOrder.id == oid).first().run()
    assert row["state"] == "paid"


async def test_a_notice_refused_for_our_configuration_is_decided_again_on_resend(pay_client, players):
    """A real payment refused because OUR merchant or app id was configured wrong is applied when the
    channel resends it after the configuration is mended (refusing it forever would lose the money);
    a notice whose amount does not match stays refused on every resend."""
    wechat, alipay = players
    # the same database, served first with a wrong configuration, then with the mended one
    async with (
        pay_client(wechatpay_mchid="1900000999", alipay_app_id="2021000000009999") as wrong,
        pay_client() as mended,
    ):
        merchant = basic(await mended.services.auth.machines.create("miniapp", app_id="testgate"))
        paid_by_wechat = await _order(mended, merchant, 1000)
        paid_by_alipay = await _order(mended, merchant, 1000)
        wx = wechat.paid(paid_by_wechat, 1000)
        ali = alipay.notify(paid_by_alipay, "10.00")
        forged = wechat.paid(await _order(mended, merchant, 1000), 1)

        async def send(client, channel, notice):
            headers, body = notice
            return await client.post(f"/api/v1/payments/notify/{channel}", content=body, headers=headers)

        for _ in range(2):  # refused, and so is the channel's resend while the configuration is wrong
            r = await send(wrong, "wechatpay", wx)
            assert r.status_code == 400 and r.json() == {"code": "FAIL", "message": "merchant_mismatch"}
            assert (await send(wrong, "alipay", ali)).content == b"fail"
        r = await send(mended, "wechatpay", forged)
        assert r.status_code == 400 and r.json()["message"] == "amount_mismatch"

        # the configuration is mended; the channels resend (WeChat's resends may even arrive at once)
        replies = await asyncio.gather(*(send(mended, "wechatpay", wx) for _ in range(5)))
        assert [r.status_code for r in replies] == [204] * 5
        assert (await send(mended, "alipay", ali)).content == b"success"
        assert (await send(mended, "alipay", ali)).content == b"success"
        for oid, channel in ((paid_by_wechat, "wechatpay"), (paid_by_alipay, "alipay")):
            row = await PaymentOrder.select().where(PaymentOrder.id == oid).first().run()
            assert (row["state"], row["channel"]) == ("paid", channel)
            events = await OutboxEvent.select(OutboxEvent.type).where(OutboxEvent.order == oid).run()
            assert [e["type"] for e in events] == ["order.paid"]
            ledger = await LedgerEntry.select(LedgerEntry.amount).where(LedgerEntry.order == oid).run()
            assert sorted(e["amount"] for e in ledger) == [-1000, 1000]
        # the amount that does not match stays refused
        r = await send(mended, "wechatpay", forged)
        assert r.status_code == 400 and r.json()["message"] == "amount_mismatch"
        records = await ChannelNotification.select(
            ChannelNotification.channel, ChannelNotification.status, ChannelNotification.reason
        ).run()
        assert sorted((r["channel"], r["status"], r["reason"]) for r in records) == [
            ("alipay", "applied", ""),
            ("wechatpay", "applied", ""),
            ("wechatpay", "rejected", "amount_mismatch"),
        ]
