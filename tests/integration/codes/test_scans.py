"""Online and batch scans: single use per context across connections, every refusal with its reason."""

import asyncio
import os

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from codes import format as fmt
from codes.entitlements import Entitlements
from miniapps.tables import ScanRecord

ID_NUMBER = "21010219491231018X"


@pytest.fixture
async def setup(
    make_client,
    frozen_clock,
    login,
    new_phone,
    auth_header,
    enrol_scanner,
    verify_real_name,
    enrol_source,
    push_change,
):
    async with make_client(clock=frozen_clock) as client:
        pair = await login(client, new_phone())
        await verify_real_name(client, pair, "钱七", ID_NUMBER)
        bureau = await enrol_source(client, "medical")
        await push_change(client, bureau, ID_NUMBER, {"insured": True, "region": "210102"})
        gate = await enrol_scanner(client, context="testgate-bus", place="bus 42")
        yield client, pair, gate


async def _code(client, pair, auth_header):
    return (await client.get("/api/v1/codes/current", headers=auth_header(pair))).json()["token"]


async def _scan(client, scanner, token, **extra):
    r = await client.post("/api/v1/scans", json={"token": token, **extra}, headers=scanner["headers"])
    assert r.status_code == 200, r.text
    return r.json()


async def test_allow_then_replayed_in_the_same_context(setup, auth_header, enrol_scanner):
    client, pair, gate = setup
    token = await _code(client, pair, auth_header)
    first = await _scan(client, gate, token)
    assert first["result"] == "allow" and first["reason"] == "ok" and first["app_id"] == "testgate"
    assert first["display"]["color"] == "green"
    second = await _scan(client, gate, token)
    assert second["result"] == "deny" and second["reason"] == "replayed"
    assert second["display"]["title"] == "此码已使用"
    # another bus of the same service: the same code is still used up
    other_bus = await enrol_scanner(client, context="testgate-bus", place="bus 7")
    assert (await _scan(client, other_bus, token))["reason"] == "replayed"
    # a different scan context (a hospital) may accept the same code once
    hospital = await enrol_scanner(client, context="testgate-clinic", place="City Hospital")
    assert (await _scan(client, hospital, token))["result"] == "allow"


async def test_racing_scans_on_two_connections_admit_one(setup, auth_header, enrol_scanner):
    client, pair, gate = setup
    token = await _code(client, pair, auth_header)
    other = await enrol_scanner(client, context="testgate-bus", place="bus 43")
    results = await asyncio.gather(*(_scan(client, g, token) for g in [gate, other] * 10))
    assert [r["result"] for r in results].count("allow") == 1
    assert {r["reason"] for r in results if r["result"] == "deny"} == {"replayed"}


async def test_expired_and_not_yet_valid(setup, auth_header, frozen_clock):
    client, pair, gate = setup
    token = await _code(client, pair, auth_header)
    frozen_clock.advance(60 + 31)  # validity 60 s + skew 30 s has passed
    r = await _scan(client, gate, token)
    assert r["result"] == "deny" and r["reason"] == "expired"
    frozen_clock.advance(-(60 + 31) - 31)  # the gate's clock is behind the code's iat by more than the skew
    assert (await _scan(client, gate, token))["reason"] == "not_yet_valid"


async def test_inside_the_skew_tolerance_is_accepted(setup, auth_header, frozen_clock):
    client, pair, gate = setup
    token = await _code(client, pair, auth_header)
    frozen_clock.advance(60 + 29)
    assert (await _scan(client, gate, token))["result"] == "allow"


async def test_unknown_key_tampered_byte_garbage(setup, auth_header, frozen_clock):
    client, pair, gate = setup
    now = int(frozen_clock.time())
    forged, _ = fmt.encode(
        private_key=ec.generate_private_key(ec.SECP256R1()),
        alg="ES256",
        kid=os.urandom(6),
        issuer="SST",
        iat=now,
        exp=now + 60,
        entitlements=Entitlements(transit=True),
    )
    assert (await _scan(client, gate, forged))["reason"] == "unknown_kid"
    token = await _code(client, pair, auth_header)
    raw = bytearray(fmt.b45decode(token[4:]))
    raw[-80] ^= 0x01  # inside the signature
    import base45

    tampered = "SC1:" + base45.b45encode(bytes(raw)).decode()
    assert (await _scan(client, gate, tampered))["reason"] == "bad_signature"
    for junk, reason in (
        ("hello", "bad_prefix"),
        ("SC1:aaa", "bad_base45"),
        ("SC1:" + "A" * 700, "oversized"),
        (token[: 4 + 90], "bad_format"),
    ):
        r = await _scan(client, gate, junk)
        assert r["result"] == "deny" and r["reason"] == reason, junk
    # bad request bodies are problems, not decisions
    r = await client.post("/api/v1/scans", json={"token": 5}, headers=gate["headers"])
    assert r.status_code == 400
    r = await client.post(
        "/api/v1/scans", content=b"{", headers={**gate["headers"], "content-type": "application/json"}
    )
    assert r.status_code == 400


