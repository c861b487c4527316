"""好就医 through HTTP as citizen, scanner and hospital backend."""

import asyncio

import pytest

from miniapps.hospital.app import split_bill


async def checkin(client, clock, gate, me):
    clock.advance(31)
    token = (await client.get("/api/v1/codes/current", headers=me)).json()["token"]
    return (await client.post("/api/v1/scans", json={"token": token}, headers=gate["headers"])).json()


async def first_slot(client):
    return (await client.get("/api/v1/apps/hospital/slots", params={"hospital": "H-SHENGJING"})).json()[
        "items"
    ][0]


async def test_the_last_slot_is_booked_once(hospital):
    client, _, _, _, patient = hospital
    slot = await first_slot(client)
    people = [await patient(insured=False) for _ in range(5)]
    results = await asyncio.gather(
        *(
            client.post("/api/v1/apps/hospital/appointments", json={"slot_id": slot["slot_id"]}, headers=p)
            for p in people
        )
    )
    codes = sorted(r.status_code for r in results)
    assert codes == [201, 409, 409, 409, 409]
    assert slot["slot_id"] not in [
        s["slot_id"] for s in (await client.get("/api/v1/apps/hospital/slots")).json()["items"]
    ]
    winner = people[[r.status_code for r in results].index(201)]
    mine = (await client.get("/api/v1/apps/hospital/appointments", headers=winner)).json()["items"]
    assert len(mine) == 1 and mine[0]["state"] == "booked"
    assert (
        await client.delete(f"/api/v1/apps/hospital/appointments/{mine[0]['appointment_id']}", headers=winner)
    ).status_code == 204
    assert slot["slot_id"] in [
        s["slot_id"] for s in (await client.get("/api/v1/apps/hospital/slots")).json()["items"]
    ]


async def test_check_in_bill_by_insurance_rule_pay_later_and_rate(hospital):
    client, clock, gate, backend, patient = hospital
    me = await patient()
    slot = await first_slot(client)
    assert (
        await client.post("/api/v1/apps/hospital/appointments", json={"slot_id": slot["slot_id"]}, headers=me)
    ).status_code == 201
    checked = await checkin(client, clock, gate, me)
    assert checked["result"] == "allow" and checked["data"]["walk_in"] is False
    assert checked["display"]["title"] == "签到成功"
    visit_id = checked["data"]["visit_id"]
    items = [
        {"name": "挂号费", "amount": 500},
        {"name": "药品", "amount": 12345},
        {"name": "自费检查", "amount": 20001, "covered": False},
    ]
    bill = await client.post(
        f"/api/v1/apps/hospital/visits/{visit_id}/bill", json={"items": items}, headers=backend
    )
    assert bill.status_code == 201, bill.text
    # covered items at 70 % for a patient insured in Liaoning at a Shenyang hospital, whole fen to the insurer
    assert bill.json() | {"order_id": None} == {
        "visit_id": visit_id,
        "total": 32846,
        "insured": 350 + 8641,
        "self_paid": 32846 - 8991,
        "order_id": None,
        "insurance": None,  # no insurance card linked: the bill names none, the split is the same
    }
    assert (
        await client.post(
            f"/api/v1/apps/hospital/visits/{visit_id}/bill", json={"items": items}, headers=backend
        )
    ).status_code == 409
    assert (
        await client.post(f"/api/v1/apps/hospital/visits/{visit_id}/bill", json={"items": items}, headers=me)
    ).status_code == 401
    order_id = bill.json()["order_id"]
    order = (await client.get(f"/api/v1/payments/orders/{order_id}", headers=me)).json()
    assert order["amount"] == 23855 and order["deferred"] is True
    visits = (await client.get("/api/v1/apps/hospital/visits", headers=me)).json()["items"]
    assert visits[0]["self_paid"] == 23855 and visits[0]["insured"] == 8991
    assert visits[0]["insurance"] is None
    # the bill's items are a JSON list inside the JSON, as posted (not a JSON string)
    assert visits[0]["items"] == [{"covered": True, **i} for i in items]

    # a week and a day later, unpaid: no more "see the doctor first" until it is paid
    clock.advance(8 * 86400)
    refused = await checkin(client, clock, gate, me)
    assert refused["result"] == "deny" and refused["reason"] == "unpaid_bills"
    assert (await client.post(f"/api/v1/payments/sandbox/orders/{order_id}/pay", headers=me)).json()[
        "state"
    ] == "paid"
    walk_in = await checkin(client, clock, gate, me)
    assert walk_in["result"] == "allow" and walk_in["data"]["walk_in"] is True  # no appointment today

    # the billed visit is rateable once in the evaluation centre (好差评), the hospital answering for it
    pending = (await client.get("/api/v1/me/ratings/pending", headers=me)).json()["items"]
    [event] = [e for e in pending if e["service"] == "hospital.visit"]
    assert event["unit"] == "hospital/h-shengjing" and event["unit_name"] == "中国医科大学附属盛京医院"
    rated = await client.post(
        "/api/v1/me/ratings",
        json={"event_id": event["id"], "level": "very_satisfied", "comment": "耐心"},
        headers=me,
    )
    assert rated.status_code == 201 and rated.json()["case"] is None
    again = await client.post(
        "/api/v1/me/ratings", json={"event_id": event["id"], "level": "dissatisfied"}, headers=me
    )
    assert again.status_code == 409 and again.json()["code"] == "already_rated"


