"""The issuer register: an issuer reaches only its own licences and types; a new key keeps what the old
one signed verifying; a revoked issuer leaves the trust list and its credential stops; an erased account
takes its requests and its use log with it."""

from __future__ import annotations

from datetime import datetime

import pytest

from licences import verifier
from licences.tables import LicenceRequest, LicenceUse
from tests.conftest import basic_auth
from tests.integration.licences.office import DRIVING, claims_of

pytestmark = pytest.mark.asyncio
INSPECT = "urn:shengshitong:inspect"


async def _other_issuer(office) -> dict[str, str]:
    r = await office.client.post(
        "/api/v1/admin/licences/issuers",
        json={
            "code": "sy-education",
            "name_zh": "沈阳市教育局",
            "name_en": "Shenyang Education Bureau",
            "department": "education",
            "types": ["diploma"],
        },
        headers=office.operator,
    )
    assert r.status_code == 201, r.text
    assert r.json()["client_secret"].startswith("sk_")
    return basic_auth(r.json())


async def test_an_issuer_reaches_only_its_own_licences_and_types(open_office):
    async with open_office() as office:
        client = office.client
        citizen = await office.citizen()
        issued = await office.issue(citizen)
        education = await _other_issuer(office)
        path = f"/api/v1/licences/issued/{issued['id']}"
        for method, url, body in (
            ("GET", path, None),
            ("PATCH", path, {"fields": {"address": "别处"}}),
            ("POST", f"{path}/revoke", {}),
        ):
            r = await client.request(method, url, json=body, headers=education)
            assert r.status_code == 404 and r.json()["code"] == "licence_not_found", (method, url)
        fields = {**DRIVING, "licence_number": citizen.id_number}
        r = await client.post(
            "/api/v1/licences/issued",
            json={"type": "driving_licence", "id_number": citizen.id_number, "fields": fields},
            headers=education,
        )
        assert r.status_code == 403 and r.json()["code"] == "type_not_allowed"
        # a department may not be registered for another's types
        r = await client.post(
            "/api/v1/admin/licences/issuers",
            json={
                "code": "fake-police",
                "name_zh": "假",
                "name_en": "Fake",
                "department": "education",
                "types": ["resident_id"],
            },
            headers=office.operator,
        )
        assert r.status_code == 422 and r.json()["code"] == "type_not_for_department"
        assert (await client.get(path, headers=office.issuer)).json()["status"] == "valid"


async def test_a_new_key_keeps_old_credentials_verifying_and_a_revoked_issuer_leaves_the_trust_list(
    open_office,
):
    async with open_office() as office:
        client = office.client
        citizen = await office.citizen()
        issued = await office.issue(citizen)
        old = await office.credential(citizen, issued["id"])
        r = await client.post("/api/v1/admin/licences/issuers/sy-traffic/rotate", headers=office.operator)
        assert r.status_code == 200
        # the new key signs once inspectors' trust lists can hold it (test_attacks.py has why)
        client.runtime.clock.set(datetime.fromisoformat(r.json()["signs_from"]))
        new = await office.credential(citizen, issued["id"])
        old_kid = verifier._parts(old.split("~")[0])[0]["kid"]
        new_kid = verifier._parts(new.split("~")[0])[0]["kid"]
        assert old_kid != new_kid == r.json()["kid"]
        trust = await office.inspector_trust()
        now = int(client.runtime.clock.time())
        for credential in (old, new):
            shown = office.present(citizen, credential, ["licence_class"])
            statuses = await office.inspector_statuses(shown, trust)
            assert verifier.verify_presentation(shown, trust, statuses, now=now, audience=INSPECT).fields == {
                "licence_class": "C1"
            }

        r = await client.post("/api/v1/admin/licences/issuers/sy-traffic/revoke", headers=office.operator)
        assert r.status_code == 200 and r.json()["status"] == "revoked"
        refreshed = await office.inspector_trust()
        assert refreshed.issuers == {}
        shown = office.present(citizen, new, ["licence_class"])
        with pytest.raises(verifier.PresentationError) as refused:
            verifier.verify_presentation(shown, refreshed, {}, now=now, audience=INSPECT)
        assert refused.value.code == "unknown_issuer"
        assert claims_of(shown)["iss"].endswith("/licences/issuers/sy-traffic")
        r = await client.get(f"/api/v1/licences/issued/{issued['id']}", headers=office.issuer)
        assert r.status_code == 401  # its credential stopped


async def test_an_erased_account_takes_its_requests_and_use_log(open_office):
    async with open_office() as office:
        client = office.client
        citizen = await office.citizen()
        await office.issue(citizen)
        rp = basic_auth(await client.services.auth.machines.create("relying_party", name="窗口"))
        ask = {
            "type": "driving_licence",
            "fields": ["name"],
            "purpose": "核验姓名",
            "id_number": citizen.id_number,
        }
        request_id = (await client.post("/api/v1/licences/requests", json=ask, headers=rp)).json()["id"]
        await client.post(f"/api/v1/me/licence-requests/{request_id}/approve", json={}, headers=citizen.me)
        assert (
            await client.post(f"/api/v1/licences/requests/{request_id}/presentation", headers=rp)
        ).status_code == 200
        who = (await client.get("/api/v1/me", headers=citizen.me)).json()["id"]
        assert await LicenceUse.count().where(LicenceUse.citizen_id == who).run() == 1
        assert (await client.delete("/api/v1/me", headers=citizen.me)).status_code == 204
        assert await LicenceUse.count().where(LicenceUse.citizen_id == who).run() == 0
        assert await LicenceRequest.count().where(LicenceRequest.citizen_id == who).run() == 0
        r = await client.post(f"/api/v1/licences/requests/{request_id}/presentation", headers=rp)
        assert r.status_code == 404
