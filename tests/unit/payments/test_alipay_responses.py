"""Alipay's answers are verified over the exact text of their ``<method>_response`` value, as it stands in
the body (never a re-serialisation); an answer that does not verify is no answer (channel_busy)."""

import base64
import json

import pytest
from alipay import AliPay
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from backend.errors import ServiceUnavailable
from payments.channels.alipay import Alipay, response_content

METHOD = "alipay.trade.query"


@pytest.fixture(scope="module")
def keys():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048), rsa.generate_private_key(
        public_exponent=65537, key_size=2048
    )


def _sign(key, text):
    return base64.b64encode(key.sign(text.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()


def _channel(alipay_key, app_key):
    return Alipay(
        app_id="2021000000000001",
        seller_id="2088101122136241",
        alipay_public_key=alipay_key.public_key(),
        app_private_key=app_key,
    )


# the value's text as Alipay might write it: spacing, key order and escapes that a re-serialisation changes
VALUE = (
    '{ "code" : "10000", "msg":"Success","total_amount":"88.80", "subject":"停车\\u8d39 \\"A\\"","n":1.50 }'
)


def _body(value_text, sign, *, before="", after=""):
    return f'{{{before}"alipay_trade_query_response" :  {value_text}{after},"sign":"{sign}"}}'.encode()


def test_the_signed_content_is_the_values_exact_text(keys):
    alipay_key, app_key = keys
    raw = _body(VALUE, _sign(alipay_key, VALUE))
    content, value, sign = response_content(raw, METHOD)
    assert content == VALUE and value["subject"] == '停车费 "A"' and sign
    answer = _channel(alipay_key, app_key).verified_answer(raw, METHOD)
    assert answer["total_amount"] == "88.80"
    # what python-alipay-sdk finds as the signed string agrees on a body of Alipay's usual shape
    compact = json.dumps({"code": "10000", "msg": "Success", "trade_no": "2026"}, separators=(",", ":"))
    sdk = AliPay(
        appid="2021000000000001",
        app_notify_url=None,
        app_private_key_string=app_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode(),
        alipay_public_key_string=alipay_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode(),
        sign_type="RSA2",
    )
    usual = f'{{"alipay_trade_query_response":{compact},"sign":"{_sign(alipay_key, compact)}"}}'
    assert (
        sdk._get_string_to_be_signed(usual, "alipay_trade_query_response")
        == response_content(usual.encode(), METHOD)[0]
    )


def test_a_decoy_of_the_same_name_is_not_what_is_verified(keys):
    alipay_key, app_key = keys
    decoy = '{"code":"10000","trade_status":"TRADE_SUCCESS"}'
    real = '{"code":"10000","trade_status":"WAIT_BUYER_PAY"}'
    # an earlier nested object of the same name, and the same name inside a string value
    before = (
        f'"extra":{{"alipay_trade_query_response":{decoy}}},"note":"\\"alipay_trade_query_response\\":{{}}",'
    )
    raw = _body(real, _sign(alipay_key, real), before=before)
    assert response_content(raw, METHOD)[0] == real
    assert _channel(alipay_key, app_key).verified_answer(raw, METHOD)["trade_status"] == "WAIT_BUYER_PAY"


def test_an_answer_that_does_not_verify_is_no_answer(keys):
    alipay_key, app_key = keys
    channel = _channel(alipay_key, app_key)
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    tampered = VALUE.replace("88.80", "0.01")
    for raw in (
        _body(tampered, _sign(alipay_key, VALUE)),  # the value changed after signing
        _body(VALUE, _sign(stranger, VALUE)),  # signed by another key
        _body(VALUE, _sign(alipay_key, json.dumps(json.loads(VALUE)))),  # signed over a re-serialisation
        _body(VALUE, "not base64!"),
        f'{{"alipay_trade_query_response":{VALUE}}}'.encode(),  # no sign at all
        f'{{"alipay_trade_query_response":{VALUE},"sign":""}}'.encode(),
        b"<html>gateway error</html>",
        b"\xff\xfe",
        b'{"alipay_trade_pay_response":{"code":"10000"},"sign":"x"}',  # another method's answer
        b"[1, 2]",
    ):
        with pytest.raises(ServiceUnavailable) as caught:
            channel.verified_answer(raw, METHOD)
        assert caught.value.code == "channel_unavailable", raw


def test_an_error_response_is_read_when_signed(keys):
    alipay_key, app_key = keys
    value = '{"code":"40004","msg":"Business Failed","sub_code":"ACQ.TRADE_NOT_EXIST"}'
    raw = f'{{"error_response":{value},"sign":"{_sign(alipay_key, value)}"}}'.encode()
    assert _channel(alipay_key, app_key).verified_answer(raw, METHOD)["sub_code"] == "ACQ.TRADE_NOT_EXIST"
