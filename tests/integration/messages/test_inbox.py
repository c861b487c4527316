"""The message centre through its public API: a mini-app backend sends with an approved template, the
citizen's inbox lists it, consent decides reminders, the same key sends once, scheduled messages wait
and can be withdrawn, urgent ones fall back to SMS when left unread."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import basic_auth
from tests.integration.messages.pushservice import UserAgent

pytestmark = pytest.mark.storage


async def _operator(client: Any) -> dict[str, str]:
    cred = await client.services.auth.machines.create("operator", name="messages desk")
    return basic_auth(cred)


async def _app(client: Any, app_id: str = "testgate") -> dict[str, str]:
    cred = await client.services.auth.machines.create("miniapp", app_id=app_id, name=f"{app_id} backend")
    return basic_auth(cred)


async def _approve(client: Any, op: dict[str, str], *names: str) -> None:
    for name in names:
        r = await client.post(
            f"/api/v1/admin/message-templates/testgate.{name}/decision",
            json={"decision": "approve", "note": "checked"},
            headers=op,
        )
        assert r.status_code == 200, r.text
        assert r.json()["usable"] is True


async def _citizen(client: Any, login: Any, new_phone: Any) -> tuple[dict[str, str], str]:
    """A citizen who used testgate (so it knows them by an openid): headers and that openid."""
    pair = await login(client, new_phone())
    me = {"Authorization": f"Bearer {pair['access_token']}"}
    profile = (await client.get("/api/v1/me", headers=me)).json()
    openid = await client.services.auth.pairwise.issue("testgate", profile["id"])
    return me, openid


async def test_a_template_is_used_only_once_approved_and_a_key_sends_once(client, login, new_phone):
    op, app = await _operator(client), await _app(client)
    me, openid = await _citizen(client, login, new_phone)
    send = {
        "openid": openid,
        "template": "receipt",
        "data": {"item": "测试", "amount": 250},
        "idempotency_key": "r-1",
    }

    r = await client.post("/api/v1/messages", json=send, headers=app)
    assert r.status_code == 409 and r.json()["code"] == "template_not_approved", r.text
    listed = (await client.get("/api/v1/admin/message-templates?status=pending", headers=op)).json()
    assert "testgate.receipt" in {t["template_id"] for t in listed}

    await _approve(client, op, "receipt")
    first = await client.post("/api/v1/messages", json=send, headers=app)
    assert first.status_code == 202 and first.json()["outcome"] == "sent", first.text
    again = await client.post("/api/v1/messages", json=send, headers=app)
    assert again.json() == {"outcome": "duplicate", "message_id": first.json()["message_id"], "reason": ""}

    inbox = (await client.get("/api/v1/me/messages", headers=me)).json()
    assert inbox["unread"] == 1 and len(inbox["items"]) == 1
    item = inbox["items"][0]
    assert item["title"] == "已收款" and item["body"] == "测试 已收款 2.50 元。" and item["read"] is False
    en = (await client.get("/api/v1/me/messages", headers={**me, "Accept-Language": "en"})).json()
    assert en["items"][0]["body"] == "¥2.50 received for 测试."

    r = await client.post(f"/api/v1/me/messages/{item['id']}/read", headers=me)
    assert r.json() == {"unread": 0}
    assert (await client.get("/api/v1/me/messages/unread-count", headers=me)).json() == {"unread": 0}
    assert (await client.delete(f"/api/v1/me/messages/{item['id']}", headers=me)).status_code == 204
    assert (await client.get("/api/v1/me/messages", headers=me)).json()["items"] == []
    # another citizen cannot see, read or delete it
    other, _ = await _citizen(client, login, new_phone)
    assert (await client.get(f"/api/v1/me/messages/{item['id']}", headers=other)).status_code == 404


async def test_data_that_does_not_fit_the_template_is_refused_and_nothing_is_sent(client, login, new_phone):
    op, app = await _operator(client), await _app(client)
    me, openid = await _citizen(client, login, new_phone)
    await _approve(client, op, "receipt")
    for data in (
        {"item": "x"},
        {"item": "x", "amount": "2.50"},
        {"item": "x\u202e", "amount": 1},
        {"item": "x", "amount": 1, "extra": 1},
        {"item": "x" * 65, "amount": 1},
    ):
        r = await client.post(
            "/api/v1/messages",
            json={"openid": openid, "template": "receipt", "data": data, "idempotency_key": "bad"},
            headers=app,
        )
        assert r.status_code == 422 and r.json()["code"] == "invalid_message_data", (data, r.text)
    r = await client.post(
        "/api/v1/messages",
        json={"openid": openid, "template": "nope", "data": {}, "idempotency_key": "k"},
        headers=app,
    )
    assert r.status_code == 404 and r.json()["code"] == "template_not_found"
    assert (await client.get("/api/v1/me/messages/unread-count", headers=me)).json() == {"unread": 0}


async def test_a_reminder_needs_the_citizens_subscription_and_a_one_time_one_is_used_once(
    client, login, new_phone
):
    op, app = await _operator(client), await _app(client)
    me, openid = await _citizen(client, login, new_phone)
    await _approve(client, op, "visit")
    at = "2026-12-01T09:30:00+08:00"

    async def send(key: str) -> dict[str, Any]:
        r = await client.post(
            "/api/v1/messages",
            json={"openid": openid, "template": "visit", "data": {"at": at}, "idempotency_key": key},
            headers=app,
        )
        assert r.status_code == 202, r.text
        return dict(r.json())

    assert await send("v1") == {"outcome": "skipped", "message_id": None, "reason": "not_subscribed"}
    subs = (await client.get("/api/v1/me/message-subscriptions", headers=me)).json()
    assert {"template_id": "testgate.visit", "standing": False, "once_left": 0} in [
        {k: s[k] for k in ("template_id", "standing", "once_left")} for s in subs
    ]
    r = await client.put("/api/v1/me/message-subscriptions/testgate.visit", json={"mode": "once"}, headers=me)
    assert r.json()["once_left"] == 1
    assert (await send("v2"))["outcome"] == "sent"
    assert (await send("v3"))["reason"] == "not_subscribed"  # the one-time acceptance is spent
    await client.put("/api/v1/me/message-subscriptions/testgate.visit", json={"mode": "standing"}, headers=me)
    assert (await send("v4"))["outcome"] == "sent" and (await send("v5"))["outcome"] == "sent"
    r = await client.delete("/api/v1/me/message-subscriptions/testgate.visit", headers=me)
    assert r.json()["standing"] is False
    assert (await send("v6"))["reason"] == "not_subscribed"
    bodies = [i["body"] for i in (await client.get("/api/v1/me/messages", headers=me)).json()["items"]]
    assert bodies == ["您预约了 12月1日 09:30 的就诊。"] * 3
    # transactional templates are not subscribed to
    r = await client.put(
        "/api/v1/me/message-subscriptions/testgate.receipt", json={"mode": "once"}, headers=me
    )
    assert r.status_code == 422 and r.json()["code"] == "not_subscribable"


async def test_a_scheduled_message_shows_at_its_time_and_can_be_withdrawn(
    make_client, frozen_clock, login, new_phone
):
    async with make_client(clock=frozen_clock, access_token_ttl=86400) as client:
        op, app = await _operator(client), await _app(client)
        me, openid = await _citizen(client, login, new_phone)
        await _approve(client, op, "receipt")
        later = (frozen_clock.now() + timedelta(hours=2)).isoformat()
        for key in ("s1", "s2"):
            r = await client.post(
                "/api/v1/messages",
                json={
                    "openid": openid,
                    "template": "receipt",
                    "data": {"item": key, "amount": 1},
                    "idempotency_key": key,
                    "at": later,
                },
                headers=app,
            )
            assert r.json()["outcome"] == "scheduled", r.text
        assert (await client.get("/api/v1/me/messages", headers=me)).json()["items"] == []
        r = await client.delete("/api/v1/messages/s2", headers=app)
        assert r.json() == {"cancelled": True}
        frozen_clock.advance(2 * 3600 + 1)
        assert (await client.delete("/api/v1/messages/s1", headers=app)).json() == {"cancelled": False}
        items = (await client.get("/api/v1/me/messages", headers=me)).json()["items"]
        assert [i["body"] for i in items] == ["s1 已收款 0.01 元。"]
        # its live event goes out once, from the delivery round
        assert await client.services.messages.deliveries.announce_due() == 1
        assert await client.services.messages.deliveries.announce_due() == 0


async def test_an_urgent_message_left_unread_is_sent_by_sms_masked_and_a_read_one_is_not(
    make_client, frozen_clock, login, new_phone
):
    async with make_client(clock=frozen_clock, message_sms_after=600, access_token_ttl=86400) as client:
        op, app = await _operator(client), await _app(client)
        phones = [new_phone(), new_phone()]
        people = []
        for phone in phones:
            pair = await login(client, phone)
            me = {"Authorization": f"Bearer {pair['access_token']}"}
            cid = (await client.get("/api/v1/me", headers=me)).json()["id"]
            people.append((me, await client.services.auth.pairwise.issue("testgate", cid)))
        await _approve(client, op, "alarm")
        for n, (_, openid) in enumerate(people):
            r = await client.post(
                "/api/v1/messages",
                json={
                    "openid": openid,
                    "template": "alarm",
                    "data": {"plate": "辽A12345", "amount": 1200},
                    "idempotency_key": f"a{n}",
                },
                headers=app,
            )
            assert r.json()["outcome"] == "sent"
        # the second reads it in the app in time
        second = people[1][0]
        mid = (await client.get("/api/v1/me/messages", headers=second)).json()["items"][0]["id"]
        await client.post(f"/api/v1/me/messages/{mid}/read", headers=second)
        deliveries = client.services.messages.deliveries
        assert await deliveries.tick() == 0  # not due yet
        frozen_clock.advance(601)
        assert await deliveries.tick() == 2
        await deliveries.jobs.drain()
        sms = (await client.get("/api/v1/dev/sms", params={"phone": phones[0]})).json()["text"]
        assert "辽A***5" in sms and "12.00 元" in sms and "辽A12345" not in sms
        unread_sms = (await client.get("/api/v1/dev/sms", params={"phone": phones[1]})).json()["text"]
        assert "辽A" not in unread_sms  # only its login code went to the second phone
        log = (await client.get(f"/api/v1/me/messages/{mid}/deliveries", headers=second)).json()
        assert {"channel": "sms", "state": "skipped"} in [
            {k: e[k] for k in ("channel", "state")} for e in log
        ]


async def test_concurrent_sends_of_one_key_write_one_message_and_a_one_time_consent_covers_one(
    client, login, new_phone
):
    """On PostgreSQL the sends really race (SQLite serialises writers)."""
    op = await _operator(client)
    me, openid = await _citizen(client, login, new_phone)
    await _approve(client, op, "receipt", "visit")
    centre = client.services.messages.centre

    async def send(template: str, data: dict[str, Any], key: str) -> str:
        notice = (await centre.notify_app("testgate", [(openid, template, data, key, None)]))[0]
        return notice.outcome

    outcomes = await asyncio.gather(*(send("receipt", {"item": "x", "amount": 1}, "same") for _ in range(12)))
    assert sorted(outcomes).count("sent") == 1 and outcomes.count("duplicate") == 11
    await client.put("/api/v1/me/message-subscriptions/testgate.visit", json={"mode": "once"}, headers=me)
    outcomes = await asyncio.gather(
        *(send("visit", {"at": "2026-12-01T01:00:00+00:00"}, f"k{n}") for n in range(12))
    )
    assert outcomes.count("sent") == 1 and outcomes.count("skipped") == 11, outcomes
    assert (await client.get("/api/v1/me/messages/unread-count", headers=me)).json() == {"unread": 2}


async def test_caps_and_rate_limits_hold_back_what_is_not_transactional(make_client, login, new_phone):
    async with make_client(message_daily_cap=2, message_app_per_minute=3) as client:
        op, app = await _operator(client), await _app(client)
        me, openid = await _citizen(client, login, new_phone)
        await _approve(client, op, "visit", "receipt")
        await client.put(
            "/api/v1/me/message-subscriptions/testgate.visit", json={"mode": "standing"}, headers=me
        )

        async def send(template: str, key: str) -> Any:
            data = {"at": "2026-12-01T01:00:00+00:00"} if template == "visit" else {"item": "x", "amount": 1}
            return await client.post(
                "/api/v1/messages",
                json={"openid": openid, "template": template, "data": data, "idempotency_key": key},
                headers=app,
            )

        outcomes = [(await send("visit", f"v{n}")).json() for n in range(3)]
        assert [o["outcome"] for o in outcomes] == ["sent", "sent", "skipped"]
        assert outcomes[2]["reason"] == "daily_cap"
        # transactional messages are never capped, nor rate limited
        receipts = [(await send("receipt", f"r{n}")).json()["outcome"] for n in range(6)]
        assert receipts == ["sent"] * 6
        limited = await send("visit", "v9")  # the fourth reminder this minute
        assert limited.status_code == 429 and limited.json()["code"] == "message_rate_limited"
        assert int(limited.headers["retry-after"]) >= 1


async def test_signing_out_a_device_stops_its_pushes_and_deleting_the_account_empties_the_inbox(
    client, login, new_phone
):
    op = await _operator(client)
    await _approve(client, op, "receipt")
    phone = new_phone()
    pair = await login(client, phone, device_id="browser-1")
    me = {"Authorization": f"Bearer {pair['access_token']}"}
    cid = (await client.get("/api/v1/me", headers=me)).json()["id"]
    openid = await client.services.auth.pairwise.issue("testgate", cid)
    messages = client.services.messages
    browser = UserAgent()
    await messages.subscriptions.add(
        cid, "browser-1", "https://fcm.googleapis.com/fcm/send/abc", browser.p256dh, browser.auth_b64
    )
    assert len(await messages.subscriptions.of_citizen(cid)) == 1
    await messages.centre.notify_app("testgate", [(openid, "receipt", {"item": "x", "amount": 1}, "k", None)])
    assert (await client.post("/api/v1/auth/logout", headers=me)).status_code == 204
    assert await messages.subscriptions.of_citizen(cid) == []
    pair = await login(client, phone, device_id="phone-2")
    me = {"Authorization": f"Bearer {pair['access_token']}"}
    assert (await client.get("/api/v1/me/messages/unread-count", headers=me)).json() == {"unread": 1}
    assert (await client.delete("/api/v1/me", headers=me)).status_code == 204
    from messages.tables import Message

    assert await Message.count().where(Message.citizen_id == cid).run() == 0


async def test_only_approved_reminders_are_offered_for_subscription(client, login, new_phone):
    op = await _operator(client)
    me, _ = await _citizen(client, login, new_phone)
    offered = {
        s["template_id"] for s in (await client.get("/api/v1/me/message-subscriptions", headers=me)).json()
    }
    assert "testgate.visit" not in offered  # declared, not approved yet
    await _approve(client, op, "visit")
    offered = (await client.get("/api/v1/me/message-subscriptions", headers=me)).json()
    visit = next(s for s in offered if s["template_id"] == "testgate.visit")
    assert visit["title"] == "就诊提醒"
    await client.post(
        "/api/v1/admin/message-templates/testgate.visit/decision", json={"decision": "suspend"}, headers=op
    )
    offered = {
        s["template_id"] for s in (await client.get("/api/v1/me/message-subscriptions", headers=me)).json()
    }
    assert "testgate.visit" not in offered


async def test_messages_past_their_retention_are_purged_with_their_delivery_log(
    make_client, frozen_clock, login, new_phone
):
    async with make_client(
        clock=frozen_clock, message_retention_days=7, access_token_ttl=30 * 86400
    ) as client:
        op, app = await _operator(client), await _app(client)
        me, openid = await _citizen(client, login, new_phone)
        await _approve(client, op, "alarm")
        data = {"plate": "辽A12345", "amount": 100}
        for key in ("old", "new"):
            r = await client.post(
                "/api/v1/messages",
                json={"openid": openid, "template": "alarm", "data": data, "idempotency_key": key},
                headers=app,
            )
            assert r.json()["outcome"] == "sent"
            frozen_clock.advance(4 * 86400)
        deliveries = client.services.messages.deliveries
        assert await deliveries.purge() == 1  # 8 days old; the other is 4
        items = (await client.get("/api/v1/me/messages", headers=me)).json()["items"]
        assert len(items) == 1
        from messages.tables import MessageDelivery

        assert await MessageDelivery.count().run() == 1  # the SMS fallback of the one left
        assert await deliveries.purge() == 0


async def test_a_key_that_could_not_withdraw_its_message_is_refused(client, login, new_phone):
    op, app = await _operator(client), await _app(client)
    _, openid = await _citizen(client, login, new_phone)
    await _approve(client, op, "receipt")
    for key in ("a/b", "a b", "甲", "a?b", ""):
        r = await client.post(
            "/api/v1/messages",
            json={
                "openid": openid,
                "template": "receipt",
                "data": {"item": "x", "amount": 1},
                "idempotency_key": key,
            },
            headers=app,
        )
        assert r.status_code == 400 and r.json()["code"] == "invalid_body", (key, r.text)
