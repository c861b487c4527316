"""Bytes of the citizen code: a CWT (RFC 8392) claims map, signed as COSE_Sign1 (RFC 9052), base45 text
(RFC 9285) behind the prefix ``SC1:``. See docs/citizen-code.md for the byte-level specification.

Decoding and verifying live in :mod:`codes.verifier` (one self-contained file for scanner vendors) and
are re-exported here; this module adds what only the issuer needs: signing and encoding."""

from __future__ import annotations

import os
from typing import Any

import base45
import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, utils

from codes.verifier import (
    ALG_EDDSA,
    ALG_ES256,
    ALG_IDS,
    ALG_NAMES,
    CLAIM_CTI,
    CLAIM_ENT,
    CLAIM_EXP,
    CLAIM_IAT,
    CLAIM_ISS,
    COSE_SIGN1_TAG,
    ENT_KEYED,
    HDR_ALG,
    HDR_KID,
    KEYED_LEN,
    MAX_KEYED,
    MAX_TOKEN_CHARS,
    PREFIX,
    Decoded,
    Entitlements,
    FormatError,
    b45decode,
    decode,
    sig_structure,
    verify_bytes,
)

__all__ = [
    "ALG_EDDSA",
    "ALG_ES256",
    "ALG_IDS",
    "ALG_NAMES",
    "CLAIM_CTI",
    "CLAIM_ENT",
    "CLAIM_EXP",
    "CLAIM_IAT",
    "CLAIM_ISS",
    "COSE_SIGN1_TAG",
    "HDR_ALG",
    "HDR_KID",
    "MAX_TOKEN_CHARS",
    "PREFIX",
    "Decoded",
    "FormatError",
    "b45decode",
    "decode",
    "encode",
    "sig_structure",
    "sign_bytes",
    "verify_bytes",
]


def sign_bytes(private_key: Any, alg: str, message: bytes) -> bytes:
    """A raw COSE signature: r||s (32 bytes each) for ES256, deterministic (RFC 6979); 64 bytes for EdDSA."""
    if alg == "ES256":
        der = private_key.sign(message, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
        r, s = utils.decode_dss_signature(der)
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    if alg == "EdDSA":
        assert isinstance(private_key, ed25519.Ed25519PrivateKey)
        return private_key.sign(message)
    raise ValueError(f"unsupported alg {alg!r}")


def encode(
    *,
    private_key: Any,
    alg: str,
    kid: bytes,
    issuer: str,
    iat: int,
    exp: int,
    entitlements: Entitlements,
    cti: bytes | None = None,
    keyed: tuple[tuple[int, bytes], ...] | list[tuple[int, bytes]] = (),
) -> tuple[str, bytes]:
    """Sign a new code; returns ``(token_text, cti)``. ``keyed``: the keyed claims (scope, 8 bytes), at
    most two, computed for this ``cti`` (entitlements key 6)."""
    cti = cti if cti is not None else os.urandom(12)
    if not 8 <= len(cti) <= 16:
        raise ValueError("cti must be 8-16 bytes")
    ent = entitlements.to_compact()
    if keyed:
        if len(keyed) > MAX_KEYED or any(len(v) != KEYED_LEN or not 0 <= n < 2**32 for n, v in keyed):
            raise ValueError("at most 2 keyed claims, each (uint scope, 8 bytes)")
        ent[ENT_KEYED] = [[n, v] for n, v in keyed]
    protected = cbor2.dumps({HDR_ALG: ALG_IDS[alg], HDR_KID: kid})
    payload = cbor2.dumps(
        {
            CLAIM_ISS: issuer,
            CLAIM_IAT: iat,
            CLAIM_EXP: exp,
            CLAIM_CTI: cti,
            CLAIM_ENT: ent,
        }
    )
    signature = sign_bytes(private_key, alg, sig_structure(protected, payload))
    cose = cbor2.dumps(cbor2.CBORTag(COSE_SIGN1_TAG, [protected, {}, payload, signature]))
    return PREFIX + base45.b45encode(cose).decode("ascii"), cti
