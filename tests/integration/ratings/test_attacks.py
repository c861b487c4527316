"""What an outsider tried against the evaluation centre (issue 18's attack pass), as a citizen, a unit's
system, a mini-app's backend and an operator would see it. Races run for real on PostgreSQL (each request
of an ``asyncio.gather`` on its own pool connection; SQLite serialises writers and the tests pass there
too); after each the database is read back: the case, every step of it, the citizen's inbox."""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from backend.app import create_app, services_of
from ratings.tables import RatingCase, RatingCaseStep, RatingEvent
from tests.conftest import AppClient, TestGate, basic_auth, running
from tests.integration.messages.citizen import inbox
from tests.integration.ratings.flow import Place

pytestmark = pytest.mark.storage
MONDAY = datetime(2026, 9, 28, 3, 0, tzinfo=UTC)


@pytest.fixture
async def place(open_place):
    async with open_place(MONDAY) as place:
        machines = place.client.services.auth.machines
        system = await machines.create("unit", app_id="parking/parking", name="停车场工单系统")
        place.unit = basic_auth(system)
        yield place


async def _bad(place: Place, me: dict[str, str], n: int = 0) -> dict[str, Any]:
    """A stay rated very dissatisfied: the rating with its open case."""
    event = await place.stay(me, plate=f"辽A{n:05d}")
    r = await place.rate(me, event["id"], "very_dissatisfied", comment="收费员态度差")
    assert r.status_code == 201, r.text
    return dict(r.json())


async def _history(case_id: str) -> tuple[dict[str, Any], list[tuple[str, str, str]]]:
    """The case as the database holds it, and its steps (action, from, to) in order."""
    ident = uuid.UUID(case_id)
    case = await RatingCase.select().where(RatingCase.id == ident).first().run()
    steps = (
        await RatingCaseStep.select(
            RatingCaseStep.seq, RatingCaseStep.action, RatingCaseStep.from_state, RatingCaseStep.to_state
        )
        .where(RatingCaseStep.case == ident)
        .order_by(RatingCaseStep.seq)
        .run()
    )
    assert [s["seq"] for s in steps] == list(range(1, len(steps) + 1))
    return case, [(s["action"], s["from_state"], s["to_state"]) for s in steps]


def _follows(steps: list[tuple[str, str, str]]) -> bool:
    """Each step leaves the state the one before it reached."""
    return all(later[1] == earlier[2] for earlier, later in itertools.pairwise(steps))


# ---- transitions racing --------------------------------------------------------------------------------
async def test_an_appeal_made_while_the_unit_verifies_goes_back_to_rectifying_when_rejected(place):
    """The appeal read the case (open), the unit's other clerk verified it, then the appeal moved it: the
    appeal came from rectifying, and a rejection must not send a verified case back to open."""
    client = place.client
    me = await place.citizen()
    case_id = (await _bad(place, me))["case"]["id"]
    cases = client.services.ratings.cases
    read = cases._row

    async def verified_meanwhile(actor: Any, ident: str) -> dict[str, Any]:
        row = await read(actor, ident)
        cases._row = read  # type: ignore[method-assign]
        # another request: not this one's transaction, as another clerk's would not be
        context = contextvars.copy_context()
        context.run(RatingCase._meta.db.current_transaction.set, None)
        verify = client.post(
            f"/api/v1/ratings/cases/{ident}/verify", json={"note": "查看监控"}, headers=place.unit
        )
        r = await asyncio.create_task(verify, context=context)
        assert r.status_code == 200, r.text
        return row

    cases._row = verified_meanwhile  # type: ignore[method-assign]
    r = await client.post(
        f"/api/v1/ratings/cases/{case_id}/appeal",
        json={"reason": "false", "text": "监控显示无纠纷"},
        headers=place.parking,
    )
    assert r.status_code == 200 and r.json()["state"] == "appealed", r.text
    r = await client.post(
        f"/api/v1/admin/ratings/cases/{case_id}/appeal-decision",
        json={"uphold": False, "note": "证据不足"},
        headers=place.operator,
    )
    assert r.status_code == 200 and r.json()["state"] == "rectifying", r.text
    _, steps = await _history(case_id)
    assert steps == [
        ("opened", "", "open"),
        ("verified", "open", "rectifying"),
        ("appealed", "rectifying", "appealed"),
        ("rejected", "appealed", "rectifying"),
    ]


