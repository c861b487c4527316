"""Announcements (信息发布) through the operators' API: an approved announcement template to a segment
(everyone, holders of an entitlement, users of a mini-app, a district), its progress, citizens who turned
announcements off, cancelling, refusals that create nothing, and a second worker resuming after a batch
without a duplicate or a gap. The books are read back: each citizen of the segment has one message."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any

import pytest

from messages._announce import Announcements
from messages.tables import Announcement, Message
from tests.conftest import basic_auth, bearer

pytestmark = pytest.mark.storage

NOTICE = "platform.city_notice"
DATA = {
    "headline": "停水通知",
    "headline_en": "Water off",
    "text": "和平区明日 9:00-17:00 停水。",
    "text_en": "No water in Heping tomorrow, 9:00-17:00.",
}


async def _operator(client: Any) -> dict[str, str]:
    return basic_auth(await client.services.auth.machines.create("operator", name="announcements desk"))


async def _approve(client: Any, op: dict[str, str], template: str = NOTICE) -> None:
    r = await client.post(
        f"/api/v1/admin/message-templates/{template}/decision",
        json={"decision": "approve", "note": "checked"},
        headers=op,
    )
    assert r.status_code == 200 and r.json()["usable"] is True, r.text


async def _citizen(client: Any, login: Any, new_phone: Any) -> tuple[dict[str, Any], str]:
    pair = await login(client, new_phone())
    me = (await client.get("/api/v1/me", headers=bearer(pair))).json()
    return pair, str(me["id"])


async def _announce(client: Any, op: dict[str, str], segment: dict[str, str], **extra: Any) -> dict[str, Any]:
    r = await client.post(
        "/api/v1/admin/announcements",
        json={"template": NOTICE, "data": DATA, "segment": segment, **extra},
        headers=op,
    )
    assert r.status_code == 202, r.text
    body = dict(r.json())
    assert body["state"] == "sending" and body["scanned"] == body["sent"] == 0
    return body


async def _row(announcement_id: str) -> dict[str, Any]:
    row = await Announcement.select().where(Announcement.id == uuid.UUID(announcement_id)).first().run()
    assert row is not None
    return row


async def _drive(worker: Announcements, announcement_id: str, limit: int = 100) -> int:
    """Step the announcement until it is done (or stopped); the number of batches written."""
    for n in range(limit):
        if await worker.step(await _row(announcement_id)) is None:
            return n
    raise AssertionError("the announcement never finished")


async def _progress(client: Any, op: dict[str, str], announcement_id: str) -> dict[str, Any]:
    r = await client.get(f"/api/v1/admin/announcements/{announcement_id}", headers=op)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def _recipients(announcement_id: str) -> Counter[str]:
    rows = await Message.select(Message.citizen_id).where(Message.announcement == announcement_id).run()
    return Counter(r["citizen_id"] for r in rows)


async def test_announcements_reach_exactly_their_segment_and_show_progress(
    client,
    login,
    new_phone,
    new_id_number,
    verify_real_name,
    enrol_source,
    push_change,
):
    op = await _operator(client)
    await _approve(client, op)
    people = [await _citizen(client, login, new_phone) for _ in range(5)]
    (insured_pair, insured), (verified_pair, _), (_, gate_user), (resident_pair, resident), _ = people
    # the insured one and a verified one without insurance: the medical bureau speaks of the first only
    bureau = await enrol_source(client, "medical")
    number = new_id_number()
    await verify_real_name(client, insured_pair, "沈一", number)
    await verify_real_name(client, verified_pair, "沈二", new_id_number())
    await push_change(client, bureau, number, {"insured": True, "region": "210102"})
    # testgate knows one of them by an openid; one lives in Heping (210102), another in Shenhe
    await client.services.auth.pairwise.issue("testgate", gate_user)
    r = await client.patch("/api/v1/me", json={"district": "210102"}, headers=bearer(resident_pair))
    assert r.status_code == 200, r.text
    await client.patch("/api/v1/me", json={"district": "210103"}, headers=bearer(insured_pair))
    everyone = {cid for _, cid in people}
    worker = client.services.messages.announcements

    expected = {
        ("everyone", ""): everyone,
        ("entitlement", "medical"): {insured},
        ("miniapp", "testgate"): {gate_user},
        ("district", "210102"): {resident},
    }
    for (kind, value), members in expected.items():
        segment = {"kind": kind, "value": value} if value else {"kind": kind}
        made = await _announce(client, op, segment, rate=500)
        await _drive(worker, made["id"])
        done = await _progress(client, op, made["id"])
        assert done["state"] == "done" and done["finished_at"], done
        assert (done["scanned"], done["sent"], done["skipped"]) == (5, len(members), 0), (segment, done)
        assert done["segment"] == {"value": "", **segment} and done["rate"] == 500
        assert await _recipients(made["id"]) == Counter(members), segment

    # what the resident sees: three announcements (everyone, district), in the request's language
    inbox = (await client.get("/api/v1/me/messages", headers=bearer(resident_pair))).json()
    assert [(i["title"], i["body"], i["category"]) for i in inbox["items"]] == [
        ("停水通知", "和平区明日 9:00-17:00 停水。", "announcement")
    ] * 2
    en = (
        await client.get("/api/v1/me/messages", headers={**bearer(resident_pair), "Accept-Language": "en"})
    ).json()
    assert en["items"][0]["title"] == "Water off"
    # the operators' list, newest first
    listed = (await client.get("/api/v1/admin/announcements", headers=op)).json()["items"]
    assert [a["segment"]["kind"] for a in listed] == ["district", "miniapp", "entitlement", "everyone"]
    assert all(a["state"] == "done" for a in listed)


async def test_a_citizen_who_turned_announcements_off_is_skipped(client, login, new_phone):
    op = await _operator(client)
    await _approve(client, op)
    (quiet_pair, _), (_, other) = [await _citizen(client, login, new_phone) for _ in range(2)]
    r = await client.put(
        "/api/v1/me/message-preferences",
        json={"channels": {"announcement": {"inbox": False, "webpush": False, "sms": False}}},
        headers=bearer(quiet_pair),
    )
    assert r.status_code == 200 and r.json()["channels"]["announcement"]["inbox"] is False, r.text
    made = await _announce(client, op, {"kind": "everyone"})
    await _drive(client.services.messages.announcements, made["id"])
    done = await _progress(client, op, made["id"])
    assert (done["state"], done["scanned"], done["sent"], done["skipped"]) == ("done", 2, 1, 1)
    assert await _recipients(made["id"]) == Counter({other: 1})
    assert (await client.get("/api/v1/me/messages", headers=bearer(quiet_pair))).json()["items"] == []


async def test_cancelling_stops_the_announcement_before_its_next_batch(client, login, new_phone):
    op = await _operator(client)
    await _approve(client, op)
    for _ in range(5):
        await _citizen(client, login, new_phone)
    worker = client.services.messages.announcements
    worker.batch = 2
    made = await _announce(client, op, {"kind": "everyone"})
    assert await worker.step(await _row(made["id"])) == 2
    r = await client.post(f"/api/v1/admin/announcements/{made['id']}/cancel", headers=op)
    assert r.status_code == 200 and r.json()["state"] == "cancelled", r.text
    # a worker holding the row it read before the cancel stops too
    assert await worker.step(await _row(made["id"])) is None
    done = await _progress(client, op, made["id"])
    assert (done["state"], done["scanned"], done["sent"]) == ("cancelled", 2, 2)
    assert sum((await _recipients(made["id"])).values()) == 2
    again = await client.post(f"/api/v1/admin/announcements/{made['id']}/cancel", headers=op)
    assert again.status_code == 409 and again.json()["code"] == "announcement_not_sending"
    for missing in (str(uuid.uuid4()), "not-an-id"):
        r = await client.post(f"/api/v1/admin/announcements/{missing}/cancel", headers=op)
        assert r.status_code == 404 and r.json()["code"] == "announcement_not_found"
        assert (await client.get(f"/api/v1/admin/announcements/{missing}", headers=op)).status_code == 404


async def test_refused_announcements_say_why_and_create_nothing(client, login, new_phone):
    op = await _operator(client)
    pair, _ = await _citizen(client, login, new_phone)

    async def refused(body: dict[str, Any], status: int, code: str | None, headers: Any = op) -> None:
        r = await client.post("/api/v1/admin/announcements", json=body, headers=headers)
        assert r.status_code == status, (body, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        if code:
            assert r.json()["code"] == code, (body, r.text)

    good = {"template": NOTICE, "data": DATA, "segment": {"kind": "everyone"}}
    await refused(good, 409, "template_not_approved")  # not approved yet
    await _approve(client, op)
    await _approve(client, op, "platform.payment_paid")
    await refused({**good, "template": "platform.payment_paid"}, 422, "not_an_announcement")
    await refused({**good, "template": "platform.nothing"}, 404, "template_not_found")
    for segment in (
        {"kind": "everyone", "value": "210102"},
        {"kind": "entitlement", "value": "transit"},
        {"kind": "entitlement"},
        {"kind": "miniapp", "value": "nope"},
        {"kind": "district", "value": "110101"},
    ):
        await refused({**good, "segment": segment}, 422, "invalid_segment")
    await refused({**good, "segment": {"kind": "planet"}}, 400, None)
    for data in (
        {k: v for k, v in DATA.items() if k != "text"},
        {**DATA, "extra": "x"},
        {**DATA, "text": "x" * 301},
        {**DATA, "headline": "停水\u202e通知"},
        {**DATA, "headline": 7},
    ):
        await refused({**good, "data": data}, 422, "invalid_message_data")
    await refused({**good, "rate": 0}, 400, None)
    await refused({**good, "rate": 100_001}, 400, None)
    # only an operator credential may send one
    r = await client.post("/api/v1/admin/announcements", json=good, headers=bearer(pair))
    assert r.status_code in (401, 403)
    assert (await client.post("/api/v1/admin/announcements", json=good)).status_code == 401
    app = basic_auth(await client.services.auth.machines.create("miniapp", app_id="testgate", name="gate"))
    assert (await client.post("/api/v1/admin/announcements", json=good, headers=app)).status_code in (
        401,
        403,
    )

    assert await Announcement.count().run() == 0
    assert await Message.count().run() == 0
    assert (await client.get("/api/v1/admin/announcements", headers=op)).json()["items"] == []


class _KilledMidBatch:
    """A message centre whose worker dies inside a batch's transaction, after its messages were written
    (what kill -9 does at the worst moment): the batch's transaction never commits."""

    def __init__(self, centre: Any) -> None:
        self.templates = centre.templates
        self._centre = centre

    async def send(self, *args: Any, **kwargs: Any) -> Any:
        await self._centre.send(*args, **kwargs)
        raise RuntimeError("killed")


