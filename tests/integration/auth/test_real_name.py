"""Real-name verification (实名认证) through the HTTP API, with the development provider (docs/identity.md):
a name and ID number are the account's only once the provider says they match."""

import importlib
import json
import logging
import uuid
from datetime import UTC, datetime

import pytest

from auth.tables import Citizen
from backend.clock import FrozenClock
from backend.seed import seed_demo
from backend.tables import AuditEvent

ID_NUMBER = "21010219491231018X"  # 沈阳市和平区, valid check digit (GB 11643)
OTHER_ID = "210102199003070011"
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.fixture
async def world(make_client, login, new_phone, auth_header):
    clock = FrozenClock(NOW)
    async with make_client(clock=clock, access_token_ttl=86400) as client:
        pair = await login(client, new_phone())
        yield client, auth_header(pair), clock


async def _me(client, me):
    r = await client.get("/api/v1/me", headers=me)
    assert r.status_code == 200, r.text
    return r.json()


async def _row(client, me):
    citizen_id = (await _me(client, me))["id"]
    return await Citizen.select().where(Citizen.id == uuid.UUID(citizen_id)).first().run()


async def _outcomes(citizen_id):
    rows = (
        await AuditEvent.select(AuditEvent.data)
        .where((AuditEvent.action == "real_name_verification") & (AuditEvent.actor_id == citizen_id))
        .order_by(AuditEvent.at)
        .run()
    )
    return [_data(r)["outcome"] for r in rows]


def _data(row):
    return row["data"] if isinstance(row["data"], dict) else json.loads(row["data"])


async def test_a_new_citizen_is_not_verified(world):
    client, me, _ = world
    body = await _me(client, me)
    assert body["real_name_verified"] is False
    assert body["real_name_verification"] is None
    assert body["real_name"] is None and body["id_number"] is None


async def test_a_match_makes_the_citizen_verified_with_provider_level_and_time(world, caplog):
    client, me, _ = world
    with caplog.at_level(logging.DEBUG):
        r = await client.post(
            "/api/v1/me/real-name", json={"real_name": "张三丰", "id_number": ID_NUMBER.lower()}, headers=me
        )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["real_name_verified"] is True
    assert body["real_name_verification"] == {
        "provider": "development",
        "level": "two_factor",
        "verified_at": "2026-11-28T12:00:00Z",
    }
    assert body["real_name"] == "张**" and body["id_number"] == "2101**********018X"
    assert await _me(client, me) == body
    row = await _row(client, me)
    assert row["real_name_reference"].startswith("dev-") and row["id_number_index"]
    assert ID_NUMBER not in " ".join(str(v) for v in row.values())
    # nothing personal in the logs or the audit: masked only
    assert (
        ID_NUMBER not in caplog.text and ID_NUMBER.lower() not in caplog.text and "张三丰" not in caplog.text
    )
    events = await AuditEvent.select().where(AuditEvent.action == "real_name_verification").run()
    data = [_data(e) for e in events]
    assert [d["outcome"] for d in data] == ["matched"]
    assert data[0]["id_number"] == "2101**********018X" and data[0]["real_name"] == "张**"
    assert data[0]["provider"] == "development" and data[0]["level"] == "two_factor"
    assert ID_NUMBER not in str(events) and "张三丰" not in str(events)


async def test_a_liveness_token_reaches_the_face_level(world):
    client, me, _ = world
    r = await client.post(
        "/api/v1/me/real-name",
        json={"real_name": "张三", "id_number": ID_NUMBER, "liveness": {"token": "sdk-result-123"}},
        headers=me,
    )
    assert r.status_code == 200, r.text
    assert r.json()["real_name_verification"]["level"] == "face"
    failed = await client.post(
        "/api/v1/me/real-name",
        json={"real_name": "张三", "id_number": ID_NUMBER, "liveness": {"token": "fail"}},
        headers=me,
    )
    assert failed.status_code == 422 and failed.json()["code"] == "real_name_mismatch"
    assert (await _me(client, me))["real_name_verification"]["level"] == "face"  # the earlier one stands


async def test_a_mismatch_stores_nothing(world, caplog):
    client, me, _ = world
    with caplog.at_level(logging.DEBUG):
        r = await client.post(
            "/api/v1/me/real-name", json={"real_name": "张不符", "id_number": ID_NUMBER}, headers=me
        )
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "real_name_mismatch" and r.json()["request_id"]
    assert ID_NUMBER not in r.text and "张不符" not in r.text
    body = await _me(client, me)
    assert body["real_name_verified"] is False and body["real_name"] is None and body["id_number"] is None
    row = await _row(client, me)
    assert row["name_sealed"] is None and row["id_number_sealed"] is None and row["id_number_index"] is None
    assert row["real_name_verified_at"] is None and row["real_name_provider"] == ""
    assert await _outcomes(body["id"]) == ["not_matched"]
    assert ID_NUMBER not in caplog.text and "张不符" not in caplog.text
    # the number is still free for its owner
    assert (
        await client.post(
            "/api/v1/me/real-name", json={"real_name": "张三", "id_number": ID_NUMBER}, headers=me
        )
    ).status_code == 200


