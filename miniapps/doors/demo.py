"""Demo places of 沈阳 Shenyang: a residential community in 和平区 with two buildings, an office building
and a public library (names of real places; their doors are made up)."""

from __future__ import annotations

from typing import Any

from miniapps.contract import DemoScanner, tally, upsert_by_code
from miniapps.doors.tables import Building, Door, Place

# (code, number, Chinese name, English name, kind, district)
PLACES = [
    ("WANKE-CITY", 1, "万科城", "Vanke City", "community", "和平区"),
    ("FORTUNE-PLAZA", 2, "沈阳财富中心", "Shenyang Fortune Plaza", "office", "沈河区"),
    ("LIAONING-LIBRARY", 3, "辽宁省图书馆", "Liaoning Provincial Library", "public", "沈河区"),
]
# (code, place, Chinese name, English name)
BUILDINGS = [
    ("WANKE-CITY-1", "WANKE-CITY", "1号楼", "Building 1"),
    ("WANKE-CITY-2", "WANKE-CITY", "2号楼", "Building 2"),
]
# (code, place, building or None, Chinese name, English name)
DOORS = [
    ("WK-GATE-N", "WANKE-CITY", None, "万科城 北门", "Vanke City, north gate"),
    ("WK-GATE-S", "WANKE-CITY", None, "万科城 南门", "Vanke City, south gate"),
    ("WK-B1-U1", "WANKE-CITY", "WANKE-CITY-1", "1号楼 1单元门", "Building 1, entrance 1"),
    ("WK-B2-U1", "WANKE-CITY", "WANKE-CITY-2", "2号楼 1单元门", "Building 2, entrance 1"),
    ("FP-LOBBY", "FORTUNE-PLAZA", None, "财富中心 大堂闸机", "Fortune Plaza, lobby turnstile"),
    ("LIB-STAFF", "LIAONING-LIBRARY", None, "图书馆 员工通道", "Library, staff entrance"),
]


async def _id(table: Any, code: str) -> int:
    row = await table.select(table.id).where(table.code == code).first().run()
    assert row is not None
    return int(row["id"])


async def seed() -> list[str]:
    done = []
    for code, number, name, name_en, kind, district in PLACES:
        values = {"number": number, "name": name, "name_en": name_en, "kind": kind, "district": district}
        done.append(await upsert_by_code(Place, code, values))
    for code, place, name, name_en in BUILDINGS:
        values = {"place": await _id(Place, place), "name": name, "name_en": name_en}
        done.append(await upsert_by_code(Building, code, values))
    for code, place, building, name, name_en in DOORS:
        values = {
            "place": await _id(Place, place),
            "building": await _id(Building, building) if building else None,
            "name": name,
            "name_en": name_en,
        }
        done.append(await upsert_by_code(Door, code, values))
    return [
        f"doors: {len(PLACES)} places ({len(BUILDINGS)} buildings, {len(DOORS)} doors) in Shenyang"
        f" {tally(done)}"
    ]


# The scanners `shengshi seed-demo` enrols (their names are in Chinese, the console's language).
SCANNERS = (
    DemoScanner("door", "WK-GATE-N", "演示：万科城 北门门禁"),
    DemoScanner("door", "WK-B1-U1", "演示：万科城 1号楼1单元门禁"),
)
