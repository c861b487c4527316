"""The offline verifier: decode, signature, time window, entitlement. No network, no web framework.

from codes.verifier import verify
from codes.trustlist import TrustList, verify_document
trust = TrustList.from_document(verify_document(jws, pinned_root_key))
result = verify(token, trust, now=time.time(), requirement="transit")
result.valid, result.reason   # True, None  /  False, "expired"
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from codes.entitlements import Entitlements
from codes.format import (
    ALG_NAMES,
    CLAIM_CTI,
    CLAIM_ENT,
    CLAIM_EXP,
    CLAIM_IAT,
    CLAIM_ISS,
    FormatError,
    decode,
    sig_structure,
    verify_bytes,
)
from codes.trustlist import TrustList

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


def _refused(step: str, reason: str, d: Any = None, ent: Entitlements | None = None) -> Result:
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
    return Result(True, None, steps, cti, d.kid, iat, exp, issuer, ent)


def describe(result: Result) -> dict[str, Any]:
    """A JSON-friendly view (vectors, logs)."""
    return {"valid": result.valid, "reason": result.reason, "steps": dict(result.steps)}
