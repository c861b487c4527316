"""WeChat Pay's trade bill read as WeChat writes it (backticks, totals line), and our v3 signing checked
against WeChat's own Python SDK (wechatpayv3), an implementation we did not write."""

import base64
import json
from datetime import UTC, date, datetime

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wechatpayv3 import utils as sdk

from payments.channels.wechatpay import (
    ApiConfig,
    BillError,
    WeChatPayAPI,
    ours,
    out_trade_no,
    parse_trade_bill,
    read_bill,
    yuan_to_fen,
)
from tests.doubles.wechatpay import WeChatPayDouble, trade_bill

DAY = date(2026, 11, 28)
HEADER = (
    "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,"
    "货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,"
    "商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注"
)
# a bill as WeChat's format page shows one: a payment, its partial refund, and the totals
EXAMPLE = (
    HEADER + "\r\n"
    "`2026-11-28 09:12:01,`wxd678efh567hg6787,`1900000001,`0,`,`4200001234202611281234567890,"
    "`0f2b4c6d8e0a4b1c9d2e3f4a5b6c7d8e,`oUpF8uMuAJO_M2pxb1Q9zNjWeS6o,`NATIVE,`SUCCESS,`OTHERS,`CNY,`12.34,"
    "`0.00,`0,`0,`0.00,`0.00,`,`,`停车费, 夜间,`,`0.07,`0.60%,`12.34,`0.00,`\r\n"
    "`2026-11-28 18:40:22,`wxd678efh567hg6787,`1900000001,`0,`,`4200001234202611281234567890,"
    "`0f2b4c6d8e0a4b1c9d2e3f4a5b6c7d8e,`oUpF8uMuAJO_M2pxb1Q9zNjWeS6o,`NATIVE,`REFUND,`OTHERS,`CNY,`0.00,"
    "`0.00,`50300012342026112812345678,`7c1e0a3b-5d4f-4e6a-9b8c-1d2e3f4a5b6c,`2.00,`0.00,`ORIGINAL,`SUCCESS,"
    "`停车费, 夜间,`,`-0.01,`0.60%,`0.00,`2.00,`\r\n"
    "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额\r\n"
    "`2,`12.34,`2.00,`0.00,`0.06,`12.34,`2.00\r\n"
).encode()


def test_the_example_bill():
    statement = parse_trade_bill(EXAMPLE, DAY)
    pay, refund = statement.rows
    assert (pay.type, pay.txn_id, pay.order_id, pay.amount, pay.fee) == (
        "payment",
        "4200001234202611281234567890",
        "0f2b4c6d-8e0a-4b1c-9d2e-3f4a5b6c7d8e",  # our UUID, sent as its 32 hex digits
        1234,
        7,
    )
    assert pay.channel_time == datetime(2026, 11, 28, 1, 12, 1, tzinfo=UTC)  # 09:12 China time
    assert (refund.type, refund.txn_id, refund.amount, refund.refund_ref, refund.fee) == (
        "refund",
        "50300012342026112812345678",
        200,
        "7c1e0a3b-5d4f-4e6a-9b8c-1d2e3f4a5b6c",
        -1,
    )
    assert statement.totals == {"count": 2, "payments": 1234, "refunds": 200, "fees": 6}
    assert statement.raw == EXAMPLE and statement.day == DAY
    rows, _ = read_bill(EXAMPLE)
    assert rows[0]["商品名称"] == "停车费, 夜间"  # a comma inside a field: each field starts with a backtick


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ((b"`2,`12.34,`2.00", b"`3,`12.34,`2.00"), "count 3 stated, 2 in the rows"),
        ((b"`2,`12.34,`2.00", b"`2,`12.35,`2.00"), "payments 1235 stated, 1234 in the rows"),
        ((b"`0.06,`12.34", b"`0.07,`12.34"), "fees 7 stated, 6 in the rows"),
        ((b"`SUCCESS,`OTHERS", b"SUCCESS,`OTHERS"), "fields under a header"),
        ((b"`12.34,`0.00,`0,", b"`12.345,`0.00,`0,"), "not a whole number of fen"),
        ((b"`REFUND,", b"`REVOKE,"), "neither SUCCESS, REFUND nor REVOKED"),
        ((b"\xe4\xba\xa4\xe6\x98\x93\xe7\x8a\xb6\xe6\x80\x81,", b"state,"), "lacks"),
    ],
)
def test_a_bill_that_does_not_add_up_is_refused(change, message):
    with pytest.raises(BillError, match=message):
        parse_trade_bill(EXAMPLE.replace(*change, 1), DAY)


def test_an_empty_day_and_unreadable_files():
    empty = trade_bill(HEADER, [])
    statement = parse_trade_bill(empty, DAY)
    assert statement.rows == [] and statement.totals["count"] == 0
    for raw in (b"", b"\xff\xfe", HEADER.encode(), EXAMPLE.rsplit(b"\r\n", 2)[0]):
        with pytest.raises(BillError):
            parse_trade_bill(raw, DAY)


def test_yuan_and_references():
    assert [yuan_to_fen(v) for v in ("0.00", "12.34", "-0.01", "100", "0.5")] == [0, 1234, -1, 10000, 50]
    for bad in ("1.234", "abc", "NaN", "Infinity"):
        with pytest.raises(BillError):
            yuan_to_fen(bad)
    ref = "0f2b4c6d-8e0a-4b1c-9d2e-3f4a5b6c7d8e"
    assert out_trade_no(ref) == "0f2b4c6d8e0a4b1c9d2e3f4a5b6c7d8e" and ours(out_trade_no(ref)) == ref
    assert out_trade_no("order-12345") == "order-12345" and ours("order-12345") == "order-12345"