async def test_another_worker_resumes_after_the_last_batch_with_no_duplicate_and_no_gap(
    client, login, new_phone
):
    op = await _operator(client)
    await _approve(client, op)
    citizens = {(await _citizen(client, login, new_phone))[1] for _ in range(7)}
    services, runtime = client.services.messages, client.runtime
    first = Announcements(runtime.clock, runtime.store, services.centre, batch=2)
    made = await _announce(client, op, {"kind": "everyone"})
    assert await first.step(await _row(made["id"])) == 2
    stale = await _row(made["id"])  # what a worker read just before another wrote the next batch
    assert await first.step(await _row(made["id"])) == 2

    # the first worker dies inside its third batch: nothing of that batch stays
    dying = Announcements(runtime.clock, runtime.store, _KilledMidBatch(services.centre), batch=2)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="killed"):
        await dying.step(await _row(made["id"]))
    assert sum((await _recipients(made["id"])).values()) == 4
    assert (await _progress(client, op, made["id"]))["scanned"] == 4

    # another worker (another process) takes over; the row it read late writes nothing
    second = Announcements(runtime.clock, runtime.store, services.centre, batch=2)
    assert await second.step(stale) == 0
    assert sum((await _recipients(made["id"])).values()) == 4
    assert await _drive(second, made["id"]) == 2
    done = await _progress(client, op, made["id"])
    assert (done["state"], done["scanned"], done["sent"], done["skipped"]) == ("done", 7, 7, 0)
    assert await _recipients(made["id"]) == Counter(dict.fromkeys(citizens, 1))
    assert await first.step(await _row(made["id"])) is None  # and the first, back, has nothing to do


async def test_two_workers_racing_on_one_announcement_count_each_batch_once(client, login, new_phone):
    """On PostgreSQL the workers really race (SQLite serialises writers)."""
    op = await _operator(client)
    await _approve(client, op)
    citizens = {(await _citizen(client, login, new_phone))[1] for _ in range(6)}
    runtime, centre = client.runtime, client.services.messages.centre
    workers = [Announcements(runtime.clock, runtime.store, centre, batch=2) for _ in range(3)]
    made = await _announce(client, op, {"kind": "everyone"})
    for _ in range(10):
        row = await _row(made["id"])
        if row["state"] != "sending":
            break
        await asyncio.gather(*(w.step(row) for w in workers))
    done = await _progress(client, op, made["id"])
    assert (done["state"], done["scanned"], done["sent"]) == ("done", 6, 6), done
    assert await _recipients(made["id"]) == Counter(dict.fromkeys(citizens, 1))
