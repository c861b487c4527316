"""An offline door: it syncs its signed list while online, then decides alone with the reference verifier
(miniapps/doors/offline.py) — a resident admitted; after the resident is removed and the door syncs,
refused; a visitor, a resident of another place and a list past its expiry refused — and uploads its
log later through the platform's batch upload, once."""

from __future__ import annotations

from datetime import timedelta

from codes.verifier import TrustList, public_key_from_jwk, verify_document
from miniapps.doors.offline import ListError, decide, open_list
from tests.integration.doors.conftest import APP, City


async def sync(city: City, door: str, etag: str | None = None):
    headers = dict(city.doors[door]["headers"])
    if etag:
        headers["If-None-Match"] = etag
    r = await city.client.get(f"{APP}/door-list", headers=headers)
    return r


async def test_an_offline_door_admits_residents_from_its_synced_list(city: City):
    client = city.client
    root = public_key_from_jwk((await client.get("/api/v1/codes/trust-root")).json()["keys"][0])
    trust = TrustList.from_document(
        verify_document((await client.get("/api/v1/codes/trust-list")).json(), root)
    )
    resident, neighbour, office, visitor = [await city.citizen() for _ in range(4)]
    row = await city.add_resident("WANKE-CITY", resident, building="WANKE-CITY-1")
    await city.add_resident("WANKE-CITY", neighbour, building="WANKE-CITY-2")
    await city.add_resident("FORTUNE-PLAZA", office)
    start = city.clock.now()
    r = await client.post(
        f"{APP}/passes",
        json={
            "place": "WANKE-CITY",
            "phone": visitor["phone"],
            "doors": ["WK-B1-U1"],
            "starts_at": start.isoformat(),
            "ends_at": (start + timedelta(hours=6)).isoformat(),
            "entries": 5,
        },
        headers=resident["headers"],
    )
    assert r.status_code == 201, r.text

    synced = await sync(city, "WK-B1-U1")
    assert synced.status_code == 200, synced.text
    etag = synced.headers["ETag"]
    listed = open_list(synced.json(), root, door="WK-B1-U1")
    assert (listed.door, listed.place) == ("WK-B1-U1", "WANKE-CITY")
    assert listed.expires_at - listed.issued_at == 24 * 3600
    # no personal data: handles, doors, keys
    for who in (resident, neighbour, visitor):
        assert who["phone"] not in synced.text
    assert (await sync(city, "WK-B1-U1", etag)).status_code == 304  # unchanged: nothing to fetch
    # a list is the door's own: signed by the pinned root key, tampering shows
    forged = dict(synced.json(), payload=synced.json()["payload"][:-4] + "AAAA")
    try:
        open_list(forged, root, door="WK-B1-U1")
        raise AssertionError("a forged list was accepted")
    except ListError:
        pass

    # the door goes offline: the resident's code (with the claim for this community) opens it
    seen: set[bytes] = set()
    city.clock.advance(31)
    token = await city.code(resident)
    now = city.clock.time()
    verdict = decide(token, trust, listed, now=now, seen=seen)
    assert (verdict.allow, verdict.reason) == (True, "ok")
    assert decide(token, trust, listed, now=now, seen=seen).reason == "replayed"  # once per code
    neighbour_code = await city.code(neighbour)
    assert decide(neighbour_code, trust, listed, now=now).reason == "wrong_door"  # building 2's resident
    visitor_code = await city.code(visitor)
    assert decide(visitor_code, trust, listed, now=now).reason == "not_resident"  # passes: online only
    assert decide(await city.code(office), trust, listed, now=now).reason == "not_resident"  # another place
    # two codes of one resident share nothing a reader could link
    city.clock.advance(31)
    second = await city.code(resident)
    assert second != token and decide(second, trust, listed, now=city.clock.time()).allow
    # a list past its expiry opens nothing
    assert decide(second, trust, listed, now=listed.expires_at + 1).reason == "list_expired"

    # the offline log goes up later through the platform's batch upload, once
    scanned = int(now)
    records = [
        {"record_id": "off-1", "token": token, "scanned_at": scanned},
        {"record_id": "off-2", "token": neighbour_code, "scanned_at": scanned},
        {"record_id": "off-3", "token": visitor_code, "scanned_at": scanned},
    ]
    door = city.doors["WK-B1-U1"]["headers"]
    for _ in range(2):
        up = await client.post("/api/v1/scans/batch", json={"records": records}, headers=door)
        assert up.status_code == 200, up.text
        assert [(x["result"], x["reason"]) for x in up.json()["results"]] == [
            ("allow", "ok"),
            ("deny", "wrong_door"),
            ("deny", "visitor_offline"),  # the door refused them: no entry of the pass is spent
        ]
    own = (await client.get(f"{APP}/entries", headers=resident["headers"])).json()["items"]
    assert [(e["door"]["code"], e["allowed"], e["offline"]) for e in own] == [("WK-B1-U1", True, True)]
    log = (await client.get(f"{APP}/places/WANKE-CITY/entries", headers=city.manager)).json()["items"]
    assert len(log) == 3 and all(e["offline"] for e in log)
    held = (await client.get(f"{APP}/passes?role=held", headers=visitor["headers"])).json()["items"]
    assert [(p["used"], p["left"]) for p in held] == [(0, 5)]

    # removed: the next code carries no claim, and after the next sync the door refuses even an old one
    await client.delete(f"{APP}/places/WANKE-CITY/residents/{row['id']}", headers=city.manager)
    city.clock.advance(1)
    old = await city.code(resident)  # issued before the door synced again: no claim any more
    assert decide(old, trust, listed, now=city.clock.time()).reason == "not_resident"
    resynced = await sync(city, "WK-B1-U1", etag)
    assert resynced.status_code == 200 and resynced.headers["ETag"] != etag
    fresh = open_list(resynced.json(), root, door="WK-B1-U1")
    assert decide(second, trust, fresh, now=city.clock.time()).reason == "not_resident"
    assert decide(await city.code(neighbour), trust, fresh, now=city.clock.time()).reason == "wrong_door"


