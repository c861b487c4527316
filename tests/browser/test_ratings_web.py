"""好差评 in a real browser: the dashboard's panel shows this month's figures of ratings given through the
public API; a citizen rates a car park stay dissatisfied in the wallet (/wallet#ratings, the invitation's
link), sees the case open, then — after the unit answered through its own API — the answer, and calls
back; an operator reads the statistics and their CSV, adds a department and rejects a unit's appeal on
the console's 好差评 page, which a read-only operator only reads.

The server is seeded like ``make run``: the demo citizen's bad rating of a payment, answered by the
payment centre's unit, is among this month's figures."""

import time

import httpx
import pytest

from tests.browser.test_web import CJK, _no_internet, _until, _wallet_sign_in

pytestmark = [pytest.mark.storage, pytest.mark.browser]
PARK = "P-ZHONGJIE"


def _code(web, me: dict[str, str]) -> str:
    r = httpx.get(f"{web.url}/api/v1/codes/current", headers=me, timeout=10)
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


def _scan(web, scanner, token: str, plate: str) -> dict:
    r = httpx.post(
        f"{web.url}/api/v1/scans",
        json={"token": token, "meta": {"plate": plate}},
        auth=(scanner["client_id"], scanner["client_secret"]),
        timeout=10,
    )
    assert r.status_code == 200, r.text
    assert r.json()["result"] == "allow", r.json()
    return dict(r.json())


def _stays(web, people: list[dict[str, str]], plates: list[str]) -> list[dict]:
    """Each citizen drives into the demo car park and out again (a new code for the exit: a code is used
    once at each kind of gate); the stay is over and rateable. Their pending events."""
    entry = web.scanner("parking", PARK, "parking-entry", "好差评 入口")
    leave = web.scanner("parking", PARK, "parking-exit", "好差评 出口")
    shown = [_code(web, me) for me in people]
    for token, plate in zip(shown, plates, strict=True):
        _scan(web, entry, token, plate)
    for me, token, plate in zip(people, shown, plates, strict=True):
        deadline = time.monotonic() + 15
        while (fresh := _code(web, me)) == token:  # the wallet's next code (every few seconds here)
            assert time.monotonic() < deadline, "no new code"
            time.sleep(0.5)
        _scan(web, leave, fresh, plate)
    events = []
    for me in people:
        (event,) = httpx.get(f"{web.url}/api/v1/me/ratings/pending", headers=me, timeout=10).json()["items"]
        assert event["service"] == "parking.stay"
        events.append(event)
    return events


