"""Demo car parks for the embedded default, in Shenyang's (沈阳) districts. ``P-HOSPITAL`` is small on
purpose (two spaces), so a full car park is easy to see."""

from __future__ import annotations

from backend.seed import tally, upsert_by_code
from miniapps.parking.tables import CarPark

# (code, name, district, capacity, free minutes, hourly rate, daily maximum): rates in fen
PARKS = [
    ("P-ZHONGJIE", "中街大悦城停车场 Joy City Zhongjie", "沈河区", 300, 15, 800, 6000),
    ("P-TAIYUAN", "太原街万达广场停车场 Wanda Plaza Taiyuan St", "和平区", 400, 15, 800, 6000),
    ("P-BEILING", "北陵公园停车场 Beiling Park", "皇姑区", 120, 15, 500, 4000),
    ("P-TIEXI", "铁西广场停车场 Tiexi Square", "铁西区", 200, 15, 500, 4000),
    ("P-OLYMPIC", "奥体中心停车场 Olympic Sports Centre", "浑南区", 600, 30, 500, 3000),
    ("P-HOSPITAL", "盛京医院南湖院区停车场 Shengjing Hospital", "和平区", 2, 30, 500, 4000),
]


async def seed() -> list[str]:
    done = [
        await upsert_by_code(
            CarPark,
            code,
            {
                "name": name,
                "district": district,
                "capacity": capacity,
                "free_minutes": free,
                "hourly_rate": rate,
                "daily_max": daily,
            },
        )
        for code, name, district, capacity, free, rate, daily in PARKS
    ]
    return [f"parking: {len(PARKS)} car parks in 沈阳 Shenyang {tally(done)}"]
