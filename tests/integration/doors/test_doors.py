"""扫码门禁 doors through HTTP: residents added by their manager (by phone or ID number) or approved on
request open their doors with the citizen code and stop at once when removed; visitor passes open the
named doors only in their window and only so many times, with the reason on the gate's screen; every
entry is logged for the citizen and the manager, with no personal data."""

from __future__ import annotations

from datetime import timedelta

from tests.integration.doors.conftest import APP, EN, City
from tests.integration.messages.citizen import approve, inbox


async def test_residents_open_their_doors_and_a_removed_one_is_refused_at_once(
    city: City, verify_real_name, new_id_number
):
    client = city.client
    alice = await city.citizen()
    await city.add_resident("WANKE-CITY", alice, building="WANKE-CITY-1")
    ok = await city.scan("WK-GATE-N", alice)
    assert (ok["result"], ok["reason"], ok["display"]["title"]) == ("allow", "ok", "欢迎回家")
    assert ok["display"]["subtitle"] == "万科城 北门"
    assert (await city.scan("WK-B1-U1", alice, locale="en"))["display"] == {
        "title": "Welcome",
        "subtitle": "Building 1, entrance 1",
        "color": "green",
    }
    other = await city.scan("WK-B2-U1", alice, locale="en")  # the other building's entrance
    assert (other["result"], other["reason"], other["display"]["title"]) == (
        "deny",
        "wrong_door",
        "Not allowed through this door",
    )
    stranger = await city.citizen()
    refused = await city.scan("WK-GATE-S", stranger)
    assert (refused["reason"], refused["display"]["title"]) == ("not_resident", "非本小区住户，无通行权限")
    assert (await city.scan("FP-LOBBY", alice))["reason"] == "not_resident"  # another place

    # by ID number: only a real-name-verified account is found
    bob = await city.citizen()
    number = new_id_number()
    r = await client.post(
        f"{APP}/places/WANKE-CITY/residents", json={"id_number": number}, headers=city.manager
    )
    assert (r.status_code, r.json()["code"]) == (404, "no_such_citizen")
    await verify_real_name(client, bob["pair"], "沈二", number)
    r = await client.post(
        f"{APP}/places/WANKE-CITY/residents", json={"id_number": number}, headers=city.manager
    )
    assert r.status_code == 201, r.text
    assert (await city.scan("WK-B2-U1", bob))["result"] == "allow"  # no building: every door

    # a citizen asks, the manager approves
    carol = await city.citizen()
    r = await client.post(
        f"{APP}/residence-requests",
        json={"place": "WANKE-CITY", "building": "WANKE-CITY-2"},
        headers=carol["headers"],
    )
    assert (r.status_code, r.json()["state"]) == (201, "pending")
    assert (await city.scan("WK-B2-U1", carol))["reason"] == "not_resident"
    pending = (
        await client.get(f"{APP}/places/WANKE-CITY/residents?state=pending", headers=city.manager)
    ).json()
    assert [p["building"] for p in pending["items"]] == ["WANKE-CITY-2"]
    r = await client.post(
        f"{APP}/places/WANKE-CITY/residents/{pending['items'][0]['id']}/approve", headers=city.manager
    )
    assert r.json()["state"] == "active"
    again = await client.post(
        f"{APP}/places/WANKE-CITY/residents/{pending['items'][0]['id']}/approve", headers=city.manager
    )
    assert (again.status_code, again.json()["code"]) == (409, "not_pending")
    assert (await city.scan("WK-B2-U1", carol))["result"] == "allow"
    mine = (await client.get(f"{APP}/residences", headers={**carol["headers"], **EN})).json()["items"]
    assert [(m["place"]["name"], m["state"], [d["code"] for d in m["doors"]]) for m in mine] == [
        ("Vanke City", "active", ["WK-B2-U1", "WK-GATE-N", "WK-GATE-S"])
    ]

    # carol moves out herself: refused at once; a second time there is nothing to leave
    r = await client.delete(f"{APP}/residences/{mine[0]['id']}", headers=carol["headers"])
    assert (r.status_code, r.json()["state"], r.json()["doors"]) == (200, "removed", [])
    assert (await city.scan("WK-B2-U1", carol))["reason"] == "not_resident"
    r = await client.delete(f"{APP}/residences/{mine[0]['id']}", headers=alice["headers"])  # not hers
    assert (r.status_code, r.json()["code"]) == (404, "unknown_residence")

    # the manager's list: masked pairwise ids, no phone
    listed = await client.get(f"{APP}/places/WANKE-CITY/residents", headers=city.manager)
    assert len(listed.json()["items"]) == 3
    assert alice["phone"][3:] not in listed.text and number not in listed.text
    alice_row = next(r for r in listed.json()["items"] if r["building"] == "WANKE-CITY-1")
    assert alice_row["who"].endswith("…") and len(alice_row["who"]) == 7

    # removed: refused at the very next scan
    r = await client.delete(f"{APP}/places/WANKE-CITY/residents/{alice_row['id']}", headers=city.manager)
    assert (r.status_code, r.json()["state"]) == (200, "removed")
    assert (await city.scan("WK-GATE-N", alice))["reason"] == "not_resident"
    r = await client.delete(f"{APP}/places/WANKE-CITY/residents/{alice_row['id']}", headers=city.manager)
    assert (r.status_code, r.json()["code"]) == (409, "not_resident")

    # every entry logged: the citizen's own, the manager's by door (no personal data)
    own = (await client.get(f"{APP}/entries", headers=alice["headers"])).json()["items"]
    assert [(e["door"]["code"], e["allowed"], e["reason"]) for e in own] == [
        ("WK-GATE-N", False, "not_resident"),
        ("FP-LOBBY", False, "not_resident"),
        ("WK-B2-U1", False, "wrong_door"),
        ("WK-B1-U1", True, "ok"),
        ("WK-GATE-N", True, "ok"),
    ]
    log = await client.get(f"{APP}/places/WANKE-CITY/entries?door=WK-B2-U1", headers=city.manager)
    assert [(e["allowed"], e["reason"]) for e in log.json()["items"]] == [
        (False, "not_resident"),  # carol, moved out
        (True, "ok"),
        (False, "not_resident"),  # carol, while her request waited
        (True, "ok"),  # bob
        (False, "wrong_door"),  # alice, of building 1
    ]
    assert all(e["who"].endswith("…") for e in log.json()["items"])
    assert bob["phone"][3:] not in log.text and "openid" not in log.text


