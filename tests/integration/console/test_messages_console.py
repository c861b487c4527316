"""The console's message centre: an admin operator reviews templates and sends and cancels announcements
with forms (through the messages services, audited under the operator's name); templates, announcements
and the delivery log are read-only tables; a read-only operator changes nothing."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest

from backend.tables import AuditEvent
from messages.tables import Announcement, Message, MessageDelivery
from tests.conftest import bearer

pytestmark = pytest.mark.storage

DATA = {"headline": "供暖通知", "headline_en": "Heating", "text": "11月1日起供暖。", "text_en": "From 1 Nov."}


async def _forms(client: Any) -> dict[str, str]:
    return {f["name"].split(" ")[0]: f["slug"] for f in (await client.get("/admin/api/forms/")).json()}


async def _form(client: Any, headers: dict[str, str], name: str, body: dict[str, Any]) -> Any:
    return await client.post(f"/admin/api/forms/{(await _forms(client))[name]}/", json=body, headers=headers)


async def _actions(action: str) -> list[str]:
    rows = await AuditEvent.select().where(AuditEvent.action == action).order_by(AuditEvent.at)
    return [r["actor_id"] for r in rows]


async def _rows(client: Any, table: str, **params: Any) -> list[dict[str, Any]]:
    r = await client.get(f"/admin/api/tables/{table}/", params=params)
    assert r.status_code == 200, r.text
    return list(r.json()["rows"])


async def test_an_admin_approves_a_template_sends_an_announcement_and_cancels_one(
    client, console_login, login, new_phone
):
    citizens = []
    for _ in range(3):
        pair = await login(client, new_phone())
        citizens.append(pair)
    headers = await console_login(client, "chief", "admin")
    forms = await _forms(client)
    assert {"审核消息模板", "发布公告", "取消公告"} <= set(forms)

    send = {"template_id": "platform.city_notice", "data": json.dumps(DATA), "segment_kind": "everyone"}
    r = await _form(client, headers, "发布公告", send)
    assert r.status_code == 422 and "platform.city_notice" in r.json()["custom_form_error"], r.text

    r = await _form(
        client,
        headers,
        "审核消息模板",
        {"template_id": "platform.city_notice", "decision": "approve", "note": "已核对"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["custom_form_success"] == "已批准 platform.city_notice：现在可以使用"
    assert await _actions("message_template_approved") == ["chief"]
    (template,) = await _rows(client, "message_template", template_id="platform.city_notice")
    assert (template["status"], template["decided_by"], template["note"]) == ("approved", "chief", "已核对")

    r = await _form(client, headers, "发布公告", {**send, "rate": 50})
    assert r.status_code == 200, r.text
    announcement_id = re.search(r"公告 (\S+) 已开始发送", r.json()["custom_form_success"]).group(1)
    assert await _actions("announcement_created") == ["chief"]
    (listed,) = await _rows(client, "announcement")
    assert (listed["id"], listed["state"], listed["rate"], listed["created_by"]) == (
        announcement_id,
        "sending",
        50,
        "chief",
    )
    # a worker sends it; the table shows its progress and every citizen has it
    worker = client.services.messages.announcements
    while await worker.step(
        await Announcement.select().where(Announcement.id == uuid.UUID(announcement_id)).first()
    ):
        pass
    (done,) = await _rows(client, "announcement")
    assert (done["state"], done["scanned"], done["sent"], done["skipped"]) == ("done", 3, 3, 0)
    for pair in citizens:
        inbox = (await client.get("/api/v1/me/messages", headers=bearer(pair))).json()
        assert [i["title"] for i in inbox["items"]] == ["供暖通知"]

    # a second one, cancelled before any batch; cancelling it again is refused, in the form's answer
    r = await _form(
        client, headers, "发布公告", {**send, "segment_kind": "district", "segment_value": "210102"}
    )
    second = re.search(r"公告 (\S+) 已开始发送", r.json()["custom_form_success"]).group(1)
    r = await _form(client, headers, "取消公告", {"announcement_id": second})
    assert r.status_code == 200 and r.json()["custom_form_success"] == f"公告 {second} 已取消：已发送 0 条"
    r = await _form(client, headers, "取消公告", {"announcement_id": second})
    assert r.status_code == 422 and "不在发送中" in r.json()["custom_form_error"], r.text
    r = await _form(client, headers, "取消公告", {"announcement_id": str(uuid.uuid4())})
    assert r.status_code == 422 and "没有这条公告" in r.json()["custom_form_error"]
    assert await _actions("announcement_cancelled") == ["chief"]
    states = {a["id"]: a["state"] for a in await _rows(client, "announcement")}
    assert states == {announcement_id: "done", second: "cancelled"}

    # suspended: no announcement may use it any more
    r = await _form(
        client, headers, "审核消息模板", {"template_id": "platform.city_notice", "decision": "suspend"}
    )
    assert r.json()["custom_form_success"] == "已暂停 platform.city_notice"
    r = await _form(client, headers, "发布公告", send)
    assert r.status_code == 422, r.text
    assert await Announcement.count() == 2


async def test_the_forms_refuse_bad_input_in_the_operators_language_and_create_nothing(client, console_login):
    headers = await console_login(client, "chief", "admin")
    r = await _form(
        client, headers, "审核消息模板", {"template_id": "platform.nothing", "decision": "approve"}
    )
    assert r.status_code == 422 and "没有消息模板 platform.nothing" in r.json()["custom_form_error"]
    await _form(
        client, headers, "审核消息模板", {"template_id": "platform.city_notice", "decision": "approve"}
    )
    await _form(
        client, headers, "审核消息模板", {"template_id": "platform.payment_paid", "decision": "approve"}
    )
    base = {"template_id": "platform.city_notice", "data": json.dumps(DATA), "segment_kind": "everyone"}
    for body, words in (
        ({**base, "data": "[1, 2]"}, "JSON 对象"),
        ({**base, "data": "{not json"}, "JSON 对象"),
        ({**base, "data": json.dumps({"headline": "x"})}, "text"),
        ({**base, "template_id": "platform.payment_paid"}, "公告"),
        ({**base, "segment_kind": "district", "segment_value": "999999"}, ""),
        ({**base, "segment_kind": "miniapp", "segment_value": "nope"}, ""),
    ):
        r = await _form(client, headers, "发布公告", body)
        assert r.status_code == 422, (body, r.text)
        assert words in r.json()["custom_form_error"], (body, r.text)
    english = {**headers, "Accept-Language": "en"}
    r = await _form(client, english, "发布公告", {**base, "data": "[]"})
    assert r.json()["custom_form_error"].startswith("the data must be a JSON object")
    r = await _form(
        client, english, "发布公告", {**base, "segment_kind": "entitlement", "segment_value": "x"}
    )
    assert "segment" in r.json()["custom_form_error"]
    assert await Announcement.count() == 0 and await Message.count() == 0


async def test_a_readonly_operator_sees_the_message_tables_but_cannot_send_or_decide(
    client, console_login, login, new_phone
):
    op = await console_login(client, "watcher", "readonly")
    for name, body in (
        ("审核消息模板", {"template_id": "platform.city_notice", "decision": "approve"}),
        (
            "发布公告",
            {"template_id": "platform.city_notice", "data": json.dumps(DATA), "segment_kind": "everyone"},
        ),
        ("取消公告", {"announcement_id": str(uuid.uuid4())}),
    ):
        r = await _form(client, op, name, body)
        assert r.status_code == 403 and r.json()["code"] == "read_only", (name, r.text)
    (template,) = await _rows(client, "message_template", template_id="platform.city_notice")
    assert template["status"] == "pending"
    assert await Announcement.count() == 0
    # the tables themselves take no change, not even from an admin
    admin = await console_login(client, "chief", "admin")
    for table in ("message_template", "announcement", "message_delivery"):
        r = await client.post(f"/admin/api/tables/{table}/", json={}, headers=admin)
        assert r.status_code == 405, (table, r.text)
    r = await client.patch(
        f"/admin/api/tables/message_template/{template['id']}/", json={"status": "approved"}, headers=admin
    )
    assert r.status_code == 405
    (template,) = await _rows(client, "message_template", template_id="platform.city_notice")
    assert template["status"] == "pending"


async def test_the_delivery_log_shows_each_channel_and_no_message_content(
    make_client, frozen_clock, console_login, login, new_phone
):
    async with make_client(clock=frozen_clock, message_sms_after=60, access_token_ttl=86400) as client:
        pair = await login(client, new_phone())
        me = (await client.get("/api/v1/me", headers=bearer(pair))).json()
        openid = await client.services.auth.pairwise.issue("testgate", me["id"])
        services = client.services.messages
        await services.templates.decide("testgate.alarm", "approve", operator="test", note="")
        (notice,) = await services.centre.notify_app(
            "testgate", [(openid, "alarm", {"plate": "辽A12345", "amount": 1200}, "a-1", None)]
        )
        assert notice.outcome == "sent"
        frozen_clock.advance(61)
        assert await services.deliveries.tick() == 1
        await services.deliveries.jobs.drain()
        await console_login(client, "watcher", "readonly")
        r = await client.get("/admin/api/tables/message_delivery/", params={"__readable": "true"})
        assert r.status_code == 200, r.text
        (row,) = r.json()["rows"]
        assert (row["message"], row["citizen_id"], row["channel"], row["state"], row["attempts"]) == (
            notice.message_id,
            me["id"],
            "sms",
            "sent",
            1,
        )
        assert "辽A" not in r.text and "12.00" not in r.text
        assert await MessageDelivery.count() == 1
