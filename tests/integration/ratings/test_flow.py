"""好差评 end to end, through the public API: an exit scan invites the driver to rate the stay; a bad
rating opens a case whose deadline is 15 working days later (across the National Day holiday and its
adjusted working Saturday); the unit verifies and answers; the rater gets the answer in the inbox and
rates the fix; an appeal upheld takes a rating out of the statistics."""

from datetime import UTC, datetime

import pytest

from tests.integration.messages.citizen import inbox

pytestmark = pytest.mark.storage
# Monday 28 September 2026, 11:00 China time: 1-7 October is the National Day holiday, Saturday 10 October
# a working day; the 15th working day after today is Friday 23 October
MONDAY = datetime(2026, 9, 28, 3, 0, tzinfo=UTC)


@pytest.fixture
async def place(open_place):
    async with open_place(MONDAY) as place:
        yield place


async def test_a_bad_rating_is_answered_and_called_back(place):
    client = place.client
    me = await place.citizen()
    event = await place.stay(me)
    [invite] = await inbox(client, me)
    assert invite["title"] == "邀您评价：停车服务" and invite["link"] == "/wallet#ratings"
    assert event["service"] == "parking.stay" and event["state"] == "open"
    assert [i["name"] for i in event["indicators"]] == ["overall", "efficiency", "service_level", "attitude"]

    rated = await place.rate(
        me, event["id"], "dissatisfied", indicators={"attitude": "very_dissatisfied"}, comment="收费员态度差"
    )
    assert rated.status_code == 201, rated.text
    mine = rated.json()
    assert mine["level"] == "dissatisfied" and mine["level_text"] == "不满意"
    assert mine["indicators"] == {"attitude": "very_dissatisfied", "overall": "dissatisfied"}
    case = mine["case"]
    assert case["state"] == "open"
    assert case["deadline"] == "2026-10-23T16:00:00Z"  # the end of Friday 23 October, China time
    assert (await client.get("/api/v1/me/ratings/pending", headers=me)).json()["items"] == []

    # the unit (here the parking mini-app's backend) sees the case, the rater only as a handle
    cases = (await client.get("/api/v1/ratings/cases", headers=place.parking)).json()["items"]
    assert [c["id"] for c in cases] == [case["id"]]
    assert cases[0]["working_days_left"] == 15 and cases[0]["overdue"] is False
    detail = (await client.get(f"/api/v1/ratings/cases/{case['id']}", headers=place.parking)).json()
    assert detail["rating"]["comment"] == "收费员态度差"
    assert detail["rating"]["rater"].startswith("r_")
    assert "citizen" not in str(detail).lower() or "citizen_id" not in detail
    r = await client.post(
        f"/api/v1/ratings/cases/{case['id']}/verify", json={"note": "查看了监控"}, headers=place.parking
    )
    assert r.status_code == 200 and r.json()["state"] == "rectifying", r.text
    place.clock.advance(3 * 86400)
    r = await client.post(
        f"/api/v1/ratings/cases/{case['id']}/answer",
        json={"outcome": "rectified", "text": "已对收费员进行批评教育并培训。"},
        headers=place.parking,
    )
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "answered" and r.json()["on_time"] is True

    feedback = (await inbox(client, me))[0]
    assert feedback["title"] == "您的评价已处理"
    assert "已对收费员进行批评教育并培训。" in feedback["body"]
    seen = (await client.get(f"/api/v1/me/ratings/{mine['id']}", headers=me)).json()
    assert seen["case"]["answer"] == "已对收费员进行批评教育并培训。"
    assert [s["action"] for s in seen["case"]["steps"]] == ["opened", "verified", "answered"]
    assert "actor_id" not in seen["case"]["steps"][1]  # who at the unit did it is not the rater's business

    r = await client.post(
        f"/api/v1/me/ratings/{mine['id']}/callback", json={"level": "satisfied"}, headers=me
    )
    assert r.status_code == 200 and r.json()["case"]["state"] == "closed", r.text
    again = await client.post(
        f"/api/v1/me/ratings/{mine['id']}/callback", json={"level": "satisfied"}, headers=me
    )
    assert again.status_code == 409 and again.json()["code"] == "case_state"

    stats = await client.get(
        "/api/v1/admin/ratings/stats", params={"by": "unit", "month_from": "2026-09"}, headers=place.operator
    )
    assert stats.status_code == 200, stats.text
    [row] = stats.json()["rows"]
    assert row["key"] == "parking/parking" and row["rank"] == 1
    assert (row["ratings"], row["bad"], row["cases"], row["answered"], row["on_time"]) == (1, 1, 1, 1, 1)
    assert row["satisfaction_rate"] == 0.0 and row["feedback_rate"] == 1.0
    assert row["callback_satisfaction"] == 1.0


async def test_an_appeal_upheld_takes_the_rating_out_of_the_statistics(place):
    client = place.client
    good, bad = await place.citizen(), await place.citizen()
    r = await place.rate(good, (await place.stay(good, "辽A11111"))["id"], "very_satisfied")
    assert r.status_code == 201 and r.json()["case"] is None
    r = await place.rate(
        bad, (await place.stay(bad, "辽A22222"))["id"], "very_dissatisfied", comment="乱写的"
    )
    case = r.json()["case"]

    r = await client.post(
        f"/api/v1/ratings/cases/{case['id']}/appeal",
        json={"reason": "malicious", "text": "监控显示该车辆并未在场内发生纠纷"},
        headers=place.parking,
    )
    assert r.status_code == 200 and r.json()["state"] == "appealed", r.text

    async def unit_row():
        rows = (
            await client.get(
                "/api/v1/admin/ratings/stats", params={"month_from": "2026-09"}, headers=place.operator
            )
        ).json()["rows"]
        return next(x for x in rows if x["key"] == "parking/parking")

    assert (await unit_row())["satisfaction_rate"] == 0.5  # counted while the appeal waits
    r = await client.post(
        f"/api/v1/admin/ratings/cases/{case['id']}/appeal-decision",
        json={"uphold": True, "note": "核实为恶意差评"},
        headers=place.operator,
    )
    assert r.status_code == 200 and r.json()["state"] == "void", r.text
    row = await unit_row()
    assert (row["ratings"], row["bad"], row["cases"], row["appeals_upheld"]) == (1, 0, 0, 1)
    assert row["satisfaction_rate"] == 1.0
    mine = (await client.get(f"/api/v1/me/ratings/{r.json()['rating_id']}", headers=bad)).json()
    assert mine["counted"] is False and mine["case"]["state"] == "void"

    csv = await client.get(
        "/api/v1/admin/ratings/stats.csv", params={"month_from": "2026-09"}, headers=place.operator
    )
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    lines = csv.content.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("key,name,rank,ratings")
    assert lines[1].startswith("parking/parking,好停车,1,1,1,0,5.0,100.00%,0.00%")
