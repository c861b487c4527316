"""Bytes of the citizen code: a CWT (RFC 8392) claims map, signed as COSE_Sign1 (RFC 9052), base45 text
(RFC 9285) behind the prefix ``SC1:``. See docs/citizen-code.md for the byte-level specification."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import base45
import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, utils

from codes.entitlements import Entitlements

PREFIX = "SC1:"
COSE_SIGN1_TAG = 18
# COSE header labels and algorithm ids
HDR_ALG, HDR_KID = 1, 4
ALG_ES256, ALG_EDDSA = -7, -8
ALG_IDS = {"ES256": ALG_ES256, "EdDSA": ALG_EDDSA}
ALG_NAMES = {v: k for k, v in ALG_IDS.items()}
# CWT claim keys
CLAIM_ISS, CLAIM_EXP, CLAIM_IAT, CLAIM_CTI = 1, 4, 6, 7
CLAIM_ENT = -65537  # private use (RFC 8392 section 9.1: below -65536)
MAX_TOKEN_CHARS = 600  # anything longer is refused before decoding (oversized)
_ECDSA = ec.ECDSA(hashes.SHA256())


class FormatError(ValueError):
    """The token is not a well-formed citizen code. ``reason`` is the machine-readable refusal."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Decoded:
    protected: bytes  # the serialised protected header, as signed
    payload: bytes  # the serialised claims, as signed
    signature: bytes
    alg: int | None
    kid: bytes | None
    claims: dict[Any, Any]


def _bstr_head(n: int) -> bytes:
    """The CBOR head of a byte string of length ``n`` (major type 2, shortest form)."""
    if n < 24:
        return bytes((0x40 | n,))
    if n < 0x100:
        return bytes((0x58, n))
    if n < 0x10000:
        return b"\x59" + n.to_bytes(2, "big")
    return b"\x5a" + n.to_bytes(4, "big")


_SIG1_HEAD = b"\x84\x6aSignature1"  # array(4), text(10) "Signature1"


def sig_structure(protected: bytes, payload: bytes) -> bytes:
    """RFC 9052 section 4.4: Sig_structure = ["Signature1", protected, external_aad = h'', payload], in
    deterministic CBOR. Built directly (the same bytes as ``cbor2.dumps``; a test checks it)."""
    return b"".join(
        (_SIG1_HEAD, _bstr_head(len(protected)), protected, b"\x40", _bstr_head(len(payload)), payload)
    )


# ---- base45 decoding on the hot path -----------------------------------------------------------------
# The base45 library encodes and is the reference; decoding 200 characters with it costs about a quarter
# of the ECDSA verification itself (a Python loop per 3-character group). This decoder does the same
# arithmetic on all groups at once with C-level byte operations: each character becomes its digit value
# (bytes.translate), the three digit columns become big integers with one 24-bit slot per group, and
# c0 + 45*c1 + 2025*c2 is one big-integer expression (no slot can carry: 91124 < 2**24). Tests check it
# against the library on random and edge inputs.
_B45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
_DIGITS = bytes(_B45.index(chr(c)) if chr(c) in _B45 else 255 for c in range(256))


def b45decode(text: str) -> bytes:
    """RFC 9285 decoding; ValueError on any character or group that is not valid base45."""
    if not text.isascii():
        raise ValueError("invalid base45 character")
    v = text.encode("ascii").translate(_DIGITS)
    if 255 in v:
        raise ValueError("invalid base45 character")
    groups, tail = divmod(len(v), 3)
    if tail == 1:
        raise ValueError("invalid base45 length")
    n = 3 * groups
    slots = bytearray(n)
    slots[2::3] = v[0:n:3]
    c0 = int.from_bytes(slots, "big")
    slots[2::3] = v[1:n:3]
    c1 = int.from_bytes(slots, "big")
    slots[2::3] = v[2:n:3]
    c2 = int.from_bytes(slots, "big")
    values = (c0 + 45 * c1 + 2025 * c2).to_bytes(n, "big")
    if values[0::3].count(0) != groups:  # a group above 65535
        raise ValueError("invalid base45 group")
    out = bytearray(2 * groups + (1 if tail else 0))
    out[0 : 2 * groups : 2] = values[1::3]
    out[1 : 2 * groups : 2] = values[2::3]
    if tail:
        last = v[-2] + 45 * v[-1]
        if last > 255:
            raise ValueError("invalid base45 group")
        out[-1] = last
    return bytes(out)


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


