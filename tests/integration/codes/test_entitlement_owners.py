"""The systems that own entitlements push changes; the code carries only what they said, to verified
citizens; a change reaches the next code at once and the scanners that require it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.conftest import bearer


def _at(client: Any, seconds: float = 0) -> str:
    return (datetime.fromtimestamp(client.runtime.clock.time(), UTC) + timedelta(seconds=seconds)).isoformat()


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def _code(client: Any, pair: dict[str, Any]) -> dict[str, Any]:
    r = await client.get("/api/v1/codes/current", headers=bearer(pair))
    assert r.status_code == 200, r.text
    return dict(r.json())


async def _scan(client: Any, scanner: dict[str, Any], token: str) -> dict[str, Any]:
    r = await client.post("/api/v1/scans", json={"token": token}, headers=scanner["headers"])
    assert r.status_code == 200, r.text
    return dict(r.json())


async def _wallet(client: Any, pair: dict[str, Any]) -> dict[str, dict[str, Any]]:
    r = await client.get("/api/v1/me/entitlements", headers=bearer(pair))
    assert r.status_code == 200, r.text
    return {e["name"]: e for e in r.json()["entitlements"]}


async def test_bureau_insures_then_revokes_and_the_hospital_follows(
    make_client,
    frozen_clock,
    login,
    new_phone,
    new_id_number,
    verify_real_name,
    enrol_source,
    push_change,
    enrol_scanner,
):
    async with make_client(clock=frozen_clock) as client:
        pair = await login(client, new_phone())
        number = new_id_number()
        await verify_real_name(client, pair, "沈一", number)
        clinic = await enrol_scanner(client, context="testgate-clinic")
        bureau = await enrol_source(client, "medical", name="沈阳市医疗保障局")

        before = await _code(client, pair)
        assert before["entitlements"]["medical"]["insured"] is False
        assert (await _scan(client, clinic, before["token"]))["reason"] == "not_entitled"
        wallet = await _wallet(client, pair)
        assert wallet["medical"]["granted"] is False and wallet["medical"]["reason"] == "no_record"

        out = await push_change(
            client, bureau, number, {"insured": True, "region": "210102", "type": "employee"}
        )
        assert out["outcome"] == "applied"
        insured = await _code(client, pair)  # at once, not at the next rotation
        assert insured["token"] != before["token"]
        assert insured["entitlements"]["medical"] == {"insured": True, "region": "210102"}
        admitted = await _scan(client, clinic, insured["token"])
        assert admitted["result"] == "allow", admitted
        wallet = await _wallet(client, pair)
        assert wallet["medical"]["granted"] is True
        assert wallet["medical"]["source"]["name_zh"] == "沈阳市医疗保障局"
        assert wallet["medical"]["detail"] == {"region": "210102", "type": "employee"}
        assert wallet["medical"]["effective_at"]

        await push_change(client, bureau, number, {"insured": False}, effective_at=_at(client, 1))
        # a change that takes effect a second later: the code in hand is not kept past it
        assert _time((await _code(client, pair))["refresh_after"]) <= frozen_clock.now() + timedelta(
            seconds=2
        )
        client.runtime.clock.advance(2)
        revoked = await _code(client, pair)
        assert revoked["entitlements"]["medical"]["insured"] is False
        refused = await _scan(client, clinic, revoked["token"])
        assert refused["result"] == "deny" and refused["reason"] == "not_entitled"
        assert refused["data"] == {"required": "medical", "status": "missing"}
        assert refused["display"]["title"] == "未参加医保"
        assert (await _wallet(client, pair))["medical"]["reason"] == "not_insured"


MATH_DIGITS = "\U0001d7d0\U0001d7cf\U0001d7ce\U0001d7cf\U0001d7ce\U0001d7d0"  # 𝟐𝟏𝟎𝟏𝟎𝟐: digits, not ASCII


def _ndjson(records: list[dict[str, Any] | str | bytes]) -> bytes:
    import json

    return b"".join(
        (
            r
            if isinstance(r, bytes)
            else (r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)).encode()
        )
        + b"\n"
        for r in records
    )


async def test_a_bulk_upload_applies_reports_and_a_second_one_changes_nothing(
    client, new_id_number, enrol_source, enrol_scanner
):
    health = await enrol_source(client, "health", name="沈阳市卫生健康委员会")
    now = _at(client)
    good = [
        {
            "record_id": f"r{i}",
            "id_number": new_id_number(),
            "effective_at": now,
            "value": {"status": "green"},
        }
        for i in range(5)
    ]
    records: list[dict[str, Any] | str | bytes] = [
        good[0],
        {
            "record_id": "bad-1",
            "id_number": "210102199001011230",
            "effective_at": now,
            "value": {"status": "green"},
        },
        good[1],
        {
            "record_id": "bad-2",
            "id_number": good[2]["id_number"],
            "effective_at": now,
            "value": {"status": "blue"},
        },
        "this is not json",
        {**good[2], "valid_until": "2020-01-01T00:00:00+08:00"},
        good[2],
        good[3],
        {
            "record_id": "bad-3",
            "id_number": good[4]["id_number"],
            "effective_at": "2026-11-28T00:00:00",
            "value": {"status": "red"},
        },
        good[4],
        good[4],  # the same change twice in one file is one
        b'{"record_id": "x\xc3\x28"}',  # not UTF-8: this record is refused, not the upload
    ]
    headers = {**health["headers"], "Content-Type": "application/x-ndjson"}
    r = await client.post("/api/v1/entitlements/uploads", content=_ndjson(records), headers=headers)
    assert r.status_code == 200, r.text
    first = r.json()
    assert (first["status"], first["lines"], first["applied"], first["unchanged"], first["rejected"]) == (
        "done",
        12,
        5,
        1,
        6,
    )
    report = await client.get(f"/api/v1/entitlements/uploads/{first['id']}/report", headers=health["headers"])
    assert report.status_code == 200
    assert report.headers["content-type"].startswith("application/x-ndjson")
    import json

    rows = [json.loads(line) for line in report.text.splitlines()]
    assert [(x["line"], x["record_id"], x["reason"]) for x in rows] == [
        (2, "bad-1", "bad_id_number"),
        (4, "bad-2", "bad_value"),
        (5, "", "bad_record"),
        (6, "r2", "bad_time"),
        (9, "bad-3", "bad_time"),
        (12, "", "bad_record"),
    ]
    assert "210102199001011230" not in report.text  # the report never repeats an ID number

    again = await client.post("/api/v1/entitlements/uploads", content=_ndjson(records), headers=headers)
    second = again.json()
    assert (second["applied"], second["unchanged"], second["rejected"]) == (0, 6, 6)
    progress = await client.get(f"/api/v1/entitlements/uploads/{second['id']}", headers=health["headers"])
    assert progress.json()["status"] == "done" and progress.json()["unchanged"] == 6

    # another owner, a scanner, no credential: none reads or writes here
    other = await enrol_source(client, "medical")
    assert (
        await client.get(f"/api/v1/entitlements/uploads/{first['id']}", headers=other["headers"])
    ).status_code == 404
    scanner = await enrol_scanner(client)
    as_scanner = await client.post(
        "/api/v1/entitlements/uploads",
        content=_ndjson(records),
        headers={**scanner["headers"], "Content-Type": "application/x-ndjson"},
    )
    assert as_scanner.status_code == 401 and as_scanner.json()["code"] == "wrong_client_kind"
    assert (await client.post("/api/v1/entitlements/uploads", content=b"{}\n")).status_code == 401
    wrong = await client.post(
        "/api/v1/entitlements/uploads", content=_ndjson(records), headers=health["headers"]
    )
    assert wrong.status_code == 415 and wrong.json()["code"] == "ndjson_required"


async def test_bad_single_changes_are_refused_and_change_nothing(client, new_id_number, enrol_source):
    bureau = await enrol_source(client, "social_security")
    number = new_id_number()
    now = _at(client)
    cases = [
        (b'{"record_id": "\xff"}', "bad_record"),  # not UTF-8
        (
            (
                '{"record_id": "x", "id_number": "' + number + '", "effective_at": "' + now + '", '
                '"value": {"insured": true, "region": "' + MATH_DIGITS + '"}}'
            ).encode(),
            "bad_value",  # digits of another script are not a region code
        ),
        (b"{", "malformed"),
        (
            b'{"record_id": "x", "id_number": "'
            + number.encode()
            + b'", "effective_at": "'
            + now.encode()
            + b'", "value": {"insured": "yes"}}',
            "bad_value",
        ),
        (
            b'{"record_id": "x", "id_number": "123", "effective_at": "'
            + now.encode()
            + b'", "value": {"insured": true}}',
            "bad_id_number",
        ),
        (
            b'{"record_id": "x\\u0000", "id_number": "'
            + number.encode()
            + b'", "effective_at": "'
            + now.encode()
            + b'", "value": {"insured": true}}',
            "bad_record",
        ),
        (
            b'{"record_id": "x", "id_number": "'
            + number.encode()
            + b'", "effective_at": "'
            + now.encode()
            + b'", "value": '
            + b"[" * 1800
            + b"]" * 1800
            + b"}",
            "bad_value",
        ),
        (
            b'{"record_id": "x", "id_number": "'
            + number.encode()
            + b'", "effective_at": "'
            + now.encode()
            + b'", "value": {"insured": true}, "extra": 1}',
            "bad_record",
        ),
    ]
    for body, code in cases:
        r = await client.post(
            "/api/v1/entitlements/changes",
            content=body,
            headers={**bureau["headers"], "Content-Type": "application/json"},
        )
        assert 400 <= r.status_code < 500, (body[:80], r.status_code, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        if code != "malformed":
            allowed = (code, "malformed_request", "invalid_input", "bad_record")
            assert r.json()["code"] in allowed, (code, r.json())
    from codes.tables import EntitlementFact

    assert await EntitlementFact.count().run() == 0


async def test_self_declared_data_grants_nothing_until_a_provider_verifies_it(
    client, login, new_phone, new_id_number, enrol_source, push_change, auth_header
):
    number = new_id_number()
    await push_change(
        client, await enrol_source(client, "medical"), number, {"insured": True, "region": "210102"}
    )
    await push_change(client, await enrol_source(client, "social_security"), number, {"insured": True})
    await push_change(client, await enrol_source(client, "health"), number, {"status": "green"})
    pair = await login(client, new_phone())
    nothing = {
        "medical": {"insured": False, "region": None},
        "transit": {"allowed": True, "refused_reason": None},
        "health": {"status": "unknown"},
        "tickets": {"has_tickets": False},
        "social_security": {"insured": False},
    }
    assert (await _code(client, pair))["entitlements"] == nothing
    wallet = await _wallet(client, pair)
    for name in ("medical", "social_security", "health"):
        assert wallet[name]["granted"] is False and wallet[name]["reason"] == "real_name_unverified"
    assert wallet["tickets"]["reason"] == "no_ticket_today"  # (a paid ticket would say real_name_unverified)
    # a name the provider does not match with the number: nothing kept, nothing granted
    refused = await client.post(
        "/api/v1/me/real-name", json={"real_name": "不符", "id_number": number}, headers=auth_header(pair)
    )
    assert refused.status_code == 422 and refused.json()["code"] == "real_name_mismatch"
    assert (await _code(client, pair))["entitlements"] == nothing
    # verified: what the owners said before the citizen registered reaches the code at once
    ok = await client.post(
        "/api/v1/me/real-name", json={"real_name": "沈五", "id_number": number}, headers=auth_header(pair)
    )
    assert ok.status_code == 200, ok.text
    held = (await _code(client, pair))["entitlements"]
    assert held["medical"] == {"insured": True, "region": "210102"}
    assert held["social_security"] == {"insured": True} and held["health"] == {"status": "green"}


async def test_a_yellow_valid_for_a_while_uncovers_the_green_before_it(
    make_client,
    frozen_clock,
    login,
    new_phone,
    new_id_number,
    verify_real_name,
    enrol_source,
    push_change,
    enrol_scanner,
):
    async with make_client(clock=frozen_clock) as client:
        pair = await login(client, new_phone())
        number = new_id_number()
        await verify_real_name(client, pair, "沈六", number)
        authority = await enrol_source(client, "health")
        checkpoint = await enrol_scanner(client, context="testgate-health")
        await push_change(client, authority, number, {"status": "green"}, effective_at=_at(client, -3600))
        await push_change(
            client, authority, number, {"status": "yellow", "reason": "密接"}, valid_until=_at(client, 600)
        )
        yellow = await _code(client, pair)
        assert yellow["entitlements"]["health"] == {"status": "yellow"}
        assert _time(yellow["refresh_after"]) <= frozen_clock.now() + timedelta(seconds=30)
        refused = await _scan(client, checkpoint, yellow["token"])
        assert refused["reason"] == "not_entitled" and refused["data"] == {
            "required": "health",
            "status": "yellow",
        }
        assert refused["display"]["title"] == "健康码黄码"
        wallet = await _wallet(client, pair)
        assert wallet["health"]["valid_until"] and wallet["health"]["detail"] == {"reason": "密接"}
        frozen_clock.advance(601)
        green = await _code(client, pair)
        assert green["entitlements"]["health"] == {"status": "green"}
        assert (await _scan(client, checkpoint, green["token"]))["result"] == "allow"