def _rate(web, me: dict[str, str], event: dict, level: str, **extra) -> dict:
    r = httpx.post(
        f"{web.url}/api/v1/me/ratings", json={"event_id": event["id"], "level": level, **extra}, headers=me
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def _basic(cred: dict) -> tuple[str, str]:
    return cred["client_id"], cred["client_secret"]


def test_the_dashboard_shows_this_months_ratings(web, browser, console_sign_in, screenshots):
    people = [web.citizen(phone) for phone in ("13300000201", "13300000202", "13300000203")]
    events = _stays(web, people, ["辽A20001", "辽A20002", "辽A20003"])
    for me, event, level in zip(
        people, events, ("very_satisfied", "satisfied", "very_dissatisfied"), strict=True
    ):
        _rate(web, me, event, level)
    # what the operators' API says (a machine credential): the dashboard must say the same
    operator = _basic(web.cli("operators", "add", "好差评办", "--json"))
    stats = httpx.get(f"{web.url}/api/v1/admin/ratings/stats", auth=operator, timeout=10).json()
    by_unit = {r["key"]: r for r in stats["rows"]}
    assert by_unit["parking/parking"]["ratings"] == 3
    assert by_unit["platform/payments"]["bad"] == 1  # the demo citizen's, answered by the unit
    total = sum(r["ratings"] for r in stats["rows"])
    good = sum(r["good"] for r in stats["rows"])
    cases = httpx.get(
        f"{web.url}/api/v1/admin/ratings/cases", params={"limit": 100}, auth=operator, timeout=10
    ).json()["items"]
    waiting = [c for c in cases if c["state"] in ("open", "rectifying")]
    assert (total, good, len(waiting)) == (4, 2, 1)

    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN")
    page = context.new_page()
    outside = _no_internet(page)
    console_sign_in(page, "watcher")
    page.goto(f"{web.url}/admin/dashboard")
    _until(lambda: page.text_content("#rt-ratings") != "–", 15, "the ratings panel")
    assert page.text_content("#rt-ratings") == str(total)
    assert page.text_content("#rt-bad") == "2"
    assert page.text_content("#rt-satisfaction") == f"{100 * good / total:.1f}%" == "50.0%"
    assert (page.text_content("#rt-open"), page.text_content("#rt-overdue")) == ("1", "0")
    assert page.text_content("#rt-month") == stats["month_from"]
    top = page.locator("#rt-top li")
    assert [top.nth(i).get_attribute("data-unit") for i in range(top.count())] == [
        "parking/parking",
        "platform/payments",
    ]
    assert top.nth(0).text_content() == "1. 好停车66.7%"
    assert page.text_content("#rt-bottom") == "暂无"  # two units: both among the best three
    if screenshots:
        page.locator("#ratings-panel").screenshot(path=str(screenshots / "dashboard-ratings.png"))
    page.click("#lang")
    _until(lambda: page.text_content("#rt-top li") == "1. Parking66.7%", 5, "the units in English")
    assert not CJK.search(page.text_content("#ratings-panel"))
    assert outside == []
    context.close()


def test_a_citizen_rates_a_stay_badly_in_the_wallet_and_calls_back_on_the_answer(web, browser, screenshots):
    phone = "13300000211"
    me = web.citizen(phone)
    (event,) = _stays(web, [me], ["辽A21111"])
    unit = _basic(
        web.cli("units", "credential", "--unit", "parking/parking", "--name", "好停车办件", "--json")
    )
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, locale="zh-CN"
    )
    page = context.new_page()
    outside = _no_internet(page)
    _wallet_sign_in(page, web, phone)

    # the invitation in the inbox links to the wallet's ratings
    invite = page.locator("#inbox li.msg", has_text="邀您评价：停车服务")
    invite.wait_for()
    invite.locator("a.msg-link").click()
    assert page.url.endswith("/wallet#ratings")
    item = page.locator(f"#pending-ratings li[data-event='{event['id']}']")
    item.wait_for()
    assert "停车服务" in item.text_content() and "好停车" in item.text_content()
    item.locator(".rate-open").click()
    form = item.locator(".rate-form")
    # the on-site service's indicators, as the server lists them
    aspects = [s.get_attribute("data-indicator") for s in form.locator("select[data-indicator]").all()]
    assert aspects == ["efficiency", "service_level", "attitude"]
    form.locator(".rate-submit").click()
    _until(lambda: form.locator(".error").text_content() == "请选择满意程度", 5, "a level asked for")
    form.locator("input[value=dissatisfied]").check()
    form.locator("select[data-indicator=attitude]").select_option("very_dissatisfied")
    form.locator("textarea.comment").fill("出口收费员态度差")
    form.locator(".rate-submit").click()

    # rated: it leaves the list to rate, and its case is open with the unit
    _until(lambda: page.text_content("#pending-ratings") == "暂无待评价的服务", 10, "nothing left to rate")
    mine = page.locator("#my-ratings li[data-rating]").first
    rating_id = mine.get_attribute("data-rating")
    assert mine.locator(".pill.level").text_content() == "不满意"
    assert mine.locator(".case-state").get_attribute("data-state") == "open"
    assert mine.locator(".case-state").text_content() == "待核实"
    assert "已转交好停车核实整改" in mine.text_content()
    assert "出口收费员态度差" in mine.locator(".rating-comment").text_content()
    seen = httpx.get(f"{web.url}/api/v1/me/ratings/{rating_id}", headers=me, timeout=10).json()
    assert seen["indicators"] == {"overall": "dissatisfied", "attitude": "very_dissatisfied"}
    case_id = seen["case"]["id"]

    # the unit verifies and answers through its own API; the answer reaches the open wallet by itself
    r = httpx.post(
        f"{web.url}/api/v1/ratings/cases/{case_id}/verify", json={"note": "查看监控属实"}, auth=unit
    )
    assert r.status_code == 200, r.text
    r = httpx.post(
        f"{web.url}/api/v1/ratings/cases/{case_id}/answer",
        json={"outcome": "rectified", "text": "已对该收费员批评教育，并开展文明服务培训。"},
        auth=unit,
    )
    assert r.status_code == 200, r.text
    answer = mine.locator(".answer")
    _until(lambda: answer.count() == 1, 15, "the unit's answer in the wallet")
    assert answer.text_content() == "单位答复（已整改）已对该收费员批评教育，并开展文明服务培训。"
    assert mine.locator(".case-state").text_content() == "已答复，待回访"
    if screenshots:
        page.locator("#ratings").screenshot(path=str(screenshots / "wallet-ratings.png"))

    # the call-back: satisfied with what the unit did
    callback = mine.locator(".callback-form")
    callback.locator("input[value=satisfied]").check()
    callback.locator("textarea.comment").fill("态度好多了")
    callback.locator(".callback-submit").click()
    _until(lambda: mine.locator(".case-state").get_attribute("data-state") == "closed", 10, "the case closed")
    assert mine.locator(".case-state").text_content() == "已办结"
    assert mine.locator(".callback-given").text_content() == "您的回访：满意"
    assert mine.locator(".callback-form").count() == 0
    closed = httpx.get(f"{web.url}/api/v1/me/ratings/{rating_id}", headers=me, timeout=10).json()["case"]
    assert (closed["state"], closed["callback"]) == ("closed", "satisfied")

    # in English: the wallet's words and the service's names (the rater's and the unit's own stay theirs)
    page.click("#lang")
    _until(lambda: mine.locator(".case-state").text_content() == "Closed", 10, "the ratings in English")
    assert page.text_content("#ratings h2") == "Rate our services"
    assert mine.locator(".card-head").text_content().startswith("Parking · Parking")
    assert mine.locator(".callback-given").text_content() == "Your view: Satisfied"
    assert page.text_content("#pending-ratings") == "Nothing to rate"
    words = page.text_content("#ratings")
    for own in ("出口收费员态度差", "已对该收费员批评教育，并开展文明服务培训。"):
        words = words.replace(own, "")
    assert not CJK.search(words), words
    assert outside == []
    context.close()


