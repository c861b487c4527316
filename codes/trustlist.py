"""The trust list: issuer public keys for offline scanners, signed by the long-lived root key.

It travels as a flattened JWS (RFC 7515 section 7.2.2) whose payload is JSON:

    {"type": "shengshitong-trust-list", "format": 1, "iss": "SST", "server_time": 1764000000,
     "code_validity": 60, "clock_skew": 30, "refresh_after": 3600,
     "keys": [{"kty": "EC", "crv": "P-256", "x": "...", "y": "...", "kid": "base64url(COSE kid)",
               "alg": "ES256", "use": "sig", "valid_from": 1763990000, "valid_until": null}, ...]}

``valid_from`` / ``valid_until`` bound the ``iat`` of codes the key may have signed (``valid_until`` is
null while the key still signs).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from codes.format import ALG_IDS, sign_bytes, verify_bytes

DOCUMENT_TYPE = "shengshitong-trust-list"
FORMAT_VERSION = 1


def _b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64u(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TrustListError(ValueError):
    pass


def public_key_from_jwk(jwk: dict[str, Any]) -> Any:
    if jwk.get("kty") == "EC" and jwk.get("crv") == "P-256":
        x = int.from_bytes(_unb64u(jwk["x"]), "big")
        y = int.from_bytes(_unb64u(jwk["y"]), "big")
        return ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
    if jwk.get("kty") == "OKP" and jwk.get("crv") == "Ed25519":
        return ed25519.Ed25519PublicKey.from_public_bytes(_unb64u(jwk["x"]))
    raise TrustListError(f"unsupported key type {jwk.get('kty')}/{jwk.get('crv')}")


@dataclass(frozen=True, slots=True)
class TrustedKey:
    kid: bytes
    alg_id: int
    public_key: Any
    valid_from: int | None
    valid_until: int | None


class TrustList:
    """Issuer keys by COSE kid, ready for :func:`codes.verifier.verify`."""

    def __init__(
        self,
        keys: list[TrustedKey],
        *,
        issuer: str | None = None,
        server_time: int | None = None,
        clock_skew: int = 30,
    ) -> None:
        self.keys = {k.kid: k for k in keys}
        self.issuer = issuer
        self.server_time = server_time
        self.clock_skew = clock_skew

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> TrustList:
        if doc.get("type") != DOCUMENT_TYPE or doc.get("format") != FORMAT_VERSION:
            raise TrustListError("not a version-1 Shengshitong trust list")
        keys = []
        for jwk in doc.get("keys", []):
            alg = jwk.get("alg")
            if alg not in ALG_IDS:
                raise TrustListError(f"unsupported alg {alg!r}")
            keys.append(
                TrustedKey(
                    kid=_unb64u(jwk["kid"]),
                    alg_id=ALG_IDS[alg],
                    public_key=public_key_from_jwk(jwk),
                    valid_from=jwk.get("valid_from"),
                    valid_until=jwk.get("valid_until"),
                )
            )
        return cls(
            keys,
            issuer=doc.get("iss"),
            server_time=doc.get("server_time"),
            clock_skew=int(doc.get("clock_skew", 30)),
        )


def build_document(
    keys: list[dict[str, Any]],
    *,
    issuer: str,
    server_time: int,
    code_validity: int,
    clock_skew: int,
    refresh_after: int,
) -> dict[str, Any]:
    return {
        "type": DOCUMENT_TYPE,
        "format": FORMAT_VERSION,
        "iss": issuer,
        "server_time": server_time,
        "code_validity": code_validity,
        "clock_skew": clock_skew,
        "refresh_after": refresh_after,
        "keys": keys,
    }


def sign_document(doc: dict[str, Any], *, root_private_key: Any, root_kid: str, alg: str) -> dict[str, str]:
    """A flattened JWS over the JSON document (ES256 signatures are raw r||s, as in COSE)."""
    protected = _b64u(
        json.dumps({"alg": alg, "kid": root_kid, "typ": "trust-list+json"}, separators=(",", ":")).encode()
    )
    payload = _b64u(json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode())
    signature = sign_bytes(root_private_key, alg, f"{protected}.{payload}".encode("ascii"))
    return {"protected": protected, "payload": payload, "signature": _b64u(signature)}


def verify_document(jws: dict[str, str], root_public_key: Any) -> dict[str, Any]:
    """Check the root signature (the scanner pins the root key) and return the document."""
    try:
        header = json.loads(_unb64u(jws["protected"]))
        alg_id = ALG_IDS[header["alg"]]
        signing_input = f"{jws['protected']}.{jws['payload']}".encode("ascii")
        signature = _unb64u(jws["signature"])
    except (KeyError, ValueError, TypeError) as exc:
        raise TrustListError("malformed trust list") from exc
    if not verify_bytes(root_public_key, alg_id, signature, signing_input):
        raise TrustListError("the trust list's signature does not verify with the root key")
    return dict(json.loads(_unb64u(jws["payload"])))
