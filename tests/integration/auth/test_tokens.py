"""Access tokens verify with the published JWKS by an independent JOSE library; forgeries do not."""

import base64
import hmac
import json

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc import jwt as jose_jwt
from joserfc.jwk import KeySet

from auth.services import AUDIENCE


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def _jwks(client):
    r = await client.get("/.well-known/jwks.json")
    assert r.status_code == 200
    assert "max-age" in r.headers["cache-control"]
    return r.json()


async def test_access_token_verifies_with_jwks_in_joserfc(client, login, new_phone, settings):
    pair = await login(client, new_phone())
    jwks = await _jwks(client)
    assert all("d" not in k for k in jwks["keys"])  # public halves only
    token = jose_jwt.decode(pair["access_token"], KeySet.import_key_set(jwks), algorithms=["ES256", "EdDSA"])
    claims = token.claims
    assert claims["aud"] == AUDIENCE and claims["iss"] == settings.token_issuer
    assert token.header["kid"] in {k["kid"] for k in jwks["keys"]}
    for claim in ("exp", "iat", "jti", "sub", "sid"):
        assert claim in claims
    assert claims["exp"] - claims["iat"] == settings.access_token_ttl


async def _me(client, token):
    return await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})


async def test_forged_tokens_are_rejected(client, login, new_phone):
    pair = await login(client, new_phone())
    header_b64, payload_b64, _ = pair["access_token"].split(".")
    header = json.loads(base64.urlsafe_b64decode(header_b64 + "=="))
    claims = json.loads(base64.urlsafe_b64decode(payload_b64 + "=="))
    jwks = await _jwks(client)
    jwk = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    public = ec.EllipticCurvePublicNumbers(
        int.from_bytes(base64.urlsafe_b64decode(jwk["x"] + "=="), "big"),
        int.from_bytes(base64.urlsafe_b64decode(jwk["y"] + "=="), "big"),
        ec.SECP256R1(),
    ).public_key()
    public_pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    attacker = ec.generate_private_key(ec.SECP256R1())

    hs_header = _b64(json.dumps({"alg": "HS256", "kid": header["kid"], "typ": "JWT"}).encode())
    hs_signing_input = f"{hs_header}.{payload_b64}"
    hs_signature = _b64(hmac.new(public_pem, hs_signing_input.encode(), "sha256").digest())
    forgeries = {
        "alg none": f"{_b64(json.dumps({'alg': 'none', 'kid': header['kid']}).encode())}.{payload_b64}.",
        "hs256 with the public key": f"{hs_signing_input}.{hs_signature}",
        "wrong aud": pyjwt.encode(
            {**claims, "aud": "someone-else"}, attacker, "ES256", headers={"kid": header["kid"]}
        ),
        "attacker key, same kid": pyjwt.encode(claims, attacker, "ES256", headers={"kid": header["kid"]}),
        "unknown kid": pyjwt.encode(claims, attacker, "ES256", headers={"kid": "AAAAAAAA"}),
        "tampered payload": ".".join(
            [
                header_b64,
                _b64(json.dumps({**claims, "sub": "other"}).encode()),
                pair["access_token"].split(".")[2],
            ]
        ),
    }
    for name, token in forgeries.items():
        r = await _me(client, token)
        assert r.status_code == 401, name
        assert r.json()["code"] == "invalid_token", name
    ok = await _me(client, pair["access_token"])
    assert ok.status_code == 200, ok.text


async def test_expired_token_is_rejected(make_client, frozen_clock, login, new_phone):
    async with make_client(clock=frozen_clock) as client:
        pair = await login(client, new_phone())
        assert (await _me(client, pair["access_token"])).status_code == 200
        frozen_clock.advance(client.runtime.settings.access_token_ttl + 31)
        r = await client.get(
            "/api/v1/me", headers={"Authorization": f"Bearer {pair['access_token']}", "Accept-Language": "en"}
        )
        assert r.status_code == 401 and "expired" in r.json()["detail"]
        # an exp in the past signed with the real key is refused too
        key = await client.services.auth.keys.active()
        claims = pyjwt.decode(pair["access_token"], options={"verify_signature": False})
        old = pyjwt.encode(
            {**claims, "exp": int(frozen_clock.time()) - 3600}, key.private, "ES256", headers={"kid": key.kid}
        )
        assert (await _me(client, old)).status_code == 401


# joserfc warns that RFC 9864 prefers the fully-specified "Ed25519" name; PyJWT and most clients still
# speak "EdDSA", which is what we publish.
@pytest.mark.filterwarnings("ignore:EdDSA is deprecated")
async def test_key_rotation_keeps_old_tokens_valid_and_publishes_both(client, login, new_phone):
    before = await login(client, new_phone())
    keys = client.services.auth.keys
    old_kid = (await keys.active()).kid
    new = await keys.rotate("EdDSA")
    after = await login(client, new_phone())
    assert pyjwt.get_unverified_header(after["access_token"])["kid"] == new.kid
    assert pyjwt.get_unverified_header(after["access_token"])["alg"] == "EdDSA"
    kids = {k["kid"] for k in (await _jwks(client))["keys"]}
    assert {old_kid, new.kid} <= kids
    assert (await _me(client, before["access_token"])).status_code == 200
    assert (await _me(client, after["access_token"])).status_code == 200
    jwks = await _jwks(client)
    assert jose_jwt.decode(after["access_token"], KeySet.import_key_set(jwks), algorithms=["EdDSA"]).claims
