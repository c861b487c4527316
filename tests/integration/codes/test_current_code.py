"""The citizen's code through the API: issued, rendered, decoded by an independent QR decoder, verified
by an independent COSE implementation with the key from the trust list."""

import base64
import io
import json

import cbor2
import pytest
import zxingcpp
from cryptography.hazmat.primitives.asymmetric import ec
from PIL import Image
from pycose.keys import EC2Key
from pycose.messages import Sign1Message

from codes import format as fmt
from codes.trustlist import public_key_from_jwk, verify_document


@pytest.fixture(scope="module")
async def client(make_module_client):
    """One app for the module: its tests make citizens of their own and count nothing of another's."""
    async with make_module_client() as c:
        yield c


ID_NUMBER = "21010219491231018X"


def _unb64(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


async def _trust_document(client):
    r = await client.get("/api/v1/codes/trust-list")
    assert r.status_code == 200, r.text
    root = (await client.get("/api/v1/codes/trust-root")).json()["keys"][0]
    return verify_document(r.json(), public_key_from_jwk(root)), r


async def test_current_code_shape_and_rotation(
    make_client, frozen_clock, login, new_phone, auth_header, verify_real_name, enrol_source, push_change
):
    async with make_client(clock=frozen_clock) as client:
        pair = await login(client, new_phone())
        await verify_real_name(client, pair, "赵六", ID_NUMBER)
        # what the bureau and the health authority say, not what the ID number looks like
        await push_change(
            client, await enrol_source(client, "medical"), ID_NUMBER, {"insured": True, "region": "210102"}
        )
        await push_change(client, await enrol_source(client, "health"), ID_NUMBER, {"status": "green"})
        r = await client.get("/api/v1/codes/current", headers=auth_header(pair))
        assert r.status_code == 200
        assert r.headers["cache-control"] == "no-store"
        code = r.json()
        assert code["token"].startswith("SC1:")
        assert code["entitlements"]["medical"] == {"insured": True, "region": "210102"}
        assert code["entitlements"]["health"] == {"status": "green"}
        from datetime import datetime

        issued = datetime.fromisoformat(code["issued_at"])
        assert (datetime.fromisoformat(code["expires_at"]) - issued).total_seconds() == 60
        assert (datetime.fromisoformat(code["refresh_after"]) - issued).total_seconds() == 30
        # the same code until refresh_after, a different one afterwards
        again = (await client.get("/api/v1/codes/current", headers=auth_header(pair))).json()
        assert again["token"] == code["token"]
        frozen_clock.advance(31)
        fresh = (await client.get("/api/v1/codes/current", headers=auth_header(pair))).json()
        assert fresh["token"] != code["token"]
        # nothing stable about the citizen is in the code: phone, name, ID number, the citizen id
        d = fmt.decode(fresh["token"])
        blob = json.dumps({str(k): repr(v) for k, v in d.claims.items()})
        me = (await client.get("/api/v1/me", headers=auth_header(pair))).json()
        for stable in (ID_NUMBER, me["id"], me["id"].replace("-", "")):
            assert stable not in blob and stable.encode() not in d.payload
        assert fmt.decode(code["token"]).claims[fmt.CLAIM_CTI] != d.claims[fmt.CLAIM_CTI]


async def test_png_decodes_with_zxing_and_verifies_with_pycose(client, login, new_phone, auth_header):
    pair = await login(client, new_phone())
    text = (await client.get("/api/v1/codes/current", headers=auth_header(pair))).json()["token"]
    png = await client.get("/api/v1/codes/current.png", headers=auth_header(pair))
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    results = zxingcpp.read_barcodes(Image.open(io.BytesIO(png.content)))
    assert len(results) == 1
    assert results[0].text == text
    assert results[0].format == zxingcpp.BarcodeFormat.QRCode
    assert int(results[0].extra["Version"]) <= 8 and results[0].ec_level == "M"

    svg = await client.get("/api/v1/codes/current.svg", headers=auth_header(pair))
    assert svg.status_code == 200 and svg.content.startswith(b"<?xml") and b"<svg" in svg.content

    doc, _ = await _trust_document(client)
    raw = fmt.b45decode(text.removeprefix("SC1:"))
    msg = Sign1Message.decode(raw)
    kid = msg.phdr[next(k for k in msg.phdr if getattr(k, "identifier", k) == 4)]
    jwk = next(k for k in doc["keys"] if _unb64(k["kid"]) == kid)
    msg.key = EC2Key(crv="P_256", x=_unb64(jwk["x"]), y=_unb64(jwk["y"]))
    assert msg.verify_signature()
    claims = cbor2.loads(msg.payload)
    assert claims[fmt.CLAIM_ISS] == "SST" and claims[fmt.CLAIM_EXP] - claims[fmt.CLAIM_IAT] == 60
    # and a single flipped byte fails the same independent check
    tampered = bytearray(raw)
    tampered[-70] ^= 0x01
    bad = Sign1Message.decode(bytes(tampered))
    bad.key = msg.key
    assert not bad.verify_signature()


async def test_trust_list_is_signed_and_etag_aware(client):
    doc, r = await _trust_document(client)
    assert doc["type"] == "shengshitong-trust-list" and doc["iss"] == "SST"
    assert doc["keys"] and all(k["alg"] in ("ES256", "EdDSA") and "d" not in k for k in doc["keys"])
    assert abs(doc["server_time"] - client.runtime.clock.time()) < 5
    etag = r.headers["etag"]
    assert etag.startswith('W/"')
    cached = await client.get("/api/v1/codes/trust-list", headers={"If-None-Match": etag})
    assert cached.status_code == 304 and cached.content == b""
    # a rotation changes the list: the old ETag no longer matches, both keys are listed
    await client.services.codes.keys.issuer.rotate("EdDSA")
    changed = await client.get("/api/v1/codes/trust-list", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    assert len(json.loads(_unb64(changed.json()["payload"]))["keys"]) == 2


async def test_a_forged_trust_list_does_not_verify(client):
    r = await client.get("/api/v1/codes/trust-list")
    jws = r.json()
    payload = json.loads(_unb64(jws["payload"]))
    payload["keys"] = []
    forged = {**jws, "payload": base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()}
    root = (await client.get("/api/v1/codes/trust-root")).json()["keys"][0]
    from codes.trustlist import TrustListError

    with pytest.raises(TrustListError):
        verify_document(forged, public_key_from_jwk(root))
    with pytest.raises(TrustListError):
        verify_document(jws, ec.generate_private_key(ec.SECP256R1()).public_key())


async def test_code_endpoints_need_a_citizen(client):
    for path in ("/api/v1/codes/current", "/api/v1/codes/current.png", "/api/v1/codes/current.svg"):
        assert (await client.get(path)).status_code == 401
