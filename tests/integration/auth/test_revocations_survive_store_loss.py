"""Sign-outs, deletions and blocks are kept in the database; the store only caches them. A store that
restarts empty (Redis without persistence) must not bring a signed-out device or a blocked account back."""

import jwt
import pytest

from auth.revocations import Revocations
from backend.store import MemoryStore, RedisStore

pytestmark = pytest.mark.storage


async def lose_everything(store) -> None:
    """What a Redis restart without persistence does to our keys."""
    if isinstance(store, RedisStore):
        await store.delete_prefix()
    else:
        assert isinstance(store, MemoryStore)
        store._data.clear()


async def code_for(client, pair, auth_header) -> str:
    r = await client.get("/api/v1/codes/current", headers=auth_header(pair))
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


async def test_a_signed_out_device_stays_signed_out_after_the_store_loses_its_data(
    client, login, new_phone, auth_header
):
    phone = new_phone()
    gone = await login(client, phone, device_id="old-phone")
    kept = await login(client, phone, device_id="new-phone")
    assert (await client.post("/api/v1/auth/logout", headers=auth_header(gone))).status_code == 204
    await lose_everything(client.runtime.store)

    r = await client.get("/api/v1/codes/current", headers=auth_header(gone))
    assert r.status_code == 401 and r.json()["code"] == "invalid_token"
    assert (await client.get("/api/v1/me", headers=auth_header(kept))).status_code == 200
    # the cache is rebuilt from the database in the background: the marker is back
    revocations = client.services.auth.revocations
    await revocations._rebuild
    assert await client.runtime.store.get("auth:revocations:loaded") is not None
    r = await client.get("/api/v1/codes/current", headers=auth_header(gone))
    assert r.status_code == 401


async def test_a_blocked_account_stays_blocked_at_the_gate_after_the_store_loses_its_data(
    client, login, new_phone, auth_header, enrol_scanner
):
    pair = await login(client, new_phone())
    me = (await client.get("/api/v1/me", headers=auth_header(pair))).json()
    assert me["status"] == "active"
    gate = await enrol_scanner(client)
    await client.services.auth.sessions.set_blocked(me["id"], True, actor="test")
    await lose_everything(client.runtime.store)

    token = await code_for(client, pair, auth_header)
    r = await client.post("/api/v1/scans", json={"token": token}, headers=gate["headers"])
    assert r.json()["result"] == "deny" and r.json()["reason"] == "account_blocked"


async def test_start_up_fills_an_empty_store_from_the_database(client, login, new_phone, auth_header):
    # the embedded default: a restart empties the in-process store; start-up fills it from the database
    pair = await login(client, new_phone())
    assert (await client.post("/api/v1/auth/logout", headers=auth_header(pair))).status_code == 204
    rt = client.runtime
    fresh = Revocations(rt.settings, rt.clock, MemoryStore(prefix="restarted:"))
    await fresh.ensure_loaded()
    claims = jwt.decode(pair["access_token"], options={"verify_signature": False})
    assert await fresh.session_revoked(claims["sid"]) is True
    assert fresh._rebuild is None  # answered from the rebuilt cache, not the database


async def test_codes_issued_before_the_store_lost_its_data_still_scan_and_upload(
    client, login, new_phone, auth_header, enrol_scanner
):
    """A code's mapping (which citizen it stands for) has a durable copy: after a Redis restart, a code on
    screen still passes a gate, and an offline terminal's upload is still charged to its citizen."""
    online = await enrol_scanner(client, place="gate 1")
    offline = await enrol_scanner(client, place="bus 9")
    codes = [await code_for(client, await login(client, new_phone()), auth_header) for _ in range(2)]
    await client.services.codes.issuer.mappings.flush()
    await lose_everything(client.runtime.store)

    r = await client.post("/api/v1/scans", json={"token": codes[0]}, headers=online["headers"])
    assert (r.json()["result"], r.json()["reason"]) == ("allow", "ok")
    now = int(client.runtime.clock.time())
    r = await client.post(
        "/api/v1/scans/batch",
        json={"records": [{"record_id": "b9-1", "token": codes[1], "scanned_at": now}]},
        headers=offline["headers"],
    )
    assert r.json()["results"][0]["reason"] == "ok"
    # and single use still holds for the code scanned again
    r = await client.post("/api/v1/scans", json={"token": codes[0]}, headers=online["headers"])
    assert r.json()["reason"] == "replayed"