async def test_bad_input_is_refused_and_changes_nothing(city: City):
    client = city.client
    r = await client.post(
        f"{APP}/places/WANKE-CITY/residents", json={"phone": "12345678"}, headers=city.manager
    )
    assert (r.status_code, r.json()["code"]) == (422, "invalid_phone")
    r = await client.post(f"{APP}/places/WANKE-CITY/residents", json={}, headers=city.manager)
    assert (r.status_code, r.json()["code"]) == (422, "invalid_citizen_query")
    r = await client.post(
        f"{APP}/places/NOWHERE/residents", json={"phone": "13800000000"}, headers=city.manager
    )
    assert (r.status_code, r.json()["code"]) == (404, "unknown_place")
    r = await client.delete(f"{APP}/places/WANKE-CITY/residents/not-a-uuid", headers=city.manager)
    assert (r.status_code, r.json()["code"]) == (404, "unknown_resident")
    someone = await city.citizen()
    r = await client.post(
        f"{APP}/places/WANKE-CITY/residents", json={"phone": someone["phone"]}, headers=someone["headers"]
    )
    assert r.status_code in (401, 403)
    r = await client.get(f"{APP}/door-list", headers=city.manager)  # a door's, not the manager's
    assert r.status_code in (401, 403)
    listed = (await client.get(f"{APP}/places/WANKE-CITY/residents", headers=city.manager)).json()
    assert listed["items"] == []
    # the places a citizen can ask to live in, by kind, in the request's language
    places = (await client.get(f"{APP}/places?kind=community", headers={**someone["headers"], **EN})).json()
    (vanke,) = places["items"]
    assert (vanke["code"], vanke["name"], vanke["name_zh"]) == ("WANKE-CITY", "Vanke City", "万科城")
    assert [b["code"] for b in vanke["buildings"]] == ["WANKE-CITY-1", "WANKE-CITY-2"]
    assert {d["code"]: d["building"] for d in vanke["doors"]}["WK-B1-U1"] == "WANKE-CITY-1"
    # a resident's invitations are bounded per day (each looks a phone up)
    await city.add_resident("WANKE-CITY", someone)
    guest = await city.citizen()
    now = city.clock.now()
    body = {
        "place": "WANKE-CITY",
        "phone": guest["phone"],
        "doors": ["WK-GATE-N"],
        "starts_at": now.isoformat(),
        "ends_at": (now + timedelta(hours=1)).isoformat(),
    }
    for _ in range(30):
        assert (await client.post(f"{APP}/passes", json=body, headers=someone["headers"])).status_code == 201
    r = await client.post(f"{APP}/passes", json=body, headers=someone["headers"])
    assert (r.status_code, r.json()["code"]) == (429, "too_many_passes")
    r = await client.post(f"{APP}/passes", json={**body, "entries": 21}, headers=someone["headers"])
    assert r.status_code in (422, 429)
    city.clock.advance(86400)
    later = {
        "starts_at": city.clock.now().isoformat(),
        "ends_at": (city.clock.now() + timedelta(hours=1)).isoformat(),
    }
    r = await client.post(f"{APP}/passes", json={**body, **later, "entries": 21}, headers=someone["headers"])
    assert (r.status_code, r.json()["code"]) == (422, "too_many_entries")


