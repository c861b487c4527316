"""Demo civic services of 沈阳 Shenyang: two social-security service halls with four window categories
each, and health check points at a hospital entrance, a stadium and a railway station (names of real
places; the halls' window layout is made up)."""

from __future__ import annotations

from miniapps.civic.tables import Checkpoint, Hall, Service
from miniapps.contract import DemoScanner, tally, upsert_by_code

# (code, Chinese name, English name, address)
HALLS = [
    (
        "SS-HEPING",
        "和平区社保服务大厅",
        "Heping District Social Security Service Hall",
        "沈阳市和平区南京南街",
    ),
    ("SS-HUNNAN", "浑南区社保服务大厅", "Hunnan District Social Security Service Hall", "沈阳市浑南区创新路"),
]
# the district each demo hall serves (the evaluation centre's regional analysis; 和平区, 浑南区)
HALL_DISTRICTS = {"SS-HEPING": "210102", "SS-HUNNAN": "210112"}
# (letter, Chinese name, English name, windows): the first is the kiosk's default
SERVICES = [
    ("A", "综合业务", "General enquiries", 3),
    ("B", "养老保险", "Pension insurance", 2),
    ("C", "医疗保险", "Medical insurance", 2),
    ("D", "社保卡", "Social security card", 1),
]
# (code, Chinese name, English name, kind)
CHECKPOINTS = [
    ("HC-SHENGJING", "盛京医院 南门入口", "Shengjing Hospital, south entrance", "hospital"),
    ("HC-OLYMPIC", "沈阳奥体中心 体育场", "Shenyang Olympic Sports Centre Stadium", "venue"),
    ("HC-NORTH", "沈阳北站 进站口", "Shenyang North Railway Station, entrance", "station"),
]


async def seed() -> list[str]:
    done = []
    for code, name, name_en, address in HALLS:
        done.append(await upsert_by_code(Hall, code, {"name": name, "name_en": name_en, "address": address}))
        hall = await Hall.select(Hall.id).where(Hall.code == code).first().run()  # type: ignore[attr-defined]
        assert hall is not None
        for position, (letter, sname, sname_en, windows) in enumerate(SERVICES):
            values = {
                "hall": hall["id"],
                "letter": letter,
                "name": sname,
                "name_en": sname_en,
                "position": position,
                "windows": windows,
            }
            done.append(await upsert_by_code(Service, f"{code}-{letter}", values))
    for code, name, name_en, kind in CHECKPOINTS:
        done.append(await upsert_by_code(Checkpoint, code, {"name": name, "name_en": name_en, "kind": kind}))
    return [
        f"civic: {len(HALLS)} social-security halls with {len(SERVICES)} window categories each and "
        f"{len(CHECKPOINTS)} health check points in Shenyang {tally(done)}"
    ]


# The scanners `shengshi seed-demo` enrols (their names are in Chinese, the console's language).
SCANNERS = (
    DemoScanner("civic-hall", "SS-HEPING", "演示：和平区社保服务大厅 取号机"),
    DemoScanner("health-check", "HC-SHENGJING", "演示：盛京医院南门 健康检查点"),
)