async def test_unit_actions_racing_on_one_case_make_one_history(place):
    """Two clerks (the unit's own system and the mini-app's backend) verify, answer and appeal one case
    at once, many times: one answer or one appeal wins, every step leaves the state the one before it
    reached, an appeal remembers where it came from, and the rater has one answer in the inbox."""
    client = place.client
    me = await place.citizen()
    bodies = {
        "verify": {"note": "核实中"},
        "answer": {"outcome": "rectified", "text": "已整改"},
        "appeal": {"reason": "mistaken", "text": "误评"},
    }
    plan = ["verify", "answer", "appeal", "answer", "verify", "appeal", "answer", "verify"]
    answered = 0
    for n in range(8):
        case_id = (await _bad(place, me, n))["case"]["id"]
        order = plan[n:] + plan[:n]
        replies = await asyncio.gather(
            *(
                client.post(
                    f"/api/v1/ratings/cases/{case_id}/{action}",
                    json=bodies[action],
                    headers=place.unit if i % 2 else place.parking,
                )
                for i, action in enumerate(order)
            )
        )
        outcomes = Counter((a, r.status_code) for a, r in zip(order, replies, strict=True))
        assert {r.status_code for r in replies} <= {200, 409}, [r.text for r in replies]
        assert outcomes[("answer", 200)] + outcomes[("appeal", 200)] == 1, outcomes
        assert outcomes[("verify", 200)] <= 1, outcomes
        case, steps = await _history(case_id)
        assert _follows(steps) and steps[-1][2] == case["state"], steps
        appealed = [s for s in steps if s[0] == "appealed"]
        assert [case["appeal_from"]] == [s[1] for s in appealed] or not appealed, (case, steps)
        answered += case["state"] == "answered"
    feedback = [m for m in await inbox(client, me) if m["title"] == "您的评价已处理"]
    assert len(feedback) == answered


# ---- what a unit writes ----------------------------------------------------------------------------------
async def test_a_units_text_that_turns_its_direction_or_is_blank_is_refused_and_lines_may_break(place):
    """A note or answer the rater reads in the app (and the answer in the inbox) holds no control or
    direction-changing characters and is not blank; a numbered answer over several lines is an answer:
    the rater reads it as written, and on one line in the inbox (it was refused by the inbox's check)."""
    client = place.client
    me = await place.citizen()
    rating = await _bad(place, me)
    case_id = rating["case"]["id"]
    url = f"/api/v1/ratings/cases/{case_id}"
    for action, body in (
        ("verify", {"note": "已核实\u202e实核已"}),
        ("verify", {"note": "已核实\u2066"}),
        ("answer", {"outcome": "rectified", "text": "已整改\u200f"}),
        ("answer", {"outcome": "rectified", "text": "   "}),
        ("answer", {"outcome": "explained", "text": "\n\n"}),
        ("appeal", {"reason": "false", "text": "恶意\u061c差评"}),
        ("appeal", {"reason": "false", "text": " "}),
    ):
        r = await client.post(f"{url}/{action}", json=body, headers=place.unit)
        assert r.status_code == 422 and r.json()["code"] == "invalid_case_text", (body, r.text)
    case, steps = await _history(case_id)
    assert case["state"] == "open" and steps == [("opened", "", "open")]

    r = await client.post(
        f"{url}/answer",
        json={"outcome": "rectified", "text": "1. 已对收费员进行培训；\n2. 已退还多收的停车费。\n"},
        headers=place.unit,
    )
    assert r.status_code == 200 and r.json()["state"] == "answered", r.text
    mine = (await client.get(f"/api/v1/me/ratings/{rating['id']}", headers=me)).json()
    assert mine["case"]["answer"] == "1. 已对收费员进行培训；\n2. 已退还多收的停车费。"
    [feedback] = [m for m in await inbox(client, me) if m["title"] == "您的评价已处理"]
    assert "1. 已对收费员进行培训； 2. 已退还多收的停车费。" in feedback["body"]
    r = await client.post(
        f"/api/v1/admin/ratings/cases/{case_id}/appeal-decision",
        json={"uphold": True, "note": "\u202e"},
        headers=place.operator,
    )
    assert r.status_code == 422 and r.json()["code"] == "invalid_case_text", r.text


