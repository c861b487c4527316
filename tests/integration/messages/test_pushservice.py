"""The push service double itself: its decrypter reproduces RFC 8291 Appendix A, and it refuses what a
push service refuses (so the sender's tests can fail)."""

import os
import time

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.integration.messages.pushservice import (
    DecryptError,
    PushService,
    b64url,
    decrypt,
    derive,
    unb64url,
)

# RFC 8291 Appendix A, its line breaks taken out
RFC8291 = {
    "plaintext": "V2hlbiBJIGdyb3cgdXAsIEkgd2FudCB0byBiZSBhIHdhdGVybWVsb24",
    "as_public": "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8",
    "ua_private": "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94",
    "ua_public": "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4",
    "salt": "DGv6ra1nlYgDCS1FRnbzlw",
    "auth_secret": "BTBZMqHH6r4Tts7J_aSIgg",
    "ecdh_secret": "kyrL1jIIOHEzg3sM2ZWRHDRB62YACZhhSlknJ672kSs",
    "prk_key": "Snr3JMxaHVDXHWJn5wdC52WjpCtd2EIEGBykDcZW32k",
    "ikm": "S4lYMb_L0FxCeq0WhDx813KgSYqU26kOyzWUdsXYyrg",
    "prk": "09_eUZGrsvxChDCGRCdkLiDXrReGOEVeSCdCcPBSJSc",
    "cek": "oIhVW04MRdy2XN9CiKLxTg",
    "nonce": "4h_95klXJ5E_qnoN",
    "body": "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYW"
    "AmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qul"
    "cy4a-fN",
}


def _ua_private() -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(int.from_bytes(unb64url(RFC8291["ua_private"]), "big"), ec.SECP256R1())


def test_the_decrypter_reproduces_rfc_8291_appendix_a():
    ua = _ua_private()
    public = ua.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    assert b64url(public) == RFC8291["ua_public"]
    body = unb64url(RFC8291["body"])
    assert body[:16] == unb64url(RFC8291["salt"]) and body[21:86] == unb64url(RFC8291["as_public"])

    keys = derive(ua, body[21:86], unb64url(RFC8291["auth_secret"]), body[:16])
    assert {name: b64url(value) for name, value in keys._asdict().items()} == {
        name: RFC8291[name] for name in ("ecdh_secret", "prk_key", "ikm", "prk", "cek", "nonce")
    }
    assert decrypt(body, ua, unb64url(RFC8291["auth_secret"])) == unb64url(RFC8291["plaintext"])
    assert unb64url(RFC8291["plaintext"]) == b"When I grow up, I want to be a watermelon"


@pytest.mark.parametrize(
    ("tamper", "why"),
    [
        (lambda b: b[:-1] + bytes([b[-1] ^ 1]), "authentication failed"),  # the tag
        (lambda b: b[:100] + bytes([b[100] ^ 1]) + b[101:], "authentication failed"),  # the ciphertext
        (lambda b: bytes([b[0] ^ 1]) + b[1:], "authentication failed"),  # the salt
        (lambda b: b[:16] + (40).to_bytes(4, "big") + b[20:], "more than one record"),
        (lambda b: b[:20] + b"\x20" + b[21:], "keyid"),
        (lambda b: b[:10], "shorter"),
    ],
)
def test_the_decrypter_refuses_a_tampered_message(tamper, why):
    body = unb64url(RFC8291["body"])
    with pytest.raises(DecryptError, match=why):
        decrypt(tamper(body), _ua_private(), unb64url(RFC8291["auth_secret"]))
    with pytest.raises(DecryptError):
        decrypt(body, _ua_private(), os.urandom(16))  # another auth secret


def _push(service, path, *, key=None, claims=None, k=None, headers=None, body=b""):
    key = key or ec.generate_private_key(ec.SECP256R1())
    now = int(time.time())
    claims = {"aud": service.origin, "exp": now + 3600, "sub": "mailto:ops@example.com"} | (claims or {})
    claims = {name: value for name, value in claims.items() if value is not None}
    token = pyjwt.encode(claims, key, algorithm="ES256")
    k = k or b64url(key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint))
    sent = {"ttl": "60", "authorization": f"vapid t={token}, k={k}"} | (headers or {})
    return service.handle("POST", path, sent, body)


@pytest.mark.parametrize(
    ("change", "status", "why"),
    [
        ({}, 201, ""),
        ({"claims": {"aud": "https://fcm.googleapis.com"}}, 401, "aud"),
        ({"claims": {"exp": int(time.time()) - 10}}, 401, "expired"),
        ({"claims": {"exp": int(time.time()) + 25 * 3600}}, 401, "24 hours"),
        ({"claims": {"sub": None}}, 401, "sub"),
        ({"claims": {"sub": "ops@example.com"}}, 401, "sub"),
        (
            {
                "k": b64url(
                    ec.generate_private_key(ec.SECP256R1())
                    .public_key()
                    .public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
                )
            },
            401,
            "does not verify",
        ),
        ({"headers": {"authorization": "WebPush abc"}}, 401, "no vapid"),
        ({"headers": {"ttl": ""}}, 400, "TTL"),
        ({"headers": {"urgency": "urgent"}}, 400, "Urgency"),
        ({"headers": {"topic": "a" * 33}}, 400, "Topic"),
        ({"body": b"\x00" * 100}, 415, "aes128gcm"),
        ({"body": b"\x00" * 100, "headers": {"content-encoding": "aes128gcm"}}, 400, "decrypt"),
    ],
)
def test_the_double_refuses_what_a_push_service_refuses(change, status, why):
    service = PushService("http://127.0.0.1:9")
    endpoint, _ = service.subscribe()
    path = endpoint.removeprefix(service.origin)
    answer = _push(service, path, **change)
    assert answer[0] == status
    assert why in service.received[-1].refusal


def test_a_restricted_subscription_takes_its_own_key_only():
    service = PushService("http://127.0.0.1:9")
    ours = ec.generate_private_key(ec.SECP256R1())
    k = b64url(ours.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint))
    endpoint, _ = service.subscribe(application_server_key=k)
    path = endpoint.removeprefix(service.origin)
    assert _push(service, path, key=ours)[0] == 201
    assert _push(service, path)[0] == 403
    assert _push(service, "/wpush/v2/nobody", key=ours)[0] == 404
