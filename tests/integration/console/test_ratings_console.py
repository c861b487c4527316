"""The console's 好差评 page and the dashboard's ratings panel: any signed-in operator reads the statistics
(ranked by unit, and their CSV), the cases (overdue ones on their own) and the units; an admin decides a
unit's appeal, verifies and answers a department unit's case for it and adds a department, through the
evaluation centre's services (audited under the operator's name); a read-only operator changes nothing.
The dashboard's panel is this month's figures, computed at most every 30 s whatever the frames."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from backend.clock import FrozenClock
from backend.tables import AuditEvent
from messages.services import PLATFORM
from tests.integration.messages.citizen import inbox
from tests.integration.ratings.flow import Place

pytestmark = pytest.mark.storage
MONDAY = datetime(2026, 9, 28, 3, 0, tzinfo=UTC)  # 11:00 in Shenyang; National Day holiday next week


@pytest.fixture
async def place(make_client, login, new_phone, enrol_scanner):
    clock = FrozenClock(MONDAY)
    async with make_client(clock=clock, access_token_ttl=60 * 86400) as client:
        yield await Place(client, clock, login, new_phone).setup(enrol_scanner)


async def _rated(place: Place, level: str, **extra) -> tuple[dict[str, str], dict]:
    me = await place.citizen()
    event = await place.stay(me)
    r = await place.rate(me, event["id"], level, **extra)
    assert r.status_code == 201, r.text
    return me, r.json()


async def _department_rating(place: Place, code: str, level: str) -> tuple[dict[str, str], dict]:
    """A citizen who had a platform service at a department unit (a paid order is the platform's one
    rateable service today), rated through the API."""
    me = await place.citizen()
    citizen = (await place.client.get("/api/v1/me", headers=me)).json()["id"]
    event_id, _ = await place.client.services.ratings.centre.record(
        PLATFORM, "payment", citizen, f"test:{code}:{citizen}", unit=code
    )
    r = await place.rate(me, event_id, level, comment="窗口让我跑了三次")
    assert r.status_code == 201, r.text
    return me, r.json()


async def _audited(action: str) -> list[str]:
    rows = await AuditEvent.select().where(AuditEvent.action == action).order_by(AuditEvent.at)
    return [r["actor_id"] for r in rows]


async def test_any_operator_reads_the_statistics_the_csv_and_the_cases_overdue_ones_apart(
    place, console_login
):
    client = place.client
    assert (await client.get("/admin/ratings/stats")).status_code == 401
    assert (await client.get("/admin/ratings", follow_redirects=False)).headers["location"] == "/admin/"
    await _rated(place, "very_satisfied")
    await _rated(place, "satisfied")
    _, bad = await _rated(place, "very_dissatisfied", comment="出口排队半小时")
    await console_login(client, "watcher", "readonly")

    page = await client.get("/admin/ratings")
    assert page.status_code == 200 and 'src="/static/web/ratings.js"' in page.text
    stats = (await client.get("/admin/ratings/stats")).json()
    assert (stats["by"], stats["month_from"], stats["month_to"]) == ("unit", "2026-09", "2026-09")
    (row,) = stats["rows"]
    assert (row["key"], row["name"], row["rank"], row["ratings"], row["bad"]) == (
        "parking/parking",
        "好停车",
        1,
        3,
        1,
    )
    assert row["satisfaction_rate"] == 0.6667 and row["cases"] == 1
    # the same figures as the operators' API, which a machine credential reads
    api = (await client.get("/api/v1/admin/ratings/stats", headers=place.operator)).json()
    assert api["rows"] == stats["rows"]
    english = (await client.get("/admin/ratings/stats", headers={"Accept-Language": "en"})).json()
    assert english["rows"][0]["name"] == "Parking"
    by_month = (
        await client.get("/admin/ratings/stats", params={"by": "month", "month_from": "2026-08"})
    ).json()
    assert (by_month["month_from"], by_month["month_to"]) == ("2026-08", "2026-08")
    assert by_month["rows"] == []
    r = await client.get("/admin/ratings/stats", params={"month_from": "2026-10", "month_to": "2026-09"})
    assert r.status_code == 422 and r.json()["code"] == "invalid_month"

    csv = await client.get("/admin/ratings/stats.csv", params={"by": "unit", "month_from": "2026-09"})
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert csv.headers["content-disposition"] == 'attachment; filename="ratings-unit-2026-09-2026-09.csv"'
    lines = csv.content.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("key,name,rank,ratings") and lines[1].startswith("parking/parking,好停车,1,3,")
    assert "66.67%" in lines[1]

    cases = (await client.get("/admin/ratings/cases")).json()
    (case,) = cases["items"]
    assert (case["id"], case["state"], case["overdue"]) == (bad["case"]["id"], "open", False)
    assert (await client.get("/admin/ratings/cases", params={"overdue": "true"})).json()["items"] == []
    detail = (await client.get(f"/admin/ratings/cases/{case['id']}")).json()
    assert detail["rating"]["comment"] == "出口排队半小时" and detail["rating"]["rater"].startswith("r_")
    assert [s["action"] for s in detail["steps"]] == ["opened"]
    # past the deadline (15 working days, across the National Day holiday) it is overdue
    place.clock.set(datetime(2026, 10, 24, 3, 0, tzinfo=UTC))
    (late,) = (await client.get("/admin/ratings/cases", params={"overdue": "true"})).json()["items"]
    assert late["id"] == case["id"] and late["overdue"] is True
    assert (await client.get("/admin/ratings/cases", params={"state": "answered"})).json()["items"] == []
    units = {u["unit_id"] for u in (await client.get("/admin/ratings/units")).json()}
    assert {"parking/parking", "platform/payments"} <= units


async def test_a_readonly_operator_and_a_forged_request_change_nothing(place, console_login):
    client = place.client
    _, bad = await _rated(place, "dissatisfied")
    case = bad["case"]["id"]
    headers = await console_login(client, "watcher", "readonly")
    for path, body in (
        (f"/admin/ratings/cases/{case}/verify", {"note": ""}),
        (f"/admin/ratings/cases/{case}/appeal-decision", {"uphold": True}),
        ("/admin/ratings/units", {"code": "traffic", "name_zh": "交警支队", "name_en": "Traffic police"}),
    ):
        r = await client.post(path, json=body, headers=headers)
        assert r.status_code == 403 and r.json()["code"] == "read_only", (path, r.text)
    admin = await console_login(client, "chief", "admin")
    r = await client.post(f"/admin/ratings/cases/{case}/appeal-decision", json={"uphold": True})
    assert r.status_code == 403 and r.json()["code"] == "csrf_failed"
    r = await client.post(
        "/admin/ratings/units", json={"code": "Bad Code", "name_zh": "x", "name_en": "x"}, headers=admin
    )
    assert r.status_code == 400 and r.json()["code"] == "invalid_body"
    r = await client.post(
        "/admin/ratings/units",
        json={"code": "traffic", "name_zh": "交警支队", "name_en": "Traffic police", "district": "999999"},
        headers=admin,
    )
    assert r.status_code == 422 and r.json()["code"] == "invalid_district"
    detail = (await client.get(f"/admin/ratings/cases/{case}")).json()
    assert detail["state"] == "open" and [s["action"] for s in detail["steps"]] == ["opened"]
    assert "platform/traffic" not in {u["unit_id"] for u in (await client.get("/admin/ratings/units")).json()}


async def test_an_admin_adds_a_department_and_answers_its_case_for_it(place, console_login):
    client = place.client
    admin = await console_login(client, "chief", "admin")
    r = await client.post(
        "/admin/ratings/units",
        json={
            "code": "civic-centre",
            "name_zh": "市政务服务中心",
            "name_en": "City service centre",
            "district": "210102",
        },
        headers=admin,
    )
    assert r.status_code == 201, r.text
    assert r.json() == {
        "unit_id": "platform/civic-centre",
        "owner": "platform",
        "name_zh": "市政务服务中心",
        "name_en": "City service centre",
        "district": "210102",
    }
    assert await _audited("rating_unit_saved") == ["chief"]
    me, rated = await _department_rating(place, "civic-centre", "dissatisfied")
    case = rated["case"]["id"]

    r = await client.post(f"/admin/ratings/cases/{case}/verify", json={"note": "核实属实"}, headers=admin)
    assert r.status_code == 200 and r.json()["state"] == "rectifying", r.text
    r = await client.post(f"/admin/ratings/cases/{case}/verify", json={"note": ""}, headers=admin)
    assert r.status_code == 409 and r.json()["code"] == "case_state"
    assert "整改中" in r.json()["detail"]  # in the operator's language
    r = await client.post(
        f"/admin/ratings/cases/{case}/answer",
        json={"outcome": "rectified", "text": "已增设导办员，一次办结。"},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    assert (r.json()["state"], r.json()["outcome"], r.json()["on_time"]) == ("answered", "rectified", True)
    detail = (await client.get(f"/admin/ratings/cases/{case}")).json()
    steps = [(s["action"], s["actor_kind"], s["actor_id"]) for s in detail["steps"]]
    assert steps == [
        ("opened", "citizen", ""),
        ("verified", "operator", "chief"),
        ("answered", "operator", "chief"),
    ]
    assert await _audited("rating_case_verified") == ["chief"]
    assert await _audited("rating_case_answered") == ["chief"]
    # the rater reads the answer in the app and in the inbox, and may call back
    mine = (await client.get(f"/api/v1/me/ratings/{rated['id']}", headers=me)).json()
    assert mine["case"]["answer"] == "已增设导办员，一次办结。"
    assert (await inbox(client, me))[0]["title"] == "您的评价已处理"

    # a mini-app's unit answers for itself: not here
    _, parked = await _rated(place, "very_dissatisfied")
    r = await client.post(f"/admin/ratings/cases/{parked['case']['id']}/verify", json={}, headers=admin)
    assert r.status_code == 404 and r.json()["code"] == "rating_case_not_found"
    r = await client.post(
        f"/admin/ratings/cases/{parked['case']['id']}/answer",
        json={"outcome": "explained", "text": "x"},
        headers=admin,
    )
    assert r.status_code == 404
    assert (await client.get(f"/admin/ratings/cases/{parked['case']['id']}")).json()["state"] == "open"


async def test_an_admin_rejects_an_appeal_then_upholds_the_next(place, console_login):
    client = place.client
    admin = await console_login(client, "chief", "admin")
    _, first = await _rated(place, "very_dissatisfied", comment="不好")
    _, second = await _rated(place, "dissatisfied")
    for rated in (first, second):
        r = await client.post(
            f"/api/v1/ratings/cases/{rated['case']['id']}/appeal",
            json={"reason": "malicious", "text": "该车辆当日未进场"},
            headers=place.parking,
        )
        assert r.status_code == 200 and r.json()["state"] == "appealed", r.text
    appealed = (await client.get("/admin/ratings/cases", params={"state": "appealed"})).json()["items"]
    assert {c["id"] for c in appealed} == {first["case"]["id"], second["case"]["id"]}

    r = await client.post(
        f"/admin/ratings/cases/{first['case']['id']}/appeal-decision",
        json={"uphold": False, "note": "证据不足"},
        headers=admin,
    )
    assert r.status_code == 200 and (r.json()["state"], r.json()["appeal_decision"]) == ("open", "rejected")
    r = await client.post(
        f"/admin/ratings/cases/{second['case']['id']}/appeal-decision",
        json={"uphold": True, "note": "监控显示未进场"},
        headers=admin,
    )
    assert r.status_code == 200 and (r.json()["state"], r.json()["appeal_decision"]) == ("void", "upheld")
    r = await client.post(
        f"/admin/ratings/cases/{second['case']['id']}/appeal-decision", json={"uphold": False}, headers=admin
    )
    assert r.status_code == 409 and r.json()["code"] == "case_state"
    assert await _audited("rating_appeal_decided") == ["chief", "chief"]
    (row,) = (await client.get("/admin/ratings/stats")).json()["rows"]
    assert (row["ratings"], row["bad"], row["appeals_upheld"]) == (1, 1, 1)  # the upheld one is out


async def test_the_dashboard_panel_is_this_months_and_computed_at_most_every_30_seconds(place, console_login):
    client = place.client
    await console_login(client, "watcher", "readonly")
    dashboard = client.services.console.dashboard
    empty = (await client.get("/admin/dashboard/frame")).json()["ratings"]
    assert empty == {
        "month": "2026-09",
        "at": int(place.clock.time()),
        "ratings": 0,
        "good": 0,
        "bad": 0,
        "satisfaction_rate": None,
        "open_cases": 0,
        "overdue_cases": 0,
        "top": [],
        "bottom": [],
    }
    await _rated(place, "very_satisfied")
    await _rated(place, "very_dissatisfied")  # each stay is an hour: the clock moved on
    dashboard._frame = None
    assert (await client.get("/admin/dashboard/frame")).json()["ratings"]["ratings"] == 2
    await _department_rating(place, "payments", "satisfied")
    dashboard._frame = None
    assert (await client.get("/admin/dashboard/frame")).json()["ratings"]["ratings"] == 2  # cached
    place.clock.advance(30)
    computed = dashboard.ratings.computed
    dashboard._frame = None
    panel = (await client.get("/admin/dashboard/frame")).json()["ratings"]
    assert dashboard.ratings.computed == computed + 1
    assert (panel["ratings"], panel["good"], panel["bad"], panel["satisfaction_rate"]) == (3, 2, 1, 0.6667)
    assert (panel["open_cases"], panel["overdue_cases"]) == (1, 0)
    assert [(u["unit"], u["name_zh"], u["name_en"], u["rank"]) for u in panel["top"]] == [
        ("platform/payments", "统一支付中心", "Unified payment centre", 1),
        ("parking/parking", "好停车", "Parking", 2),
    ]
    assert panel["bottom"] == []  # two units: both among the best three
    # many frames, viewers and seconds later: still the one computation
    for _ in range(5):
        place.clock.advance(5)
        dashboard._frame = None
        await client.get("/admin/dashboard/frame")
    assert dashboard.ratings.computed == computed + 1
    # past the deadline the open case counts as overdue, once the panel is computed again
    place.clock.set(datetime(2026, 10, 24, 3, 0, tzinfo=UTC))
    dashboard._frame = None
    panel = (await client.get("/admin/dashboard/frame")).json()["ratings"]
    assert (panel["open_cases"], panel["overdue_cases"], panel["month"]) == (1, 1, "2026-10")
    assert panel["ratings"] == 0  # a new month


async def test_the_panel_shows_the_best_three_and_the_worst_three_units(place, console_login):
    client = place.client
    centre = client.services.ratings.centre
    admin = await console_login(client, "chief", "admin")
    levels = ["very_satisfied", "satisfied", "basically_satisfied", "dissatisfied", "very_dissatisfied"]
    me = await place.citizen()  # one citizen who had each service (each event is rated once)
    citizen = (await client.get("/api/v1/me", headers=me)).json()["id"]
    # seven departments, the n-th with n good ratings out of 6 (the first one none)
    for n in range(7):
        code = f"dept-{n}"
        r = await client.post(
            "/admin/ratings/units",
            json={"code": code, "name_zh": f"部门{n}", "name_en": f"Department {n}"},
            headers=admin,
        )
        assert r.status_code == 201, r.text
        for i in range(6):
            event_id, _ = await centre.record(PLATFORM, "payment", citizen, f"t:{code}:{i}", unit=code)
            level = levels[0] if i < n else levels[4]
            assert (await place.rate(me, event_id, level)).status_code == 201
    panel = await client.services.console.dashboard.ratings.figures()
    assert panel["ratings"] == 42 and panel["bad"] == 42 - sum(min(n, 6) for n in range(7))
    assert [u["unit"] for u in panel["top"]] == ["platform/dept-6", "platform/dept-5", "platform/dept-4"]
    assert [u["unit"] for u in panel["bottom"]] == ["platform/dept-0", "platform/dept-1", "platform/dept-2"]
    assert [u["rank"] for u in panel["bottom"]] == [7, 6, 5]
    assert panel["open_cases"] == panel["bad"]


async def test_the_panel_keeps_its_last_figures_while_they_cannot_be_computed(place, monkeypatch):
    panel = place.client.services.console.dashboard.ratings
    first = await panel.figures()
    assert first is not None and first["ratings"] == 0

    async def away(*args, **kwargs):
        raise ConnectionError("the database is away")

    monkeypatch.setattr(place.client.services.ratings.stats, "compute", away)
    place.clock.advance(31)
    assert await panel.figures() == first  # the dashboard goes on with the last figures
