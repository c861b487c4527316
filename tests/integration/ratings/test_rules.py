"""The rules of rating, as the citizen, the unit and operators meet them: once per event, only by its
citizen, only within its window, on its channel's indicators; many tries at once make one rating; a case
past its deadline is escalated; a unit sees only its own cases; a paid order is rateable; the hospital's
old ratings moved to the centre; a deleted account leaves the statistics whole."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from miniapps.hospital.tables import Hospital, Visit
from ratings import calendar
from ratings.tables import Rating, RatingCase, RatingCaseStep, RatingEvent
from tests.conftest import basic_auth
from tests.integration.messages.citizen import inbox

pytestmark = pytest.mark.storage
# Wednesday 25 November 2026, 16:00 China time
START = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


@pytest.fixture
async def place(open_place):
    async with open_place(START) as place:
        yield place


async def test_a_service_is_rated_once_by_its_citizen_within_its_window(place):
    client = place.client
    me, stranger = await place.citizen(), await place.citizen()
    event = await place.stay(me)

    r = await place.rate(stranger, event["id"], "very_dissatisfied")
    assert r.status_code == 403 and r.json()["code"] == "not_your_event"
    assert (await client.get(f"/api/v1/me/ratings/events/{event['id']}", headers=stranger)).status_code == 403
    r = await place.rate(me, str(uuid.uuid4()), "satisfied")
    assert r.status_code == 404 and r.json()["code"] == "rating_event_not_found"
    r = await place.rate(me, "not-an-id", "satisfied")
    assert r.status_code == 404
    r = await place.rate(me, event["id"], "satisfied", indicators={"usability": "satisfied"})
    assert r.status_code == 422 and r.json()["code"] == "unknown_indicator"  # an online indicator
    r = await place.rate(me, event["id"], "satisfied", comment="好\u202e评")
    assert r.status_code == 422 and r.json()["code"] == "invalid_rating_text"
    r = await place.rate(me, event["id"], "excellent")
    assert r.status_code == 400 and r.json()["code"] == "invalid_body"
    # none of that rated it
    pending = (await client.get("/api/v1/me/ratings/pending", headers=me)).json()["items"]
    assert [e["id"] for e in pending] == [event["id"]]
    assert await Rating.count().run() == 0

    r = await place.rate(me, event["id"], "satisfied", indicators={"attitude": "very_satisfied"})
    assert r.status_code == 201, r.text
    r = await place.rate(me, event["id"], "very_dissatisfied")
    assert r.status_code == 409 and r.json()["code"] == "already_rated"
    assert await Rating.count().run() == 1 and await RatingCase.count().run() == 0

    late = await place.stay(me, "辽A99999")
    place.clock.advance(15 * 86400 + 1)  # the stay's window is 15 days
    assert (await client.get("/api/v1/me/ratings/pending", headers=me)).json()["items"] == []
    r = await place.rate(me, late["id"], "dissatisfied")
    assert r.status_code == 410 and r.json()["code"] == "rating_window_closed"
    mine = (await client.get("/api/v1/me/ratings", headers=me)).json()["items"]
    assert [m["level"] for m in mine] == ["satisfied"]


async def test_many_tries_at_once_make_one_rating_and_one_case(place):
    me = await place.citizen()
    event = await place.stay(me)
    answers = await asyncio.gather(*(place.rate(me, event["id"], "dissatisfied") for _ in range(20)))
    assert sorted(a.status_code for a in answers) == [201] + [409] * 19
    assert await Rating.count().where(Rating.event == uuid.UUID(event["id"])).run() == 1
    assert await RatingCase.count().run() == 1


async def test_a_case_past_its_deadline_is_escalated_and_answered_late(place):
    client = place.client
    me = await place.citizen()
    rated = (await place.rate(me, (await place.stay(me))["id"], "very_dissatisfied")).json()
    case = rated["case"]
    # 15 working days from Wednesday 25 November: Wednesday 16 December, China time
    assert case["deadline"] == "2026-12-16T16:00:00Z"
    cases = client.services.ratings.cases
    assert (await cases.tick())["escalated"] == 0
    place.clock.set(datetime(2026, 12, 16, 15, 59, tzinfo=UTC))
    assert (await cases.tick())["escalated"] == 0
    place.clock.advance(60)
    assert (await cases.tick())["escalated"] == 1
    assert (await cases.tick())["escalated"] == 0  # once
    overdue = (
        await client.get("/api/v1/admin/ratings/cases", params={"overdue": "true"}, headers=place.operator)
    ).json()["items"]
    assert [c["id"] for c in overdue] == [case["id"]] and overdue[0]["escalated_at"] is not None

    r = await client.post(
        f"/api/v1/ratings/cases/{case['id']}/answer",
        json={"outcome": "explained", "text": "收费标准依据物价部门核准执行。"},
        headers=place.parking,
    )
    assert r.status_code == 200 and r.json()["on_time"] is False
    steps = (await client.get(f"/api/v1/admin/ratings/cases/{case['id']}", headers=place.operator)).json()
    assert [s["action"] for s in steps["steps"]] == ["opened", "escalated", "answered"]
    # the rater never called back: a week later the case closes by itself
    place.clock.advance(7 * 86400)
    assert (await cases.tick())["closed"] == 1
    mine = (await client.get(f"/api/v1/me/ratings/{rated['id']}", headers=me)).json()
    assert mine["case"]["state"] == "closed" and mine["case"]["callback"] is None
    [row] = (
        await client.get(
            "/api/v1/admin/ratings/stats", params={"month_from": "2026-11"}, headers=place.operator
        )
    ).json()["rows"]
    assert (row["answered"], row["rectified"], row["explained"], row["on_time"]) == (1, 0, 1, 0)
    assert row["on_time_rate"] == 0.0 and row["feedback_rate"] == 1.0


async def test_a_provisional_deadline_is_fixed_once_the_calendar_knows_the_year(place, monkeypatch):
    client = place.client
    me = await place.citizen()
    place.clock.set(datetime(2026, 12, 21, 2, tzinfo=UTC))  # 15 working days reach into 2027
    case = (await place.rate(me, (await place.stay(me))["id"], "dissatisfied")).json()["case"]
    view = (await client.get(f"/api/v1/ratings/cases/{case['id']}", headers=place.parking)).json()
    assert view["deadline_exact"] is False
    # the package learns 2027 (here: a made-up notice making 4 January 2027 a holiday too)
    real = calendar._known

    def known(day):
        if day.year == 2027:
            return day.weekday() < 5 and day != datetime(2027, 1, 4).date() and day.day != 1
        return real(day)

    monkeypatch.setattr(calendar, "_known", known)
    assert (await client.services.ratings.cases.tick())["redated"] == 1
    view = (await client.get(f"/api/v1/ratings/cases/{case['id']}", headers=place.parking)).json()
    assert view["deadline_exact"] is True
    assert view["deadline"] == "2027-01-13T16:00:00Z"  # two days later than the weekday count


async def test_a_unit_sees_and_moves_only_its_own_cases(place, shengshi_cli):
    client = place.client
    me = await place.citizen()
    case = (await place.rate(me, (await place.stay(me))["id"], "dissatisfied")).json()["case"]
    r = await client.post(
        "/api/v1/admin/ratings/units",
        json={"code": "traffic", "name_zh": "沈阳市交通局", "name_en": "Shenyang Transport Bureau"},
        headers=place.operator,
    )
    assert r.status_code == 201 and r.json()["unit_id"] == "platform/traffic", r.text
    machines = client.services.auth.machines
    traffic = basic_auth(await machines.create("unit", app_id="platform/traffic", name="交通局系统"))
    tourism = basic_auth(await machines.create("miniapp", app_id="tourism", name="好游玩后台"))
    for other in (traffic, tourism):
        assert (await client.get("/api/v1/ratings/cases", headers=other)).json()["items"] == []
        r = await client.get(f"/api/v1/ratings/cases/{case['id']}", headers=other)
        assert r.status_code == 404 and r.json()["code"] == "rating_case_not_found"
        r = await client.post(
            f"/api/v1/ratings/cases/{case['id']}/answer",
            json={"outcome": "rectified", "text": "不是我们的"},
            headers=other,
        )
        assert r.status_code == 404
    gate = await client.get("/api/v1/ratings/cases", headers=place.entry["headers"])
    assert gate.status_code == 401 and gate.json()["code"] == "wrong_client_kind"  # a scanner is no unit
    assert (await client.get("/api/v1/ratings/cases", headers=me)).status_code == 401
    r = await client.post(
        f"/api/v1/admin/ratings/cases/{case['id']}/appeal-decision",
        json={"uphold": True},
        headers=place.parking,
    )
    assert r.status_code == 401 and r.json()["code"] == "wrong_client_kind"  # operators decide appeals
    r = await client.post(
        f"/api/v1/admin/ratings/cases/{case['id']}/appeal-decision",
        json={"uphold": True},
        headers=place.operator,
    )
    assert r.status_code == 409 and r.json()["code"] == "case_state"  # nothing was appealed
    assert (await RatingCase.select(RatingCase.state).first().run())["state"] == "open"
    assert await RatingCaseStep.count().run() == 1


async def test_a_paid_order_can_be_rated_without_an_invitation(place):
    client = place.client
    me = await place.citizen()
    event = await place.stay(me)
    orders = (await client.get("/api/v1/me/orders", headers=me)).json()["items"]
    [order] = orders
    assert order["state"] == "created", order
    paid = await client.post(f"/api/v1/payments/sandbox/orders/{order['order_id']}/pay", headers=me)
    assert paid.json()["state"] == "paid"
    dispatcher = client.services.payments.webhooks  # one round of the order events' dispatch
    await dispatcher.tick()
    await dispatcher.drain()
    pending = (await client.get("/api/v1/me/ratings/pending", headers=me)).json()["items"]
    assert {e["service"] for e in pending} == {"parking.stay", "platform.payment"}
    payment = next(e for e in pending if e["service"] == "platform.payment")
    assert payment["channel"] == "online" and payment["unit_name"] == "统一支付中心"
    assert [i["name"] for i in payment["indicators"]][:2] == ["overall", "efficiency"]
    titles = [m["title"] for m in await inbox(client, me)]
    assert titles.count("邀评") == 0 and sum(t.startswith("邀您评价") for t in titles) == 1
    assert event["id"] in {e["id"] for e in pending}


async def test_the_hospital_s_old_ratings_moved_to_the_centre(place):
    client = place.client
    hospital_app = client.services.miniapps.apps["hospital"]
    await hospital_app.seed_demo()
    me = await place.citizen()
    openid = await client.services.auth.pairwise.issue("hospital", await _citizen_id(client, me))
    h = await Hospital.select(Hospital.id).where(Hospital.code == "H-SHENGJING").first().run()
    old = []
    for rating, comment in (("good", "耐心"), ("bad", "排队太久"), ("average", "")):
        visit = uuid.uuid4()
        await Visit.insert(
            Visit(
                id=visit,
                hospital=h["id"],
                openid=openid,
                started_at=START - timedelta(days=30),
                billed_at=START - timedelta(days=30),
                state="paid",
                rating=rating,
                rating_comment=comment,
                check_in_record=f"old/{visit}",
            )
        ).run()
        old.append(visit)
    await hospital_app.startup()
    await hospital_app.startup()  # a second worker starting: nothing moves twice
    mine = (await client.get("/api/v1/me/ratings", headers=me)).json()["items"]
    assert sorted(m["level"] for m in mine) == ["basically_satisfied", "dissatisfied", "satisfied"]
    assert {m["unit_name"] for m in mine} == {"中国医科大学附属盛京医院"}
    assert all(m["case"] is None for m in mine)  # history opens no case
    assert await Visit.count().where(Visit.rating != "").run() == 0
    assert await RatingEvent.count().where(RatingEvent.service == "hospital.visit").run() == 3
    [row] = (
        await client.get(
            "/api/v1/admin/ratings/stats",
            params={"by": "service", "month_from": "2026-10"},
            headers=place.operator,
        )
    ).json()["rows"]
    assert row["key"] == "hospital.visit" and (row["ratings"], row["bad"]) == (3, 1)


async def test_a_deleted_account_leaves_its_ratings_counted_and_its_cases_answerable(place):
    client = place.client
    me = await place.citizen()
    rated = (await place.rate(me, (await place.stay(me))["id"], "dissatisfied")).json()
    unrated = await place.stay(me, "辽A77777")
    assert (await client.delete("/api/v1/me", headers=me)).status_code == 204
    assert await RatingEvent.count().where(RatingEvent.id == uuid.UUID(unrated["id"])).run() == 0
    assert await Rating.count().where(Rating.citizen_id != "").run() == 0
    r = await client.post(
        f"/api/v1/ratings/cases/{rated['case']['id']}/answer",
        json={"outcome": "rectified", "text": "已整改"},
        headers=place.parking,
    )
    assert r.status_code == 200, r.text
    detail = (await client.get(f"/api/v1/ratings/cases/{rated['case']['id']}", headers=place.parking)).json()
    assert detail["rating"]["rater"] == ""
    [row] = (
        await client.get(
            "/api/v1/admin/ratings/stats", params={"month_from": "2026-11"}, headers=place.operator
        )
    ).json()["rows"]
    assert (row["ratings"], row["cases"], row["answered"]) == (1, 1, 1)


async def _citizen_id(client, me):
    return (await client.get("/api/v1/me", headers=me)).json()["id"]


def test_the_calendar_counts_holidays_and_adjusted_working_days():
    monday = datetime(2026, 9, 28, 3, tzinfo=UTC)
    assert calendar.add_working_days(monday, 15) == (datetime(2026, 10, 23, 16, tzinfo=UTC), True)
    assert calendar.is_workday(datetime(2026, 10, 10).date()) == (True, True)  # a Saturday made a working day
    assert calendar.is_workday(datetime(2026, 10, 5).date()) == (False, True)  # National Day
    late = calendar.add_working_days(datetime(2026, 12, 21, 2, tzinfo=UTC), 15)
    assert late[1] is False  # 2027 is not known to the calendar yet


async def test_a_case_is_appealed_once(place):
    client = place.client
    me = await place.citizen()
    case = (await place.rate(me, (await place.stay(me))["id"], "dissatisfied")).json()["case"]
    appeal = {"reason": "false", "text": "该时段无此车辆出场记录"}
    url = f"/api/v1/ratings/cases/{case['id']}"
    assert (await client.post(f"{url}/appeal", json=appeal, headers=place.parking)).status_code == 200
    r = await client.post(
        f"/api/v1/admin/ratings/cases/{case['id']}/appeal-decision",
        json={"uphold": False, "note": "出场记录显示该车辆当日出场"},
        headers=place.operator,
    )
    assert r.status_code == 200 and r.json()["state"] == "open"
    again = await client.post(f"{url}/appeal", json=appeal, headers=place.parking)
    assert again.status_code == 409 and again.json()["code"] == "already_appealed"
    assert again.json()["detail"] == "此差评工单已申诉过一次（申诉未获支持），请整改或作出解释"
    answered = await client.post(
        f"{url}/answer", json={"outcome": "rectified", "text": "已核对并致歉"}, headers=place.parking
    )
    assert answered.status_code == 200 and answered.json()["state"] == "answered"