async def test_check_in_needs_medical_insurance(hospital):
    client, clock, gate, _, patient = hospital
    uninsured = await patient(insured=False)
    r = await checkin(client, clock, gate, uninsured)
    assert r["result"] == "deny" and r["reason"] == "not_entitled"


def test_the_split_in_exact_fen():
    items = [
        {"amount": 999, "covered": True},
        {"amount": 1, "covered": True},
        {"amount": 333, "covered": False},
    ]
    assert split_bill(
        items, insured_region="440000", hospital_region="210100", local_bp=7000, other_bp=5000
    ) == (1333, 499, 834)
    assert split_bill(items, insured_region="", hospital_region="210100", local_bp=7000, other_bp=5000) == (
        1333,
        0,
        1333,
    )


async def test_slots_page_to_the_end(hospital, walk_pages):
    from miniapps.hospital.tables import Slot

    client, clock, _, _, _ = hospital
    free = await Slot.count().where(Slot.starts_at >= clock.now())
    assert free > 50  # more than the old fixed page of 50
    slots = await walk_pages(client, "/api/v1/apps/hospital/slots", limit=20)
    assert len(slots) == len({s["slot_id"] for s in slots}) == free
    assert [s["starts_at"] for s in slots] == sorted(s["starts_at"] for s in slots)
    # a filter travels in the next link
    one = slots[0]
    mine = await walk_pages(
        client, "/api/v1/apps/hospital/slots", limit=7, params={"doctor": one["doctor_code"]}
    )
    assert mine and {s["doctor_code"] for s in mine} == {one["doctor_code"]}
    assert len(mine) == sum(1 for s in slots if s["doctor_code"] == one["doctor_code"])


@pytest.mark.storage
async def test_a_bill_that_fails_half_way_leaves_the_visit_open_to_bill_again(hospital, monkeypatch):
    from backend.errors import ServiceUnavailable
    from miniapps._payments import MiniAppPayments

    client, clock, gate, backend, patient = hospital
    me = await patient()
    slot = await first_slot(client)
    await client.post("/api/v1/apps/hospital/appointments", json={"slot_id": slot["slot_id"]}, headers=me)
    visit_id = (await checkin(client, clock, gate, me))["data"]["visit_id"]
    items = [{"name": "自费检查", "amount": 20001, "covered": False}]
    real = MiniAppPayments.create_order

    async def down(*args, **kwargs):
        raise ServiceUnavailable("the database is not answering", code="database_unavailable")

    monkeypatch.setattr(MiniAppPayments, "create_order", down)
    url = f"/api/v1/apps/hospital/visits/{visit_id}/bill"
    assert (await client.post(url, json={"items": items}, headers=backend)).status_code == 503
    monkeypatch.setattr(MiniAppPayments, "create_order", real)
    again = await client.post(url, json={"items": items}, headers=backend)
    assert again.status_code == 201, again.text
    assert again.json()["self_paid"] == 20001 and again.json()["order_id"]
