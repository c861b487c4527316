"""电子证照 end to end: an issuer issues a driving licence, the wallet lists it, the citizen's device shows
name and licence class to an inspector (checked offline by the standalone verifier and by the IETF
SD-JWT reference implementation), a replay is refused, a revocation stops it once the status list is
refreshed; consent sharing gives a requester exactly what the citizen approved, and the use log shows it."""

from __future__ import annotations

import base64
import io
import json

import pytest
import zxingcpp
from jwcrypto.jwk import JWK
from PIL import Image
from sd_jwt.verifier import SDJWTVerifier

from licences import verifier
from tests.conftest import basic_auth
from tests.integration.licences.office import DRIVING, claims_of, disclosed

pytestmark = pytest.mark.asyncio
INSPECT = "urn:shengshitong:inspect"


def reference_verify(presentation: str, trust_doc_keys: dict[str, dict], *, aud=None, nonce=None) -> dict:
    """The IETF SD-JWT reference implementation, given the issuer's key from the trust list."""

    def issuer_key(iss: str, header: dict) -> JWK:
        return JWK.from_json(json.dumps(trust_doc_keys[header["kid"]]))

    checked = SDJWTVerifier(presentation, issuer_key, expected_aud=aud, expected_nonce=nonce)
    return dict(checked.get_verified_payload())


async def trust_keys(client) -> dict[str, dict]:
    signed = (await client.get("/api/v1/licences/trust-list")).json()
    doc = json.loads(verifier._unb64u(signed["payload"]))
    return {k["kid"]: k for i in doc["issuers"] for k in i["keys"]}


async def test_issue_list_show_name_and_class_replay_and_revoke(open_office):
    async with open_office() as office:
        client = office.client
        citizen = await office.citizen()
        issued = await office.issue(citizen)
        assert issued["status"] == "valid" and issued["version"] == 1
        assert issued["number"] == citizen.id_number[:4] + "*" * 10 + citizen.id_number[-4:]

        # the wallet lists it, the number masked; the licence itself shows every field to its holder
        r = await client.get("/api/v1/me/licences", headers=citizen.me)
        listed = r.json()
        assert listed["verified"] is True
        assert [(i["type"], i["name_zh"], i["issuer_zh"], i["status"]) for i in listed["items"]] == [
            ("driving_licence", "机动车驾驶证", "沈阳市公安局交通警察支队", "valid")
        ]
        assert citizen.id_number not in r.text and r.headers["cache-control"] == "no-store"
        one = (await client.get(f"/api/v1/me/licences/{issued['id']}", headers=citizen.me)).json()
        assert {f["name"]: f["value"] for f in one["fields"]}["licence_class"] == "C1"
        assert one["devices"] == []

        credential = await office.credential(citizen, issued["id"])
        one = (await client.get(f"/api/v1/me/licences/{issued['id']}", headers=citizen.me)).json()
        assert len(one["devices"]) == 1

        # 亮证: only name and licence class, a fresh nonce, bound to the device key
        presentation = office.present(citizen, credential, ["name", "licence_class"])
        assert disclosed(presentation) == {"name": "王小明", "licence_class": "C1"}
        for hidden in (DRIVING["address"], DRIVING["birth_date"], citizen.id_number, "沈河区"):
            assert hidden not in presentation  # not in the clear...
            assert hidden not in json.dumps(disclosed(presentation), ensure_ascii=False)  # ...nor encoded

        # an independent verifier (the IETF reference implementation) accepts it and sees only those
        nonce = claims_of(presentation)  # (the holder chose the nonce: read it back from the KB-JWT)
        kb = json.loads(verifier._unb64u(presentation.split("~")[-1].split(".")[1]))
        payload = reference_verify(presentation, await trust_keys(client), aud=INSPECT, nonce=kb["nonce"])
        assert payload["name"] == "王小明" and payload["licence_class"] == "C1"
        assert not {"address", "birth_date", "licence_number", "sex"} & set(payload)
        assert payload["vct"] == "urn:shengshitong:licence:driving_licence:1" == nonce["vct"]

        # the inspector's standalone verifier, offline with what it fetched
        trust = await office.inspector_trust()
        statuses = await office.inspector_statuses(presentation, trust)
        guard = verifier.ReplayGuard()
        now = int(client.runtime.clock.time())
        ok = verifier.verify_presentation(
            presentation, trust, statuses, now=now, audience=INSPECT, replay=guard
        )
        assert ok.fields == {"name": "王小明", "licence_class": "C1"} and ok.status == "valid"
        assert ok.issuer == "sy-traffic" and ok.issuer_name_zh == "沈阳市公安局交通警察支队"
        # the same presentation again (a screenshot shown twice): refused
        with pytest.raises(verifier.PresentationError) as replayed:
            verifier.verify_presentation(
                presentation, trust, statuses, now=now + 5, audience=INSPECT, replay=guard
            )
        assert replayed.value.code == "replayed"

        # the issuer revokes it: with the list the inspector holds it still passes (offline), with the
        # refreshed one it fails
        r = await client.post(
            f"/api/v1/licences/issued/{issued['id']}/revoke", json={"reason": "吊销"}, headers=office.issuer
        )
        assert r.status_code == 200 and r.json()["status"] == "revoked"
        again = office.present(citizen, credential, ["name", "licence_class"])
        stale = verifier.verify_presentation(again, trust, statuses, now=now, audience=INSPECT)
        assert stale.status == "valid"
        refreshed = await office.inspector_statuses(again, trust)
        with pytest.raises(verifier.PresentationError) as revoked:
            verifier.verify_presentation(again, trust, refreshed, now=now, audience=INSPECT)
        assert revoked.value.code == "revoked"
        # the wallet says so, and no new credential is minted
        listed = (await client.get("/api/v1/me/licences", headers=citizen.me)).json()
        assert listed["items"][0]["status"] == "revoked"
        r = await client.post("/api/v1/me/licences/nonce", headers=citizen.me)
        from licences import holder

        proof = holder.proof(citizen.key, audience=r.json()["audience"], nonce=r.json()["c_nonce"], iat=now)
        r = await client.post(
            f"/api/v1/me/licences/{issued['id']}/credential", json={"proof": proof}, headers=citizen.me
        )
        assert r.status_code == 409 and r.json()["code"] == "licence_revoked"


