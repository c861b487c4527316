"""An issuer's key rotated by an operator: the new key is published at once but signs only once every
inspector's trust list can hold it (an inspector offline with the list it fetched before must not meet a
key it does not know), the old one keeps verifying what it signed, and the rotation is audited."""

from __future__ import annotations

import base64
import json

import pytest

from backend.tables import AuditEvent
from licences import verifier

pytestmark = pytest.mark.asyncio
INSPECT = "urn:shengshitong:inspect"


def _kid(credential: str) -> str:
    return str(json.loads(verifier._unb64u(credential.split(".")[0]))["kid"])


async def _issuer_kids(client) -> list[str]:
    signed = (await client.get("/api/v1/licences/trust-list")).json()
    doc = json.loads(verifier._unb64u(signed["payload"]))
    (issuer,) = [i for i in doc["issuers"] if i["code"] == "sy-traffic"]
    return [k["kid"] for k in issuer["keys"]]


async def test_a_rotated_key_signs_only_once_inspectors_can_know_it(open_office):
    async with open_office() as office:
        client = office.client
        citizen = await office.citizen()
        issued = await office.issue(citizen)
        before = await office.credential(citizen, issued["id"])
        (old_kid,) = await _issuer_kids(client)
        assert _kid(before) == old_kid

        r = await client.post("/api/v1/admin/licences/issuers/sy-traffic/rotate", headers=office.operator)
        assert r.status_code == 200, r.text
        new_kid = r.json()["kid"]
        assert new_kid != old_kid
        # published at once: an inspector refreshing now holds both keys
        assert sorted(await _issuer_kids(client)) == sorted([old_kid, new_kid])
        fetched_now = await office.inspector_trust()
        # an inspector that refreshed just before the rotation holds only the old key: what the
        # citizen's device gets now must still verify there
        just_after = await office.credential(citizen, issued["id"])
        assert _kid(just_after) == old_kid

        (event,) = await AuditEvent.select().where(AuditEvent.action == "licence_issuer_key_rotated").run()
        operator_id = base64.b64decode(office.operator["Authorization"].split()[1]).decode().split(":")[0]
        assert (event["actor_kind"], event["actor_id"], event["subject"]) == (
            "operator",
            operator_id,
            "sy-traffic",
        )
        data = event["data"] if isinstance(event["data"], dict) else json.loads(event["data"])
        assert data["kid"] == new_kid

        # a trust-list refresh (and a worker's reload) later the new key signs: the inspector that
        # fetched the list at the rotation verifies it offline, and the old credential still verifies
        refresh = client.runtime.settings.licence_trust_refresh
        client.runtime.clock.advance(refresh + 61)
        after = await office.credential(citizen, issued["id"])
        assert _kid(after) == new_kid
        now = int(client.runtime.clock.time())
        for credential in (after, before):
            shown = office.present(citizen, credential, ["name", "licence_class"])
            statuses = await office.inspector_statuses(shown, fetched_now)
            ok = verifier.verify_presentation(shown, fetched_now, statuses, now=now, audience=INSPECT)
            assert ok.fields == {"name": "王小明", "licence_class": "C1"}

        r = await client.post("/api/v1/admin/licences/issuers/nobody/rotate", headers=office.operator)
        assert r.status_code == 404 and r.json()["code"] == "issuer_not_found"
