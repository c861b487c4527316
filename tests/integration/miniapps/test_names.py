"""The built-in mini-apps name things (lines, stations, car parks, departments, attractions) in one
language per answer: Chinese by default, English when the request's Accept-Language asks for it, with
both in ``name_zh`` / ``name_en`` as the catalogue gives its descriptions; never both in one string."""

import re
from datetime import UTC, datetime

import pytest

from backend.clock import FrozenClock
from miniapps.transit.tables import TransitStation
from payments.tables import PaymentOrder

pytestmark = pytest.mark.storage

CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")
LATIN = re.compile(r"[A-Za-z]")
EN = {"Accept-Language": "en-GB,en;q=0.9"}


def chinese_only(text: str) -> bool:
    """Chinese, with numbers at most: no Latin letters."""
    return bool(CJK.search(text)) and not LATIN.search(text)


def english_only(text: str) -> bool:
    return bool(LATIN.search(text)) and not CJK.search(text)


def check_names(item: dict, english: bool, field: str = "name") -> None:
    """``field`` is in the answer's language and both languages are there, each in one language."""
    zh, en = item[f"{field}_zh"], item[f"{field}_en"]
    assert chinese_only(zh) and english_only(en), item
    assert item[field] == (en if english else zh), item


@pytest.fixture
async def city(make_client, login, new_phone, enrol_scanner):
    clock = FrozenClock(datetime(2026, 11, 25, 0, 30, tzinfo=UTC))  # 08:30 in Shenyang
    async with make_client(clock=clock, access_token_ttl=30 * 86400) as client:
        apps = client.services.miniapps.apps
        for app_id in ("transit", "parking", "hospital", "tourism"):
            await apps[app_id].seed_demo()
        pair = await login(client, new_phone())
        me = {"Authorization": f"Bearer {pair['access_token']}"}

        async def scan(gate, headers=None):
            clock.advance(31)
            token = (await client.get("/api/v1/codes/current", headers=me)).json()["token"]
            r = await client.post(
                "/api/v1/scans",
                json={"token": token, "meta": {"plate": "辽A12345"}},
                headers={**gate["headers"], **(headers or {})},
            )
            assert r.status_code == 200, r.text
            return r.json()

        async def gate(app_id, context, place):
            return await enrol_scanner(client, app_id, context=context, place=place)

        yield client, me, scan, gate, clock


async def test_transit_names_its_lines_and_stations_in_the_request_s_language(city):
    client, *_ = city
    zh = (await client.get("/api/v1/apps/transit/lines", params={"limit": 100})).json()["items"]
    en = (await client.get("/api/v1/apps/transit/lines", params={"limit": 100}, headers=EN)).json()["items"]
    assert (
        [line["code"] for line in zh] == [line["code"] for line in en] == ["B113", "B136", "B237", "M1", "M2"]
    )
    for answer, english in ((zh, False), (en, True)):
        for line in answer:
            check_names(line, english)
            for station in line["stations"]:
                check_names(station, english)
    lines = {line["code"]: line for line in en}
    assert (lines["B113"]["name"], lines["M1"]["name"]) == ("Bus 113", "Metro Line 1")
    assert {line["code"]: line["name"] for line in zh}["M1"] == "地铁1号线"
    stations = {s["code"]: s for line in en for s in line["stations"]}
    assert stations["M1-01"]["name"] == "Shisanhao Jie" and stations["M1-01"]["name_zh"] == "十三号街"
    assert stations["M1-14"]["name"] == "Shenyang Railway Station"
    assert stations["M1-17"]["name"] == stations["M2-10"]["name"] == "Qingnian Dajie"  # the interchange


async def test_parking_names_its_car_parks_and_districts_in_the_request_s_language(city):
    client, me, scan, gate, _ = city
    zh = (await client.get("/api/v1/apps/parking/car-parks")).json()["items"]
    en = (await client.get("/api/v1/apps/parking/car-parks", headers=EN)).json()["items"]
    assert len(zh) == len(en) == 6
    for answer, english in ((zh, False), (en, True)):
        for park in answer:
            check_names(park, english)
            check_names(park, english, "district")
    beiling = next(p for p in en if p["code"] == "P-BEILING")
    assert (beiling["name"], beiling["district"]) == ("Beiling Park Car Park", "Huanggu District")
    assert (beiling["name_zh"], beiling["district_zh"]) == ("北陵公园停车场", "皇姑区")
    # the district filter takes either language
    for district in ("和平区", "Heping District"):
        found = (await client.get("/api/v1/apps/parking/car-parks", params={"district": district})).json()
        assert {p["code"] for p in found["items"]} == {"P-TAIYUAN", "P-HOSPITAL"}, district

    # the citizen's reservations and stays name the car park the same way
    r = await client.post(
        "/api/v1/apps/parking/reservations",
        headers=me,
        json={"car_park": "P-BEILING", "plate": "辽A12345", "starts_at": "2026-11-25T10:00:00+08:00"},
    )
    assert r.status_code == 201, r.text
    await scan(await gate("parking", "parking-entry", "P-BEILING"))
    for path in ("/api/v1/apps/parking/reservations", "/api/v1/apps/parking/sessions"):
        (item,) = (await client.get(path, headers=me)).json()["items"]
        check_names(item, english=False)
        (item,) = (await client.get(path, headers={**me, **EN})).json()["items"]
        check_names(item, english=True)
        assert (item["car_park"], item["name"]) == ("P-BEILING", "Beiling Park Car Park")


