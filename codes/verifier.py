"""The offline verifier of the citizen code (市民码): decode, signature, time window, entitlement.

One self-contained file for scanner vendors: copy it into a terminal's software as it is. It imports the
Python standard library, ``cryptography`` and ``cbor2`` — nothing else (not this project, no web
framework, no network). docs/citizen-code.md specifies the bytes; tests/vectors/*.json are the
conformance vectors every copy must pass.

    import json, time, verifier
    root = verifier.public_key_from_jwk(pinned_root_jwk)          # pinned when the scanner is provisioned
    doc = verifier.verify_document(json.loads(trust_list_text), root)   # GET /api/v1/codes/trust-list
    trust = verifier.TrustList.from_document(doc)
    result = verifier.verify(token, trust, now=time.time(), requirement="transit")
    result.valid, result.reason   # True, None  /  False, "expired"

Inside the project the same names are reached through ``codes.format``, ``codes.entitlements`` and
``codes.trustlist``, which add what only the issuer needs (encoding, signing).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, utils

# ---- the format (docs/citizen-code.md section 1) -------------------------------------------------------
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
# Key 6 of the entitlements map: keyed claims, [[scope, 8-byte value], ...] (at most MAX_KEYED), each a
# value only a holder of the scope's key can read, different in every code (docs/citizen-code.md)
ENT_KEYED = 6
MAX_KEYED = 2
KEYED_LEN = 8
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
# Decoding 200 characters with a per-group Python loop costs about a quarter of the ECDSA verification
# itself. This decoder does the same arithmetic on all groups at once with C-level byte operations: each
# character becomes its digit value (bytes.translate), the three digit columns become big integers with
# one 24-bit slot per group, and c0 + 45*c1 + 2025*c2 is one big-integer expression (no slot can carry:
# 91124 < 2**24). Tests check it against the base45 library on random and edge inputs.
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


def verify_bytes(public_key: Any, alg_id: int, signature: bytes, message: bytes) -> bool:
    """Verify a raw COSE signature (r||s for ES256); False on any mismatch."""
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


# ---- the entitlements (claim -65537) ------------------------------------------------------------------
HEALTH_COLOURS = ("green", "yellow", "red", "unknown")  # "unknown": the health authority gave none
ENTITLEMENT_NAMES = ("medical", "transit", "health", "tickets", "social_security")


@dataclass(frozen=True, slots=True)
class Entitlements:
    """The merged entitlements carried in a code; compact CBOR form in docs/citizen-code.md section 1."""

    medical_region: str | None = None  # insured in this region (6-digit administrative code)
    transit: bool | None = None  # None: no standing known; False: refused (unpaid fares)
    health: str = "unknown"
    tickets: bool = False
    social_security: bool = False

    @property
    def medical(self) -> bool:
        return self.medical_region is not None

    def to_compact(self) -> dict[int, Any]:
        out: dict[int, Any] = {}
        if self.medical_region is not None:
            out[1] = self.medical_region
        if self.transit is not None:
            out[2] = 1 if self.transit else 0
        out[3] = HEALTH_COLOURS.index(self.health)
        if self.tickets:
            out[4] = True
        if self.social_security:
            out[5] = True
        return out

    @classmethod
    def from_compact(cls, data: Any) -> Entitlements:
        if not isinstance(data, dict):
            raise ValueError("entitlements must be a map")
        region = data.get(1)
        transit = data.get(2)
        health = data.get(3, 3)
        if region is not None and not (
            isinstance(region, str) and len(region) == 6 and region.isascii() and region.isdigit()
        ):
            raise ValueError("medical region must be a 6-digit code")
        if transit not in (None, 0, 1) or health not in (0, 1, 2, 3):
            raise ValueError("bad transit or health value")
        return cls(
            medical_region=region,
            transit=None if transit is None else bool(transit),
            health=HEALTH_COLOURS[health],
            tickets=data.get(4) is True,
            social_security=data.get(5) is True,
        )

    def readable(self) -> dict[str, Any]:
        return {
            "medical": {"insured": self.medical, "region": self.medical_region},
            "transit": {
                "allowed": self.transit is not False,
                "refused_reason": None if self.transit is not False else "unpaid_fares",
            },
            "health": {"status": self.health},
            "tickets": {"has_tickets": self.tickets},
            "social_security": {"insured": self.social_security},
        }

    def grants(self, requirement: str | None) -> bool:
        """Whether this code entitles its holder to a scan context that requires ``requirement``."""
        if requirement is None:
            return True
        if requirement == "medical":
            return self.medical
        if requirement == "transit":
            return self.transit is not False and self.health != "red"
        if requirement == "tickets":
            return self.tickets
        if requirement == "social_security":
            return self.social_security
        if requirement == "health":
            return self.health == "green"
        raise ValueError(f"unknown entitlement requirement {requirement!r}")


# ---- the trust list (docs/citizen-code.md section 3) ------------------------------------------------
DOCUMENT_TYPE = "shengshitong-trust-list"
FORMAT_VERSION = 1


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
    """Issuer keys by COSE kid, ready for :func:`verify`."""

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


def verify_document(jws: dict[str, str], root_public_key: Any) -> dict[str, Any]:
    """Check the root signature over the flattened JWS (the scanner pins the root key) and return the
    trust list document."""
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


# ---- verification (docs/citizen-code.md section 2) --------------------------------------------------
STEPS = ("decode", "signature", "time", "entitlement")
_ALL_OK = {"decode": "ok", "signature": "ok", "time": "ok", "entitlement": "ok"}


@dataclass(slots=True)
class Result:
    valid: bool
    reason: str | None
    steps: dict[str, str]
    cti: bytes | None = None
    kid: bytes | None = None
    iat: int | None = None
    exp: int | None = None
    issuer: str | None = None
    entitlements: Entitlements | None = None
    # keyed claims (scope, value), e.g. the offline-door claims of the communities the holder lives in
    keyed: tuple[tuple[int, bytes], ...] = ()


def keyed_claims(data: Any) -> tuple[tuple[int, bytes], ...]:
    """Key 6 of the entitlements map: ``((scope, value), ...)``; ValueError when it is malformed."""
    if not isinstance(data, dict) or ENT_KEYED not in data:
        return ()
    items = data[ENT_KEYED]
    if type(items) is not list or not 1 <= len(items) <= MAX_KEYED:
        raise ValueError("keyed claims must be a list of 1-2 pairs")
    out = []
    for item in items:
        if (
            type(item) is not list
            or len(item) != 2
            or type(item[0]) is not int
            or not 0 <= item[0] < 2**32
            or type(item[1]) is not bytes
            or len(item[1]) != KEYED_LEN
        ):
            raise ValueError("a keyed claim is [uint scope, 8-byte value]")
        out.append((item[0], item[1]))
    return tuple(out)


def _refused(step: str, reason: str, d: Decoded | None = None, ent: Entitlements | None = None) -> Result:
    steps = {}
    for name in STEPS:
        if name == step:
            steps[name] = "fail"
        elif STEPS.index(name) < STEPS.index(step):
            steps[name] = "ok"
        else:
            steps[name] = "skipped"
    res = Result(False, reason, steps)
    if d is not None:
        claims = d.claims
        res.cti, res.kid, res.iat, res.exp = (
            claims.get(CLAIM_CTI),
            d.kid,
            claims.get(CLAIM_IAT),
            claims.get(CLAIM_EXP),
        )
        res.issuer, res.entitlements = claims.get(CLAIM_ISS), ent
    return res


def verify(
    token: str,
    trust: TrustList,
    *,
    now: float,
    skew: float | None = None,
    requirement: str | None = None,
    check_entitlement: bool = True,
) -> Result:
    """Verify a citizen code against a trust list at time ``now`` (Unix seconds).

    ``skew`` is the clock-skew tolerance in seconds (default: the trust list's). ``requirement`` names the
    entitlement the scan context needs (``transit``, ``medical``, ...; None needs none). The steps run in
    order and stop at the first refusal, whose machine-readable reason the result carries.
    """
    tolerance = trust.clock_skew if skew is None else skew
    # 1. decode
    try:
        d = decode(token)
    except FormatError as exc:
        return _refused("decode", exc.reason)
    claims = d.claims
    iat, exp, cti = claims.get(CLAIM_IAT), claims.get(CLAIM_EXP), claims.get(CLAIM_CTI)
    if (
        type(iat) is not int
        or type(exp) is not int
        or type(cti) is not bytes
        or not 8 <= len(cti) <= 16
        or d.kid is None
    ):
        return _refused("decode", "bad_format")
    try:
        ent = Entitlements.from_compact(claims.get(CLAIM_ENT, {}))
        keyed = keyed_claims(claims.get(CLAIM_ENT, {}))
    except ValueError:
        return _refused("decode", "bad_format")
    # 2. signature (the key's own algorithm only)
    key = trust.keys.get(d.kid)
    if key is None:
        return _refused("signature", "unknown_kid", d, ent)
    if d.alg != key.alg_id or d.alg not in ALG_NAMES:
        return _refused("signature", "wrong_alg", d, ent)
    issuer = claims.get(CLAIM_ISS)
    if trust.issuer is not None and issuer != trust.issuer:
        return _refused("signature", "wrong_issuer", d, ent)
    if not verify_bytes(key.public_key, key.alg_id, d.signature, sig_structure(d.protected, d.payload)):
        return _refused("signature", "bad_signature", d, ent)
    # 3. time window, with the tolerance on both sides; and the key must have been signing at iat
    if (key.valid_from is not None and iat < key.valid_from - tolerance) or (
        key.valid_until is not None and iat > key.valid_until + tolerance
    ):
        return _refused("time", "key_not_valid", d, ent)
    if now < iat - tolerance:
        return _refused("time", "not_yet_valid", d, ent)
    if now > exp + tolerance:
        return _refused("time", "expired", d, ent)
    # 4. entitlement for the scan context
    steps = dict(_ALL_OK)
    if not check_entitlement:
        steps["entitlement"] = "skipped"
    elif not ent.grants(requirement):
        return _refused("entitlement", "not_entitled", d, ent)
    return Result(True, None, steps, cti, d.kid, iat, exp, issuer, ent, keyed)


def describe(result: Result) -> dict[str, Any]:
    """A JSON-friendly view (vectors, logs)."""
    return {"valid": result.valid, "reason": result.reason, "steps": dict(result.steps)}
