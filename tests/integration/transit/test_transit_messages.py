"""乘车 tells the rider: each deferred fare lands in the inbox (and on the open wallet) with the fare the
gate showed, reaching the unpaid limit sends an urgent notice once; with the templates not approved yet,
rides and fares go on and nothing is sent."""

import pytest

from tests.integration.transit.test_transit import ride

pytestmark = pytest.mark.storage


async def _rider(make_client, frozen_clock, login, new_phone, enrol_scanner, monkeypatch, approve: bool):
    monkeypatch.setenv("SHENGSHI_MINIAPP_TRANSIT", '{"unpaid_limit": 400}')
    client_cm = make_client(clock=frozen_clock, access_token_ttl=86400)
    client = await client_cm.__aenter__()
    await client.services.miniapps.apps["transit"].seed_demo()
    if approve:
        for name in ("fare_deferred", "unpaid_limit"):
            await client.services.messages.templates.decide(
                f"transit.{name}", "approve", operator="t", note=""
            )
    pair = await login(client, new_phone())
    me = {"Authorization": f"Bearer {pair['access_token']}"}
    bus = await enrol_scanner(client, "transit", context="bus", place="B237")
    return client_cm, client, me, bus


async def test_each_deferred_fare_and_the_unpaid_limit_reach_the_inbox(
    make_client, frozen_clock, login, new_phone, enrol_scanner, monkeypatch
):
    cm, client, me, bus = await _rider(
        make_client, frozen_clock, login, new_phone, enrol_scanner, monkeypatch, True
    )
    try:
        first = await ride(client, me, bus, frozen_clock)
        assert first["result"] == "allow" and first["data"]["charged"] == 200
        inbox = (await client.get("/api/v1/me/messages", headers=me)).json()
        assert inbox["unread"] == 1
        [fare] = inbox["items"]
        assert (
            fare["title"] == "乘车费用待支付"
            and "2.00 元" in fare["body"]
            and fare["category"] == "transactional"
        )
        second = await ride(client, me, bus, frozen_clock)  # ¥4 owed: the limit
        assert second["result"] == "allow"
        titles = [i["title"] for i in (await client.get("/api/v1/me/messages", headers=me)).json()["items"]]
        assert titles.count("乘车费用待支付") == 2 and titles.count("乘车权益已暂停") == 1
        limit = next(
            i
            for i in (await client.get("/api/v1/me/messages", headers=me)).json()["items"]
            if i["title"] == "乘车权益已暂停"
        )
        assert limit["urgent"] is True and "4.00 元" in limit["body"]
        en = (await client.get("/api/v1/me/messages", headers={**me, "Accept-Language": "en"})).json()
        assert "Riding paused" in [i["title"] for i in en["items"]]
        # English only: the trip's Chinese line name stays out of the English text
        fare_en = next(i for i in en["items"] if i["title"] == "Fare to pay")
        assert fare_en["body"] == "A fare of ¥2.00 was added to what you owe; pay in Shengshitong."
    finally:
        await cm.__aexit__(None, None, None)


async def test_rides_go_on_while_the_templates_wait_for_approval(
    make_client, frozen_clock, login, new_phone, enrol_scanner, monkeypatch
):
    cm, client, me, bus = await _rider(
        make_client, frozen_clock, login, new_phone, enrol_scanner, monkeypatch, False
    )
    try:
        assert (await ride(client, me, bus, frozen_clock))["result"] == "allow"
        fares = (await client.get("/api/v1/apps/transit/fares", headers=me)).json()
        assert fares["unpaid"] == 200
        assert (await client.get("/api/v1/me/messages/unread-count", headers=me)).json() == {"unread": 0}
    finally:
        await cm.__aexit__(None, None, None)