@pytest.mark.parametrize("bad", ["１２.３４", "1e3", "1E+2", "1_000", "+12.34", "12.", ".5", "--1", " 1 2"])
def test_an_amount_is_ascii_yuan_as_wechat_writes_it(bad):
    """Decimal reads full-width digits, exponents and underscores; a bill never writes them."""
    with pytest.raises(BillError):
        yuan_to_fen(bad)


@pytest.mark.parametrize("count", ["²", "２", "1e1"])
def test_a_totals_count_that_is_no_number_is_a_bill_error(count):
    with pytest.raises(BillError):
        parse_trade_bill(EXAMPLE.replace(b"`2,`12.34,`2.00", f"`{count},`12.34,`2.00".encode(), 1), DAY)


_row = st.tuples(
    st.sampled_from(["SUCCESS", "REFUND", "REVOKED"]),
    st.integers(min_value=0, max_value=10**9),  # fen
    st.integers(min_value=-(10**6), max_value=10**6),  # the fee, negative when given back
    st.text(st.characters(exclude_categories=("Cs", "Cc")), max_size=12).filter(lambda s: ",`" not in s),
    st.uuids(),
)


def _yuan(fen):
    return f"{'-' if fen < 0 else ''}{abs(fen) // 100}.{abs(fen) % 100:02d}"


def _detail(state, fen, fee, name, ref):
    paid, refunded = (fen, 0) if state != "REFUND" else (0, fen)
    return [
        "2026-11-28 12:00:00", "wxd678efh567hg6787", "1900000001", "0", "", "4200" + ref.hex[:20],
        ref.hex, "oUpF8", "APP", state, "OTHERS", "CNY", _yuan(paid), "0.00",
        "5030" + ref.hex[:20] if refunded else "0", str(ref) if refunded else "0", _yuan(refunded),
        "0.00", "", "", name, "", _yuan(fee), "0.60%", _yuan(paid), _yuan(refunded), "",
    ]  # fmt: skip


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(_row, max_size=12), off=st.integers(min_value=-500, max_value=500))
def test_any_bill_reads_back_and_its_totals_are_checked(rows, off):
    details = [_detail(*r) for r in rows]
    raw = trade_bill(HEADER, details)
    statement = parse_trade_bill(raw, DAY)
    moving = [r for r in rows if r[0] != "REVOKED"]
    assert [(s.type, s.amount, s.fee) for s in statement.rows] == [
        ("payment" if r[0] == "SUCCESS" else "refund", r[1], r[2]) for r in moving
    ]
    assert statement.totals["count"] == len(rows)
    assert statement.totals["payments"] == sum(r[1] for r in rows if r[0] == "SUCCESS")
    assert statement.totals["fees"] == sum(r[2] for r in rows)
    assert [s.order_id for s in statement.rows] == [str(r[4]) for r in moving]
    if off:
        with pytest.raises(BillError, match="does not add up"):
            parse_trade_bill(trade_bill(HEADER, details, totals_off=off), DAY)


# ---- signing, checked against WeChat's SDK ---------------------------------------------------------------
@pytest.fixture(scope="module")
def merchant():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    channel = WeChatPayAPI(
        mchid="1900000001",
        appid="wxd678efh567hg6787",
        apiv3_key=b"0123456789abcdef0123456789abcdef",
        platform_keys={},
        api=ApiConfig(base="https://api.mch.weixin.qq.com", private_key=key, cert_serial="5157F09EFDC0"),
    )
    return channel, sdk.load_private_key(pem)


@pytest.mark.parametrize(
    ("method", "url", "payload"),
    [
        ("GET", "/v3/pay/transactions/out-trade-no/0f2b4c6d8e0a4b1c9d2e3f4a5b6c7d8e?mchid=1900000001", None),
        (
            "POST",
            "/v3/refund/domestic/refunds",
            {"out_trade_no": "abc123", "reason": "退款", "amount": {"refund": 1}},
        ),
        ("GET", "/v3/bill/tradebill?bill_date=2026-11-28&bill_type=ALL", None),
    ],
)
def test_our_authorization_is_the_sdks(merchant, method, url, payload):
    channel, sdk_key = merchant
    body = json.dumps(payload) if payload else ""
    theirs = sdk.build_authorization(url, method, "1900000001", "5157F09EFDC0", sdk_key, data=body or None)
    fields = dict(part.split("=", 1) for part in theirs.split(" ", 1)[1].split(","))
    ts, nonce = fields["timestamp"].strip('"'), fields["nonce_str"].strip('"')
    assert channel.authorization(method, url, body.encode(), timestamp=ts, nonce=nonce) == theirs


def test_app_pay_signature_is_the_sdks(merchant):
    channel, sdk_key = merchant
    message = "wxd678efh567hg6787\n1700000000\nNONCE\nwx201410272009395522657a690389285100\n"
    assert channel._sign(message) == sdk.rsa_sign(sdk_key, message)


def test_the_doubles_answers_and_certificates_as_the_sdk_reads_them():
    double = WeChatPayDouble()
    body = b'{"code_url":"weixin://wxpay/bizpayurl?pr=abc"}'
    h = double.signed_headers(body)
    public = sdk.load_public_key(double.public_pem().decode())
    assert sdk.rsa_verify(
        h["Wechatpay-Timestamp"], h["Wechatpay-Nonce"], body.decode(), h["Wechatpay-Signature"], public
    )
    [item] = double._certificates()["data"]
    enc = item["encrypt_certificate"]
    pem = sdk.aes_decrypt(enc["nonce"], enc["ciphertext"], enc["associated_data"], double.apiv3_key)
    cert = sdk.load_certificate(pem)
    assert f"{cert.serial_number:040X}" == item["serial_no"]
    assert base64.b64decode(h["Wechatpay-Signature"])  # base64, as WeChat's
