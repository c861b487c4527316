"""``seed-demo``: a Shenyang demo city, idempotent for static data, and slots and ticket sessions made for
today and the coming days on every run (so the demo still works next week)."""

import re
from datetime import UTC, datetime, timedelta

import pytest

from auth.tables import MachineClient
from backend.clock import FrozenClock
from backend.seed import seed_demo
from miniapps.civic import CivicApp
from miniapps.civic.tables import Checkpoint, Hall, Service
from miniapps.doors import DoorsApp
from miniapps.doors.tables import Building, Door, Place
from miniapps.hospital import HospitalApp
from miniapps.hospital.tables import Department, Hospital, Slot
from miniapps.library import LibraryApp
from miniapps.library.tables import Branch, Library
from miniapps.parking import ParkingApp
from miniapps.parking.tables import CarPark
from miniapps.tourism import TourismApp
from miniapps.tourism.tables import Attraction, Hotel, TicketSession
from miniapps.transit import TransitApp
from miniapps.transit.tables import TransitLine, TransitStation

CHINA = timedelta(hours=8)
CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")
LATIN = re.compile(r"[A-Za-z]")
NAMED = (
    TransitLine,
    TransitStation,
    CarPark,
    Hospital,
    Department,
    Attraction,
    Hotel,
    Hall,
    Service,
    Checkpoint,
    Library,
    Branch,
    Place,
    Building,
    Door,
)
# the scanners each built-in mini-app asks the demo for, and the names earlier versions gave them
SCANNERS = [
    (app.manifest.id, s.context, s.place, s.name)
    for app in (TransitApp, ParkingApp, HospitalApp, TourismApp, CivicApp, LibraryApp, DoorsApp)
    for s in app.demo_scanners
]
FORMERLY = {
    s.name: s.formerly for app in (TransitApp, ParkingApp, HospitalApp, TourismApp) for s in app.demo_scanners
}


async def counts() -> dict[str, int]:
    tables = (TransitLine, TransitStation, CarPark, Hospital, Slot, Attraction, TicketSession, Hotel)
    return {t._meta.tablename: await t.count() for t in tables}


@pytest.fixture
async def city(make_client):
    clock = FrozenClock(datetime(2026, 11, 24, 23, 0, tzinfo=UTC))  # 07:00 on 25 November in Shenyang
    async with make_client(clock=clock) as client:
        yield client, clock


async def test_the_demo_city_is_shenyang(city):
    client, _ = city
    await seed_demo(client.app)
    hospital = await Hospital.select().first()
    assert hospital["region"] == "210100" and "盛京医院" in hospital["name"]
    names = " ".join(
        [r["name"] for t in (TransitStation, CarPark, Attraction, Hotel) for r in await t.select(t.name)]
    )
    assert "沈阳故宫" in names and "北陵公园" in names and "青年大街" in names
    assert not any(word in names for word in ("北京", "国贸", "天安门", "西单", "苹果园"))
    districts = {r["district"] for r in await CarPark.select(CarPark.district)}
    assert districts <= {"和平区", "沈河区", "皇姑区", "铁西区", "浑南区", "大东区", "于洪区", "沈北新区"}
    # line 1 and line 2 meet at 青年大街, as in Shenyang
    stations = await TransitStation.select(TransitStation.name, TransitStation.line.code)
    on = {line: {s["name"] for s in stations if s["line.code"] == line} for line in ("M1", "M2")}
    assert on["M1"] & on["M2"] == {"青年大街"}


async def test_every_demo_scanner_stands_at_a_place_of_the_demo_data(city):
    client, _ = city
    await seed_demo(client.app)
    places = {
        "bus": {r["code"] for r in await TransitLine.select(TransitLine.code) if r["code"].startswith("B")},
        "metro": {r["code"] for r in await TransitStation.select(TransitStation.code)},
        "parking": {r["code"] for r in await CarPark.select(CarPark.code)},
        "hospital": {r["code"] for r in await Hospital.select(Hospital.code)},
        "tourism-gate": {r["code"] for r in await Attraction.select(Attraction.code)},
        "hotel-checkin": {r["code"] for r in await Hotel.select(Hotel.code)},
        "civic-hall": {r["code"] for r in await Hall.select(Hall.code)},
        "health-check": {r["code"] for r in await Checkpoint.select(Checkpoint.code)},
        "library-desk": {r["code"] for r in await Branch.select(Branch.code)},
        "library-kiosk": {r["code"] for r in await Branch.select(Branch.code)},
        "door": {r["code"] for r in await Door.select(Door.code)},
    }
    for app_id, context, place, _ in SCANNERS:
        kind = context.split("-")[0] if app_id in ("transit", "parking") else context
        kind = {"hospital-checkin": "hospital"}.get(kind, kind)
        assert place in places[kind], (app_id, context, place)