async def test_visitor_passes_open_named_doors_in_their_window_so_many_times(city: City):
    client = city.client
    await approve(client, "doors.visitor_pass")
    host = await city.citizen()
    await city.add_resident("WANKE-CITY", host, building="WANKE-CITY-1")
    guest = await city.citizen()
    start = city.clock.now() + timedelta(hours=1)
    body = {
        "place": "WANKE-CITY",
        "phone": guest["phone"],
        "doors": ["WK-GATE-N", "WK-B1-U1"],
        "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(hours=3)).isoformat(),
        "entries": 2,
    }
    # only a resident invites, only through their own doors, only a citizen of the app
    r = await client.post(f"{APP}/passes", json=body, headers=guest["headers"])
    assert (r.status_code, r.json()["code"]) == (403, "not_a_resident")
    r = await client.post(f"{APP}/passes", json={**body, "doors": ["WK-B2-U1"]}, headers=host["headers"])
    assert (r.status_code, r.json()["code"]) == (403, "not_your_door")
    r = await client.post(f"{APP}/passes", json={**body, "phone": "13912345678"}, headers=host["headers"])
    assert r.status_code == 422 and r.json()["code"] in ("visitor_not_found",)
    r = await client.post(
        f"{APP}/passes",
        json={**body, "ends_at": (start - timedelta(minutes=1)).isoformat()},
        headers=host["headers"],
    )
    assert (r.status_code, r.json()["code"]) == (422, "bad_window")
    r = await client.post(f"{APP}/passes", json=body, headers=host["headers"])
    assert r.status_code == 201, r.text
    issued = r.json()
    assert (issued["state"], issued["left"], issued["visitor"]) == (
        "upcoming",
        2,
        guest["phone"][:3] + "****" + guest["phone"][-4:],
    )
    # the visitor is told
    told = await inbox(client, guest["headers"])
    assert told[0]["title"] == "您收到一张访客通行证" and "万科城" in told[0]["body"]

    early = await city.scan("WK-GATE-N", guest)
    assert (early["reason"], early["display"]["title"]) == ("pass_not_started", "访客通行证尚未生效")
    city.clock.advance(3600)
    assert (await city.scan("WK-GATE-S", guest, locale="en"))["display"][
        "title"
    ] == "Not allowed through this door"
    first = await city.scan("WK-GATE-N", guest)
    assert (first["result"], first["data"]["kind"], first["data"]["pass_id"]) == (
        "allow",
        "visitor",
        issued["id"],
    )
    assert (await city.scan("WK-B1-U1", guest))["result"] == "allow"
    used_up = await city.scan("WK-GATE-N", guest, locale="en")
    assert (used_up["reason"], used_up["display"]["title"]) == ("pass_used_up", "Visitor pass used up")
    # the host sees the entries
    seen = (await client.get(f"{APP}/passes/{issued['id']}/entries", headers=host["headers"])).json()["items"]
    assert [e["door"]["code"] for e in seen] == ["WK-B1-U1", "WK-GATE-N"]
    held = (await client.get(f"{APP}/passes?role=held", headers=guest["headers"])).json()["items"]
    assert [(p["state"], p["used"]) for p in held] == [("used_up", 2)] and "visitor" not in held[0]

    # a second pass, cancelled by the host: refused at once
    second = (
        await client.post(
            f"{APP}/passes",
            json={**body, "doors": ["WK-GATE-S"], "starts_at": city.clock.now().isoformat()},
            headers=host["headers"],
        )
    ).json()
    assert (await city.scan("WK-GATE-S", guest))["result"] == "allow"
    r = await client.delete(
        f"{APP}/passes/{second['id']}", headers=guest["headers"]
    )  # not the visitor's to cancel
    assert (r.status_code, r.json()["code"]) == (404, "unknown_pass")
    r = await client.delete(f"{APP}/passes/{second['id']}", headers=host["headers"])
    assert (r.status_code, r.json()["state"]) == (200, "cancelled")
    assert (await city.scan("WK-GATE-S", guest))["reason"] == "pass_cancelled"
    # after the window: expired
    city.clock.advance(4 * 3600)
    expired = await city.scan("WK-GATE-N", guest, locale="en")
    assert (expired["reason"], expired["display"]["title"]) == ("pass_expired", "Visitor pass expired")
    issued_list = (await client.get(f"{APP}/passes?role=issued", headers=host["headers"])).json()["items"]
    assert sorted(p["state"] for p in issued_list) == ["cancelled", "expired"]