# ---- statistics --------------------------------------------------------------------------------------------
async def test_a_month_in_other_digits_or_without_its_zero_is_refused(place):
    """strptime reads full-width digits and a month with no leading zero: the first made the CSV's file
    name unencodable (a 500), the second compared as text with "2026-10" (the wrong months, silently)."""
    client = place.client
    me = await place.citizen()
    await _bad(place, me)
    for month in ("２０２６-09", "2026-９", "2026-9", "٢٠٢٦-09", "2026-09\n", "0000-00"):
        for path in ("/api/v1/admin/ratings/stats", "/api/v1/admin/ratings/stats.csv"):
            for params in ({"month_from": month}, {"month_from": "2026-01", "month_to": month}):
                r = await client.get(path, params=params, headers=place.operator)
                assert r.status_code in (400, 422), (path, params, r.status_code, r.text)
                assert r.headers["content-type"].startswith("application/problem+json"), r.text
    r = await client.get(
        "/api/v1/admin/ratings/stats.csv", params={"month_from": "2026-09"}, headers=place.operator
    )
    assert (
        r.status_code == 200
        and 'filename="ratings-unit-2026-09-2026-09.csv"' in r.headers["content-disposition"]
    )


async def test_a_units_code_with_a_line_break_is_refused(place):
    """The code's pattern ends in "$", which matches before a final line break: "dept\\n" became the unit
    "platform/dept\\n", which no one can name on the command line (its credential) or read in the CSV."""
    client = place.client
    before = (await client.get("/api/v1/admin/ratings/units", headers=place.operator)).json()
    for code in ("dept\n", "dept\r\n", "\ndept"):
        r = await client.post(
            "/api/v1/admin/ratings/units",
            json={"code": code, "name_zh": "交通局", "name_en": "Transport bureau"},
            headers=place.operator,
        )
        assert r.status_code in (400, 422) and r.json()["code"] in ("invalid_unit", "invalid_body"), r.text
    assert (await client.get("/api/v1/admin/ratings/units", headers=place.operator)).json() == before
    r = await client.post(
        "/api/v1/admin/ratings/units",
        json={"code": "dept", "name_zh": "交通局", "name_en": "Transport bureau"},
        headers=place.operator,
    )
    assert r.status_code == 201 and r.json()["unit_id"] == "platform/dept", r.text