async def test_not_entitled_for_the_context(setup, auth_header, enrol_scanner, login, new_phone):
    client, _, _ = setup
    uninsured = await login(client, new_phone())  # no real name: no medical insurance
    hospital = await enrol_scanner(client, context="testgate-clinic", place="City Hospital")
    r = await _scan(client, hospital, await _code(client, uninsured, auth_header))
    assert r["result"] == "deny" and r["reason"] == "not_entitled"


async def test_deleted_account_and_signed_out_device(setup, auth_header, login, new_phone):
    client, pair, gate = setup
    token = await _code(client, pair, auth_header)
    assert (await client.delete("/api/v1/me", headers=auth_header(pair))).status_code == 204
    assert (await _scan(client, gate, token))["reason"] == "account_deleted"
    other = await login(client, new_phone())
    token = await _code(client, other, auth_header)
    assert (await client.post("/api/v1/auth/logout", headers=auth_header(other))).status_code == 204
    assert (await _scan(client, gate, token))["reason"] == "device_revoked"


async def test_only_scanners_may_scan(setup, auth_header):
    client, pair, _ = setup
    token = await _code(client, pair, auth_header)
    r = await client.post("/api/v1/scans", json={"token": token}, headers=auth_header(pair))
    assert r.status_code == 401
    merchant = await client.services.auth.machines.create("merchant", name="m")
    import base64

    header = (
        "Basic " + base64.b64encode(f"{merchant['client_id']}:{merchant['client_secret']}".encode()).decode()
    )
    r = await client.post("/api/v1/scans", json={"token": token}, headers={"Authorization": header})
    assert r.status_code == 401 and r.json()["code"] == "wrong_client_kind"


async def test_scans_are_recorded(setup, auth_header):
    client, pair, gate = setup
    token = await _code(client, pair, auth_header)
    r = await _scan(client, gate, token, record_id="bus42-0001")
    again = await _scan(client, gate, token, record_id="bus42-0001")
    assert again == r  # a retried request returns the first answer, not "replayed"
    await client.services.miniapps.gate.records.history.flush()
    rows = await ScanRecord.select().where(ScanRecord.scanner_id == gate["client_id"]).run()
    assert len(rows) == 1 and rows[0]["result"] == "allow" and rows[0]["citizen_id"]
    assert token not in str(rows)


async def test_a_blocked_account_is_refused_until_unblocked(
    setup, auth_header, login, new_phone, frozen_clock
):
    client, pair, gate = setup
    sessions = client.services.auth.sessions
    me = (await client.get("/api/v1/me", headers=auth_header(pair))).json()
    token = await _code(client, pair, auth_header)
    await sessions.set_blocked(me["id"], True, actor="test")
    assert (await _scan(client, gate, token))["reason"] == "account_blocked"
    await sessions.set_blocked(me["id"], False, actor="test")
    frozen_clock.advance(31)
    assert (await _scan(client, gate, await _code(client, pair, auth_header)))["result"] == "allow"


async def test_the_scan_history_pages_to_the_end(setup, auth_header, walk_pages, frozen_clock):
    client, pair, gate = setup
    for _ in range(5):
        frozen_clock.advance(31)  # a fresh code each time
        assert (await _scan(client, gate, await _code(client, pair, auth_header)))["result"] == "allow"
    await client.services.miniapps.gate.records.history.flush()  # records are written behind the answer
    scans = await walk_pages(client, "/api/v1/me/scans", limit=2, headers=auth_header(pair))
    assert len(scans) == 5 and all(s["result"] == "allow" for s in scans)
    assert [s["scanned_at"] for s in scans] == sorted((s["scanned_at"] for s in scans), reverse=True)


async def test_an_online_scan_time_must_be_one_the_code_could_have_been_scanned_at(setup, auth_header):
    """A gate's clock decides what a mini-app charges (a parking stay, the day of a ticket): an online
    scan dated far from now is refused, before the code is used."""
    client, pair, gate = setup
    token = await _code(client, pair, auth_header)
    now = int(client.runtime.clock.time())
    for at in (now + 3600, now - 5 * 86400, 100_000_000_000 // 100):
        answer = await _scan(client, gate, token, scanned_at=at)
        assert (answer["result"], answer["reason"]) == ("deny", "bad_scan_time"), at
    # beyond any code's life, it is not even a readable request
    for at in (253_402_300_800, 10**400):
        r = await client.post(
            "/api/v1/scans", json={"token": token, "scanned_at": at}, headers=gate["headers"]
        )
        assert r.status_code == 400 and r.json()["code"] == "invalid_body", r.text
    # the code was not used by any of that: a gate a few seconds behind is fine
    assert (await _scan(client, gate, token, scanned_at=now - 5))["result"] == "allow"