async def test_a_manager_registers_a_place_with_its_buildings_and_doors(city: City, enrol_scanner):
    client = city.client
    body = {
        "name": "沈阳市图书馆",
        "name_en": "Shenyang Library",
        "kind": "public",
        "district": "皇姑区",
        "buildings": [{"code": "SYL-A", "name": "A座", "name_en": "Block A"}],
        "doors": [
            {"code": "SYL-MAIN", "name": "正门", "name_en": "Main entrance"},
            {"code": "SYL-A-STAFF", "name": "A座员工通道", "building": "SYL-A"},
        ],
    }
    r = await client.put(f"{APP}/places/SY-LIBRARY", json=body, headers=city.manager)
    assert r.status_code == 200, r.text
    assert (r.json()["number"], r.json()["doors"]) == (4, ["SYL-A-STAFF", "SYL-MAIN"])  # after the demo's 3
    renamed = await client.put(
        f"{APP}/places/SY-LIBRARY", json={**body, "name": "沈阳市图书馆（新馆）"}, headers=city.manager
    )
    assert renamed.json()["number"] == 4
    stolen = await client.put(
        f"{APP}/places/SY-LIBRARY",
        json={**body, "doors": [{"code": "WK-GATE-N", "name": "偷来的门"}]},
        headers=city.manager,
    )
    assert (stolen.status_code, stolen.json()["code"]) == (409, "code_of_another_place")
    bad = await client.put(
        f"{APP}/places/SY-LIBRARY",
        json={**body, "doors": [{"code": "X1", "name": "门", "building": "NOPE"}]},
        headers=city.manager,
    )
    assert (bad.status_code, bad.json()["code"]) == (422, "unknown_building")
    assert not (
        await client.get(f"{APP}/places?kind=public", headers=(await city.citizen())["headers"])
    ).text.count("X1")
    # a librarian of block A opens the staff door and the main entrance
    city.doors["SYL-A-STAFF"] = await enrol_scanner(client, "doors", context="door", place="SYL-A-STAFF")
    staff = await city.citizen()
    await city.add_resident("SY-LIBRARY", staff, building="SYL-A")
    ok = await city.scan("SYL-A-STAFF", staff, locale="en")
    assert (ok["result"], ok["display"]["subtitle"]) == ("allow", "SYL-A-STAFF")  # no English name: the code
