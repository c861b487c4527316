"""The inspector's offline verifier for e-licence presentations (亮证): one file, needing only
``cryptography`` (docs/licences.md, "The inspector's verifier").

A presentation is an SD-JWT VC (IETF draft-ietf-oauth-sd-jwt-vc, RFC 9901 SD-JWT) with a key-binding JWT::

    <issuer-signed JWT>~<disclosure>~...~<disclosure>~<KB-JWT>

It is checked against three things the inspector's device fetched while online and keeps:

- the **issuer trust list**: the departments that may issue licences, each with its public keys and the
  licence types it may issue, signed by the platform's root key (which the device pins);
- the **status lists** (IETF Token Status List) the licences point to, each signed by its issuer;
- a **replay guard**: the nonces it has already accepted, so the same presentation shown twice (a
  screenshot, a photo of the screen) is refused.

No network is needed. Nothing of the Shengshitong project is imported: a vendor copies this file.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, utils

__all__ = [
    "CREDENTIAL_TYP",
    "KB_TYP",
    "STATUS_TYP",
    "TRUST_LIST_TYPE",
    "IssuerTrustList",
    "PresentationError",
    "ReplayGuard",
    "StatusList",
    "Verified",
    "describe",
    "digest",
    "jwk_thumbprint",
    "licence_type",
    "public_key_from_jwk",
    "vct_of",
    "verify_jws",
    "verify_presentation",
    "verify_trust_list",
]

CREDENTIAL_TYP = "dc+sd-jwt"
LEGACY_CREDENTIAL_TYP = "vc+sd-jwt"  # the SD-JWT VC drafts before 2025 called it so
KB_TYP = "kb+jwt"
STATUS_TYP = "statuslist+jwt"
TRUST_LIST_TYPE = "shengshitong-licence-issuers"
VCT_PREFIX = "urn:shengshitong:licence:"
STATUS_NAMES = {0: "valid", 1: "revoked", 2: "suspended"}  # Token Status List values (0x00 .. 0x02)
_MAX_PRESENTATION = 16_384  # characters: far above any licence; a longer text is refused unread


class PresentationError(Exception):
    """A presentation, trust list or status list that does not verify; ``code`` says why, for the screen."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(detail or code)
        self.code = code
        self.detail = detail or code


# ---- encoding ------------------------------------------------------------------------------------
def _b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64u(text: str) -> bytes:
    if not isinstance(text, str) or "=" in text or any(c in text for c in "+/ \n"):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _json(segment: str) -> Any:
    """The JSON a base64url segment holds. JSON nested deeper than the parser goes is malformed input
    like any other (a ``ValueError``), not a crash of the device."""
    try:
        return json.loads(_unb64u(segment))
    except RecursionError:
        raise ValueError("JSON nested too deep") from None


def vct_of(licence_type: str, version: int = 1) -> str:
    """The SD-JWT VC type of a licence type: ``urn:shengshitong:licence:<type>:<version>``."""
    return f"{VCT_PREFIX}{licence_type}:{version}"


def licence_type(vct: str) -> str | None:
    if not vct.startswith(VCT_PREFIX):
        return None
    rest = vct[len(VCT_PREFIX) :].split(":")
    return rest[0] if len(rest) == 2 and rest[0] and rest[1].isdigit() else None


def digest(disclosure: str) -> str:
    """The digest of a disclosure as the issuer-signed JWT lists it (``_sd_alg`` sha-256)."""
    return _b64u(hashlib.sha256(disclosure.encode("ascii")).digest())


def public_key_from_jwk(jwk: dict[str, Any]) -> Any:
    try:
        if jwk.get("kty") == "EC" and jwk.get("crv") == "P-256":
            x = int.from_bytes(_unb64u(jwk["x"]), "big")
            y = int.from_bytes(_unb64u(jwk["y"]), "big")
            return ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
        if jwk.get("kty") == "OKP" and jwk.get("crv") == "Ed25519":
            return ed25519.Ed25519PublicKey.from_public_bytes(_unb64u(jwk["x"]))
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise PresentationError("bad_key", "malformed public key") from exc
    raise PresentationError("bad_key", f"unsupported key type {jwk.get('kty')}/{jwk.get('crv')}")


