"""The whole citizen flow through HTTP: OTP → login → /me → refresh → reuse revokes → logout."""

import re

import pytest

from backend.tables import AuditEvent


@pytest.fixture(scope="module")
async def client(make_module_client):
    """One app for the module: its tests make citizens of their own and count nothing of another's."""
    async with make_module_client() as c:
        yield c


async def test_full_flow_with_refresh_reuse_detection(client, login, new_phone, auth_header):
    phone = new_phone()
    pair = await login(client, phone)
    assert pair["token_type"] == "Bearer" and pair["expires_in"] > 0

    me = await client.get("/api/v1/me", headers=auth_header(pair))
    assert me.status_code == 200
    assert me.json()["phone"] == f"{phone[:3]}****{phone[-4:]}"
    assert me.json()["real_name_verified"] is False

    # refresh spends the old token and gives a new pair
    r = await client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert r.status_code == 200, r.text
    newer = r.json()
    assert newer["refresh_token"] != pair["refresh_token"]
    assert (await client.get("/api/v1/me", headers=auth_header(newer))).status_code == 200

    # presenting the spent token again revokes the whole family: the newer tokens stop working too
    reuse = await client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert reuse.status_code == 401
    assert reuse.json()["code"] == "refresh_token_reused"
    again = await client.post("/api/v1/auth/refresh", json={"refresh_token": newer["refresh_token"]})
    assert again.status_code == 401
    gone = await client.get("/api/v1/me", headers=auth_header(newer))
    assert gone.status_code == 401 and gone.json()["code"] == "invalid_token"
    assert await AuditEvent.exists().where(AuditEvent.action == "refresh_reuse_detected").run()

    # a new login works, and logout ends it
    fresh = await login(client, phone)
    assert (await client.get("/api/v1/me", headers=auth_header(fresh))).status_code == 200
    out = await client.post("/api/v1/auth/logout", headers=auth_header(fresh))
    assert out.status_code == 204
    assert (await client.get("/api/v1/me", headers=auth_header(fresh))).status_code == 401
    r = await client.post("/api/v1/auth/refresh", json={"refresh_token": fresh["refresh_token"]})
    assert r.status_code == 401


async def test_same_phone_written_differently_is_one_citizen(client, login, new_phone, auth_header):
    phone = new_phone()
    a = await login(client, phone)
    b = await login(client, f"+86 {phone[:3]} {phone[3:7]} {phone[7:]}", device_id="tablet")
    ida = (await client.get("/api/v1/me", headers=auth_header(a))).json()["id"]
    idb = (await client.get("/api/v1/me", headers=auth_header(b))).json()["id"]
    assert ida == idb
    assert not re.fullmatch(r"\d+", ida)  # opaque, not sequential


async def test_otp_answer_does_not_reveal_registration(client, login, new_phone):
    known = new_phone()
    await login(client, known)
    a = await client.post("/api/v1/auth/otp", json={"phone": known})
    b = await client.post("/api/v1/auth/otp", json={"phone": new_phone()})
    assert a.status_code == b.status_code == 202
    assert a.json() == b.json()


async def test_wrong_code_and_bad_phone(client, new_phone):
    phone = new_phone()
    assert (await client.post("/api/v1/auth/otp", json={"phone": phone})).status_code == 202
    r = await client.post("/api/v1/auth/login", json={"phone": phone, "code": "000000", "device_id": "d1"})
    assert r.status_code == 401 and r.json()["code"] in ("otp_invalid",)
    r = await client.post("/api/v1/auth/otp", json={"phone": "12345"})
    assert r.status_code == 422 and r.json()["code"] == "invalid_phone"
    r = await client.post("/api/v1/auth/login", json={"phone": phone, "code": "12ab56", "device_id": "d1"})
    assert r.status_code == 400 and r.json()["code"] == "invalid_body"


async def test_code_works_once(client, new_phone):
    phone = new_phone()
    await client.post("/api/v1/auth/otp", json={"phone": phone})
    sms = (await client.get("/api/v1/dev/sms", params={"phone": phone})).json()
    code = re.search(r"\d{6}", sms["text"]).group(0)
    body = {"phone": phone, "code": code, "device_id": "d1"}
    assert (await client.post("/api/v1/auth/login", json=body)).status_code == 200
    assert (await client.post("/api/v1/auth/login", json=body)).status_code == 401
    assert sms["phone"] == f"{phone[:3]}****{phone[-4:]}"


async def test_protected_routes_need_a_token(client):
    for headers in ({}, {"Authorization": "Bearer nonsense"}, {"Authorization": "Basic abc"}):
        r = await client.get("/api/v1/me", headers=headers)
        assert r.status_code == 401
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert r.headers["content-type"].startswith("application/problem+json")