async def test_suspend_and_reinstate_follow_the_status_list_and_the_books(open_office):
    async with open_office() as office:
        client = office.client
        citizen = await office.citizen()
        issued = await office.issue(citizen)
        credential = await office.credential(citizen, issued["id"])
        trust = await office.inspector_trust()
        path = f"/api/v1/licences/issued/{issued['id']}"
        assert (await client.post(f"{path}/suspend", json={}, headers=office.issuer)).json()[
            "status"
        ] == "suspended"
        p = office.present(citizen, credential, ["licence_class"])
        with pytest.raises(verifier.PresentationError) as held:
            verifier.verify_presentation(
                p,
                trust,
                await office.inspector_statuses(p, trust),
                now=int(client.runtime.clock.time()),
                audience=INSPECT,
            )
        assert held.value.code == "suspended"
        # a suspended licence is not revoked twice by mistake: reinstate, then verify again
        r = await client.post(f"{path}/suspend", json={}, headers=office.issuer)
        assert r.status_code == 200 and r.json()["status"] == "suspended"  # already so: the same answer
        assert (await client.post(f"{path}/reinstate", json={}, headers=office.issuer)).json()[
            "status"
        ] == "valid"
        r = await client.post(f"{path}/reinstate", json={}, headers=office.issuer)
        assert r.status_code == 200
        assert (await client.post(f"{path}/revoke", json={}, headers=office.issuer)).json()[
            "status"
        ] == "revoked"
        r = await client.post(f"{path}/reinstate", json={}, headers=office.issuer)
        assert r.status_code == 409 and r.json()["code"] == "licence_state"
        # an update bumps the version; the number does not change
        r = await client.patch(path, json={"fields": {"address": "新地址"}}, headers=office.issuer)
        assert r.status_code == 409 and r.json()["code"] == "licence_revoked"


async def test_an_update_mints_new_credentials_with_the_new_details(open_office):
    async with open_office() as office:
        client = office.client
        citizen = await office.citizen()
        issued = await office.issue(citizen)
        path = f"/api/v1/licences/issued/{issued['id']}"
        r = await client.patch(
            path, json={"fields": {"address": "辽宁省沈阳市皇姑区黄河大街1号"}}, headers=office.issuer
        )
        assert r.status_code == 200 and r.json()["version"] == 2
        r = await client.patch(
            path, json={"fields": {"licence_number": "210102199001010011"}}, headers=office.issuer
        )
        assert r.status_code == 422 and r.json()["code"] == "licence_number_fixed"
        credential = await office.credential(citizen, issued["id"])
        p = office.present(citizen, credential, ["address"])
        assert disclosed(p) == {"address": "辽宁省沈阳市皇姑区黄河大街1号"}
        # issuing the same licence again is the same licence; with other details it is a conflict
        fields = {**DRIVING, "licence_number": citizen.id_number, "address": "辽宁省沈阳市皇姑区黄河大街1号"}
        body = {"type": "driving_licence", "id_number": citizen.id_number, "fields": fields}
        r = await client.post("/api/v1/licences/issued", json=body, headers=office.issuer)
        assert r.status_code == 200 and r.json()["id"] == issued["id"]
        body["fields"] = {**fields, "licence_class": "A1"}
        r = await client.post("/api/v1/licences/issued", json=body, headers=office.issuer)
        assert r.status_code == 409 and r.json()["code"] == "licence_exists"


