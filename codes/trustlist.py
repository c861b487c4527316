"""The trust list: issuer public keys for offline scanners, signed by the long-lived root key.

It travels as a flattened JWS (RFC 7515 section 7.2.2) whose payload is JSON:

    {"type": "shengshitong-trust-list", "format": 1, "iss": "SST", "server_time": 1764000000,
     "code_validity": 60, "clock_skew": 30, "refresh_after": 3600,
     "keys": [{"kty": "EC", "crv": "P-256", "x": "...", "y": "...", "kid": "base64url(COSE kid)",
               "alg": "ES256", "use": "sig", "valid_from": 1763990000, "valid_until": null}, ...]}

``valid_from`` / ``valid_until`` bound the ``iat`` of codes the key may have signed (``valid_until`` is
null while the key still signs).

Reading and checking a list (``TrustList``, ``verify_document``) is part of the self-contained offline
verifier, :mod:`codes.verifier`, and re-exported here; this module adds what the server needs to build
and sign one.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from codes.format import sign_bytes
from codes.verifier import (
    DOCUMENT_TYPE,
    FORMAT_VERSION,
    TrustedKey,
    TrustList,
    TrustListError,
    public_key_from_jwk,
    verify_document,
)

__all__ = [
    "DOCUMENT_TYPE",
    "FORMAT_VERSION",
    "TrustList",
    "TrustListError",
    "TrustedKey",
    "build_document",
    "public_key_from_jwk",
    "sign_document",
    "verify_document",
]


def _b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


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
