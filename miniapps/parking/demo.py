"""Demo car parks for the embedded default, in Shenyang's (沈阳) districts. ``P-HOSPITAL`` is small on
purpose (two spaces), so a full car park is easy to see."""

from __future__ import annotations

from miniapps.contract import DemoScanner, tally, upsert_by_code
from miniapps.parking.tables import CarPark

HEPING = ("和平区", "Heping District")
SHENHE = ("沈河区", "Shenhe District")
HUANGGU = ("皇姑区", "Huanggu District")
TIEXI = ("铁西区", "Tiexi District")
HUNNAN = ("浑南区", "Hunnan District")
# (code, (Chinese name, English name), district, capacity, free minutes, hourly rate, daily maximum):
# rates in fen
PARKS = [
    ("P-ZHONGJIE", ("中街大悦城停车场", "Joy City Zhongjie Car Park"), SHENHE, 300, 15, 800, 6000),
    (
        "P-TAIYUAN",
        ("太原街万达广场停车场", "Taiyuan Street Wanda Plaza Car Park"),
        HEPING,
        400,
        15,
        800,
        6000,
    ),
    ("P-BEILING", ("北陵公园停车场", "Beiling Park Car Park"), HUANGGU, 120, 15, 500, 4000),
    ("P-TIEXI", ("铁西广场停车场", "Tiexi Square Car Park"), TIEXI, 200, 15, 500, 4000),
    ("P-OLYMPIC", ("奥体中心停车场", "Olympic Sports Center Car Park"), HUNNAN, 600, 30, 500, 3000),
    (
        "P-HOSPITAL",
        ("盛京医院南湖院区停车场", "Shengjing Hospital Nanhu Campus Car Park"),
        HEPING,
        2,
        30,
        500,
        4000,
    ),
]


async def seed() -> list[str]:
    done = [
        await upsert_by_code(
            CarPark,
            code,
            {
                "name": name,
                "name_en": name_en,
                "district": district,
                "district_en": district_en,
                "capacity": capacity,
                "free_minutes": free,
                "hourly_rate": rate,
                "daily_max": daily,
            },
        )
        for code, (name, name_en), (district, district_en), capacity, free, rate, daily in PARKS
    ]
    return [f"parking: {len(PARKS)} car parks in Shenyang {tally(done)}"]


# The scanners `shengshi seed-demo` enrols, one at each kind of gate (their names are in Chinese, the
# console's language; ``formerly``: the name an earlier version gave them, both languages in one).
SCANNERS = (
    DemoScanner(
        "parking-entry",
        "P-ZHONGJIE",
        "演示：中街大悦城停车场 入口道闸",
        formerly="demo: 中街大悦城 barrier in",
    ),
    DemoScanner(
        "parking-exit",
        "P-ZHONGJIE",
        "演示：中街大悦城停车场 出口道闸",
        formerly="demo: 中街大悦城 barrier out",
    ),
)