async def test_provider_down_is_503_and_does_not_count(make_client, login, new_phone, auth_header):
    async with make_client(realname_attempts_per_day=1) as client:
        me = auth_header(await login(client, new_phone()))
        for _ in range(3):
            r = await client.post(
                "/api/v1/me/real-name", json={"real_name": "王不可用", "id_number": ID_NUMBER}, headers=me
            )
            assert r.status_code == 503 and r.json()["code"] == "realname_unavailable"
            assert int(r.headers["Retry-After"]) > 0
        assert (await _me(client, me))["real_name_verified"] is False
        ok = await client.post(
            "/api/v1/me/real-name", json={"real_name": "王五", "id_number": ID_NUMBER}, headers=me
        )
        assert ok.status_code == 200, ok.text  # the outages spent none of the day's one attempt


async def test_attempts_are_limited_per_citizen_and_per_id_number(make_client, login, new_phone, auth_header):
    async with make_client(realname_attempts_per_day=2, realname_attempts_per_id_number_per_day=3) as client:
        a = auth_header(await login(client, new_phone()))
        for _ in range(2):
            r = await client.post(
                "/api/v1/me/real-name", json={"real_name": "张不符", "id_number": ID_NUMBER}, headers=a
            )
            assert r.status_code == 422
        r = await client.post(
            "/api/v1/me/real-name", json={"real_name": "张三", "id_number": OTHER_ID}, headers=a
        )
        assert r.status_code == 429 and r.json()["code"] == "rate_limited"
        assert 0 < int(r.headers["Retry-After"]) <= 86400
        assert (await _me(client, a))["real_name_verified"] is False
        citizen = (await _me(client, a))["id"]
        assert await _outcomes(citizen) == ["not_matched", "not_matched", "rate_limited"]
        # another account may try the same number once more, then the number itself is limited
        b = auth_header(await login(client, new_phone()))
        r = await client.post(
            "/api/v1/me/real-name", json={"real_name": "张不符", "id_number": ID_NUMBER}, headers=b
        )
        assert r.status_code == 422
        r = await client.post(
            "/api/v1/me/real-name", json={"real_name": "张三", "id_number": ID_NUMBER}, headers=b
        )
        assert r.status_code == 429 and r.json()["code"] == "id_number_attempts_exhausted"
        # strangers used the number's attempts up; its owner still verifies with a face check, which is
        # no name guess (it counts for the citizen only)
        owner = auth_header(await login(client, new_phone()))
        r = await client.post(
            "/api/v1/me/real-name", json={"real_name": "张三", "id_number": ID_NUMBER}, headers=owner
        )
        assert r.status_code == 429 and r.json()["code"] == "id_number_attempts_exhausted"
        r = await client.post(
            "/api/v1/me/real-name",
            json={"real_name": "张三", "id_number": ID_NUMBER, "liveness": {"token": "live-ok"}},
            headers=owner,
        )
        assert r.status_code == 200, r.text
        assert r.json()["real_name_verification"]["level"] == "face"


async def test_patch_verifies_too_and_a_change_is_verified_again(world):
    client, me, clock = world
    r = await client.patch("/api/v1/me", json={"real_name": "李四"}, headers=me)
    assert r.status_code == 422 and r.json()["code"] == "real_name_incomplete"
    r = await client.patch("/api/v1/me", json={"real_name": "李四", "id_number": ID_NUMBER}, headers=me)
    assert r.status_code == 200 and r.json()["real_name_verified"] is True
    first = r.json()["real_name_verification"]["verified_at"]
    clock.advance(3600)
    # the same values again: nothing to verify, nothing changes
    r = await client.patch("/api/v1/me", json={"real_name": "李四"}, headers=me)
    assert r.json()["real_name_verification"]["verified_at"] == first
    # a new name is verified with the number on file
    r = await client.patch("/api/v1/me", json={"real_name": "李斯"}, headers=me)
    assert r.status_code == 200 and r.json()["real_name"] == "李*"
    assert r.json()["real_name_verification"]["verified_at"] == "2026-11-28T13:00:00Z"
    # a change that does not match leaves the verified values as they were
    r = await client.patch("/api/v1/me", json={"real_name": "李不符"}, headers=me)
    assert r.status_code == 422 and r.json()["code"] == "real_name_mismatch"
    body = await _me(client, me)
    assert body["real_name_verified"] is True and body["id_number"] == "2101**********018X"
    assert body["real_name_verification"]["verified_at"] == "2026-11-28T13:00:00Z"


