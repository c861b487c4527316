"""What tourism and transit contribute to the citizen code (issue 16), through the public API: the
contribution a mini-app answers when a code is issued, and when it tells the platform it may have
changed. (The end-to-end "contribution → code → scan" tests are the issuer's.)"""

from datetime import UTC, datetime, timedelta

import pytest

from backend.clock import FrozenClock


def spy_on(app) -> list[tuple[str, ...]]:
    """Record the mini-app's calls of ``platform.entitlement_changed``."""
    calls: list[tuple[str, ...]] = []

    async def changed(*openids: str) -> None:
        calls.append(openids)

    app.platform.entitlement_changed = changed
    return calls


async def deliver(client) -> None:
    """Hand the payment centre's queued events to the mini-apps now (the server's worker does it behind)."""
    dispatcher = client.services.payments.webhooks
    await dispatcher.tick()
    await dispatcher.drain()


async def openid_of(client, app_id, me) -> str:
    citizen = str((await client.get("/api/v1/me", headers=me)).json()["id"])
    return await client.services.auth.pairwise.issue(app_id, citizen)


# ---- tourism: tickets --------------------------------------------------------------------------------
@pytest.fixture
async def park(make_client, login, new_phone):
    clock = FrozenClock(datetime(2026, 11, 25, 1, 0, tzinfo=UTC))  # 09:00 in Shenyang
    async with make_client(clock=clock, access_token_ttl=30 * 86400) as client:
        app = client.services.miniapps.apps["tourism"]
        await app.seed_demo()
        me = {"Authorization": f"Bearer {(await login(client, new_phone()))['access_token']}"}
        yield client, clock, app, me, await openid_of(client, "tourism", me), spy_on(app)


async def buy(client, me, day, holders=("吴十",)):
    sessions = await client.get(
        "/api/v1/apps/tourism/sessions", params={"attraction": "A-MUKDEN", "day": day}
    )
    session = sessions.json()["items"][0]
    r = await client.post(
        "/api/v1/apps/tourism/tickets",
        json={"session_id": session["session_id"], "holders": list(holders)},
        headers=me,
    )
    assert r.status_code == 201, r.text
    return r.json()


async def pay(client, me, purchase):
    r = await client.post(f"/api/v1/payments/sandbox/orders/{purchase['order_id']}/pay", headers=me)
    assert r.json()["state"] == "paid", r.text
    await deliver(client)


MIDNIGHT = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)  # 00:00 on the 26th in Shenyang


async def test_a_paid_ticket_for_today_grants_tickets_until_midnight(park):
    client, clock, app, me, openid, told = park
    none = await app.entitlement(openid, "tickets", clock.now())
    assert (none.granted, none.reason, none.until) == (False, "no_ticket_today", MIDNIGHT)
    purchase = await buy(client, me, "2026-11-25")
    assert not (await app.entitlement(openid, "tickets", clock.now())).granted  # bought, not paid
    await pay(client, me, purchase)
    held = await app.entitlement(openid, "tickets", clock.now())
    assert held.granted and held.until == MIDNIGHT and held.reason == ""
    assert (openid,) in told  # the platform was told when it was paid
    # the next day the ticket is no longer valid: the answer was not to be kept past midnight
    assert not (await app.entitlement(openid, "tickets", MIDNIGHT)).granted


async def test_a_ticket_for_tomorrow_grants_nothing_today_and_its_payment_tells_nobody(park):
    client, clock, app, me, openid, told = park
    await pay(client, me, await buy(client, me, "2026-11-26"))
    assert not (await app.entitlement(openid, "tickets", clock.now())).granted
    assert told == []
    tomorrow = await app.entitlement(openid, "tickets", MIDNIGHT + timedelta(hours=1))
    assert tomorrow.granted and tomorrow.until == MIDNIGHT + timedelta(days=1)