# ---- a deleted account -------------------------------------------------------------------------------------
async def test_a_deleted_account_leaves_no_words_and_no_way_back_to_its_ratings(place):
    """The account goes with a case open, one answered and one called back on: the unit can still work the
    open case (nobody is told), the ratings stay counted; nothing the rater wrote stays (the call-back's
    comment was kept in the case and its step), and no event still names the citizen (a rating's event led
    back to the account its own citizen id no longer did)."""
    client = place.client
    me = await place.citizen()
    citizen_id = (await client.get("/api/v1/me", headers=me)).json()["id"]
    ratings = [await _bad(place, me, n) for n in range(3)]
    still_open = await place.stay(me, plate="辽A77777")
    open_case, answered, called = (r["case"]["id"] for r in ratings)
    for case_id in (answered, called):
        r = await client.post(
            f"/api/v1/ratings/cases/{case_id}/answer",
            json={"outcome": "explained", "text": "按规定收费"},
            headers=place.unit,
        )
        assert r.status_code == 200, r.text
    r = await client.post(
        f"/api/v1/me/ratings/{ratings[2]['id']}/callback",
        json={"level": "very_dissatisfied", "comment": "我是张三，电话13900001111，还是不满意"},
        headers=me,
    )
    assert r.status_code == 200, r.text

    assert (await client.delete("/api/v1/me", headers=me)).status_code == 204
    views = {}
    for case_id in (open_case, answered, called):
        r = await client.get(f"/api/v1/ratings/cases/{case_id}", headers=place.unit)
        assert r.status_code == 200, r.text
        views[case_id] = r.json()
    assert [views[c]["state"] for c in (open_case, answered, called)] == ["open", "closed", "closed"]
    assert views[called]["callback"] == "very_dissatisfied" and views[called]["callback_comment"] == ""
    assert all(v["rating"]["comment"] == "" and v["rating"]["rater"] == "" for v in views.values())
    assert "13900001111" not in str(views) and "张三" not in str(views)
    r = await client.post(
        f"/api/v1/ratings/cases/{open_case}/answer",
        json={"outcome": "rectified", "text": "已整改"},
        headers=place.unit,
    )
    assert r.status_code == 200 and r.json()["state"] == "answered", r.text
    assert await RatingEvent.count().where(RatingEvent.citizen_id == citizen_id).run() == 0
    assert await RatingEvent.count().where(RatingEvent.id == uuid.UUID(still_open["id"])).run() == 0
    stats = await client.get(
        "/api/v1/admin/ratings/stats", params={"month_from": "2026-09"}, headers=place.operator
    )
    [row] = [x for x in stats.json()["rows"] if x["key"] == "parking/parking"]
    assert (row["ratings"], row["cases"], row["answered"]) == (3, 3, 3)


async def test_a_rating_id_that_is_no_id_is_no_rating_of_yours(place):
    """It was answered "no such service event" (rating_event_not_found) on the rating's own routes."""
    client = place.client
    me = await place.citizen()
    for rating_id in ("garbage", "1", "x" * 64):
        r = await client.get(f"/api/v1/me/ratings/{rating_id}", headers=me)
        assert r.status_code == 404 and r.json()["code"] == "rating_not_found", r.text
        r = await client.post(
            f"/api/v1/me/ratings/{rating_id}/callback", json={"level": "satisfied"}, headers=me
        )
        assert r.status_code == 404 and r.json()["code"] == "rating_not_found", r.text
    r = await client.get("/api/v1/me/ratings/events/garbage", headers=me)
    assert r.status_code == 404 and r.json()["code"] == "rating_event_not_found", r.text


