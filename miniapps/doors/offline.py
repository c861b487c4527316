"""The reference offline door verifier: what a door controller runs while it has no connection.

A door vendor reads this file with ``codes/verifier.py`` (the citizen code's self-contained verifier,
reached here as ``miniapps.contract.code_verifier``) and docs/miniapps.md ("扫码门禁 doors", "Offline
doors"). It needs the standard library, ``cryptography`` and ``cbor2``; nothing of the network. Copied into a
door's software beside ``verifier.py``, its one import of this project becomes
``import verifier as code_verifier``.

The door keeps three things, each fetched while online and checked against the root key it pinned when
it was enrolled (``GET /api/v1/codes/trust-root``):

- the trust list (``GET /api/v1/codes/trust-list``): the issuers' public keys;
- its door list (``GET /api/v1/apps/doors/door-list``, its scanner credential): a flattened JWS signed by
  the same root key, ``typ`` ``door-list+json``, whose payload names the place's number, the door, when
  the list expires, the place's offline keys and the residents' handles (random, 8 bytes; no personal
  data) that open this door;
- the code ids it admitted since its last upload (a code opens a door once).

    root = code_verifier.public_key_from_jwk(pinned_root_jwk)
    trust = code_verifier.TrustList.from_document(code_verifier.verify_document(trust_list_jws, root))
    door_list = open_list(door_list_jws, root, door=MY_DOOR_CODE)  # the code it was enrolled with
    verdict = decide(scanned_text, trust, door_list, now=time.time(), seen=admitted_ctis)
    verdict.allow, verdict.reason      # True, "ok"  /  False, "list_expired"

Visitor passes are not in the list: they open doors online only (their count must hold across doors,
which only the server can keep), so an offline door refuses a visitor (``not_resident``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from miniapps.contract import code_verifier

LIST_TYPE = "shengshitong-door-list"
LIST_TYP = "door-list+json"
LIST_APP = "doors"  # the protected header's "app": the mini-app that had the list signed


class ListError(ValueError):
    """The door list is not one the door may use (signature, type)."""


def _unb64u(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class DoorList:
    place: str
    community: int  # the place's number in the code's keyed claims
    door: str
    issued_at: int
    expires_at: int
    keys: tuple[bytes, ...]  # the place's offline keys, current first
    handles: frozenset[bytes]  # residents who open this door
    other_handles: frozenset[bytes]  # residents of the place who do not open this door


def open_list(jws: dict[str, str], root_public_key: Any, *, door: str) -> DoorList:
    """Check the list's root signature, type and origin (the doors app had it signed: the root key signs
    other apps' documents too), and that it is ``door``'s own (another door's list, of this place or
    another, opens for other people); the list as the door uses it."""
    try:
        header = json.loads(_unb64u(jws["protected"]))
    except (KeyError, ValueError, TypeError) as exc:
        raise ListError("malformed door list") from exc
    if not isinstance(header, dict) or header.get("typ") != LIST_TYP or header.get("app") != LIST_APP:
        raise ListError("not a door list")
    try:
        doc = code_verifier.verify_document(jws, root_public_key)
    except code_verifier.TrustListError as exc:
        raise ListError(str(exc)) from exc
    if doc.get("type") != LIST_TYPE or doc.get("format") != 1:
        raise ListError("not a version-1 door list")
    if doc.get("door") != door:
        raise ListError("the list of another door")
    return DoorList(
        place=str(doc["place"]),
        community=int(doc["community"]),
        door=str(doc["door"]),
        issued_at=int(doc["issued_at"]),
        expires_at=int(doc["expires_at"]),
        keys=tuple(_unb64u(k["k"]) for k in doc["keys"]),
        handles=frozenset(_unb64u(h) for h in doc["handles"]),
        other_handles=frozenset(_unb64u(h) for h in doc["other_handles"]),
    )


@dataclass(frozen=True, slots=True)
class Verdict:
    allow: bool
    reason: (
        str  # ok | list_expired | list_not_yet_valid | a code refusal | replayed | not_resident | wrong_door
    )
    cti: bytes | None = None


def handle_of(claim: bytes, key: bytes, cti: bytes) -> bytes:
    """The resident's handle from a code's claim: claim XOR HMAC-SHA256(key, cti)[:8]."""
    pad = hmac.new(key, cti, hashlib.sha256).digest()[: len(claim)]
    return bytes(a ^ b for a, b in zip(claim, pad, strict=True))


def decide(
    token: str,
    trust: code_verifier.TrustList,
    door_list: DoorList,
    *,
    now: float,
    seen: set[bytes] | None = None,
) -> Verdict:
    """Whether the door opens for the scanned code, offline. ``seen`` (the code ids this door admitted
    since its last upload) is updated when it opens."""
    skew = trust.clock_skew
    if now > door_list.expires_at:
        return Verdict(False, "list_expired")
    if now < door_list.issued_at - skew:
        return Verdict(False, "list_not_yet_valid")
    result = code_verifier.verify(token, trust, now=now)
    if not result.valid or result.cti is None:
        return Verdict(False, result.reason or "bad_format")
    cti = result.cti
    if seen is not None and cti in seen:
        return Verdict(False, "replayed", cti)
    claims = [value for scope, value in result.keyed if scope == door_list.community]
    for claim in claims:
        for key in door_list.keys:
            handle = handle_of(claim, key, cti)
            if handle in door_list.handles:
                if seen is not None:
                    seen.add(cti)
                return Verdict(True, "ok", cti)
            if handle in door_list.other_handles:
                return Verdict(False, "wrong_door", cti)
    return Verdict(False, "not_resident", cti)