def jwk_thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 SHA-256 thumbprint of a public JWK (the device key a credential is bound to)."""
    if jwk.get("kty") == "EC":
        members = {"crv": jwk["crv"], "kty": "EC", "x": jwk["x"], "y": jwk["y"]}
    elif jwk.get("kty") == "OKP":
        members = {"crv": jwk["crv"], "kty": "OKP", "x": jwk["x"]}
    else:
        raise PresentationError("bad_key", "unsupported key type")
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    return _b64u(hashlib.sha256(canonical).digest())


def _signature_ok(key: Any, alg: str, signature: bytes, message: bytes) -> bool:
    try:
        if alg == "ES256" and isinstance(key, ec.EllipticCurvePublicKey):
            if len(signature) != 64:
                return False
            der = utils.encode_dss_signature(
                int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
            )
            key.verify(der, message, ec.ECDSA(hashes.SHA256()))
            return True
        if alg in ("EdDSA", "Ed25519") and isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, message)
            return True
    except InvalidSignature:
        return False
    return False


def _parts(compact: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    try:
        head, body, sig = compact.split(".")
        header = _json(head)
        payload = _json(body)
        signature = _unb64u(sig)
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise PresentationError("malformed", "not a compact JWS") from exc
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise PresentationError("malformed", "a JWS header and payload are JSON objects")
    return header, payload, signature, f"{head}.{body}".encode("ascii")


def verify_jws(
    compact: str, key: Any, *, typ: str | tuple[str, ...]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A compact JWS signed by ``key`` with the expected ``typ``: its header and payload."""
    header, payload, signature, signed = _parts(compact)
    wanted = (typ,) if isinstance(typ, str) else typ
    if header.get("typ") not in wanted:
        raise PresentationError("wrong_type", f"typ {header.get('typ')!r}, expected {wanted[0]!r}")
    if header.get("crit"):
        raise PresentationError("malformed", "critical header parameters are not understood")
    if not _signature_ok(key, str(header.get("alg")), signature, signed):
        raise PresentationError("bad_signature", f"the {wanted[0]} signature does not verify")
    return header, payload


# ---- the issuer trust list -----------------------------------------------------------------------
@dataclass(frozen=True)
class TrustedIssuer:
    iss: str
    code: str
    name_zh: str
    name_en: str
    types: frozenset[str]
    keys: dict[str, Any]  # kid -> public key


class IssuerTrustList:
    """The departments that may issue licences, their keys and their licence types, as the platform
    published them (:func:`verify_trust_list`)."""

    def __init__(self, issuers: list[TrustedIssuer], *, fetched_at: int, refresh_after: int) -> None:
        self.issuers = {i.iss: i for i in issuers}
        self.fetched_at = fetched_at
        self.refresh_after = refresh_after

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> IssuerTrustList:
        if doc.get("type") != TRUST_LIST_TYPE or doc.get("format") != 1:
            raise PresentationError("bad_trust_list", "not a licence issuer trust list of format 1")
        issuers = []
        for item in doc.get("issuers", []):
            keys = {str(jwk["kid"]): public_key_from_jwk(jwk) for jwk in item.get("keys", [])}
            issuers.append(
                TrustedIssuer(
                    iss=str(item["iss"]),
                    code=str(item["code"]),
                    name_zh=str(item.get("name_zh", "")),
                    name_en=str(item.get("name_en", "")),
                    types=frozenset(map(str, item.get("types", []))),
                    keys=keys,
                )
            )
        return cls(
            issuers, fetched_at=int(doc.get("server_time", 0)), refresh_after=int(doc.get("refresh_after", 0))
        )


