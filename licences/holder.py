"""The holder's side of an e-licence, as a citizen's app does it on the device (docs/licences.md): the
proof of possession of the device key when asking for a credential, and a presentation disclosing only
the fields the citizen chose, bound to the device key with a fresh nonce.

The web wallet does the same in the browser (WebCrypto, a non-extractable P-256 key); this module is the
reference for native apps and the tests. It needs only ``cryptography``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils

PROOF_TYP = "openid4vci-proof+jwt"


def _b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64u(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def device_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def public_jwk(key: ec.EllipticCurvePrivateKey) -> dict[str, str]:
    numbers = key.public_key().public_numbers()
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": _b64u(numbers.x.to_bytes(32, "big")),
        "y": _b64u(numbers.y.to_bytes(32, "big")),
    }


def sign_jwt(key: ec.EllipticCurvePrivateKey, header: dict[str, Any], payload: dict[str, Any]) -> str:
    head = _b64u(json.dumps({"alg": "ES256", **header}, separators=(",", ":")).encode())
    body = _b64u(json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode())
    der = key.sign(f"{head}.{body}".encode("ascii"), ec.ECDSA(hashes.SHA256()))
    r, s = utils.decode_dss_signature(der)
    return f"{head}.{body}.{_b64u(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def proof(key: ec.EllipticCurvePrivateKey, *, audience: str, nonce: str, iat: int) -> str:
    """OpenID4VCI-style proof of possession: the device key signs the server's nonce."""
    return sign_jwt(
        key, {"typ": PROOF_TYP, "jwk": public_jwk(key)}, {"aud": audience, "nonce": nonce, "iat": iat}
    )


def disclosures_of(credential: str) -> dict[str, str]:
    """The credential's disclosures by field name."""
    out = {}
    for disclosure in credential.split("~")[1:]:
        if disclosure:
            _, name, _ = json.loads(_unb64u(disclosure))
            out[name] = disclosure
    return out


def present(
    credential: str,
    fields: list[str],
    key: ec.EllipticCurvePrivateKey,
    *,
    audience: str,
    iat: int,
    nonce: str | None = None,
) -> str:
    """``<issuer JWT>~<chosen disclosures>~<KB-JWT>``: only ``fields`` disclosed, bound to the device key
    with ``nonce`` (a fresh random one unless the verifier gave one)."""
    issuer_jwt = credential.split("~")[0]
    by_name = disclosures_of(credential)
    missing = [f for f in fields if f not in by_name]
    if missing:
        raise KeyError(f"the licence has no field {missing[0]!r}")
    chosen = [by_name[f] for f in fields]
    sd_hash = _b64u(hashlib.sha256("~".join([issuer_jwt, *chosen, ""]).encode("ascii")).digest())
    kb = sign_jwt(
        key,
        {"typ": "kb+jwt"},
        {"iat": iat, "aud": audience, "nonce": nonce or secrets.token_urlsafe(16), "sd_hash": sd_hash},
    )
    return "~".join([issuer_jwt, *chosen, kb])
