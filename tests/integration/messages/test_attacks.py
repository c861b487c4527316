"""What an outsider tried against the message centre (issue 17's attack pass), each as a citizen, a
mini-app backend or an operator would see it: inputs that made a 500 are refused with a problem, a deleted
account receives nothing (and keeps nothing), and sends racing on PostgreSQL keep the daily cap and the
one-time acceptances the citizen gave."""

from __future__ import annotations

import asyncio
import base64
import contextvars
import os
import uuid
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from messages.tables import Announcement, Message
from tests.conftest import basic_auth

pytestmark = pytest.mark.storage


async def _operator(client: Any) -> dict[str, str]:
    return basic_auth(await client.services.auth.machines.create("operator", name="attack desk"))


async def _app(client: Any) -> dict[str, str]:
    cred = await client.services.auth.machines.create("miniapp", app_id="testgate", name="testgate backend")
    return basic_auth(cred)


async def _approve(client: Any, op: dict[str, str], *templates: str) -> None:
    for template in templates:
        r = await client.post(
            f"/api/v1/admin/message-templates/{template}/decision",
            json={"decision": "approve", "note": "checked"},
            headers=op,
        )
        assert r.status_code == 200, r.text


async def _citizen(client: Any, login: Any, new_phone: Any) -> tuple[dict[str, str], str, str]:
    """Headers, the citizen's id and the openid testgate knows them by."""
    pair = await login(client, new_phone())
    me = {"Authorization": f"Bearer {pair['access_token']}"}
    cid = (await client.get("/api/v1/me", headers=me)).json()["id"]
    return me, cid, await client.services.auth.pairwise.issue("testgate", cid)