def verify_trust_list(jws: dict[str, str], root_public_key: Any) -> dict[str, Any]:
    """Check the root's signature over the flattened JWS the platform publishes; the document."""
    try:
        header = _json(jws["protected"])
        signed = f"{jws['protected']}.{jws['payload']}".encode("ascii")
        signature = _unb64u(jws["signature"])
        alg = str(header["alg"])
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise PresentationError("bad_trust_list", "malformed trust list") from exc
    if not _signature_ok(root_public_key, alg, signature, signed):
        raise PresentationError("bad_trust_list", "the trust list's signature does not verify with the root")
    try:
        return dict(_json(jws["payload"]))
    except (ValueError, TypeError) as exc:
        raise PresentationError("bad_trust_list", "malformed trust list") from exc


# ---- status lists (IETF Token Status List) ---------------------------------------------------------
@dataclass(frozen=True)
class StatusList:
    uri: str  # its ``sub``: the status URI of the licences it speaks for (nothing else's)
    bits: int
    data: bytes  # decompressed
    expires_at: int | None  # ``exp`` of the token: after it the inspector must refresh
    iss: str = ""  # the issuer that signed it: it speaks for that issuer's licences only

    @classmethod
    def from_token(cls, token: str, trust: IssuerTrustList) -> StatusList:
        """A Status List Token checked against the issuer it names (its ``iss``) in the trust list. An
        expired one is kept (a presentation checked against it says ``status_stale``: fetch it again)."""
        header, payload, _, _ = _parts(token)
        issuer = trust.issuers.get(str(payload.get("iss")))
        if issuer is None:
            raise PresentationError("unknown_issuer", "the status list's issuer is not trusted")
        key = issuer.keys.get(str(header.get("kid")))
        if key is None:
            raise PresentationError("unknown_key", "the status list is signed by a key not in the trust list")
        _, payload = verify_jws(token, key, typ=STATUS_TYP)
        exp = payload.get("exp")
        try:
            lst = payload["status_list"]
            bits = int(lst["bits"])
            data = zlib.decompress(_unb64u(lst["lst"]))
        except (KeyError, ValueError, TypeError, zlib.error) as exc:
            raise PresentationError("bad_status_list", "malformed status list") from exc
        if bits not in (1, 2, 4, 8):
            raise PresentationError("bad_status_list", "status list bits must be 1, 2, 4 or 8")
        return cls(str(payload.get("sub")), bits, data, int(exp) if exp is not None else None, issuer.iss)

    def status(self, idx: int) -> int:
        per_byte = 8 // self.bits
        byte, slot = divmod(idx, per_byte)
        if idx < 0 or byte >= len(self.data):
            raise PresentationError("bad_status_list", "the licence's index is outside its status list")
        return (self.data[byte] >> (slot * self.bits)) & ((1 << self.bits) - 1)


# ---- replays -------------------------------------------------------------------------------------
@dataclass
class ReplayGuard:
    """The nonces this device accepted, each kept as long as a presentation carrying it could pass."""

    seen: dict[str, int] = field(default_factory=dict)

    def check_and_remember(self, nonce: str, until: int, now: int) -> bool:
        if len(self.seen) > 4096:
            self.seen = {n: t for n, t in self.seen.items() if t > now}
        if self.seen.get(nonce, 0) > now:
            return False
        self.seen[nonce] = until
        return True


# ---- presentations -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Verified:
    vct: str
    issuer: str  # the issuer's code
    issuer_name_zh: str
    issuer_name_en: str
    fields: dict[str, Any]  # only what the holder disclosed
    status: str
    issued_at: int
    expires_at: int | None


def _decode_disclosures(parts: list[str]) -> dict[str, tuple[str, Any]]:
    out: dict[str, tuple[str, Any]] = {}
    for disclosure in parts:
        try:
            item = _json(disclosure)
        except (ValueError, TypeError, UnicodeDecodeError) as exc:
            raise PresentationError("malformed", "a disclosure is not base64url JSON") from exc
        if not (isinstance(item, list) and len(item) == 3 and isinstance(item[1], str)):
            raise PresentationError("malformed", "only object-property disclosures [salt, name, value]")
        if item[1] in ("_sd", "...", "_sd_alg", "cnf", "status", "iss", "vct", "iat", "exp", "nbf"):
            raise PresentationError("malformed", f"a disclosure may not carry {item[1]!r}")
        d = digest(disclosure)
        if d in out:
            raise PresentationError("malformed", "the same disclosure twice")
        out[d] = (item[1], item[2])
    return out


