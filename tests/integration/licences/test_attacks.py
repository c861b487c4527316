"""The e-licence centre attacked from outside: what an adversary (a citizen, a requester, a man in the
middle at a checkpoint) or a newcomer does wrong, and what each one gets. Every case here was a real
answer once (a 500, a field shared that should not have been, a genuine licence refused, a change that
answered "failed" while it was made); each asserts what the caller sees now.

Tokens are forged with libraries we did not write (jwcrypto, cryptography); the inspector's side is the
standalone verifier, with what an inspector's device fetched."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwcrypto import jwk as jwcrypto_jwk
from jwcrypto import jws as jwcrypto_jws

from licences import holder, verifier
from licences.format import pack_statuses, status_token
from tests.integration.licences.conftest import START
from tests.integration.licences.office import DRIVING, claims_of
from tests.integration.messages.citizen import approve, inbox

pytestmark = pytest.mark.asyncio
INSPECT = "urn:shengshitong:inspect"


def _b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _kb_jwt(key: ec.EllipticCurvePrivateKey, issuer_jwt: str, disclosures: list[str], iat: int) -> str:
    """A key-binding JWT signed with jwcrypto (not our holder module) over exactly these disclosures."""
    sd_hash = _b64u(hashlib.sha256("~".join([issuer_jwt, *disclosures, ""]).encode("ascii")).digest())
    payload = {"iat": iat, "aud": INSPECT, "nonce": secrets.token_urlsafe(16), "sd_hash": sd_hash}
    token = jwcrypto_jws.JWS(json.dumps(payload).encode())
    token.add_signature(
        jwcrypto_jwk.JWK.from_pyca(key),
        alg="ES256",
        protected=json.dumps({"alg": "ES256", "typ": "kb+jwt"}),
    )
    return str(token.serialize(compact=True))


async def _problem(r, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers
    body = r.json()
    assert body["code"] == code, body
    return dict(body)


async def _second_issuer(office, code: str, name_en: str = "Dalian Traffic Police") -> dict[str, str]:
    from tests.conftest import basic_auth

    r = await office.client.post(
        "/api/v1/admin/licences/issuers",
        json={
            "code": code,
            "name_zh": "大连市公安局交通警察支队",
            "name_en": name_en,
            "department": "traffic_police",
            "types": ["driving_licence"],
        },
        headers=office.operator,
    )
    assert r.status_code == 201, r.text
    return basic_auth(r.json())


async def _ask(office, citizen, mode: str = "once", rp: dict | None = None) -> tuple[dict, str]:
    """A relying party (a new one unless given) asks the citizen for name and licence class."""
    from tests.conftest import basic_auth

    if rp is None:
        rp = basic_auth(await office.client.services.auth.machines.create("relying_party", name="政务中心"))
    r = await office.client.post(
        "/api/v1/licences/requests",
        json={
            "type": "driving_licence",
            "fields": ["name", "licence_class"],
            "purpose": "办理驾驶人信息变更",
            "id_number": citizen.id_number,
            "mode": mode,
        },
        headers=rp,
    )
    assert r.status_code == 201, r.text
    return rp, str(r.json()["id"])


# ---- consent ---------------------------------------------------------------------------------------
async def test_a_consent_ends_when_its_citizen_no_longer_holds_the_licence(open_office):
    """An account verified with an ID number approves a standing consent, then its real name is cleared
    (a fraud notice, or the citizen's own correction). The requester kept receiving that ID number's
    licence, logged in an account that no longer holds it, where the licence's true holder (who verifies
    later) can neither see nor stop it."""
    async with open_office() as office:
        client = office.client
        citizen = await office.citizen()
        issued = await office.issue(citizen)
        rp, standing = await _ask(office, citizen, mode="standing")
        r = await client.post(f"/api/v1/me/licence-requests/{standing}/approve", json={}, headers=citizen.me)
        assert r.status_code == 200 and r.json()["state"] == "approved"
        _, once = await _ask(office, citizen, rp=rp)
        await client.post(f"/api/v1/me/licence-requests/{once}/approve", json={}, headers=citizen.me)
        r = await client.post(f"/api/v1/licences/requests/{standing}/presentation", headers=rp)
        assert r.status_code == 200 and r.json()["fields"] == {"name": "王小明", "licence_class": "C1"}

        r = await client.delete("/api/v1/me/real-name", headers=citizen.me)
        assert r.status_code == 204, r.text
        assert (await client.get("/api/v1/me/licences", headers=citizen.me)).json()["items"] == []
        for request_id in (standing, once):
            r = await client.post(f"/api/v1/licences/requests/{request_id}/presentation", headers=rp)
            body = await _problem(r, 409, "licence_not_held")
            assert "fields" not in body and "presentation" not in body

        # the true holder verifies an account of their own: the old consent still gives nothing
        holder = await office.citizen(verified=False)
        await office.verify(holder, "王小明", citizen.id_number)
        mine = (await client.get("/api/v1/me/licences", headers=holder.me)).json()["items"]
        assert [m["id"] for m in mine] == [issued["id"]]
        r = await client.post(f"/api/v1/licences/requests/{standing}/presentation", headers=rp)
        await _problem(r, 409, "licence_not_held")
        uses = (await client.get("/api/v1/me/licence-uses", headers=citizen.me)).json()["items"]
        assert len(uses) == 1  # the one share made while the account held the licence


async def test_an_expired_licence_is_neither_approved_nor_shared(open_office):
    """A licence past its valid_until: a consent to it was approved, and sharing spent a one-time consent
    and logged a disclosure for a presentation that had expired before it was made."""
    async with open_office() as office:
        client = office.client
        citizen = await office.citizen()
        fields = {**DRIVING, "licence_number": citizen.id_number}
        body = {"type": "driving_licence", "id_number": citizen.id_number, "fields": fields}
        r = await client.post(
            "/api/v1/licences/issued",
            json={**body, "valid_until": (START + timedelta(hours=1)).isoformat()},
            headers=office.issuer,
        )
        assert r.status_code == 201, r.text
        rp, once = await _ask(office, citizen)
        r = await client.post(f"/api/v1/me/licence-requests/{once}/approve", json={}, headers=citizen.me)
        assert r.status_code == 200 and r.json()["state"] == "approved"

        client.runtime.clock.advance(2 * 3600)  # the licence lapses before the requester fetches it
        r = await client.post(f"/api/v1/licences/requests/{once}/presentation", headers=rp)
        body_ = await _problem(r, 409, "licence_expired")
        assert "presentation" not in body_
        r = await client.get(f"/api/v1/licences/requests/{once}", headers=rp)
        assert r.json()["state"] == "approved" and r.json()["used_at"] is None  # not spent
        assert (await client.get("/api/v1/me/licence-uses", headers=citizen.me)).json()["items"] == []

        # and a new request is not approved against it
        _, second = await _ask(office, citizen)
        r = await client.post(f"/api/v1/me/licence-requests/{second}/approve", json={}, headers=citizen.me)
        await _problem(r, 409, "licence_expired")


async def test_what_the_message_centre_refuses_neither_fails_a_change_nor_half_writes_one(open_office):
    """Once the licence messages are approved, the message centre checks their data: a department whose
    English name is longer than a text placeholder holds made every issue and revocation of its licences
    answer 422 although the licence was issued or revoked; a purpose with a direction-changing character
    answered 422 although the request had been recorded for the citizen to approve."""
    async with open_office() as office:
        client = office.client
        await approve(
            client, *(f"platform.{t}" for t in ("licence_issued", "licence_revoked", "licence_request"))
        )
        long_name = "Shenyang Municipal Public Security Bureau Traffic Police Detachment, Heping Brigade"
        assert 64 < len(long_name) <= 96
        heping = await _second_issuer(office, "sy-heping", name_en=long_name)
        citizen = await office.citizen()
        fields = {**DRIVING, "licence_number": citizen.id_number}
        body = {"type": "driving_licence", "id_number": citizen.id_number, "fields": fields}
        r = await client.post("/api/v1/licences/issued", json=body, headers=heping)
        assert r.status_code == 201, r.text
        licence_id = r.json()["id"]
        r = await client.post(f"/api/v1/licences/issued/{licence_id}/revoke", json={}, headers=heping)
        assert r.status_code == 200 and r.json()["status"] == "revoked", r.text
        told = await inbox(client, citizen.me, locale="en")
        assert sorted(m["title"] for m in told) == [
            "Your Driving licence is in the wallet",
            "Your Driving licence is revoked",
        ]
        assert all(long_name in m["body"] for m in told)

        from tests.conftest import basic_auth

        rp = basic_auth(await client.services.auth.machines.create("relying_party", name="政务服务中心"))
        for purpose in ("办理\u202e更变息信", "办理\u200b业务", "办理\u2066业务\u2069"):
            r = await client.post(
                "/api/v1/licences/requests",
                json={
                    "type": "driving_licence",
                    "fields": ["name"],
                    "purpose": purpose,
                    "id_number": citizen.id_number,
                },
                headers=rp,
            )
            await _problem(r, 422, "invalid_purpose")
        assert (await client.get("/api/v1/me/licence-requests", headers=citizen.me)).json()["items"] == []


async def test_a_requester_cannot_fill_a_citizens_inbox_with_requests(open_office):
    """Each request puts a platform message, carrying the requester's own purpose text, in the citizen's
    inbox, outside the caps and consents a mini-app's own messages go through: thirty requests in a row
    ("恭喜您中奖，请访问…") were thirty messages. A requester now waits for answers past a few."""
    async with open_office() as office:
        client = office.client
        await approve(client, "platform.licence_request")
        citizen = await office.citizen()
        await office.issue(citizen)
        rp, _ = await _ask(office, citizen)
        ask = {"type": "driving_licence", "fields": ["name"], "id_number": citizen.id_number}
        r = await client.post(
            "/api/v1/licences/requests", json={**ask, "purpose": "核验", "key": "case-7"}, headers=rp
        )
        assert r.status_code == 201
        keyed = r.json()["id"]
        for _ in range(3):
            await _ask(office, citizen, rp=rp)
        r = await client.post(
            "/api/v1/licences/requests", json={**ask, "purpose": "恭喜您中奖，请访问网站领取"}, headers=rp
        )
        body = await _problem(r, 409, "requests_pending")
        assert body["most"] == 5
        assert len(await inbox(client, citizen.me)) == 5
        # the same key again is the request already made, not a new one
        r = await client.post(
            "/api/v1/licences/requests", json={**ask, "purpose": "核验", "key": "case-7"}, headers=rp
        )
        assert r.status_code == 200 and r.json()["id"] == keyed
        # an answer makes room; another requester was never held back
        r = await client.post(f"/api/v1/me/licence-requests/{keyed}/refuse", headers=citizen.me)
        assert r.status_code == 200
        await _ask(office, citizen, rp=rp)
        await _ask(office, citizen)
        assert len(await inbox(client, citizen.me)) == 7


async def test_a_revoked_issuers_key_signs_nothing_more(open_office):
    """An issuer revoked (its key leaked, say) left the trust list, but the platform went on signing with
    its key: fresh credentials for the wallet, and consent shares that spent a one-time consent and handed
    the fields over, signed by a key no verifier trusts any more."""
    async with open_office() as office:
        client = office.client
        citizen = await office.citizen()
        issued = await office.issue(citizen)
        await office.credential(citizen, issued["id"])
        rp, once = await _ask(office, citizen)
        await client.post(f"/api/v1/me/licence-requests/{once}/approve", json={}, headers=citizen.me)
        r = await client.post("/api/v1/admin/licences/issuers/sy-traffic/revoke", headers=office.operator)
        assert r.json()["status"] == "revoked"

        r = await client.post(f"/api/v1/licences/requests/{once}/presentation", headers=rp)
        body = await _problem(r, 409, "issuer_revoked")
        assert "fields" not in body
        assert (await client.get(f"/api/v1/licences/requests/{once}", headers=rp)).json()[
            "state"
        ] == "approved"
        assert (await client.get("/api/v1/me/licence-uses", headers=citizen.me)).json()["items"] == []
        nonce = (await client.post("/api/v1/me/licences/nonce", headers=citizen.me)).json()
        proof = holder.proof(
            citizen.key,
            audience=nonce["audience"],
            nonce=nonce["c_nonce"],
            iat=int(client.runtime.clock.time()),
        )
        r = await client.post(
            f"/api/v1/me/licences/{issued['id']}/credential",
            json={"proof": proof},
            headers=citizen.me,
        )
        await _problem(r, 409, "issuer_revoked")


async def test_a_withdrawn_device_is_not_bound_again(open_office):
    """Withdrawing a device (a lost phone) promised that the server "mints none to it", but whoever held
    the phone, still signed in, fetched a fresh credential for the same device key and showed again."""
    async with open_office() as office:
        client = office.client
        citizen = await office.citizen()
        issued = await office.issue(citizen)
        credential = await office.credential(citizen, issued["id"])
        device = (await client.get(f"/api/v1/me/licences/{issued['id']}", headers=citizen.me)).json()[
            "devices"
        ]
        r = await client.delete(
            f"/api/v1/me/licences/{issued['id']}/devices/{device[0]['device_jkt']}", headers=citizen.me
        )
        assert r.status_code == 200 and r.json() == {"withdrawn": 1}
        shown = office.present(citizen, credential, ["licence_class"])
        r = await client.post(
            "/api/v1/me/licences/presentations", json={"presentation": shown}, headers=citizen.me
        )
        await _problem(r, 403, "presentation_not_yours")

        nonce = (await client.post("/api/v1/me/licences/nonce", headers=citizen.me)).json()
        proof = holder.proof(
            citizen.key,
            audience=nonce["audience"],
            nonce=nonce["c_nonce"],
            iat=int(client.runtime.clock.time()),
        )
        r = await client.post(
            f"/api/v1/me/licences/{issued['id']}/credential", json={"proof": proof}, headers=citizen.me
        )
        await _problem(r, 409, "device_withdrawn")
        # the citizen's new phone, with a key of its own, is bound
        citizen.key = holder.device_key()
        fresh = await office.credential(citizen, issued["id"])
        shown = office.present(citizen, fresh, ["licence_class"])
        r = await client.post(
            "/api/v1/me/licences/presentations", json={"presentation": shown}, headers=citizen.me
        )
        assert r.status_code == 200, r.text


# ---- tokens from outside -----------------------------------------------------------------------------
async def test_deeply_nested_json_in_a_token_is_refused_not_a_500(open_office):
    """JSON nested thousands deep inside a token's header, payload or a disclosure made the server answer
    500 (and the inspector's verifier raise a RecursionError instead of refusing)."""
    async with open_office() as office:
        client = office.client
        citizen = await office.citizen()
        issued = await office.issue(citizen)
        credential = await office.credential(citizen, issued["id"])
        issuer_jwt = credential.split("~")[0]
        deep = b"[" * 5000 + b"]" * 5000
        now = int(client.runtime.clock.time())
        head = _b64u(json.dumps({"alg": "ES256", "typ": "dc+sd-jwt"}).encode())
        nested_disclosure = _b64u(b'["salt","name",' + b"[" * 4000 + b"]" * 4000 + b"]")
        cases = {
            "issuer payload": f"{head}.{_b64u(deep)}.{'A' * 86}~{'x' * 10}.{'y' * 10}.{'z' * 10}",
            "KB-JWT header": f"{issuer_jwt}~{_b64u(deep)}.e30.{'A' * 86}",
            # the holder signs the key binding over it: only the disclosure is wrong
            "disclosure": "~".join(
                [issuer_jwt, nested_disclosure, _kb_jwt(citizen.key, issuer_jwt, [nested_disclosure], now)]
            ),
        }
        trust = await office.inspector_trust()
        for name, text in cases.items():
            r = await client.post(
                "/api/v1/me/licences/presentations", json={"presentation": text}, headers=citizen.me
            )
            await _problem(r, 422, "presentation_invalid")
            with pytest.raises(verifier.PresentationError) as refused:
                verifier.verify_presentation(text, trust, {}, now=now, audience=INSPECT)
            assert refused.value.code == "malformed", name
        r = await client.post("/api/v1/me/licences/nonce", headers=citizen.me)
        assert r.status_code == 200
        r = await client.post(
            f"/api/v1/me/licences/{issued['id']}/credential",
            json={"proof": f"{_b64u(deep)}.e30.{'A' * 86}"},
            headers=citizen.me,
        )
        await _problem(r, 422, "invalid_proof")


async def test_a_status_list_number_out_of_range_is_not_found(open_office):
    """A status list number past the database's integer (in the URL, or in the status entry of a forged
    credential, read before its signature is checked) answered 500."""
    async with open_office() as office:
        client = office.client
        citizen = await office.citizen()
        issued = await office.issue(citizen)
        credential = await office.credential(citizen, issued["id"])
        for number in ("2147483648", "99999999999999999999999"):
            r = await client.get(f"/api/v1/licences/status/sy-traffic/{number}")
            await _problem(r, 404, "status_list_not_found")
        head, body, sig = credential.split("~")[0].split(".")
        claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        base = claims["status"]["status_list"]["uri"].rsplit("/", 1)[0]
        for number in ("3000000000", "99999999999999999999999", "9" * 5000):
            claims["status"]["status_list"]["uri"] = f"{base}/{number}"
            forged = f"{head}.{_b64u(json.dumps(claims).encode())}.{sig}"
            disclosure = credential.split("~")[1]
            kb = _kb_jwt(citizen.key, forged, [disclosure], int(client.runtime.clock.time()))
            r = await client.post(
                "/api/v1/me/licences/presentations",
                json={"presentation": f"{forged}~{disclosure}~{kb}"},
                headers=citizen.me,
            )
            body_ = await _problem(r, 422, "presentation_invalid")
            assert body_["reason"] == "bad_signature"


# ---- the inspector's verifier ------------------------------------------------------------------------
async def test_a_status_list_vouches_only_for_the_licences_that_name_it(open_office):
    """A revoked licence, checked against a genuine status list of another issuer (or another list) that
    an inspector's device was handed under this licence's status URI (a caching proxy's mix-up, a man in
    the middle replaying another signed list): the verifier said "valid". The Token Status List draft
    (section 8.3) requires the list's ``sub`` to be the URI the licence names."""
    async with open_office() as office:
        client = office.client
        dalian = await _second_issuer(office, "dl-traffic")
        citizen = await office.citizen()
        issued = await office.issue(citizen)
        other = await office.citizen(name="李四")
        fields = {**DRIVING, "name": "李四", "licence_number": other.id_number}
        r = await client.post(
            "/api/v1/licences/issued",
            json={"type": "driving_licence", "id_number": other.id_number, "fields": fields},
            headers=dalian,
        )
        assert r.status_code == 201, r.text
        credential = await office.credential(citizen, issued["id"])
        r = await client.post(
            f"/api/v1/licences/issued/{issued['id']}/revoke", json={}, headers=office.issuer
        )
        assert r.json()["status"] == "revoked"

        trust = await office.inspector_trust()
        presentation = office.present(citizen, credential, ["name", "licence_class"])
        uri = claims_of(presentation)["status"]["status_list"]["uri"]
        now = int(client.runtime.clock.time())
        dalian_list = await client.get("/api/v1/licences/status/dl-traffic/1")
        assert dalian_list.status_code == 200
        swapped = {uri: verifier.StatusList.from_token(dalian_list.text, trust)}
        with pytest.raises(verifier.PresentationError) as refused:
            verifier.verify_presentation(presentation, trust, swapped, now=now, audience=INSPECT)
        assert refused.value.code == "bad_status_list"

        # keyed by its own sub, as docs/licences.md builds the map: a list that another department's key
        # signed for this URI (a leaked key of one department) vouches for nothing of another's
        dalian_key = await client.services.licences.issuers.signing_key("dl-traffic")
        forged = status_token(
            dalian_key,
            iss=claims_of(dalian_list.text + "~")["iss"],
            uri=uri,
            data=pack_statuses({}, 1 << 17),
            bits=2,
            iat=now,
            ttl=300,
            exp_after=86400,
        )
        lists = {s.uri: s for s in [verifier.StatusList.from_token(forged, trust)]}
        assert list(lists) == [uri]
        with pytest.raises(verifier.PresentationError) as refused:
            verifier.verify_presentation(presentation, trust, lists, now=now, audience=INSPECT)
        assert refused.value.code == "bad_status_list"
        own = await office.inspector_statuses(presentation, trust)
        with pytest.raises(verifier.PresentationError) as revoked:
            verifier.verify_presentation(presentation, trust, own, now=now, audience=INSPECT)
        assert revoked.value.code == "revoked"


async def test_a_device_bound_licence_stripped_of_its_key_binding_is_not_a_shared_presentation(open_office):
    """Anyone who saw a 亮证 QR (a photo of the screen) drops its key-binding JWT and has
    ``<JWT>~<disclosures>~``: the form the platform shares on consent. The verifier's consent mode
    (``key_binding=False``) took it as an issuer-signed share of the citizen's licence, valid for the
    credential's 30 days, with no nonce and no audience."""
    async with open_office() as office:
        client = office.client
        citizen = await office.citizen()
        issued = await office.issue(citizen)
        credential = await office.credential(citizen, issued["id"])
        presentation = office.present(citizen, credential, ["name", "address"])
        stripped = presentation.rsplit("~", 1)[0] + "~"
        trust = await office.inspector_trust()
        statuses = await office.inspector_statuses(presentation, trust)
        now = int(client.runtime.clock.time())
        for text in (stripped, credential):  # the credential itself, as the device keeps it
            with pytest.raises(verifier.PresentationError) as refused:
                verifier.verify_presentation(text, trust, statuses, now=now, audience=(), key_binding=False)
            assert refused.value.code == "no_key_binding"
        # with its key binding, it is what it always was
        ok = verifier.verify_presentation(presentation, trust, statuses, now=now, audience=INSPECT)
        assert ok.fields == {"name": "王小明", "address": DRIVING["address"]}


async def test_an_inspector_holding_the_trust_list_verifies_licences_after_an_issuer_key_rotation(
    open_office,
):
    """An issuer's new key signed at once, while inspectors' devices keep the trust list an hour
    (``refresh_after``): every credential minted and every status list signed after a rotation was
    "unknown_key" to them until their next refresh. A new key now signs a refresh period (plus a worker's
    key reload) after it is published, as the citizen code's keys do."""
    async with open_office() as office:
        client = office.client
        citizen = await office.citizen()
        issued = await office.issue(citizen)
        trust = await office.inspector_trust()  # fetched just before the rotation
        r = await client.post("/api/v1/admin/licences/issuers/sy-traffic/rotate", headers=office.operator)
        assert r.status_code == 200, r.text
        new_kid = r.json()["kid"]

        credential = await office.credential(citizen, issued["id"])
        presentation = office.present(citizen, credential, ["licence_class"])
        statuses = await office.inspector_statuses(presentation, trust)  # the status list signs too
        now = int(client.runtime.clock.time())
        ok = verifier.verify_presentation(presentation, trust, statuses, now=now, audience=INSPECT)
        assert ok.fields == {"licence_class": "C1"}

        # a refresh period (and a key reload) later the new key signs, and the refreshed list holds it
        client.runtime.clock.advance(client.runtime.settings.licence_trust_refresh + 61)
        fresh_trust = await office.inspector_trust()
        later = await office.credential(citizen, issued["id"])
        head = json.loads(base64.urlsafe_b64decode(later.split(".")[0] + "=="))
        assert head["kid"] == new_kid
        presentation = office.present(citizen, later, ["licence_class"])
        now = int(client.runtime.clock.time())
        statuses = await office.inspector_statuses(presentation, fresh_trust)
        ok = verifier.verify_presentation(presentation, fresh_trust, statuses, now=now, audience=INSPECT)
        assert ok.fields == {"licence_class": "C1"}
        # the credential minted before the switch still verifies: the old key stays published
        earlier = office.present(citizen, credential, ["name"])
        ok = verifier.verify_presentation(earlier, fresh_trust, statuses, now=now, audience=INSPECT)
        assert ok.fields == {"name": "王小明"}