def verify_bytes(public_key: Any, alg_id: int, signature: bytes, message: bytes) -> bool:
    """Verify a raw COSE signature; False on any mismatch."""
    try:
        if alg_id == ALG_ES256:
            if len(signature) != 64:
                return False
            der = utils.encode_dss_signature(
                int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
            )
            public_key.verify(der, message, _ECDSA)
        else:
            public_key.verify(signature, message)
    except (InvalidSignature, TypeError, ValueError):
        return False
    return True


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
) -> tuple[str, bytes]:
    """Sign a new code; returns ``(token_text, cti)``."""
    cti = cti if cti is not None else os.urandom(12)
    if not 8 <= len(cti) <= 16:
        raise ValueError("cti must be 8-16 bytes")
    protected = cbor2.dumps({HDR_ALG: ALG_IDS[alg], HDR_KID: kid})
    payload = cbor2.dumps(
        {
            CLAIM_ISS: issuer,
            CLAIM_IAT: iat,
            CLAIM_EXP: exp,
            CLAIM_CTI: cti,
            CLAIM_ENT: entitlements.to_compact(),
        }
    )
    signature = sign_bytes(private_key, alg, sig_structure(protected, payload))
    cose = cbor2.dumps(cbor2.CBORTag(COSE_SIGN1_TAG, [protected, {}, payload, signature]))
    return PREFIX + base45.b45encode(cose).decode("ascii"), cti


def decode(token: str) -> Decoded:
    """Parse the text form down to the signed parts. Raises FormatError with the refusal reason."""
    if not isinstance(token, str):
        raise FormatError("bad_format", "the token must be text")
    if len(token) > MAX_TOKEN_CHARS:
        raise FormatError("oversized", f"longer than {MAX_TOKEN_CHARS} characters")
    if not token.startswith(PREFIX):
        raise FormatError("bad_prefix", f"the token must start with {PREFIX}")
    try:
        raw = b45decode(token[len(PREFIX) :])
    except ValueError:
        raise FormatError("bad_base45", "not valid base45") from None
    fast = _split_sign1(raw)
    if fast is not None:
        protected, payload, signature = fast
    else:
        protected, payload, signature = _split_sign1_generic(raw)
    alg, kid = _header(protected)
    try:
        claims = cbor2.loads(payload)
    except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError, RecursionError):
        raise FormatError("bad_format", "claims are not valid CBOR") from None
    if type(claims) is not dict:
        raise FormatError("bad_format", "claims must be a map")
    return Decoded(protected, payload, signature, alg, kid, claims)


def _bstr(raw: bytes, pos: int) -> tuple[bytes, int]:
    head = raw[pos]
    if head >> 5 != 2:
        raise IndexError
    n = head & 31
    if n < 24:
        start = pos + 1
    elif n == 24:
        n, start = raw[pos + 1], pos + 2
    elif n == 25:
        n, start = (raw[pos + 1] << 8) | raw[pos + 2], pos + 3
    else:
        raise IndexError
    end = start + n
    if end > len(raw):
        raise IndexError
    return raw[start:end], end


def _split_sign1(raw: bytes) -> tuple[bytes, bytes, bytes] | None:
    """The shape this service issues, read without building CBOR objects: tag 18, array of 4, protected
    bstr, empty unprotected map, payload bstr, signature bstr. None for anything else (then the generic
    CBOR path decides)."""
    if raw[:2] != b"\xd2\x84":
        return None
    try:
        protected, pos = _bstr(raw, 2)
        if raw[pos] != 0xA0:
            return None
        payload, pos = _bstr(raw, pos + 1)
        signature, pos = _bstr(raw, pos)
    except IndexError:
        return None
    return (protected, payload, signature) if pos == len(raw) else None


def _split_sign1_generic(raw: bytes) -> tuple[bytes, bytes, bytes]:
    try:
        obj = cbor2.loads(raw)
    except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError, RecursionError):
        raise FormatError("bad_format", "not valid CBOR (truncated?)") from None
    if isinstance(obj, cbor2.CBORTag):
        if obj.tag != COSE_SIGN1_TAG:
            raise FormatError("bad_format", "not a COSE_Sign1 (tag 18)")
        obj = obj.value
    if type(obj) not in (list, tuple) or len(obj) != 4:
        raise FormatError("bad_format", "a COSE_Sign1 is an array of 4")
    protected, unprotected, payload, signature = obj
    if (
        type(protected) is not bytes
        or type(unprotected) is not dict
        or type(payload) is not bytes
        or (type(signature) is not bytes)
    ):
        raise FormatError("bad_format", "COSE_Sign1 members have the wrong types")
    return protected, payload, signature


# Every code signed by one key carries the same protected header bytes: parse each distinct one once.
_HEADERS: dict[bytes, tuple[int | None, bytes | None]] = {}


def _header(protected: bytes) -> tuple[int | None, bytes | None]:
    cached = _HEADERS.get(protected)
    if cached is not None:
        return cached
    try:
        header = cbor2.loads(protected) if protected else {}
    except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError, RecursionError):
        raise FormatError("bad_format", "the protected header is not valid CBOR") from None
    if not isinstance(header, dict):
        raise FormatError("bad_format", "the protected header must be a map")
    alg, kid = header.get(HDR_ALG), header.get(HDR_KID)
    parsed = (alg if isinstance(alg, int) else None, kid if isinstance(kid, bytes) else None)
    if len(_HEADERS) < 64:  # a handful of live keys; never an unbounded cache of attacker input
        _HEADERS[protected] = parsed
    return parsed
