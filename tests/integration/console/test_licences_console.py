"""The console's 电子证照 page: any signed-in operator reads the issuer register (each issuer's published
keys and which one signs) and the departments an issuer may be; an admin, with the CSRF token, registers
an issuer (the credential's secret in that answer only, and it works), rotates its key (published now,
signing later) and revokes it (out of the trust list, its credential refused), through the e-licence
centre's services, audited under the operator's name; a read-only operator or a forged request changes
nothing."""

from __future__ import annotations

import json

import pytest

from backend.tables import AuditEvent
from licences import verifier
from tests.conftest import basic_auth

pytestmark = pytest.mark.storage
TRAFFIC = {
    "code": "hp-traffic",
    "name_zh": "和平交警大队",
    "name_en": "Heping Traffic Police",
    "department": "traffic_police",
    "types": ["driving_licence"],
}


async def _audited(action: str) -> list[tuple[str, str]]:
    rows = await AuditEvent.select().where(AuditEvent.action == action).order_by(AuditEvent.at)
    return [(r["actor_id"], r["subject"]) for r in rows]


async def _trusted(client) -> set[str]:
    signed = (await client.get("/api/v1/licences/trust-list")).json()
    return {i["code"] for i in json.loads(verifier._unb64u(signed["payload"]))["issuers"]}


async def test_an_admin_registers_rotates_and_revokes_an_issuer(make_client, console_login, new_id_number):
    async with make_client() as client:
        assert (await client.get("/admin/licences/issuers")).status_code == 401
        r = await client.get("/admin/licences", follow_redirects=False)
        assert r.headers["location"] == "/admin/"
        admin = await console_login(client, "chief", "admin")
        page = await client.get("/admin/licences")
        assert page.status_code == 200 and 'src="/static/web/licences.js"' in page.text
        assert (await client.get("/admin/licences/issuers")).json() == []
        departments = {d["code"]: d for d in (await client.get("/admin/licences/departments")).json()}
        assert departments["traffic_police"]["zh"] == "公安交通管理局"
        assert [t["code"] for t in departments["traffic_police"]["types"]] == [
            "driving_licence",
            "vehicle_licence",
        ]

        r = await client.post("/admin/licences/issuers", json=TRAFFIC)
        assert r.status_code == 403 and r.json()["code"] == "csrf_failed"
        r = await client.post("/admin/licences/issuers", json=TRAFFIC, headers=admin)
        assert r.status_code == 201, r.text
        made = r.json()
        assert r.headers["cache-control"] == "no-store"
        assert (made["code"], made["status"]) == ("hp-traffic", "active")
        assert made["department_zh"] == "公安交通管理局"
        assert made["client_secret"] and made["client_id"].startswith("iss")
        (key,) = made["keys"]
        assert key["state"] == "signing"
        assert await _audited("licence_issuer_created") == [("chief", "hp-traffic")]
        assert "hp-traffic" in await _trusted(client)
        # the secret, shown once, is the issuer's credential: it issues a licence
        issuer = basic_auth(made)
        number = new_id_number()
        fields = {
            "name": "赵六",
            "sex": "男",
            "nationality": "中国",
            "birth_date": "1990-01-01",
            "address": "沈阳市和平区",
            "licence_number": number,
            "licence_class": "C1",
            "first_issued": "2010-01-01",
            "valid_from": "2020-01-01",
            "issuing_authority": "和平交警大队",
        }
        r = await client.post(
            "/api/v1/licences/issued",
            json={"type": "driving_licence", "id_number": number, "fields": fields},
            headers=issuer,
        )
        assert r.status_code == 201, r.text
        listed = (await client.get("/admin/licences/issuers")).json()
        assert [(i["code"], i["client_secret"]) for i in listed] == [("hp-traffic", None)]

        # refused: the wrong department's types, the same code again, a code not of the pattern
        r = await client.post(
            "/admin/licences/issuers",
            json={**TRAFFIC, "code": "hp-market", "types": ["business_licence"]},
            headers=admin,
        )
        assert r.status_code == 422 and r.json()["code"] == "type_not_for_department"
        r = await client.post("/admin/licences/issuers", json=TRAFFIC, headers=admin)
        assert r.status_code == 409 and r.json()["code"] == "issuer_exists"
        r = await client.post(
            "/admin/licences/issuers", json={**TRAFFIC, "code": "HP Traffic"}, headers=admin
        )
        assert r.status_code == 400 and r.json()["code"] == "invalid_body"

        # a new key: published now, signing once the inspectors' trust lists can hold it
        r = await client.post("/admin/licences/issuers/hp-traffic/rotate", json={}, headers=admin)
        assert r.status_code == 200, r.text
        keys = r.json()["keys"]
        assert [k["state"] for k in keys] == ["waiting", "signing"]
        assert keys[1]["kid"] == key["kid"] and keys[0]["active_from"] > keys[0]["created_at"]
        assert await _audited("licence_issuer_key_rotated") == [("chief", "hp-traffic")]

        r = await client.post("/admin/licences/issuers/hp-traffic/revoke", json={}, headers=admin)
        assert r.status_code == 200, r.text
        assert (r.json()["status"], r.json()["keys"]) == ("revoked", [])
        assert r.json()["revoked_at"] is not None
        assert await _audited("licence_issuer_revoked") == [("chief", "hp-traffic")]
        assert "hp-traffic" not in await _trusted(client)
        r = await client.post(
            "/api/v1/licences/issued",
            json={"type": "driving_licence", "id_number": number, "fields": fields},
            headers=issuer,
        )
        assert r.status_code == 401
        r = await client.post("/admin/licences/issuers/nobody/revoke", json={}, headers=admin)
        assert r.status_code == 404 and r.json()["code"] == "issuer_not_found"


async def test_a_readonly_operator_reads_the_register_and_changes_nothing(make_client, console_login):
    async with make_client() as client:
        admin = await console_login(client, "chief", "admin")
        r = await client.post("/admin/licences/issuers", json=TRAFFIC, headers=admin)
        assert r.status_code == 201, r.text
        watcher = await console_login(client, "watcher", "readonly")
        (listed,) = (await client.get("/admin/licences/issuers")).json()
        assert listed["code"] == "hp-traffic" and listed["status"] == "active"
        for path, body in (
            ("/admin/licences/issuers", {**TRAFFIC, "code": "hp-other"}),
            ("/admin/licences/issuers/hp-traffic/rotate", {}),
            ("/admin/licences/issuers/hp-traffic/revoke", {}),
        ):
            r = await client.post(path, json=body, headers=watcher)
            assert r.status_code == 403 and r.json()["code"] == "read_only", (path, r.text)
        (after,) = (await client.get("/admin/licences/issuers")).json()
        assert after["status"] == "active" and len(after["keys"]) == 1
        assert await _audited("licence_issuer_key_rotated") == []