def _browser_keys() -> dict[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    point = key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    b64 = lambda raw: base64.urlsafe_b64encode(raw).rstrip(b"=").decode()  # noqa: E731
    return {"p256dh": b64(point), "auth": b64(os.urandom(16))}


async def _rows_of(citizen_id: str) -> int:
    return int(await Message.count().where(Message.citizen_id == citizen_id).run())


# ---- inputs that were a 500 ----------------------------------------------------------------------------
async def test_a_time_at_the_ends_of_the_calendar_is_refused_not_a_server_error(client, login, new_phone):
    op, app = await _operator(client), await _app(client)
    me, _, openid = await _citizen(client, login, new_phone)
    await _approve(client, op, "testgate.visit")
    await client.put("/api/v1/me/message-subscriptions/testgate.visit", json={"mode": "standing"}, headers=me)
    for n, at in enumerate(
        ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:00+00:00", "9999-12-31T20:00:00-14:00")
    ):
        r = await client.post(
            "/api/v1/messages",
            json={"openid": openid, "template": "visit", "data": {"at": at}, "idempotency_key": f"end-{n}"},
            headers=app,
        )
        assert r.status_code == 422 and r.json()["code"] == "invalid_message_data", (at, r.text)
    assert (await client.get("/api/v1/me/messages/unread-count", headers=me)).json() == {"unread": 0}


async def test_text_that_breaks_a_line_or_turns_its_direction_is_refused(client, login, new_phone):
    op, app = await _operator(client), await _app(client)
    me, _, openid = await _citizen(client, login, new_phone)
    await _approve(client, op, "testgate.receipt")
    # the Arabic letter mark is a bidi mark like U+200F; a line separator breaks a one-line item
    for n, item in enumerate(
        ("停车\u061c费", "停车\u2028费", "停车\u2029费", "停车\u2060费", "停车\u180e费")
    ):
        r = await client.post(
            "/api/v1/messages",
            json={
                "openid": openid,
                "template": "receipt",
                "data": {"item": item, "amount": 1},
                "idempotency_key": f"mark-{n}",
            },
            headers=app,
        )
        assert r.status_code == 422 and r.json()["code"] == "invalid_message_data", (repr(item), r.text)
    assert (await client.get("/api/v1/me/messages/unread-count", headers=me)).json() == {"unread": 0}


async def test_quiet_hours_with_a_trailing_line_break_are_refused(client, login, new_phone):
    me, _, _ = await _citizen(client, login, new_phone)
    for body in ({"quiet_start": "22:00\n"}, {"quiet_end": "07:30\n"}):
        r = await client.put("/api/v1/me/message-preferences", json=body, headers=me)
        assert r.status_code == 400 and r.json()["code"] == "invalid_body", (body, r.text)
    prefs = (await client.get("/api/v1/me/message-preferences", headers=me)).json()
    assert (prefs["quiet_start"], prefs["quiet_end"]) == ("22:00", "08:00")


async def test_a_push_endpoint_that_is_no_url_is_refused_and_the_host_shown_is_the_one_posted_to(
    client, login, new_phone
):
    me, _, _ = await _citizen(client, login, new_phone)

    async def subscribe(endpoint: str) -> Any:
        return await client.post(
            "/api/v1/me/push-subscriptions", json={"endpoint": endpoint, "keys": _browser_keys()}, headers=me
        )

    r = await subscribe("https://[fcm.googleapis.com]/fcm/send/x")
    assert r.status_code == 422 and r.json()["code"] == "invalid_push_subscription", r.text
    r = await subscribe("https://fcm.googleapis.com#@evil.example/fcm/send/x")
    assert r.status_code == 422 and r.json()["code"] == "invalid_push_subscription", r.text
    r = await subscribe("https://evil%2e.fcm.googleapis.com/fcm/send/x")
    assert r.status_code == 422 and r.json()["code"] == "push_endpoint_not_allowed", r.text
    for endpoint in ("https://FCM.googleapis.com/fcm/send/a", "https://fcm.googleapis.com:0443/fcm/send/b"):
        r = await subscribe(endpoint)
        assert r.status_code == 201 and r.json()["host"] == "fcm.googleapis.com", (endpoint, r.text)
    listed = (await client.get("/api/v1/me/push-subscriptions", headers=me)).json()
    assert [s["host"] for s in listed] == ["fcm.googleapis.com", "fcm.googleapis.com"]


# ---- a deleted account -----------------------------------------------------------------------------------
async def test_a_deleted_account_receives_nothing_and_keeps_nothing(client, login, new_phone):
    op, app = await _operator(client), await _app(client)
    me, cid, openid = await _citizen(client, login, new_phone)
    await _approve(client, op, "testgate.receipt")
    assert (await client.delete("/api/v1/me", headers=me)).status_code == 204
    r = await client.post(
        "/api/v1/messages",
        json={
            "openid": openid,
            "template": "receipt",
            "data": {"item": "x", "amount": 1},
            "idempotency_key": "late",
        },
        headers=app,
    )
    assert r.status_code == 202 and r.json() == {
        "outcome": "skipped",
        "message_id": None,
        "reason": "unknown_citizen",
    }
    assert await _rows_of(cid) == 0


async def test_an_announcement_batch_racing_an_account_deletion_leaves_nothing_behind(
    client, login, new_phone
):
    """The batch's citizens are read before its transaction; the deletion (and the erasure of the inbox)
    lands in between."""
    op = await _operator(client)
    await _approve(client, op, "platform.city_notice")
    me, cid, _ = await _citizen(client, login, new_phone)
    _, other, _ = await _citizen(client, login, new_phone)
    data = {
        "headline": "停水",
        "headline_en": "Water off",
        "text": "明日停水。",
        "text_en": "No water tomorrow.",
    }
    r = await client.post(
        "/api/v1/admin/announcements",
        json={"template": "platform.city_notice", "data": data, "segment": {"kind": "everyone"}},
        headers=op,
    )
    assert r.status_code == 202, r.text
    announcements = client.services.messages.announcements
    members = announcements._members

    async def deleting_meanwhile(*args: Any) -> list[str]:
        chosen = await members(*args)
        assert (await client.delete("/api/v1/me", headers=me)).status_code == 204
        return chosen

    announcements._members = deleting_meanwhile  # type: ignore[method-assign]
    row = await Announcement.select().where(Announcement.id == uuid.UUID(r.json()["id"])).first().run()
    await announcements.step(row)
    assert await _rows_of(cid) == 0
    assert await _rows_of(other) == 1


@pytest.mark.skipif(os.environ.get("SHENGSHI_TEST_BACKEND") != "postgres", reason="SQLite serialises writers")
@pytest.mark.parametrize("by", ["a mini-app", "an announcement"])
async def test_a_deletion_committing_while_a_message_is_written_waits_and_then_erases_it(
    client, login, new_phone, by
):
    """The sender's transaction holds the account (a mini-app's send) or its announcement (a batch); the
    deletion or its erasure waits for it, then finds the message. Without the lock the deletion and the
    erasure finish first and the message outlives them."""
    op, app = await _operator(client), await _app(client)
    me, cid, openid = await _citizen(client, login, new_phone)
    await _approve(client, op, "testgate.receipt", "platform.city_notice")
    centre = client.services.messages.centre
    write = centre._deliveries
    deletion: list[asyncio.Task[Any]] = []

    async def blocked() -> bool:
        await Message.raw("SELECT pg_stat_clear_snapshot()").run()  # read afresh inside the transaction
        rows = await Message.raw(
            "SELECT count(*) AS n FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        ).run()
        return bool(rows[0]["n"])

    async def delete_meanwhile(*args: Any) -> None:
        await write(*args)  # inside the sender's transaction, its message written
        # a context of its own: not this transaction's connection, as another request would not be
        context = contextvars.copy_context()
        context.run(Message._meta.db.current_transaction.set, None)
        task = asyncio.create_task(client.delete("/api/v1/me", headers=me), context=context)
        deletion.append(task)
        for _ in range(500):  # until the deletion finished (no lock held it) or waits for this one
            if task.done() or await blocked():
                break
            await asyncio.sleep(0.01)

    centre._deliveries = delete_meanwhile  # type: ignore[method-assign]
    if by == "a mini-app":
        r = await client.post(
            "/api/v1/messages",
            json={
                "openid": openid,
                "template": "receipt",
                "data": {"item": "x", "amount": 1},
                "idempotency_key": "race",
            },
            headers=app,
        )
    else:
        data = {"headline": "停水", "headline_en": "Water off", "text": "明日停水。", "text_en": "No water."}
        r = await client.post(
            "/api/v1/admin/announcements",
            json={"template": "platform.city_notice", "data": data, "segment": {"kind": "everyone"}},
            headers=op,
        )
        assert r.status_code == 202, r.text
        announcements = client.services.messages.announcements
        row = await Announcement.select().where(Announcement.id == uuid.UUID(r.json()["id"])).first().run()
        assert await announcements.step(row) == 1
    assert r.status_code == 202, r.text
    assert (await deletion[0]).status_code == 204
    assert await _rows_of(cid) == 0


# ---- sends racing ------------------------------------------------------------------------------------------
async def test_the_daily_cap_holds_when_reminders_race(make_client, login, new_phone):
    async with make_client(message_daily_cap=3) as client:
        op = await _operator(client)
        me, cid, openid = await _citizen(client, login, new_phone)
        await _approve(client, op, "testgate.visit")
        await client.put(
            "/api/v1/me/message-subscriptions/testgate.visit", json={"mode": "standing"}, headers=me
        )
        centre = client.services.messages.centre
        data = {"at": "2026-12-01T01:00:00+00:00"}
        notices = await asyncio.gather(
            *(centre.notify_app("testgate", [(openid, "visit", data, f"cap-{n}", None)]) for n in range(16))
        )
        outcomes = sorted((n[0].outcome, n[0].reason) for n in notices)
        assert outcomes.count(("sent", "")) == 3 and outcomes.count(("skipped", "daily_cap")) == 13, outcomes
        assert await _rows_of(cid) == 3


async def test_a_duplicate_of_a_reminder_spends_no_second_one_time_acceptance(client, login, new_phone):
    op = await _operator(client)
    me, _, openid = await _citizen(client, login, new_phone)
    await _approve(client, op, "testgate.visit")
    for _ in range(2):
        await client.put("/api/v1/me/message-subscriptions/testgate.visit", json={"mode": "once"}, headers=me)
    centre = client.services.messages.centre
    data = {"at": "2026-12-01T01:00:00+00:00"}
    notices = await asyncio.gather(
        *(centre.notify_app("testgate", [(openid, "visit", data, "the-one", None)]) for _ in range(12))
    )
    outcomes = sorted(n[0].outcome for n in notices)
    assert outcomes == ["duplicate"] * 11 + ["sent"], (
        outcomes
    )  # never "not_subscribed" for a key that was sent
    subs = (await client.get("/api/v1/me/message-subscriptions", headers=me)).json()
    assert {s["template_id"]: s["once_left"] for s in subs}["testgate.visit"] == 1