async def test_consent_refused_gives_nothing_approved_gives_exactly_the_fields_and_the_log_says_so(
    open_office,
):
    async with open_office() as office:
        client = office.client
        citizen = await office.citizen()
        issued = await office.issue(citizen)
        machines = client.services.auth.machines
        rp = basic_auth(await machines.create("relying_party", name="沈阳市政务服务中心"))
        ask = {
            "type": "driving_licence",
            "fields": ["name", "licence_class"],
            "purpose": "办理机动车驾驶人信息变更",
            "id_number": citizen.id_number,
        }
        r = await client.post("/api/v1/licences/requests", json=ask, headers=rp)
        assert r.status_code == 201, r.text
        refused_id = r.json()["id"]
        assert r.json()["state"] == "pending"
        r = await client.post(f"/api/v1/licences/requests/{refused_id}/presentation", headers=rp)
        assert r.status_code == 409 and r.json()["code"] == "consent_pending"

        # the citizen sees who asks for which fields for what, and refuses
        mine = (await client.get("/api/v1/me/licence-requests?state=pending", headers=citizen.me)).json()[
            "items"
        ]
        assert [(m["requester"]["name"], [f["zh"] for f in m["fields"]], m["purpose"]) for m in mine] == [
            ("沈阳市政务服务中心", ["姓名", "准驾车型"], "办理机动车驾驶人信息变更")
        ]
        r = await client.post(f"/api/v1/me/licence-requests/{refused_id}/refuse", headers=citizen.me)
        assert r.status_code == 200 and r.json()["state"] == "refused"
        r = await client.post(f"/api/v1/licences/requests/{refused_id}/presentation", headers=rp)
        assert r.status_code == 409 and r.json()["code"] == "consent_refused"
        assert "presentation" not in r.json()
        # a refusal is final
        r = await client.post(
            f"/api/v1/me/licence-requests/{refused_id}/approve", json={}, headers=citizen.me
        )
        assert r.status_code == 409 and r.json()["code"] == "request_decided"
        uses = (await client.get("/api/v1/me/licence-uses", headers=citizen.me)).json()["items"]
        assert uses == []

        # once: approved, shared once with exactly those fields, then spent
        r = await client.post("/api/v1/licences/requests", json={**ask, "key": "case-1"}, headers=rp)
        once_id = r.json()["id"]
        again = await client.post("/api/v1/licences/requests", json={**ask, "key": "case-1"}, headers=rp)
        assert again.status_code == 200 and again.json()["id"] == once_id
        r = await client.post(f"/api/v1/me/licence-requests/{once_id}/approve", json={}, headers=citizen.me)
        assert r.status_code == 200 and r.json()["state"] == "approved"
        r = await client.post(f"/api/v1/licences/requests/{once_id}/presentation", headers=rp)
        assert r.status_code == 200, r.text
        shared = r.json()
        assert shared["fields"] == {"name": "王小明", "licence_class": "C1"}
        assert disclosed(shared["presentation"]) == shared["fields"]
        assert citizen.id_number not in shared["presentation"]
        payload = reference_verify(shared["presentation"], await trust_keys(client))
        assert payload["name"] == "王小明" and not {"address", "licence_number"} & set(payload)
        trust = await office.inspector_trust()
        checked = verifier.verify_presentation(
            shared["presentation"],
            trust,
            await office.inspector_statuses(shared["presentation"], trust),
            now=int(client.runtime.clock.time()),
            audience=(),
            key_binding=False,
        )
        assert checked.fields == shared["fields"]
        r = await client.post(f"/api/v1/licences/requests/{once_id}/presentation", headers=rp)
        assert r.status_code == 409 and r.json()["code"] == "consent_used"

        # standing: shared each time until the citizen withdraws it
        r = await client.post("/api/v1/licences/requests", json={**ask, "mode": "standing"}, headers=rp)
        standing_id = r.json()["id"]
        await client.post(
            f"/api/v1/me/licence-requests/{standing_id}/approve",
            json={"licence": issued["id"]},
            headers=citizen.me,
        )
        for _ in range(2):
            r = await client.post(f"/api/v1/licences/requests/{standing_id}/presentation", headers=rp)
            assert r.status_code == 200
        r = await client.post(f"/api/v1/me/licence-requests/{standing_id}/revoke", headers=citizen.me)
        assert r.json()["state"] == "revoked"
        r = await client.post(f"/api/v1/licences/requests/{standing_id}/presentation", headers=rp)
        assert r.status_code == 409 and r.json()["code"] == "consent_revoked"

        # the use log: every disclosure, who, which fields, for what
        uses = (await client.get("/api/v1/me/licence-uses", headers=citizen.me)).json()["items"]
        assert len(uses) == 3
        for use in uses:
            assert use["kind"] == "shared" and use["by_name"] == "沈阳市政务服务中心"
            assert [f["name"] for f in use["fields"]] == ["name", "licence_class"]
            assert use["purpose"] == "办理机动车驾驶人信息变更" and use["licence"] == issued["id"]