def _check_binding(
    claims: dict[str, Any],
    issuer_jwt: str,
    disclosures: list[str],
    kb_jwt: str,
    now: int,
    audience: str | tuple[str, ...],
    nonce: str | None,
    max_age: int,
    skew: int,
) -> tuple[str, int]:
    """The key-binding JWT's nonce and time, once everything about it holds."""
    cnf = claims.get("cnf")
    if not isinstance(cnf, dict) or not isinstance(cnf.get("jwk"), dict):
        raise PresentationError("no_key_binding", "the credential is not bound to a device key")
    _, kb = verify_jws(kb_jwt, public_key_from_jwk(cnf["jwk"]), typ=KB_TYP)
    audiences = (audience,) if isinstance(audience, str) else audience
    if kb.get("aud") not in audiences:
        raise PresentationError("wrong_audience", "the presentation was made for another verifier")
    sd_hash = _b64u(hashlib.sha256("~".join([issuer_jwt, *disclosures, ""]).encode("ascii")).digest())
    if kb.get("sd_hash") != sd_hash:
        raise PresentationError("bad_signature", "the key binding does not cover these disclosures")
    kb_iat = kb.get("iat")
    if not isinstance(kb_iat, int) or kb_iat > now + skew or kb_iat + max_age + skew < now:
        raise PresentationError("stale", "the presentation is too old: ask for a fresh one")
    given = kb.get("nonce")
    if not isinstance(given, str) or not 16 <= len(given) <= 128:
        raise PresentationError("bad_nonce", "a fresh nonce of 16 to 128 characters is required")
    if nonce is not None and given != nonce:
        raise PresentationError("bad_nonce", "the presentation answers another challenge")
    return given, kb_iat