async def test_a_refunded_ticket_grants_nothing(park):
    from miniapps.tourism.tables import Attraction

    client, clock, app, me, openid, told = park
    await (
        Attraction.update({Attraction.refund_days: 0}).where(Attraction.code == "A-MUKDEN").run()
    )  # on the day
    purchase = await buy(client, me, "2026-11-25")
    await pay(client, me, purchase)
    assert (await app.entitlement(openid, "tickets", clock.now())).granted
    told.clear()
    ticket = purchase["tickets"][0]["ticket_id"]
    r = await client.post(f"/api/v1/apps/tourism/tickets/{ticket}/refund", headers=me)
    assert r.status_code == 201 and r.json()["state"] == "refunded", r.text
    refunded = await app.entitlement(openid, "tickets", clock.now())
    assert not refunded.granted and refunded.reason == "no_ticket_today"
    assert told == [(openid,)]


async def test_using_the_last_ticket_of_today_tells_the_platform(park, enrol_scanner):
    client, clock, app, me, openid, told = park
    gate = await enrol_scanner(client, "tourism", context="tourism-gate", place="A-MUKDEN")
    await pay(client, me, await buy(client, me, "2026-11-25", holders=("吴十", "吴小十")))
    told.clear()

    async def enter():
        clock.advance(31)
        token = (await client.get("/api/v1/codes/current", headers=me)).json()["token"]
        return (await client.post("/api/v1/scans", json={"token": token}, headers=gate["headers"])).json()

    assert (await enter())["result"] == "allow"
    assert told == [] and (await app.entitlement(openid, "tickets", clock.now())).granted  # one left
    assert (await enter())["result"] == "allow"
    assert told == [(openid,)] and not (await app.entitlement(openid, "tickets", clock.now())).granted


# ---- transit: good standing --------------------------------------------------------------------------
async def test_unpaid_fares_over_the_limit_refuse_transit_and_paying_restores_it(
    make_client, frozen_clock, login, new_phone, enrol_scanner, monkeypatch
):
    monkeypatch.setenv("SHENGSHI_MINIAPP_TRANSIT", '{"unpaid_limit": 400}')
    async with make_client(clock=frozen_clock, access_token_ttl=86400) as client:
        app = client.services.miniapps.apps["transit"]
        await app.seed_demo()
        me = {"Authorization": f"Bearer {(await login(client, new_phone()))['access_token']}"}
        openid, told = await openid_of(client, "transit", me), spy_on(app)
        bus = await enrol_scanner(client, "transit", context="bus", place="B237")  # ¥2 a ride

        async def ride():
            frozen_clock.advance(60)
            token = (await client.get("/api/v1/codes/current", headers=me)).json()["token"]
            return (await client.post("/api/v1/scans", json={"token": token}, headers=bus["headers"])).json()

        assert (await app.entitlement(openid, "transit", frozen_clock.now())).granted
        assert (await ride())["result"] == "allow"
        assert told == [] and (await app.entitlement(openid, "transit", frozen_clock.now())).granted
        assert (await ride())["result"] == "allow"  # ¥4 owed: at the limit
        assert told == [(openid,)]  # this ride flipped the standing: the platform was told, once
        refused = await app.entitlement(openid, "transit", frozen_clock.now())
        assert (refused.granted, refused.reason, refused.detail) == (
            False,
            "unpaid_fares",
            {"unpaid": 400, "limit": 400},
        )
        # the next code lacks transit: the bus refuses it before transit is asked, saying what it lacks
        third = await ride()
        assert (third["result"], third["reason"]) == ("deny", "not_entitled")
        assert third["data"] == {"required": "transit", "status": "refused"}
        assert told == [(openid,)]  # a refused ride changes nothing
        paid = await client.post("/api/v1/apps/transit/fares/pay", headers=me)
        assert paid.status_code == 200 and paid.json()["unpaid"] == 0
        await deliver(client)
        assert (await app.entitlement(openid, "transit", frozen_clock.now())).granted
        assert told[-1] == (openid,) and len(told) >= 2  # paying brought the rider back: told again
