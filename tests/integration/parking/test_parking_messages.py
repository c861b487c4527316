"""好停车's reminder before a reservation lapses, as the citizen sees it: only after subscribing, ten
minutes before the lapse, never after the car entered or the reservation was cancelled; and a template
not approved yet never stops a reservation or an entry."""

import logging
from datetime import timedelta

import pytest

from tests.integration.messages.citizen import approve, inbox, subscribe
from tests.integration.parking.test_parking import scan

pytestmark = pytest.mark.storage
TEMPLATE = "parking.reservation_lapsing"


@pytest.fixture
async def lot(make_client, frozen_clock, login, new_phone, enrol_scanner):
    # 2026-11-25 08:00 UTC, 16:00 China time
    async with make_client(clock=frozen_clock, access_token_ttl=7 * 86400) as client:
        await client.services.miniapps.apps["parking"].seed_demo()

        async def citizen():
            pair = await login(client, new_phone())
            return {"Authorization": f"Bearer {pair['access_token']}"}

        gate = await enrol_scanner(client, "parking", context="parking-entry", place="P-HOSPITAL")
        yield client, citizen, gate, frozen_clock


async def reserve(client, me, clock, *, park="P-HOSPITAL", minutes=20):
    """A reservation starting in ``minutes`` (the grace is 30 minutes: it lapses 30 minutes later)."""
    starts = clock.now() + timedelta(minutes=minutes)
    r = await client.post(
        "/api/v1/apps/parking/reservations",
        json={"car_park": park, "plate": "辽A12345", "starts_at": starts.isoformat()},
        headers=me,
    )
    assert r.status_code == 201, r.text
    return r.json()


async def test_a_subscriber_is_reminded_ten_minutes_before_the_reservation_lapses(lot):
    client, citizen, _, clock = lot
    await approve(client, TEMPLATE)
    subscribed, other = await citizen(), await citizen()
    await subscribe(client, subscribed, TEMPLATE)

    made = await reserve(client, subscribed, clock)  # lapses at 16:50 China time
    assert made["reminder"]["outcome"] == "scheduled"
    skipped = await reserve(client, other, clock)
    assert skipped["reminder"] == {
        "outcome": "skipped",
        "reason": "not_subscribed",
        "at": skipped["reminder"]["at"],
    }

    clock.advance(39 * 60)  # 16:39: not yet
    assert await inbox(client, subscribed) == []
    clock.advance(60)  # 16:40, ten minutes before the lapse
    [message] = await inbox(client, subscribed)
    assert message["sender"] == "parking" and message["title"] == "车位预约即将失效"
    assert message["body"] == "您在盛京医院南湖院区停车场预约的车位将于 11月25日 16:50 失效，请在此之前入场。"
    [english] = await inbox(client, subscribed, "en")
    assert english["body"] == (
        "The space you reserved at Shengjing Hospital Nanhu Campus Car Park lapses at 25 Nov 16:50:"
        " please arrive before then."
    )
    assert await inbox(client, other) == []  # who did not subscribe hears nothing
    # the one-time acceptance is spent: the next reservation is not reminded of
    again = await reserve(client, subscribed, clock, park="P-TAIYUAN")
    assert again["reminder"]["reason"] == "not_subscribed"


async def test_the_reminder_is_withdrawn_when_the_car_enters_or_the_reservation_is_cancelled(lot):
    client, citizen, gate, clock = lot
    await approve(client, TEMPLATE)
    driver, canceller, late = await citizen(), await citizen(), await citizen()
    for me in (driver, canceller, late):
        await subscribe(client, me, TEMPLATE, "standing")

    await reserve(client, driver, clock)
    cancelled = await reserve(client, canceller, clock, park="P-TAIYUAN")
    await reserve(client, late, clock, park="P-TAIYUAN")
    entered = await scan(client, driver, gate, clock)
    assert entered["result"] == "allow" and entered["data"]["reserved"] is True
    r = await client.delete(
        f"/api/v1/apps/parking/reservations/{cancelled['reservation_id']}", headers=canceller
    )
    assert r.status_code == 204

    clock.advance(45 * 60)
    assert await inbox(client, driver) == [] and await inbox(client, canceller) == []
    assert [m["title"] for m in await inbox(client, late)] == ["车位预约即将失效"]


async def test_a_template_not_approved_yet_stops_neither_a_reservation_nor_an_entry(lot, caplog):
    client, citizen, gate, clock = lot
    me, second = await citizen(), await citizen()
    await subscribe(client, me, TEMPLATE, "standing")
    with caplog.at_level(logging.WARNING, logger="shengshitong.miniapps.parking"):
        made = await reserve(client, me, clock)
        assert made["reminder"] == {
            "outcome": "skipped",
            "reason": "template_not_approved",
            "at": made["reminder"]["at"],
        }
        assert (await reserve(client, second, clock))["reminder"]["reason"] == "template_not_approved"
    warnings = [r.getMessage() for r in caplog.records if r.name == "shengshitong.miniapps.parking"]
    assert warnings and all("parking.reservation_lapsing" in w for w in warnings)  # the operator's cue
    entered = await scan(client, me, gate, clock)
    assert entered["result"] == "allow" and entered["data"]["reserved"] is True
    mine = (await client.get("/api/v1/apps/parking/reservations", headers=me)).json()["items"]
    assert [r["state"] for r in mine] == ["used"]
    clock.advance(3600)
    assert await inbox(client, me) == []