async def test_a_rotated_key_is_published_before_it_masks_codes_and_the_old_one_stays(city: City):
    """A door that synced right after a rotation reads codes masked with the new key once it takes over,
    an hour later, though it has not synced since; codes of the old key still open it meanwhile."""
    client = city.client
    root = public_key_from_jwk((await client.get("/api/v1/codes/trust-root")).json()["keys"][0])
    trust = TrustList.from_document(
        verify_document((await client.get("/api/v1/codes/trust-list")).json(), root)
    )
    resident = await city.citizen()
    await city.add_resident("WANKE-CITY", resident)
    await sync(city, "WK-GATE-N")  # the place's key exists once a door has synced
    city.clock.advance(31)
    before = await city.code(resident)
    r = await client.post(f"{APP}/places/WANKE-CITY/key", headers=city.manager)
    assert (r.status_code, r.json()["key_id"]) == (200, 2)
    again = await client.post(f"{APP}/places/WANKE-CITY/key", headers=city.manager)
    assert (again.status_code, again.json()["code"]) == (409, "key_rotation_pending")
    listed = open_list(
        (await sync(city, "WK-GATE-N")).json(), root, door="WK-GATE-N"
    )  # holds the current and the next
    assert len(listed.keys) == 2
    assert decide(before, trust, listed, now=city.clock.time()).allow
    city.clock.advance(3600 + 61)  # the next key masks codes from now on; the door has not synced
    after = await city.code(resident)
    assert decide(after, trust, listed, now=city.clock.time()).allow
    promoted = open_list(
        (await sync(city, "WK-GATE-N")).json(), root, door="WK-GATE-N"
    )  # current 2, previous 1
    assert len(promoted.keys) == 2 and promoted.keys[0] == listed.keys[1]
    assert decide(after, trust, promoted, now=city.clock.time()).allow
    other = await client.get(f"{APP}/door-list", headers=city.manager)
    assert other.status_code in (401, 403)