def verify_presentation(
    text: str,
    trust: IssuerTrustList,
    status_lists: dict[str, StatusList],
    *,
    now: int,
    audience: str | tuple[str, ...],
    nonce: str | None = None,
    replay: ReplayGuard | None = None,
    max_age: int = 300,
    skew: int = 60,
    key_binding: bool = True,
) -> Verified:
    """Check a presentation offline. ``nonce``: the challenge this verifier gave, if it gave one; without
    one the holder chose the nonce, and ``replay`` refuses it a second time within ``max_age``.

    ``key_binding=False`` checks what the platform shares on a citizen's consent (授权) while the holder is
    not there: issuer-signed, without a device key or a key-binding JWT (``<JWT>~<disclosures>~``). A
    credential bound to a device key (``cnf``) is never that: without its key binding it is a presentation
    someone stripped (a photo of a 亮证 QR), and it is refused.

    Raises :class:`PresentationError` whose ``code`` says what failed."""
    if not isinstance(text, str) or len(text) > _MAX_PRESENTATION:
        raise PresentationError("malformed", "not a presentation")
    pieces = text.strip().split("~")
    if key_binding and (len(pieces) < 2 or not pieces[-1]):
        raise PresentationError("no_key_binding", "a presentation ends with its key-binding JWT")
    if not key_binding and (len(pieces) < 2 or pieces[-1]):
        raise PresentationError("malformed", "a shared presentation ends with '~'")
    issuer_jwt, disclosures, kb_jwt = pieces[0], pieces[1:-1], pieces[-1]

    # 1. the issuer's signature, by a key the trust list gives that issuer
    header, unverified, _, _ = _parts(issuer_jwt)
    issuer = trust.issuers.get(str(unverified.get("iss")))
    if issuer is None:
        raise PresentationError("unknown_issuer", "the licence's issuer is not in the trust list")
    key = issuer.keys.get(str(header.get("kid")))
    if key is None:
        raise PresentationError("unknown_key", "signed by a key the trust list does not hold")
    _, claims = verify_jws(issuer_jwt, key, typ=(CREDENTIAL_TYP, LEGACY_CREDENTIAL_TYP))
    vct = str(claims.get("vct", ""))
    if licence_type(vct) not in issuer.types:
        raise PresentationError("type_not_allowed", "this issuer may not issue this licence type")
    if claims.get("_sd_alg", "sha-256") != "sha-256":
        raise PresentationError("malformed", "only sha-256 digests")

    # 2. validity in time
    iat = claims.get("iat")
    exp = claims.get("exp")
    if not isinstance(iat, int) or iat > now + skew:
        raise PresentationError("not_yet_valid", "issued in the future")
    if claims.get("nbf") is not None and int(claims["nbf"]) > now + skew:
        raise PresentationError("not_yet_valid", "not valid yet")
    if exp is not None and int(exp) + skew <= now:
        raise PresentationError("expired", "the credential has expired: refresh it in the app")

    # 3. the holder's key binding: the device key the credential names signed this very presentation
    bound = None
    if key_binding:
        bound = _check_binding(claims, issuer_jwt, disclosures, kb_jwt, now, audience, nonce, max_age, skew)
    elif claims.get("cnf") is not None:
        raise PresentationError(
            "no_key_binding", "this licence is bound to its holder's device: shown only with its key binding"
        )

    # 4. the disclosures: each one's digest must be in the signed JWT
    decoded = _decode_disclosures(disclosures)
    listed = claims.get("_sd", [])
    if not isinstance(listed, list) or len(set(listed)) != len(listed):
        raise PresentationError("malformed", "the digests must be a list without repeats")
    listed_set = set(listed)
    fields: dict[str, Any] = {}
    for d, (name, value) in decoded.items():
        if d not in listed_set:
            raise PresentationError("bad_disclosure", "a disclosure the issuer did not sign")
        if name in fields:
            raise PresentationError("malformed", "a field disclosed twice")
        fields[name] = value

    # 5. the status the issuer gives the licence now
    status_ref = (claims.get("status") or {}).get("status_list") or {}
    uri, idx = status_ref.get("uri"), status_ref.get("idx")
    status = "valid"
    if uri is not None:
        status_list = status_lists.get(str(uri))
        if status_list is None:
            raise PresentationError("status_unknown", "no current status list for this licence: fetch it")
        # the list speaks for this licence only if it names the licence's URI (its ``sub``, Token Status
        # List section 8.3) and the licence's issuer signed it (one department's key vouches for no other's)
        if status_list.uri != str(uri) or status_list.iss != issuer.iss:
            raise PresentationError("bad_status_list", "the status list is not the one this licence names")
        if status_list.expires_at is not None and status_list.expires_at <= now:
            raise PresentationError("status_stale", "the status list has expired: fetch it again")
        if not isinstance(idx, int):
            raise PresentationError("malformed", "a status index is an integer")
        status = STATUS_NAMES.get(status_list.status(idx), "invalid")
        if status != "valid":
            raise PresentationError(status, f"the issuer says this licence is {status}")

    # 6. last, once all else holds: a nonce is accepted once (a refused presentation may be retried once
    # the inspector refreshed a stale list)
    if bound is not None and replay is not None:
        given, kb_iat = bound
        if not replay.check_and_remember(given, kb_iat + max_age + skew, now):
            raise PresentationError("replayed", "this presentation was already shown")
    return Verified(
        vct=vct,
        issuer=issuer.code,
        issuer_name_zh=issuer.name_zh,
        issuer_name_en=issuer.name_en,
        fields=fields,
        status=status,
        issued_at=iat,
        expires_at=int(exp) if exp is not None else None,
    )


def describe(outcome: Verified | PresentationError) -> dict[str, Any]:
    """What a conformance vector expects: the outcome and, when it verified, what was disclosed."""
    if isinstance(outcome, PresentationError):
        return {"valid": False, "reason": outcome.code}
    return {
        "valid": True,
        "vct": outcome.vct,
        "issuer": outcome.issuer,
        "fields": outcome.fields,
        "status": outcome.status,
    }


def now() -> int:
    return int(time.time())
