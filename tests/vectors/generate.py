"""Regenerate the citizen-code conformance vectors: ``python tests/vectors/generate.py``.

Reproducible byte for byte: the keys come from fixed seeds, ES256 signatures are deterministic
(RFC 6979), code ids and clocks are fixed. Each case is one JSON file in the style of the EU DCC test
data: the token, the signed trust list and the root key that verifies it, the validation clock, the
clock-skew tolerance, the scan context's entitlement requirement, and the expected result of each step.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Any

import base45
import cbor2
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from backend.keystore import public_jwk  # noqa: E402
from codes import format as fmt  # noqa: E402
from codes.entitlements import Entitlements  # noqa: E402
from codes.trustlist import build_document, sign_document  # noqa: E402

T0 = 1_764_000_000  # 2025-11-24T16:00:00Z: every case's codes are issued at this time
VALIDITY, SKEW = 60, 30
ISSUER = "SST"
ROOT = ec.derive_private_key(0x5EED_0001, ec.SECP256R1())
ES_KEY = ec.derive_private_key(0x5EED_0002, ec.SECP256R1())
ED_KEY = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER_KEY = ec.derive_private_key(0x5EED_0003, ec.SECP256R1())
ES_KID, ED_KID, OTHER_KID, ROOT_KID = (
    b"\x01\x02\x03\x04\x05\x06",
    b"\x0e\xd2\x55\x19",
    b"\xde\xad\xbe\xef",
    "root-01",
)
FULL = Entitlements(medical_region="210100", transit=True, health="green", tickets=True, social_security=True)
CTI = bytes.fromhex("00112233445566778899aabb")


def _b64u(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def trust_list() -> dict[str, Any]:
    keys = [
        {
            **public_jwk(ES_KEY.public_key(), _b64u(ES_KID), "ES256"),
            "valid_from": T0 - 86400,
            "valid_until": None,
        },
        {
            **public_jwk(ED_KEY.public_key(), _b64u(ED_KID), "EdDSA"),
            "valid_from": T0 - 86400,
            "valid_until": None,
        },
    ]
    doc = build_document(
        keys, issuer=ISSUER, server_time=T0, code_validity=VALIDITY, clock_skew=SKEW, refresh_after=3600
    )
    return sign_document(doc, root_private_key=ROOT, root_kid=ROOT_KID, alg="ES256")


def code(
    key: Any = ES_KEY,
    alg: str = "ES256",
    kid: bytes = ES_KID,
    ent: Entitlements = FULL,
    iat: int = T0,
    keyed: tuple[tuple[int, bytes], ...] = (),
) -> str:
    token, _ = fmt.encode(
        private_key=key,
        alg=alg,
        kid=kid,
        issuer=ISSUER,
        iat=iat,
        exp=iat + VALIDITY,
        entitlements=ent,
        cti=CTI,
        keyed=keyed,
    )
    return token


def reassemble(
    token: str,
    *,
    protected: bytes | None = None,
    payload: bytes | None = None,
    signature: bytes | None = None,
) -> str:
    tag = cbor2.loads(base45.b45decode(token[4:]))
    p, u, pl, s = tag.value
    cose = cbor2.dumps(cbor2.CBORTag(18, [protected or p, u, payload or pl, signature or s]))
    return "SC1:" + base45.b45encode(cose).decode()


def steps(failed: str | None) -> dict[str, str]:
    order = ["decode", "signature", "time", "entitlement"]
    if failed is None:
        return dict.fromkeys(order, "ok")
    i = order.index(failed)
    return {s: "ok" if n < i else "fail" if n == i else "skipped" for n, s in enumerate(order)}


def cases() -> dict[str, dict[str, Any]]:
    valid = code()
    raw = cbor2.loads(base45.b45decode(valid[4:])).value
    claims = cbor2.loads(raw[2])
    tampered_payload = reassemble(
        valid, payload=cbor2.dumps({**claims, fmt.CLAIM_EXP: claims[fmt.CLAIM_EXP] + 3600})
    )
    sig = bytearray(raw[3])
    sig[10] ^= 0x01
    es384_header = cbor2.dumps({fmt.HDR_ALG: -35, fmt.HDR_KID: ES_KID})
    eddsa_header = cbor2.dumps({fmt.HDR_ALG: fmt.ALG_EDDSA, fmt.HDR_KID: ES_KID})
    c: dict[str, dict[str, Any]] = {
        "valid_es256": dict(
            token=valid,
            now=T0 + 10,
            requirement="transit",
            fail=None,
            reason=None,
            description="A fresh ES256 code with every entitlement, scanned at a transit gate.",
        ),
        "valid_eddsa": dict(
            token=code(ED_KEY, "EdDSA", ED_KID),
            now=T0 + 10,
            requirement="medical",
            fail=None,
            reason=None,
            description="An EdDSA (Ed25519) code at a hospital (medical insurance).",
        ),
        "tampered_payload": dict(
            token=tampered_payload,
            now=T0 + 10,
            requirement=None,
            fail="signature",
            reason="bad_signature",
            description="exp changed after signing.",
        ),
        "tampered_signature": dict(
            token=reassemble(valid, signature=bytes(sig)),
            now=T0 + 10,
            requirement=None,
            fail="signature",
            reason="bad_signature",
            description="One signature bit flipped.",
        ),
        "unknown_kid": dict(
            token=code(OTHER_KEY, "ES256", OTHER_KID),
            now=T0 + 10,
            requirement=None,
            fail="signature",
            reason="unknown_kid",
            description="Signed by a key not in the list.",
        ),
        "wrong_alg_es384": dict(
            token=reassemble(valid, protected=es384_header),
            now=T0 + 10,
            requirement=None,
            fail="signature",
            reason="wrong_alg",
            description="alg -35 (ES384) is not allowed.",
        ),
        "wrong_alg_mismatch": dict(
            token=reassemble(valid, protected=eddsa_header),
            now=T0 + 10,
            requirement=None,
            fail="signature",
            reason="wrong_alg",
            description="The header claims EdDSA for an ES256 key.",
        ),
        "expired": dict(
            token=valid,
            now=T0 + VALIDITY + SKEW + 1,
            requirement=None,
            fail="time",
            reason="expired",
            description="Scanned after exp + skew.",
        ),
        "not_yet_valid": dict(
            token=valid,
            now=T0 - SKEW - 1,
            requirement=None,
            fail="time",
            reason="not_yet_valid",
            description="The scanner's clock is behind iat - skew.",
        ),
        "skew_inside_tolerance": dict(
            token=valid,
            now=T0 + VALIDITY + SKEW - 1,
            requirement=None,
            fail=None,
            reason=None,
            description="29 s after exp: inside the 30 s tolerance.",
        ),
        "skew_outside_tolerance": dict(
            token=valid,
            now=T0 + VALIDITY + SKEW + 1,
            requirement=None,
            fail="time",
            reason="expired",
            description="31 s after exp: outside the tolerance.",
        ),
        "clock_behind_inside_tolerance": dict(
            token=valid,
            now=T0 - SKEW + 1,
            requirement=None,
            fail=None,
            reason=None,
            description="The scanner is 29 s behind iat.",
        ),
        "not_entitled": dict(
            token=code(ent=Entitlements(transit=True)),
            now=T0 + 10,
            requirement="medical",
            fail="entitlement",
            reason="not_entitled",
            description="A hospital check-in without medical insurance.",
        ),
        "transit_refused": dict(
            token=code(ent=Entitlements(transit=False)),
            now=T0 + 10,
            requirement="transit",
            fail="entitlement",
            reason="not_entitled",
            description="Transit refused for unpaid fares.",
        ),
        "health_yellow": dict(
            token=code(ent=Entitlements(medical_region="210102", health="yellow", social_security=True)),
            now=T0 + 10,
            requirement="health",
            fail="entitlement",
            reason="not_entitled",
            description="A health check point: the health authority's colour is yellow.",
        ),
        "health_unknown": dict(
            token=code(ent=Entitlements(transit=True)),
            now=T0 + 10,
            requirement="health",
            fail="entitlement",
            reason="not_entitled",
            description="A health check point: no colour from the health authority (health 3, unknown).",
        ),
        "keyed_claims": dict(
            token=code(ent=Entitlements(transit=True), keyed=((1, bytes.fromhex("8899aabbccddeeff")),)),
            now=T0 + 10,
            requirement=None,
            fail=None,
            reason=None,
            description="A door (no requirement): a resident's code with one keyed claim, entitlements key 6"
            " [[1, h'8899aabbccddeeff']] (community 1; the door unmasks it with its key, docs/miniapps.md).",
        ),
        "keyed_claim_malformed": dict(
            token=reassemble(
                valid,
                payload=cbor2.dumps(
                    {**claims, fmt.CLAIM_ENT: {**claims[fmt.CLAIM_ENT], 6: [[1, b"\x00" * 7]]}}
                ),
            ),
            now=T0 + 10,
            requirement=None,
            fail="decode",
            reason="bad_format",
            description="A keyed claim whose value is 7 bytes, not 8 (refused before the signature).",
        ),
        "bad_base45": dict(
            token="SC1:" + valid[4:40] + "a" + valid[41:],
            now=T0 + 10,
            requirement=None,
            fail="decode",
            reason="bad_base45",
            description="A lower-case letter is not base45.",
        ),
        "bad_prefix": dict(
            token="HC1:" + valid[4:],
            now=T0 + 10,
            requirement=None,
            fail="decode",
            reason="bad_prefix",
            description="Another scheme's prefix.",
        ),
        "truncated": dict(
            token=valid[: 4 + 90],
            now=T0 + 10,
            requirement=None,
            fail="decode",
            reason="bad_format",
            description="Cut after 60 bytes of CBOR.",
        ),
        "oversized": dict(
            token="SC1:" + "0" * 900,
            now=T0 + 10,
            requirement=None,
            fail="decode",
            reason="oversized",
            description="Longer than 600 characters.",
        ),
    }
    return c


def write(out: Path = HERE) -> list[Path]:
    tl = trust_list()
    root = public_jwk(ROOT.public_key(), ROOT_KID, "ES256")
    written = []
    for name, case in cases().items():
        vector = {
            "description": case["description"],
            "token": case["token"],
            "trust_list": tl,
            "trust_root": root,
            "validation_clock": case["now"],
            "clock_skew": SKEW,
            "requirement": case["requirement"],
            "expected": {
                "valid": case["fail"] is None,
                "reason": case["reason"],
                "steps": steps(case["fail"]),
            },
        }
        path = out / f"{name}.json"
        path.write_text(json.dumps(vector, indent=2, ensure_ascii=False) + "\n")
        written.append(path)
    return written


if __name__ == "__main__":
    for p in write():
        print(p.name)
