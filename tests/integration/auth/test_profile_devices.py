"""Profile with a sealed ID number, devices, and account deletion."""

import logging

from auth.tables import Citizen, Device, RefreshToken
from backend.tables import AuditEvent

ID_NUMBER = "21010219491231018X"  # 沈阳市和平区, with a valid check digit (GB 11643)


async def test_real_name_and_id_number_are_sealed_and_masked(client, login, new_phone, auth_header, caplog):
    pair = await login(client, new_phone())
    with caplog.at_level(logging.DEBUG):
        r = await client.patch(
            "/api/v1/me",
            json={"real_name": "张三丰", "id_number": ID_NUMBER.lower()},
            headers=auth_header(pair),
        )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id_number"] == "2101**********018X"
    assert body["real_name"] == "张**"
    assert body["real_name_verified"] is True
    assert ID_NUMBER not in r.text and "张三丰" not in r.text
    assert ID_NUMBER not in caplog.text and ID_NUMBER.lower() not in caplog.text
    row = await Citizen.select().where(Citizen.id == body["id"]).first().run()
    stored = " ".join(str(v) for v in row.values())
    assert ID_NUMBER not in stored and "张三丰" not in stored and row["id_number_sealed"].startswith("t1.")
    again = await client.get("/api/v1/me", headers=auth_header(pair))
    assert again.json()["id_number"] == "2101**********018X"
    events = (
        await AuditEvent.select(AuditEvent.data).where(AuditEvent.action == "real_name_verification").run()
    )
    assert events and ID_NUMBER not in str(events) and "张三丰" not in str(events)


async def test_bad_id_numbers_are_refused(client, login, new_phone, auth_header):
    pair = await login(client, new_phone())
    for bad in ("210102194912310181", "21010219491331018X", "2101021949123101", "abcdefghijklmnopqr"):
        r = await client.patch(
            "/api/v1/me", json={"real_name": "张三", "id_number": bad}, headers=auth_header(pair)
        )
        assert r.status_code in (400, 422), bad
        assert bad not in r.text
    r = await client.patch("/api/v1/me", json={"id_number": 210102194912310181}, headers=auth_header(pair))
    assert r.status_code == 400


async def test_an_id_number_belongs_to_one_account(client, login, new_phone, auth_header):
    a = await login(client, new_phone())
    b = await login(client, new_phone())
    claim = {"real_name": "张三", "id_number": ID_NUMBER}
    assert (await client.patch("/api/v1/me", json=claim, headers=auth_header(a))).status_code == 200
    r = await client.patch("/api/v1/me", json=claim, headers=auth_header(b))
    assert r.status_code == 409 and r.json()["code"] == "id_number_taken"
    r = await client.post("/api/v1/me/real-name", json=claim, headers=auth_header(b))
    assert r.status_code == 409 and r.json()["code"] == "id_number_taken"
    assert (await client.get("/api/v1/me", headers=auth_header(b))).json()["real_name_verified"] is False


async def test_devices_list_and_revoke(client, login, new_phone, auth_header):
    phone = new_phone()
    phone_pair = await login(client, phone, device_id="phone-1", device_name="Mate 60")
    tablet_pair = await login(client, phone, device_id="tablet-1", device_name="MatePad")
    r = await client.get("/api/v1/me/devices", headers=auth_header(phone_pair))
    assert r.status_code == 200
    devices = {d["device_id"]: d for d in r.json()["items"]}
    assert set(devices) == {"phone-1", "tablet-1"}
    assert devices["phone-1"]["current"] is True and devices["tablet-1"]["current"] is False
    page = await client.get("/api/v1/me/devices", params={"limit": 1}, headers=auth_header(phone_pair))
    assert len(page.json()["items"]) == 1 and page.json()["next_offset"] == 1

    r = await client.delete("/api/v1/me/devices/tablet-1", headers=auth_header(phone_pair))
    assert r.status_code == 204
    assert (await client.get("/api/v1/me", headers=auth_header(tablet_pair))).status_code == 401
    refresh = await client.post("/api/v1/auth/refresh", json={"refresh_token": tablet_pair["refresh_token"]})
    assert refresh.status_code == 401
    assert (await client.get("/api/v1/me", headers=auth_header(phone_pair))).status_code == 200
    r = await client.delete("/api/v1/me/devices/tablet-1", headers=auth_header(phone_pair))
    assert r.status_code == 404
    listed = await client.get("/api/v1/me/devices", headers=auth_header(phone_pair))
    assert [d["device_id"] for d in listed.json()["items"]] == ["phone-1"]


async def test_account_deletion_removes_personal_data_and_stops_every_token(
    client, login, new_phone, auth_header
):
    phone = new_phone()
    a = await login(client, phone, device_id="a")
    b = await login(client, phone, device_id="b")
    await client.patch(
        "/api/v1/me", json={"real_name": "李四", "id_number": ID_NUMBER}, headers=auth_header(a)
    )
    me = (await client.get("/api/v1/me", headers=auth_header(a))).json()
    assert (await client.delete("/api/v1/me", headers=auth_header(a))).status_code == 204
    for pair in (a, b):
        assert (await client.get("/api/v1/me", headers=auth_header(pair))).status_code == 401
        assert (
            await client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
        ).status_code == 401
    row = await Citizen.select().where(Citizen.id == me["id"]).first().run()
    assert row["status"] == "deleted"
    assert all(
        row[k] is None
        for k in (
            "phone_index",
            "phone_sealed",
            "name_sealed",
            "id_number_sealed",
            "id_number_index",
            "real_name_verified_at",
        )
    )
    assert row["real_name_reference"] == "" and row["real_name_provider"] == ""
    assert (
        await RefreshToken.count()
        .where((RefreshToken.citizen == me["id"]) & RefreshToken.revoked_at.is_null())
        .run()
        == 0
    )
    assert await Device.count().where((Device.citizen == me["id"]) & Device.revoked_at.is_null()).run() == 0
    # the phone can start over as a new account; the ID number is free again
    fresh = await login(client, phone)
    new_me = (await client.get("/api/v1/me", headers=auth_header(fresh))).json()
    assert new_me["id"] != me["id"] and new_me["id_number"] is None
    r = await client.patch(
        "/api/v1/me", json={"real_name": "李四", "id_number": ID_NUMBER}, headers=auth_header(fresh)
    )
    assert r.status_code == 200 and r.json()["real_name_verified"] is True


async def test_a_blocked_account_cannot_log_in(client, login, new_phone, auth_header):
    import re

    phone = new_phone()
    pair = await login(client, phone)
    me = (await client.get("/api/v1/me", headers=auth_header(pair))).json()
    await client.services.auth.sessions.set_blocked(me["id"], True, actor="test")
    await client.post("/api/v1/auth/otp", json={"phone": phone})
    text = (await client.get("/api/v1/dev/sms", params={"phone": phone})).json()["text"]
    r = await client.post(
        "/api/v1/auth/login", json={"phone": phone, "code": re.search(r"\d{6}", text)[0], "device_id": "d2"}
    )
    assert r.status_code == 403 and r.json()["code"] == "account_blocked"
    assert await AuditEvent.exists().where(AuditEvent.action == "account_blocked").run()


async def test_devices_page_to_the_end(client, login, new_phone, auth_header, walk_pages):
    phone = new_phone()
    pairs = [await login(client, phone, device_id=f"device-{i}") for i in range(5)]
    devices = await walk_pages(client, "/api/v1/me/devices", limit=2, headers=auth_header(pairs[-1]))
    assert sorted(d["device_id"] for d in devices) == [f"device-{i}" for i in range(5)]
