"""Issuing the formats of docs/licences.md: an SD-JWT VC with every field selectively disclosable and
bound to the holder's device key, and the IETF Token Status List its status entry points to.

Reading them back is the standalone :mod:`licences.verifier`; this module adds what the issuer signs.
"""

from __future__ import annotations

import json
import os
import secrets
import zlib
from typing import Any

from backend.crypto import b64u
from backend.keystore import LoadedKey
from codes.format import sign_bytes
from licences.verifier import CREDENTIAL_TYP, STATUS_TYP, digest

DECOYS = 2  # decoy digests per credential: the number of fields a licence has is not told by its size


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def sign_jwt(key: LoadedKey, typ: str, payload: dict[str, Any]) -> str:
    head = b64u(_json({"alg": key.alg, "typ": typ, "kid": key.kid}))
    body = b64u(_json(payload))
    return f"{head}.{body}.{b64u(sign_bytes(key.private, key.alg, f'{head}.{body}'.encode('ascii')))}"


def disclosure(name: str, value: Any) -> str:
    return b64u(_json([b64u(os.urandom(16)), name, value]))


def mint(
    key: LoadedKey,
    *,
    iss: str,
    vct: str,
    fields: dict[str, Any],
    holder_jwk: dict[str, Any] | None,
    status_uri: str,
    status_idx: int,
    iat: int,
    exp: int,
) -> str:
    """An SD-JWT VC in its issuance form ``<JWT>~<disclosure>~...~`` (every field a disclosure, with new
    salts each time, the digests sorted among decoys so their order tells nothing). Bound to the holder's
    device key (``cnf``) unless ``holder_jwk`` is None: what the platform shares on a consent."""
    disclosures = [disclosure(name, value) for name, value in fields.items() if value not in (None, "")]
    digests = [digest(d) for d in disclosures] + [b64u(os.urandom(32)) for _ in range(DECOYS)]
    payload: dict[str, Any] = {"iss": iss, "iat": iat, "exp": exp, "vct": vct}
    if holder_jwk is not None:
        payload["cnf"] = {"jwk": {k: holder_jwk[k] for k in ("kty", "crv", "x", "y") if k in holder_jwk}}
    payload["status"] = {"status_list": {"idx": status_idx, "uri": status_uri}}
    payload["_sd_alg"] = "sha-256"
    payload["_sd"] = sorted(digests)
    return "~".join([sign_jwt(key, CREDENTIAL_TYP, payload), *disclosures, ""])


def pack_statuses(statuses: dict[int, int], size: int, bits: int = 2) -> bytes:
    """The status list's bytes: entry ``i`` in bits ``(i % per_byte) * bits`` of byte ``i // per_byte``
    (least significant first, as the Token Status List draft lays them out)."""
    per_byte = 8 // bits
    data = bytearray((size + per_byte - 1) // per_byte)
    for idx, value in statuses.items():
        byte, slot = divmod(idx, per_byte)
        data[byte] |= (value & ((1 << bits) - 1)) << (slot * bits)
    return bytes(data)


def status_token(
    key: LoadedKey, *, iss: str, uri: str, data: bytes, bits: int, iat: int, ttl: int, exp_after: int
) -> str:
    """A Status List Token (JWT, ``typ`` statuslist+jwt) signed by the issuer of the licences it lists:
    ``ttl`` says when to fetch it again, ``exp`` how long an offline verifier may rely on it."""
    payload = {
        "iss": iss,
        "sub": uri,
        "iat": iat,
        "exp": iat + exp_after,  # how long an offline verifier may rely on it
        "ttl": ttl,
        "status_list": {"bits": bits, "lst": b64u(zlib.compress(data, 9))},
    }
    return sign_jwt(key, STATUS_TYP, payload)


def fresh_nonce() -> str:
    return secrets.token_urlsafe(24)