async def test_bad_input_is_a_problem_not_a_500(world):
    client, me, _ = world
    for body in (
        {"real_name": "张三"},
        {"real_name": "张三", "id_number": "210102194912310181"},
        {"real_name": "张三", "id_number": ID_NUMBER, "liveness": {"token": "a b"}},
        {"real_name": "张三", "id_number": ID_NUMBER, "extra": 1},
        {"real_name": "张3", "id_number": ID_NUMBER},
    ):
        r = await client.post("/api/v1/me/real-name", json=body, headers=me)
        assert r.status_code in (400, 422), (body, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
    assert (await client.post("/api/v1/me/real-name", json={})).status_code == 401


async def test_observers_hear_of_verification_and_clearing_and_cannot_fail_it(world, caplog):
    client, me, _ = world
    heard: list[str] = []

    async def listen(citizen_id: str) -> None:
        heard.append(citizen_id)

    async def broken(citizen_id: str) -> None:
        raise RuntimeError("the code service is down")

    observers = client.services.auth.realname.observers
    observers.extend([broken, listen])
    try:
        citizen = (await _me(client, me))["id"]
        bad = await client.post(
            "/api/v1/me/real-name", json={"real_name": "张不符", "id_number": ID_NUMBER}, headers=me
        )
        assert bad.status_code == 422 and heard == []  # nothing changed: nobody is told
        with caplog.at_level(logging.ERROR):
            r = await client.post(
                "/api/v1/me/real-name", json={"real_name": "张三", "id_number": ID_NUMBER}, headers=me
            )
        assert r.status_code == 200 and heard == [citizen]
        assert "real-name observer" in caplog.text and ID_NUMBER not in caplog.text
        assert (await client.delete("/api/v1/me/real-name", headers=me)).status_code == 204
        assert heard == [citizen, citizen]
        body = await _me(client, me)
        assert body["real_name_verified"] is False and body["real_name"] is None
        row = await _row(client, me)
        assert row["id_number_index"] is None and row["real_name_reference"] == ""
        assert await AuditEvent.exists().where(AuditEvent.action == "real_name_cleared").run()
        # deleting the account tells them too
        assert (await client.delete("/api/v1/me", headers=me)).status_code == 204
        assert heard == [citizen, citizen, citizen]
    finally:
        observers.remove(broken)
        observers.remove(listen)


async def test_self_typed_data_from_before_reads_unverified_and_the_migration_deletes_it(world):
    client, me, _ = world
    citizen = (await _me(client, me))["id"]
    pii, cid = client.services.auth.realname._pii, uuid.UUID(citizen)
    # a row as PATCH /me used to leave it: sealed name and number, an index, no verification
    await (
        Citizen.update(
            {
                Citizen.name_sealed: pii.encrypt("赵六", f"citizen:{citizen}:name"),
                Citizen.id_number_sealed: pii.encrypt(ID_NUMBER, f"citizen:{citizen}:id_number"),
                Citizen.id_number_index: client.services.auth.realname.id_number_index(ID_NUMBER),
            }
        )
        .where(Citizen.id == cid)
        .run()
    )
    assert (await _me(client, me))["real_name_verified"] is False
    migration = importlib.import_module("migrations.shengshitong_2026_11_28t20_30_00_000000")
    manager = await migration.forwards()
    for step in manager.raw:
        await step()
    row = await Citizen.select().where(Citizen.id == cid).first().run()
    assert row["name_sealed"] is None and row["id_number_sealed"] is None and row["id_number_index"] is None
    # the number is free for whoever proves it is theirs
    r = await client.post(
        "/api/v1/me/real-name", json={"real_name": "赵六", "id_number": ID_NUMBER}, headers=me
    )
    assert r.status_code == 200 and r.json()["real_name_verified"] is True


async def test_seed_demo_makes_a_verified_demo_citizen(make_client, login):
    async with make_client() as client:
        lines = await seed_demo(client.app)
        assert any("demo citizen 13800138000, real name verified" in line for line in lines)
        again = await seed_demo(client.app)  # idempotent
        assert any("demo citizen 13800138000" in line for line in again)
        pair = await login(client, "13800138000")
        body = await _me(client, {"Authorization": f"Bearer {pair['access_token']}"})
        assert body["real_name_verified"] is True and body["real_name"] == "沈*"
        assert body["real_name_verification"]["provider"] == "development"