async def test_hospital_names_its_departments_in_the_request_s_language(city):
    client, me, *_ = city
    zh = (await client.get("/api/v1/apps/hospital/slots", params={"limit": 100})).json()["items"]
    en = (await client.get("/api/v1/apps/hospital/slots", params={"limit": 100}, headers=EN)).json()["items"]
    assert zh and [s["slot_id"] for s in zh] == [s["slot_id"] for s in en]
    for answer, english in ((zh, False), (en, True)):
        for slot in answer:
            check_names(slot, english, "department")
    assert {s["department"] for s in en} == {
        "Cardiology",
        "Paediatrics",
        "Gastroenterology",
        "Obstetrics and Gynaecology",
    }
    # a doctor's name is a person's: the same in both languages
    assert [s["doctor"] for s in zh] == [s["doctor"] for s in en] and "赵医生" in {s["doctor"] for s in en}

    cardio = next(s for s in en if s["department_code"] == "D-CARDIO")
    r = await client.post(
        "/api/v1/apps/hospital/appointments", headers=me, json={"slot_id": cardio["slot_id"]}
    )
    assert r.status_code == 201, r.text
    (mine,) = (await client.get("/api/v1/apps/hospital/appointments", headers={**me, **EN})).json()["items"]
    check_names(mine, english=True, field="department")
    assert (mine["department"], mine["department_code"], mine["doctor"]) == (
        "Cardiology",
        "D-CARDIO",
        "赵医生",
    )
    (mine,) = (await client.get("/api/v1/apps/hospital/appointments", headers=me)).json()["items"]
    assert mine["department"] == "心血管内科"


async def test_tourism_names_its_attractions_in_the_request_s_language(city):
    client, me, *_ = city
    zh = (await client.get("/api/v1/apps/tourism/sessions", params={"limit": 100})).json()["items"]
    en = (await client.get("/api/v1/apps/tourism/sessions", params={"limit": 100}, headers=EN)).json()[
        "items"
    ]
    assert zh and len(zh) == len(en)
    for answer, english in ((zh, False), (en, True)):
        for session in answer:
            check_names(session, english)
    names = {s["attraction"]: s["name"] for s in en}
    assert names["A-MUKDEN"] == "Shenyang Palace Museum (Mukden Palace)"
    assert names["A-ZHAOLING"] == "Beiling Park (Zhaoling Tomb)"
    assert {s["attraction"]: s["name"] for s in zh}["A-MUKDEN"] == "沈阳故宫博物院"

    mukden = next(s for s in en if s["attraction"] == "A-MUKDEN")
    r = await client.post(
        "/api/v1/apps/tourism/tickets",
        headers=me,
        json={"session_id": mukden["session_id"], "holders": ["周九"]},
    )
    assert r.status_code == 201, r.text
    (ticket,) = (await client.get("/api/v1/apps/tourism/tickets", headers={**me, **EN})).json()["items"]
    check_names(ticket, english=True)
    assert (ticket["attraction"], ticket["name"], ticket["holder"]) == ("A-MUKDEN", names["A-MUKDEN"], "周九")
    (ticket,) = (await client.get("/api/v1/apps/tourism/tickets", headers=me)).json()["items"]
    assert ticket["name"] == "沈阳故宫博物院"
    # the order is described once, in the merchant's own (Chinese) words, whatever the buyer's language
    order = (
        await PaymentOrder.select(PaymentOrder.description)
        .where(PaymentOrder.id == r.json()["order_id"])
        .first()
    )
    assert order["description"] == "沈阳故宫博物院 门票 x1"


async def test_a_gate_names_its_place_in_the_gate_s_language(city):
    _, _, scan, gate, _ = city
    entry = await gate("transit", "metro-entry", "M1-14")
    zh = await scan(entry)
    assert (zh["display"]["title"], zh["display"]["subtitle"]) == ("请进站", "沈阳站")
    en = await scan(entry, EN)  # a new entry closes the open trip first
    assert (en["display"]["title"], en["display"]["subtitle"]) == ("Please enter", "Shenyang Railway Station")

    barrier = await gate("parking", "parking-entry", "P-BEILING")
    en = await scan(barrier, EN)
    assert (en["display"]["title"], en["display"]["subtitle"]) == ("Welcome", "Beiling Park Car Park")

    # a station its operator has not named in English: the English screen shows its code, never Chinese
    await TransitStation.update({TransitStation.name_en: ""}).where(TransitStation.code == "M2-04")
    city[0].services.miniapps.apps["transit"].network_changed()  # (other workers: within a minute)
    en = await scan(await gate("transit", "metro-entry", "M2-04"), EN)
    assert (en["display"]["title"], en["display"]["subtitle"]) == ("Please enter", "M2-04")


async def test_fares_and_fees_are_described_in_the_merchant_s_own_words(city):
    _, _, scan, gate, clock = city
    bus = await scan(await gate("transit", "bus", "B113"), EN)
    assert bus["result"] == "allow"
    parking_in, parking_out = (
        await gate("parking", "parking-entry", "P-BEILING"),
        await gate("parking", "parking-exit", "P-BEILING"),
    )
    await scan(parking_in)
    clock.advance(2 * 3600)
    await scan(parking_out, EN)
    descriptions = {r["description"] for r in await PaymentOrder.select(PaymentOrder.description)}
    assert descriptions == {"113路 车费", "北陵公园停车场 停车费"}
