"""好就医's messages as the citizen sees them: a subscriber is reminded of an appointment at 18:00 China
time the day before (at once when booked later), not of one cancelled; the bill reaches every patient
once, with what insurance paid and what is left to pay by when."""

from datetime import UTC, datetime

import pytest

from tests.integration.hospital.test_hospital import checkin
from tests.integration.messages.citizen import approve, inbox, subscribe

pytestmark = pytest.mark.storage
REMINDER = "hospital.appointment_reminder"


async def slot_at(client, when):
    """Dr 赵's (Cardiology) slot starting at ``when``."""
    items = (
        await client.get("/api/v1/apps/hospital/slots", params={"doctor": "DR-ZHAO", "limit": 100})
    ).json()["items"]
    return next(s["slot_id"] for s in items if datetime.fromisoformat(s["starts_at"]) == when)


async def book(client, me, slot_id):
    r = await client.post("/api/v1/apps/hospital/appointments", json={"slot_id": slot_id}, headers=me)
    assert r.status_code == 201, r.text
    return r.json()


async def test_a_subscriber_is_reminded_the_evening_before_and_not_of_a_cancelled_appointment(hospital):
    client, clock, _, _, patient = hospital  # 2026-11-25 08:30 China time
    await approve(client, REMINDER)
    me, other = await patient(insured=False), await patient(insured=False)
    await subscribe(client, me, REMINDER, "standing")
    tomorrow_nine = datetime(2026, 11, 26, 1, 0, tzinfo=UTC)  # 09:00 China time

    made = await book(client, me, await slot_at(client, tomorrow_nine))
    assert made["reminder"]["outcome"] == "scheduled"
    assert datetime.fromisoformat(made["reminder"]["at"]) == datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    dropped = await book(client, me, await slot_at(client, datetime(2026, 11, 26, 2, 0, tzinfo=UTC)))
    r = await client.delete(f"/api/v1/apps/hospital/appointments/{dropped['appointment_id']}", headers=me)
    assert r.status_code == 204
    unasked = await book(client, other, await slot_at(client, datetime(2026, 11, 26, 3, 0, tzinfo=UTC)))
    assert unasked["reminder"]["reason"] == "not_subscribed"

    clock.set(datetime(2026, 11, 25, 9, 59, tzinfo=UTC))  # 17:59
    assert await inbox(client, me) == []
    clock.set(datetime(2026, 11, 25, 10, 0, tzinfo=UTC))  # 18:00
    [message] = await inbox(client, me)  # one: the cancelled appointment's was withdrawn
    assert message["title"] == "就诊提醒"
    assert message["body"] == (
        "您预约了中国医科大学附属盛京医院心血管内科赵医生的号，就诊时间 11月26日 09:00，"
        "请按时到院刷市民码签到。"
    )
    [english] = await inbox(client, me, "en")
    assert english["body"] == (
        "Your appointment with 赵医生 (Cardiology, Shengjing Hospital of China Medical University) is at"
        " 26 Nov 09:00: check in with your citizen code when you arrive."
    )
    assert await inbox(client, other) == []

    # booked after 18:00 the day before: reminded at once
    clock.set(datetime(2026, 11, 25, 11, 0, tzinfo=UTC))  # 19:00
    late = await book(client, me, await slot_at(client, datetime(2026, 11, 26, 5, 30, tzinfo=UTC)))
    assert late["reminder"]["outcome"] == "sent"
    newest, _ = await inbox(client, me)
    assert "就诊时间 11月26日 13:30" in newest["body"]


async def test_the_bill_reaches_the_patient_once_with_what_is_left_to_pay(hospital):
    client, clock, gate, backend, patient = hospital
    await approve(client, "hospital.bill_ready")
    me = await patient()  # insured: the bill is split by the insurance rule
    visit_id = (await checkin(client, clock, gate, me))["data"]["visit_id"]
    items = [
        {"name": "挂号费", "amount": 500},
        {"name": "药品", "amount": 12345},
        {"name": "自费检查", "amount": 20001, "covered": False},
    ]
    url = f"/api/v1/apps/hospital/visits/{visit_id}/bill"
    bill = await client.post(url, json={"items": items}, headers=backend)
    assert bill.status_code == 201, bill.text
    assert (await client.post(url, json={"items": items}, headers=backend)).status_code == 409

    [message] = await inbox(client, me)  # no subscription needed: it is about the citizen's money
    assert message["sender"] == "hospital" and message["title"] == "就诊账单待支付"
    assert message["body"] == (
        "中国医科大学附属盛京医院本次就诊共 328.46 元，医保支付 89.91 元，个人自付 238.55 元，"
        "请于 12月2日 08:30 前支付。"
    )
    assert message["link"] == "/wallet#orders" and message["read"] is False
    [english] = await inbox(client, me, "en")
    assert english["body"] == (
        "Your visit to Shengjing Hospital of China Medical University: ¥328.46 in all, ¥89.91 paid by"
        " medical insurance, ¥238.55 for you to pay by 02 Dec 08:30."
    )