def test_an_operator_reads_the_statistics_adds_a_department_and_decides_an_appeal(
    web, browser, console_sign_in, screenshots
):
    me = web.citizen("13300000221")
    (event,) = _stays(web, [me], ["辽A22222"])
    rated = _rate(web, me, event, "very_dissatisfied", comment="车位指示灯坏了")
    parking = _basic(web.cli("miniapps", "credentials", "parking", "--json"))
    r = httpx.post(
        f"{web.url}/api/v1/ratings/cases/{rated['case']['id']}/appeal",
        json={"reason": "not_our_service", "text": "指示灯由商场物业负责"},
        auth=parking,
    )
    assert r.status_code == 200, r.text

    context = browser.new_context(viewport={"width": 1440, "height": 1000}, locale="zh-CN")
    page = context.new_page()
    outside = _no_internet(page)
    console_sign_in(page, "chief")
    page.goto(f"{web.url}/admin/ratings")
    page.wait_for_selector("body[data-ready=yes]")
    # the statistics: this month by unit, ranked, and the CSV of the same
    rows = page.locator("#stats tbody tr")
    keys = [rows.nth(i).get_attribute("data-key") for i in range(rows.count())]
    assert "parking/parking" in keys and "platform/payments" in keys
    parked = page.locator("#stats tbody tr[data-key='parking/parking'] td")
    assert parked.nth(1).text_content() == "好停车"
    csv = page.request.get(web.url + page.get_attribute("#csv", "href"))
    assert csv.status == 200 and "ratings-unit-" in csv.headers["content-disposition"]
    assert "parking/parking,好停车," in csv.text()
    page.select_option("#by", "district")
    _until(
        lambda: page.get_attribute("#csv", "href").startswith("/admin/ratings/stats.csv?by=district"),
        5,
        "csv",
    )

    # a department added: it is listed (and may be chosen among the units)
    page.fill("#unit-code", "traffic-police")
    page.fill("#unit-name-zh", "市公安局交通警察支队")
    page.fill("#unit-name-en", "Traffic Police Detachment")
    page.select_option("#unit-district", "210103")
    page.click("#unit-add")
    _until(
        lambda: page.locator("#units li[data-unit='platform/traffic-police']").count() == 1, 10, "the unit"
    )
    assert "沈河区" in page.text_content("#units li[data-unit='platform/traffic-police']")
    assert page.text_content("#units-note") == "已保存：platform/traffic-police"

    # the appeal: the unit says it was not its service; the operator rejects it and the case goes back
    page.select_option("#case-state", "appealed")
    row = page.locator(f"#cases tbody tr[data-id='{rated['case']['id']}']")
    row.wait_for()
    row.click()
    page.wait_for_selector("#appeal-form:not(.hidden)")
    assert "车位指示灯坏了" in page.text_content("#detail-facts")
    assert "非本单位服务" in page.text_content("#detail-facts")
    page.fill("#appeal-note", "车位引导属于停车服务")
    page.click("#reject")
    _until(lambda: page.get_attribute("#case-detail", "data-state") == "open", 10, "the appeal rejected")
    assert "申诉驳回" in page.text_content("#detail-steps")
    assert "chief" in page.text_content("#detail-steps")
    assert page.is_hidden("#appeal-form")
    assert page.is_hidden("#behalf")  # a mini-app's unit answers for itself
    if screenshots:
        page.screenshot(path=str(screenshots / "console-ratings.png"), full_page=True)
    case = httpx.get(
        f"{web.url}/api/v1/admin/ratings/cases/{rated['case']['id']}",
        auth=_basic(web.cli("operators", "add", "好差评复核", "--json")),
        timeout=10,
    ).json()
    assert (case["state"], case["appeal_decision"]) == ("open", "rejected")
    assert outside == []
    context.close()

    # a read-only operator reads the same page, with no form to change anything
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, locale="en-GB")
    page = context.new_page()
    console_sign_in(page, "watcher")
    page.goto(f"{web.url}/admin/ratings")
    page.wait_for_selector("body[data-ready=yes]")
    assert page.text_content("h1") == "Service ratings (好差评)"
    assert page.is_hidden("#unit-form")
    page.locator(f"#cases tbody tr[data-id='{rated['case']['id']}']").click()
    page.wait_for_selector("#case-detail:not(.hidden)")
    assert page.is_hidden("#appeal-form") and page.is_hidden("#behalf")
    context.close()
