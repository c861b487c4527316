"""Findings of an outside attack on 扫码门禁 doors, each through the public API: a visitor-pass limit
that must hold for requests at once, a place code the path does not check, and documents the doors
trust that another mini-app could have had signed."""

from __future__ import annotations

import asyncio
import base64
import json
from collections import Counter
from datetime import timedelta

import pytest

from codes.verifier import public_key_from_jwk, verify_document
from miniapps.doors.offline import ListError, open_list
from miniapps.doors.tables import Place
from tests.conftest import BACKEND
from tests.integration.doors.conftest import APP, City


@pytest.mark.skipif(BACKEND != "postgres", reason="concurrent transactions: PostgreSQL")
async def test_concurrent_invitations_never_pass_the_daily_limit(city: City):
    host = await city.citizen()
    await city.add_resident("WANKE-CITY", host)
    visitor = await city.citizen()
    start = city.clock.now() + timedelta(minutes=5)
    body = {
        "place": "WANKE-CITY",
        "phone": visitor["phone"],
        "doors": ["WK-GATE-N"],
        "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(hours=2)).isoformat(),
    }

    async def invite():
        return await city.client.post(f"{APP}/passes", json=body, headers=host["headers"])

    answers = await asyncio.gather(*(invite() for _ in range(40)))
    assert Counter(a.status_code for a in answers) == {201: 30, 429: 10}, [a.text for a in answers][:3]
    assert {a.json()["code"] for a in answers if a.status_code == 429} == {"too_many_passes"}
    r = await city.client.get(f"{APP}/passes?role=issued&limit=100", headers=host["headers"])
    assert len(r.json()["items"]) == 30
    held = await city.client.get(f"{APP}/passes?role=held&limit=100", headers=visitor["headers"])
    assert len(held.json()["items"]) == 30


async def test_phones_nobody_uses_count_toward_the_days_look_ups(city: City):
    host = await city.citizen()
    await city.add_resident("WANKE-CITY", host)
    visitor = await city.citizen()
    start = city.clock.now() + timedelta(minutes=5)
    body = {
        "place": "WANKE-CITY",
        "doors": ["WK-GATE-N"],
        "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(hours=2)).isoformat(),
    }
    for i in range(30):  # a day's worth of probes of numbers nobody uses
        r = await city.client.post(
            f"{APP}/passes", json={**body, "phone": f"1370000{i:04d}"}, headers=host["headers"]
        )
        assert r.status_code == 422 and r.json()["code"] == "visitor_not_found", r.text
    r = await city.client.post(
        f"{APP}/passes", json={**body, "phone": visitor["phone"]}, headers=host["headers"]
    )
    assert r.status_code == 429 and r.json()["code"] == "too_many_passes", r.text
    held = await city.client.get(f"{APP}/passes?role=held", headers=visitor["headers"])
    assert held.json()["items"] == []


@pytest.mark.parametrize("code", ["A" * 25, "a b", "万科", "x.y"])
async def test_a_place_code_the_path_carries_is_checked(city: City, code: str):
    r = await city.client.put(
        f"{APP}/places/{code}", json={"name": "新小区"}, headers={**city.manager, "Accept-Language": "en"}
    )
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "invalid_place_code"
    assert "1-24" in r.json()["detail"]
    assert await Place.count().where(Place.code == code) == 0
    ok = await city.client.put(f"{APP}/places/{'A' * 24}", json={"name": "新小区"}, headers=city.manager)
    assert ok.status_code == 200, ok.text


async def test_a_door_takes_only_its_own_list_from_the_doors_app(city: City):
    client = city.client
    root = public_key_from_jwk((await client.get("/api/v1/codes/trust-root")).json()["keys"][0])
    gate = (await client.get(f"{APP}/door-list", headers=city.doors["WK-GATE-N"]["headers"])).json()
    assert open_list(gate, root, door="WK-GATE-N").door == "WK-GATE-N"
    # the gate's list (every resident of the place) fed to a building's entrance, or to another place's door
    for door in ("WK-B1-U1", "FP-LOBBY"):
        with pytest.raises(ListError):
            open_list(gate, root, door=door)
    # another mini-app has the same root key sign a door list of its own making: not the doors app's
    parking = client.services.miniapps.apps["parking"].platform
    payload = json.loads(base64.urlsafe_b64decode(gate["payload"] + "=" * (-len(gate["payload"]) % 4)))
    forged = await parking.sign_document(dict(payload, handles=[], keys=[]), "door-list+json")
    with pytest.raises(ListError):
        open_list(forged, root, door="WK-GATE-N")
    # nor a trust list that every scanner would believe (codes signed by a key of its choosing)
    trust = verify_document((await client.get("/api/v1/codes/trust-list")).json(), root)
    for typ in ("trust-list+json", "anything+json"):
        with pytest.raises(ValueError):
            await parking.sign_document(trust, typ)


