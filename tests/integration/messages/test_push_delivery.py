"""Web Push from the message centre to a browser's subscription, end to end: the citizen's browser (a key
pair made by the test, as a browser makes one) subscribes with the platform's VAPID key, a message is
sent, the delivery round pushes it to a local push service over a real socket, which checks the VAPID
token (RFC 8292) and decrypts the payload with its own RFC 8291 code; quiet hours hold a non-urgent
push until morning; a subscription the push service calls gone is forgotten."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import http_ece
import pytest

from tests.conftest import basic_auth
from tests.integration.messages.pushservice import serving

pytestmark = pytest.mark.storage


@pytest.fixture(scope="module")
def push_service():
    with serving() as service:
        yield service


async def _setup(
    client: Any, login: Any, new_phone: Any, push_service: Any
) -> tuple[dict[str, str], str, Any]:
    op = basic_auth(await client.services.auth.machines.create("operator", name="desk"))
    for name in ("receipt", "alarm"):
        r = await client.post(
            f"/api/v1/admin/message-templates/testgate.{name}/decision",
            json={"decision": "approve"},
            headers=op,
        )
        assert r.status_code == 200
    pair = await login(client, new_phone())
    me = {"Authorization": f"Bearer {pair['access_token']}"}
    cid = (await client.get("/api/v1/me", headers=me)).json()["id"]
    openid = await client.services.auth.pairwise.issue("testgate", cid)
    key = (await client.get("/api/v1/push/key")).json()["application_server_key"]
    endpoint, browser = push_service.subscribe(application_server_key=key)
    r = await client.post(
        "/api/v1/me/push-subscriptions",
        json={
            "endpoint": endpoint,
            "keys": {"p256dh": browser.p256dh, "auth": browser.auth_b64},
            "expirationTime": None,
        },
        headers=me,
    )
    assert r.status_code == 201, r.text
    return me, openid, browser


async def _send(client: Any, openid: str, template: str, data: dict[str, Any], key: str) -> None:
    notice = (
        await client.services.messages.centre.notify_app("testgate", [(openid, template, data, key, None)])
    )[0]
    assert notice.outcome == "sent"


async def _round(client: Any) -> int:
    deliveries = client.services.messages.deliveries
    started = await deliveries.tick()
    await deliveries.jobs.drain()
    return started


async def test_a_message_is_pushed_encrypted_to_the_browser_with_a_vapid_token(
    make_client, frozen_clock, login, new_phone, push_service
):
    push_service.reset()
    async with make_client(
        clock=frozen_clock, push_services=push_service.origin, access_token_ttl=86400
    ) as client:
        me, openid, browser = await _setup(client, login, new_phone, push_service)
        await _send(client, openid, "receipt", {"item": "停车费", "amount": 1500}, "p1")
        assert await _round(client) == 1
        [got] = push_service.received
        assert got.status == 201 and got.refusal == ""
        payload = json.loads(got.plaintext)
        assert payload["title"] == {"zh-CN": "已收款", "en": "Paid"}
        assert payload["body"]["zh-CN"] == "停车费 已收款 15.00 元。"
        # an independent implementation reads the same body
        assert (
            json.loads(http_ece.decrypt(got.body, private_key=browser.private_key, auth_secret=browser.auth))
            == payload
        )
        assert got.claims["aud"] == push_service.origin and got.claims["sub"].startswith("mailto:")
        assert got.headers["urgency"] == "normal" and int(got.headers["ttl"]) > 0
        mid = payload["id"]
        log = (await client.get(f"/api/v1/me/messages/{mid}/deliveries", headers=me)).json()
        assert [(e["channel"], e["state"]) for e in log] == [
            ("inbox", "stored"),
            ("live", "published"),
            ("webpush", "sent"),
        ]
        assert await _round(client) == 0  # sent once


async def test_quiet_hours_hold_a_push_until_morning_but_not_an_urgent_one(
    make_client, frozen_clock, login, new_phone, push_service
):
    push_service.reset()
    frozen_clock.set(datetime(2026, 11, 25, 15, 0, tzinfo=UTC))  # 23:00 in Shenyang
    async with make_client(
        clock=frozen_clock,
        push_services=push_service.origin,
        access_token_ttl=86400,
        message_sms_after=3 * 86400,  # the urgent one's SMS fallback is not what this test is about
    ) as client:
        me, openid, _ = await _setup(client, login, new_phone, push_service)
        await _send(client, openid, "receipt", {"item": "夜间", "amount": 100}, "q1")
        await _send(client, openid, "alarm", {"plate": "辽A12345", "amount": 1200}, "q2")
        assert await _round(client) == 1
        [urgent] = push_service.received
        body = json.loads(urgent.plaintext)
        assert urgent.headers["urgency"] == "high"
        # a lock screen shows no plate
        assert "辽A***5" in body["body"]["zh-CN"] and "辽A12345" not in urgent.plaintext.decode()
        # both are in the inbox already: the inbox is silent
        assert (await client.get("/api/v1/me/messages/unread-count", headers=me)).json() == {"unread": 2}
        frozen_clock.set(datetime(2026, 11, 25, 23, 59, tzinfo=UTC))  # 07:59
        assert await _round(client) == 0
        frozen_clock.set(datetime(2026, 11, 26, 0, 0, tzinfo=UTC))  # 08:00, the default end of quiet hours
        assert await _round(client) == 1
        assert json.loads(push_service.received[-1].plaintext)["body"]["zh-CN"] == "夜间 已收款 1.00 元。"


async def test_a_subscription_the_push_service_calls_gone_is_forgotten(
    make_client, frozen_clock, login, new_phone, push_service
):
    push_service.reset()
    async with make_client(
        clock=frozen_clock, push_services=push_service.origin, access_token_ttl=86400
    ) as client:
        me, openid, _ = await _setup(client, login, new_phone, push_service)
        push_service.answer = (410, {})
        await _send(client, openid, "receipt", {"item": "x", "amount": 1}, "g1")
        assert await _round(client) == 1
        [sub] = (await client.get("/api/v1/me/push-subscriptions", headers=me)).json()
        assert sub["gone"] is True
        await _send(client, openid, "receipt", {"item": "y", "amount": 1}, "g2")
        assert await _round(client) == 0  # nothing more goes to a dead subscription
        assert len(push_service.received) == 1


async def test_a_push_service_that_is_down_is_retried_with_back_off_then_given_up(
    make_client, frozen_clock, login, new_phone, push_service
):
    push_service.reset()
    async with make_client(
        clock=frozen_clock,
        push_services=push_service.origin,
        access_token_ttl=86400,
        message_max_attempts=3,
        message_retry_base_delay=10,
    ) as client:
        me, openid, _ = await _setup(client, login, new_phone, push_service)
        push_service.answer = (500, {})
        await _send(client, openid, "receipt", {"item": "x", "amount": 1}, "d1")
        assert await _round(client) == 1
        assert await _round(client) == 0  # not before its back-off
        frozen_clock.advance(10)
        assert await _round(client) == 1
        frozen_clock.advance(20)
        assert await _round(client) == 1
        frozen_clock.advance(3600)
        assert await _round(client) == 0
        mid = json.loads(push_service.received[0].plaintext)["id"]
        log = (await client.get(f"/api/v1/me/messages/{mid}/deliveries", headers=me)).json()
        push = next(e for e in log if e["channel"] == "webpush")
        assert push["state"] == "dead" and push["attempts"] == 3 and "500" in push["error"]


async def test_a_subscription_elsewhere_than_a_push_service_is_refused(client, login, new_phone):
    pair = await login(client, new_phone())
    me = {"Authorization": f"Bearer {pair['access_token']}"}
    good_keys = {"p256dh": "B" + "A" * 86, "auth": "A" * 22}
    for endpoint in (
        "https://169.254.169.254/latest/meta-data",
        "http://127.0.0.1:6379/",
        "https://evil.example/x",
    ):
        r = await client.post(
            "/api/v1/me/push-subscriptions", json={"endpoint": endpoint, "keys": good_keys}, headers=me
        )
        assert r.status_code == 422 and r.json()["code"] == "push_endpoint_not_allowed", (endpoint, r.text)
    assert (await client.get("/api/v1/me/push-subscriptions", headers=me)).json() == []
