"""Regenerate the e-licence conformance vectors: ``python tests/vectors/licences/generate.py``.

Reproducible byte for byte: the keys come from fixed seeds, ES256 signatures are deterministic (RFC 6979),
salts, nonces and clocks are fixed. Each case is one JSON file: the root key and the signed issuer trust
list it verifies, the status list tokens the inspector's device holds, the validation time, the audience
and (when the inspector gave one) the nonce, whether a key binding is required, and the steps: the
presentations shown one after another to one verifier (so a replay is the second step), each with the
result expected (``licences.verifier.describe``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
import zlib
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))

from backend.keystore import public_jwk  # noqa: E402
from codes.format import sign_bytes  # noqa: E402

T0 = 1_800_000_000  # 2027-01-15T08:00:00Z: every credential is issued at this time
ROOT = ec.derive_private_key(0x11C0_0001, ec.SECP256R1())
TRAFFIC = ec.derive_private_key(0x11C0_0002, ec.SECP256R1())
OTHER_ISSUER = ec.derive_private_key(0x11C0_0003, ec.SECP256R1())
DEVICE = ec.derive_private_key(0x11C0_0004, ec.SECP256R1())
THIEF = ec.derive_private_key(0x11C0_0005, ec.SECP256R1())
ROOT_KID, TRAFFIC_KID, OTHER_KID = "root-01", "traffic-01", "other-01"
BASE = "https://sst.example"
ISS = f"{BASE}/licences/issuers/sy-traffic"
OTHER_ISS = f"{BASE}/licences/issuers/dl-traffic"
STATUS_URI = f"{BASE}/api/v1/licences/status/sy-traffic/1"
VCT = "urn:shengshitong:licence:driving_licence:1"
INSPECT = "urn:shengshitong:inspect"
FIELDS = {
    "name": "王小明",
    "sex": "男",
    "birth_date": "1991-04-02",
    "address": "辽宁省沈阳市沈河区北京街9号",
    "licence_number": "210103199104020013",
    "licence_class": "C1",
    "valid_until": "2032-06-18",
}


def _b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def jwt(key: Any, header: dict[str, Any], payload: dict[str, Any]) -> str:
    head, body = _b64u(_json(header)), _b64u(_json(payload))
    return f"{head}.{body}.{_b64u(sign_bytes(key, 'ES256', f'{head}.{body}'.encode()))}"


def disclosure(n: int, name: str, value: Any) -> str:
    salt = _b64u(hashlib.sha256(f"salt-{n}-{name}".encode()).digest()[:16])
    return _b64u(_json([salt, name, value]))


def digest(d: str) -> str:
    return _b64u(hashlib.sha256(d.encode("ascii")).digest())


def credential(
    *,
    key: Any = TRAFFIC,
    kid: str = TRAFFIC_KID,
    iss: str = ISS,
    vct: str = VCT,
    exp: int = T0 + 30 * 86400,
    idx: int = 7,
    device: Any = DEVICE,
    header: dict[str, Any] | None = None,
    salts: int = 1,
) -> tuple[str, dict[str, str]]:
    disclosures = {name: disclosure(salts, name, value) for name, value in FIELDS.items()}
    payload: dict[str, Any] = {"iss": iss, "iat": T0, "exp": exp, "vct": vct}
    if device is not None:
        jwk = public_jwk(device.public_key(), "", "ES256")
        payload["cnf"] = {"jwk": {k: jwk[k] for k in ("kty", "crv", "x", "y")}}
    payload["status"] = {"status_list": {"idx": idx, "uri": STATUS_URI}}
    payload["_sd_alg"] = "sha-256"
    payload["_sd"] = sorted([digest(d) for d in disclosures.values()] + [_b64u(b"decoy" * 6 + b"\x00\x01")])
    return jwt(key, header or {"alg": "ES256", "typ": "dc+sd-jwt", "kid": kid}, payload), disclosures


def present(
    issuer_jwt: str,
    chosen: list[str],
    *,
    key: Any = DEVICE,
    aud: str = INSPECT,
    nonce: str = "n-0123456789abcdef",
    iat: int = T0 + 60,
    sd_hash: str | None = None,
) -> str:
    joined = "~".join([issuer_jwt, *chosen, ""])
    kb = jwt(
        key,
        {"alg": "ES256", "typ": "kb+jwt"},
        {"iat": iat, "aud": aud, "nonce": nonce, "sd_hash": sd_hash or digest(joined)},
    )
    return joined + kb


def status_token(
    statuses: dict[int, int],
    *,
    iat: int = T0,
    exp: int = T0 + 86400,
    key: Any = TRAFFIC,
    kid: str = TRAFFIC_KID,
    iss: str = ISS,
) -> str:
    data = bytearray(16)
    for idx, value in statuses.items():
        data[idx // 4] |= value << ((idx % 4) * 2)
    payload = {
        "iss": iss,
        "sub": STATUS_URI,
        "iat": iat,
        "exp": exp,
        "ttl": 300,
        "status_list": {"bits": 2, "lst": _b64u(zlib.compress(bytes(data), 9))},
    }
    return jwt(key, {"alg": "ES256", "typ": "statuslist+jwt", "kid": kid}, payload)


def trust_list(types: list[str] | None = None, *, other_issuer: bool = False) -> dict[str, str]:
    doc = {
        "type": "shengshitong-licence-issuers",
        "format": 1,
        "iss": BASE,
        "server_time": T0,
        "refresh_after": 3600,
        "issuers": [
            {
                "iss": ISS,
                "code": "sy-traffic",
                "name_zh": "沈阳市公安局交通警察支队",
                "name_en": "Shenyang Traffic Police",
                "department": "traffic_police",
                "types": types or ["driving_licence", "vehicle_licence"],
                "keys": [public_jwk(TRAFFIC.public_key(), TRAFFIC_KID, "ES256")],
            }
        ],
    }
    if other_issuer:  # another department the platform trusts: for driving licences too
        doc["issuers"].append(
            {
                "iss": OTHER_ISS,
                "code": "dl-traffic",
                "name_zh": "大连市公安局交通警察支队",
                "name_en": "Dalian Traffic Police",
                "department": "traffic_police",
                "types": ["driving_licence"],
                "keys": [public_jwk(OTHER_ISSUER.public_key(), OTHER_KID, "ES256")],
            }
        )
    protected = _b64u(_json({"alg": "ES256", "kid": ROOT_KID, "typ": "licence-issuers+json"}))
    payload = _b64u(_json(doc))
    return {
        "protected": protected,
        "payload": payload,
        "signature": _b64u(sign_bytes(ROOT, "ES256", f"{protected}.{payload}".encode())),
    }


def ok(fields: list[str]) -> dict[str, Any]:
    return {
        "valid": True,
        "vct": VCT,
        "issuer": "sy-traffic",
        "fields": {f: FIELDS[f] for f in fields},
        "status": "valid",
    }


def refused(reason: str) -> dict[str, Any]:
    return {"valid": False, "reason": reason}


def cases() -> dict[str, dict[str, Any]]:
    jwt0, d = credential()
    name_class = [d["name"], d["licence_class"]]
    good = present(jwt0, name_class)
    other_jwt, other_d = credential(salts=2)  # the same licence minted again: other salts
    forged_class = disclosure(3, "licence_class", "A1")  # a class the issuer never signed
    tampered_sig = jwt0[:-4] + ("AAAA" if not jwt0.endswith("AAAA") else "BBBB")
    _, body, _ = jwt0.split(".")
    alg_none = f"{_b64u(_json({'alg': 'none', 'typ': 'dc+sd-jwt', 'kid': TRAFFIC_KID}))}.{body}."
    out: dict[str, dict[str, Any]] = {
        "valid_name_and_class": (
            "Name and licence class disclosed, nothing else.",
            [(good, ok(["name", "licence_class"]))],
        ),
        "valid_one_field": (
            "Only the licence class.",
            [(present(jwt0, [d["licence_class"]]), ok(["licence_class"]))],
        ),
        "replayed": (
            "The same presentation shown twice to one verifier: the second time is refused.",
            [(good, ok(["name", "licence_class"])), (good, refused("replayed"))],
        ),
        "spliced_disclosure": (
            "The holder adds a disclosure the issuer never signed (and signs the key binding over it).",
            [(present(jwt0, [d["name"], forged_class]), refused("bad_disclosure"))],
        ),
        "disclosure_of_another_credential": (
            "A disclosure copied from another credential of the same licence (other salts).",
            [(present(jwt0, [other_d["name"]]), refused("bad_disclosure"))],
        ),
        "kb_not_covering_disclosures": (
            "A disclosure added after the key binding was signed.",
            [
                (
                    good[: good.rindex("~")] + "~" + d["sex"] + "~" + good.split("~")[-1],
                    refused("bad_signature"),
                )
            ],
        ),
        "tampered_issuer_signature": (
            "The issuer's signature altered.",
            [(present(tampered_sig, name_class), refused("bad_signature"))],
        ),
        "alg_none": (
            "The issuer JWT re-labelled alg none, with no signature.",
            [(present(alg_none, name_class), refused("bad_signature"))],
        ),
        "unknown_issuer": (
            "A licence from an issuer the trust list does not hold.",
            [
                (
                    present(credential(iss=f"{BASE}/licences/issuers/fake")[0], name_class),
                    refused("unknown_issuer"),
                )
            ],
        ),
        "unknown_key": (
            "Signed by a key the trust list does not give the issuer.",
            [(present(credential(key=OTHER_ISSUER, kid=OTHER_KID)[0], name_class), refused("unknown_key"))],
        ),
        "type_not_allowed": (
            "A type outside the issuer's types in the trust list.",
            [
                (
                    present(credential(vct="urn:shengshitong:licence:diploma:1")[0], name_class),
                    refused("type_not_allowed"),
                )
            ],
        ),
        "expired_credential": (
            "The credential's exp has passed.",
            [(present(credential(exp=T0 + 30)[0], name_class), refused("expired"))],
        ),
        "stale_presentation": (
            "A presentation made an hour before it is shown.",
            [(present(jwt0, name_class, iat=T0 + 60 - 3600), refused("stale"))],
        ),
        "wrong_audience": (
            "Made for another verifier.",
            [(present(jwt0, name_class, aud="https://elsewhere.example"), refused("wrong_audience"))],
        ),
        "kb_by_another_key": (
            "The key binding signed by a key other than the credential's device key (a copied credential).",
            [(present(jwt0, name_class, key=THIEF), refused("bad_signature"))],
        ),
        "no_key_binding": (
            "The key-binding JWT dropped.",
            [("~".join([jwt0, *name_class, ""]), refused("no_key_binding"))],
        ),
        "short_nonce": (
            "A nonce too short to be fresh.",
            [(present(jwt0, name_class, nonce="123"), refused("bad_nonce"))],
        ),
        "revoked": (
            "The status list says revoked.",
            [(present(credential(idx=3)[0], [credential(idx=3)[1]["name"]]), refused("revoked"))],
        ),
        "suspended": (
            "The status list says suspended.",
            [(present(credential(idx=5)[0], [d["name"]]), refused("suspended"))],
        ),
    }
    vectors = {name: _vector(desc, steps) for name, (desc, steps) in out.items()}
    vectors["challenge_nonce"] = _vector(
        "The inspector gave a challenge; the presentation answers it.",
        [(present(jwt0, name_class, nonce="inspector-challenge-42"), ok(["name", "licence_class"]))],
        nonce="inspector-challenge-42",
    )
    vectors["wrong_challenge"] = _vector(
        "The inspector gave a challenge; the presentation answers another.",
        [(good, refused("bad_nonce"))],
        nonce="inspector-challenge-42",
    )
    vectors["status_list_expired"] = _vector(
        "The status list the device holds is past its exp: it must be fetched again.",
        [(good, refused("status_stale"))],
        statuses=[status_token({3: 1, 5: 2}, iat=T0 - 90000, exp=T0 - 3600)],
    )
    vectors["status_list_missing"] = _vector(
        "The device holds no status list for the licence.", [(good, refused("status_unknown"))], statuses=[]
    )
    vectors["shared_on_consent"] = _vector(
        "What the platform shares on a consent: issuer-signed, no device key, no key binding.",
        [
            (
                "~".join([credential(device=None)[0], d["name"], d["licence_class"], ""]),
                ok(["name", "licence_class"]),
            )
        ],
        key_binding=False,
    )
    vectors["trust_list_narrowed"] = _vector(
        "The issuer may issue vehicle licences only, per the trust list.",
        [(good, refused("type_not_allowed"))],
        types=["vehicle_licence"],
    )
    vectors["stripped_key_binding"] = _vector(
        "A device-bound presentation with its key binding dropped (a photo of a 亮证 QR), offered as a"
        " consent share: a licence bound to a device is shown only with its key binding.",
        [("~".join([jwt0, *name_class, ""]), refused("no_key_binding"))],
        key_binding=False,
    )
    vectors["status_list_of_another_issuer"] = _vector(
        "A revoked licence (index 3) and, for its status URI, a list that another trusted department"
        " signed saying valid: a list vouches only for the licences of the issuer that signed it.",
        [(present(credential(idx=3)[0], [credential(idx=3)[1]["name"]]), refused("bad_status_list"))],
        statuses=[status_token({}, key=OTHER_ISSUER, kid=OTHER_KID, iss=OTHER_ISS)],
        other_issuer=True,
    )
    del other_jwt
    return vectors


def _vector(
    description: str,
    steps: list[tuple[str, dict[str, Any]]],
    *,
    nonce: str | None = None,
    statuses: list[str] | None = None,
    key_binding: bool = True,
    types: list[str] | None = None,
    other_issuer: bool = False,
) -> dict[str, Any]:
    return {
        "description": description,
        "trust_root": public_jwk(ROOT.public_key(), ROOT_KID, "ES256"),
        "trust_list": trust_list(types, other_issuer=other_issuer),
        "status_lists": [status_token({3: 1, 5: 2})] if statuses is None else statuses,
        "validation_time": T0 + 90,
        "audience": INSPECT,
        "nonce": nonce,
        "key_binding": key_binding,
        "steps": [{"presentation": p, "expected": e} for p, e in steps],
    }


def main(out: Path = HERE) -> None:
    for name, vector in cases().items():
        (out / f"{name}.json").write_text(
            json.dumps(vector, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