@pytest.mark.parametrize("how", ["removed", "moved_out"])
async def test_a_removed_residents_passes_stop_opening(city: City, how: str):
    host = await city.citizen()
    row = await city.add_resident("WANKE-CITY", host)
    visitor = await city.citizen()  # for example a second phone of the host's own
    start = city.clock.now()
    r = await city.client.post(
        f"{APP}/passes",
        json={
            "place": "WANKE-CITY",
            "phone": visitor["phone"],
            "doors": ["WK-GATE-N"],
            "starts_at": start.isoformat(),
            "ends_at": (start + timedelta(hours=100)).isoformat(),
            "entries": 20,
        },
        headers=host["headers"],
    )
    assert r.status_code == 201, r.text
    assert (await city.scan("WK-GATE-N", visitor))["result"] == "allow"
    if how == "removed":
        gone = await city.client.delete(
            f"{APP}/places/WANKE-CITY/residents/{row['id']}", headers=city.manager
        )
    else:
        gone = await city.client.delete(f"{APP}/residences/{row['id']}", headers=host["headers"])
    assert gone.status_code == 200, gone.text
    refused = await city.scan("WK-GATE-N", visitor)
    assert (refused["result"], refused["reason"]) == ("deny", "pass_cancelled")
    held = (await city.client.get(f"{APP}/passes?role=held", headers=visitor["headers"])).json()["items"]
    assert [(p["state"], p["used"]) for p in held] == [("cancelled", 1)]


async def test_an_offline_stranger_is_logged_as_no_resident_not_as_a_visitor(city: City):
    stranger = await city.citizen()
    token = await city.code(stranger)
    records = [{"record_id": "off-stranger", "token": token, "scanned_at": int(city.clock.time())}]
    up = await city.client.post(
        "/api/v1/scans/batch", json={"records": records}, headers=city.doors["WK-GATE-S"]["headers"]
    )
    assert up.status_code == 200, up.text
    assert [(x["result"], x["reason"]) for x in up.json()["results"]] == [("deny", "not_resident")]
    log = (await city.client.get(f"{APP}/places/WANKE-CITY/entries", headers=city.manager)).json()["items"]
    assert [(e["reason"], e["offline"]) for e in log] == [("not_resident", True)]


@pytest.mark.skipif(BACKEND != "postgres", reason="concurrent transactions: PostgreSQL")
async def test_places_registered_side_by_side_all_succeed_and_keep_their_doors(city: City):
    async def put(place: str, door: str, name: str):
        body = {"name": name, "doors": [{"code": door, "name": name}]}
        return await city.client.put(f"{APP}/places/{place}", json=body, headers=city.manager)

    apart = await asyncio.gather(*(put(f"NEW-{i}", f"NEW-{i}-GATE", f"新小区{i}") for i in range(6)))
    assert [a.status_code for a in apart] == [200] * 6, [a.text for a in apart]
    assert len({a.json()["number"] for a in apart}) == 6
    # six places claiming one new door code at once: one gets it, the others are told it is taken
    same = await asyncio.gather(*(put(f"RIVAL-{i}", "RIVAL-GATE", f"对手{i}") for i in range(6)))
    assert sorted(a.status_code for a in same) == [200] + [409] * 5, [a.text for a in same]
    assert {a.json()["code"] for a in same if a.status_code == 409} == {"code_of_another_place"}
    winner = next(i for i, a in enumerate(same) if a.status_code == 200)
    r = await city.client.get(f"{APP}/places?limit=100", headers=(await city.citizen())["headers"])
    doors = {d["code"]: (p["code"], d["name"]) for p in r.json()["items"] for d in p["doors"]}
    assert doors["RIVAL-GATE"] == (f"RIVAL-{winner}", f"对手{winner}")