async def test_seed_demo_is_idempotent_and_makes_the_coming_days_on_every_run(city):
    client, clock = city
    first = await seed_demo(client.app)
    assert any("2026-11-25 to 2026-12-01" in line for line in first)
    made = await counts()
    again = await seed_demo(client.app)
    assert await counts() == made  # the second run changes nothing
    for line in again:
        if line.startswith(("transit:", "parking:", "hospital:", "tourism:", "doors:")):
            assert "(0 new, 0 updated)" in line, line
        if "slots" in line or "sessions" in line:
            assert line.endswith(": 0 new"), line

    # ten days later the demo still has slots and sessions from today on
    clock.advance(10 * 86400)
    today = (clock.now() + CHINA).date().isoformat()
    later = await seed_demo(client.app)
    assert any(f"{today} to 2026-12-11" in line for line in later)
    grown = await counts()
    assert grown["hospital_slot"] == 2 * made["hospital_slot"]  # the old days stay, seven new ones
    assert grown["tourism_session"] == 2 * made["tourism_session"]
    assert {k: v for k, v in grown.items() if k not in ("hospital_slot", "tourism_session")} == {
        k: v for k, v in made.items() if k not in ("hospital_slot", "tourism_session")
    }
    slots = (await client.get("/api/v1/apps/hospital/slots")).json()["items"]
    first_day = datetime.fromisoformat(slots[0]["starts_at"]) + CHINA
    assert first_day.date().isoformat() == today
    assert await TicketSession.count().where(TicketSession.day == today) == made["tourism_session"] // 7


async def test_static_demo_data_is_brought_back_to_the_demo_values(city):
    client, _ = city
    await seed_demo(client.app)
    await CarPark.update({CarPark.name: "renamed", CarPark.capacity: 1}).where(CarPark.code == "P-ZHONGJIE")
    lines = await seed_demo(client.app)
    assert any(line.startswith("parking:") and "(0 new, 1 updated)" in line for line in lines)
    park = await CarPark.select().where(CarPark.code == "P-ZHONGJIE").first()
    assert park["name"] == "中街大悦城停车场" and park["capacity"] == 300


async def test_every_demo_name_is_in_one_language_and_seeding_refreshes_an_older_city(city):
    """A database seeded by an earlier version (names in both languages in one string, no English
    column filled, scanners labelled half in English) is brought to one language per name; a second run
    changes nothing."""
    client, _ = city
    await seed_demo(client.app)
    # the demo city as an earlier version left it
    await CarPark.update({CarPark.name: "北陵公园停车场 Beiling Park", CarPark.name_en: ""}).where(
        CarPark.code == "P-BEILING"
    )
    await TransitStation.update({TransitStation.name_en: ""}, force=True)
    await Hospital.update(
        {Hospital.name: "中国医科大学附属盛京医院 Shengjing Hospital of China Medical University"}
    ).where(Hospital.code == "H-SHENGJING")
    for name, old in FORMERLY.items():
        await MachineClient.update({MachineClient.name: old}).where(MachineClient.name == name)
    scanners = await MachineClient.count().where(MachineClient.kind == "scanner")

    lines = await seed_demo(client.app)
    assert any(line.startswith("transit:") and "(0 new, 41 updated)" in line for line in lines), lines
    assert any(line.startswith("parking:") and "(0 new, 1 updated)" in line for line in lines), lines
    assert any(line.startswith("hospital:") and "(0 new, 1 updated)" in line for line in lines), lines
    assert f"console: {len(SCANNERS)} demo scanners for /admin/scanner (0 new, 8 renamed)" in lines
    for table in NAMED:
        for row in await table.select(table.code, table.name, table.name_en):
            assert CJK.search(row["name"]) and not LATIN.search(row["name"]), row
            assert LATIN.search(row["name_en"]) and not CJK.search(row["name_en"]), row
    park = await CarPark.select().where(CarPark.code == "P-BEILING").first()
    assert (park["name"], park["name_en"]) == ("北陵公园停车场", "Beiling Park Car Park")
    assert (park["district"], park["district_en"]) == ("皇姑区", "Huanggu District")
    names = {
        r["name"]
        for r in await MachineClient.select(MachineClient.name).where(MachineClient.kind == "scanner")
    }
    assert names == {name for *_, name in SCANNERS}  # renamed in place: no second set
    assert all(CJK.search(n) and not LATIN.search(n) for n in names), names
    assert await MachineClient.count().where(MachineClient.kind == "scanner") == scanners

    again = await seed_demo(client.app)
    for line in again:
        if line.startswith(("transit:", "parking:", "hospital:", "tourism:", "doors:")):
            assert "(0 new, 0 updated)" in line, line
    assert f"console: {len(SCANNERS)} demo scanners for /admin/scanner (0 new)" in again
    assert await MachineClient.count().where(MachineClient.kind == "scanner") == scanners