async def test_showing_logs_the_use_and_a_large_presentation_is_handed_over_once(open_office):
    async with open_office() as office:
        client = office.client
        citizen = await office.citizen()
        issued = await office.issue(citizen)
        credential = await office.credential(citizen, issued["id"])
        small = office.present(citizen, credential, ["name", "licence_class"])
        r = await client.post(
            "/api/v1/me/licences/presentations", json={"presentation": small}, headers=citizen.me
        )
        assert r.status_code == 200, r.text
        shown = r.json()
        assert shown["mode"] == "inline" and shown["qr"] == small and shown["qr_version"] <= 35
        # the QR the app shows reads back (zxing, a decoder we did not write) to the very presentation
        png = base64.b64decode(shown["qr_png"].removeprefix("data:image/png;base64,"))
        assert [b.text for b in zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))] == [small]
        # every field: too dense for a handheld scanner, handed over by a one-time reference
        every = office.present(citizen, credential, [*DRIVING, "licence_number"])
        r = await client.post(
            "/api/v1/me/licences/presentations", json={"presentation": every}, headers=citizen.me
        )
        big = r.json()
        assert big["mode"] == "reference" and big["qr"].startswith("SSTL1:http") and big["qr_version"] <= 10
        ref = big["qr"].rsplit("/", 1)[1]
        inspector = basic_auth(await client.services.auth.machines.create("inspector", name="交警 沈阳 0012"))
        r = await client.get(f"/api/v1/licences/handover/{ref}")
        assert r.status_code == 401
        r = await client.get(f"/api/v1/licences/handover/{ref}", headers=inspector)
        assert r.status_code == 200 and r.json()["presentation"] == every
        r = await client.get(f"/api/v1/licences/handover/{ref}", headers=inspector)
        assert r.status_code == 404  # once
        uses = (await client.get("/api/v1/me/licence-uses", headers=citizen.me)).json()["items"]
        assert sorted((u["kind"], u["by_name"], len(u["fields"])) for u in uses) == [
            ("handover", "交警 沈阳 0012", 11),
            ("shown", "", 2),
            ("shown", "", 11),
        ]
        # another citizen cannot show this citizen's licence
        other = await office.citizen(name="李四")
        r = await client.post(
            "/api/v1/me/licences/presentations", json={"presentation": small}, headers=other.me
        )
        assert r.status_code == 403 and r.json()["code"] == "presentation_not_yours"
        # a handover asked for even when it would fit: a reference, kept two minutes in the shared store
        r = await client.post(
            "/api/v1/me/licences/presentations",
            json={"presentation": small, "handover": True},
            headers=citizen.me,
        )
        assert r.json()["mode"] == "reference" and r.json()["expires_in"] == 120
        ref = r.json()["qr"].rsplit("/", 1)[1]
        assert 0 < await client.runtime.store.ttl(f"licences:handover:{ref}") <= 120


async def test_an_unverified_citizen_holds_nothing_until_verified(open_office):
    async with open_office() as office:
        client = office.client
        citizen = await office.citizen(verified=False)
        issued = await office.issue(citizen)
        r = await client.get("/api/v1/me/licences", headers=citizen.me)
        assert r.json() == {"verified": False, "items": []}
        r = await client.get(f"/api/v1/me/licences/{issued['id']}", headers=citizen.me)
        assert r.status_code == 404