# ---- two workers -----------------------------------------------------------------------------------------
async def test_a_unit_renamed_on_one_worker_is_renamed_on_the_other_within_a_minute(
    place, make_runtime, settings
):
    """Each worker kept the units it had read for good: a department an operator renamed (or moved to
    another district) on one worker kept its old name and district on the other until it restarted, in
    what citizens and units read and in the district of every event it recorded."""
    a = place.client
    store = a.runtime.store
    if settings.uses_redis:
        from backend.store import RedisStore

        store = RedisStore(settings.redis_url, prefix=a.runtime.store._prefix)
    # a second worker on the same database and store (not through make_client: that empties tables)
    runtime = make_runtime(clock=place.clock, store=store, access_token_ttl=60 * 86400)
    app = create_app(runtime=runtime, extra_miniapps=[TestGate])
    async with running(app):
        async with AppClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as b:
            b.app, b.runtime, b.services = app, runtime, services_of(app)
            me = await place.citizen()
            citizen_id = (await a.get("/api/v1/me", headers=me)).json()["id"]

            async def department(name: str, district: str) -> None:
                r = await a.post(
                    "/api/v1/admin/ratings/units",
                    json={"code": "traffic", "name_zh": name, "name_en": "Traffic", "district": district},
                    headers=place.operator,
                )
                assert r.status_code == 201, r.text

            async def event(key: str) -> dict[str, Any]:
                centre = b.services.ratings.centre
                event_id, _ = await centre.record("platform", "payment", citizen_id, key, unit="traffic")
                row = await RatingEvent.select().where(RatingEvent.id == uuid.UUID(event_id)).first().run()
                view = (await b.get(f"/api/v1/me/ratings/events/{event_id}", headers=me)).json()
                return {"unit_name": view["unit_name"], "district": row["district"]}

            await department("交通局", "210102")
            assert await event("order:1") == {"unit_name": "交通局", "district": "210102"}
            await department("交通运输局", "210103")
            place.clock.advance(61)
            assert await event("order:2") == {"unit_name": "交通运输局", "district": "210103"}


async def test_one_event_rated_thirty_times_at_once_and_a_case_decided_twice_at_once_count_once(place):
    """What held under the attack, kept: one rating of thirty sent at once (one case, one step), one
    answer and one call-back of twenty each, one decision of two opposite ones."""
    client = place.client
    me = await place.citizen()
    event = await place.stay(me)
    replies = await asyncio.gather(
        *(place.rate(me, event["id"], "very_dissatisfied", comment=f"第{n}次") for n in range(30))
    )
    codes = Counter((r.status_code, r.json().get("code")) for r in replies)
    assert codes == {(201, None): 1, (409, "already_rated"): 29}, codes
    [rating] = [r.json() for r in replies if r.status_code == 201]
    case_id = rating["case"]["id"]
    assert await RatingCase.count().where(RatingCase.rating == uuid.UUID(rating["id"])).run() == 1
    assert (await _history(case_id))[1] == [("opened", "", "open")]

    replies = await asyncio.gather(
        *(
            client.post(
                f"/api/v1/ratings/cases/{case_id}/answer",
                json={"outcome": "rectified", "text": f"答复{n}"},
                headers=place.unit if n % 2 else place.parking,
            )
            for n in range(20)
        )
    )
    assert sorted(r.status_code for r in replies) == [200] + [409] * 19
    callback = f"/api/v1/me/ratings/{rating['id']}/callback"
    replies = await asyncio.gather(
        *(client.post(callback, json={"level": "satisfied"}, headers=me) for _ in range(20))
    )
    assert sorted(r.status_code for r in replies) == [200] + [409] * 19
    assert [a for a, _, _ in (await _history(case_id))[1]] == ["opened", "answered", "called_back"]
    assert len([m for m in await inbox(client, me) if m["title"] == "您的评价已处理"]) == 1

    other = await _bad(place, me, 1)
    url = f"/api/v1/ratings/cases/{other['case']['id']}"
    r = await client.post(f"{url}/appeal", json={"reason": "malicious", "text": "恶意"}, headers=place.unit)
    assert r.status_code == 200, r.text
    decision = f"/api/v1/admin/ratings/cases/{other['case']['id']}/appeal-decision"
    replies = await asyncio.gather(
        *(client.post(decision, json={"uphold": uphold}, headers=place.operator) for uphold in (True, False))
    )
    assert sorted(r.status_code for r in replies) == [200, 409], [r.text for r in replies]
    [won] = [r.json() for r in replies if r.status_code == 200]
    case, steps = await _history(other["case"]["id"])
    assert case["state"] == won["state"]
    assert steps[-1][0] == ("upheld" if won["state"] == "void" else "rejected")
    mine = (await client.get(f"/api/v1/me/ratings/{other['id']}", headers=me)).json()
    assert mine["counted"] is (won["state"] != "void")
