"""Demo car parks for the embedded default."""

from __future__ import annotations

from miniapps.parking.tables import CarPark

PARKS = [
    ("P-GUOMAO", "国贸地下停车场", "朝阳", 300, 15, 1000, 8000),
    ("P-XIDAN", "西单大悦城停车场", "西城", 120, 15, 800, 6000),
    ("P-HOSPITAL", "市第一医院停车场", "东城", 2, 30, 500, 4000),
]


async def seed() -> list[str]:
    made = 0
    for code, name, district, capacity, free, rate, daily in PARKS:
        if not await CarPark.exists().where(CarPark.code == code).run():
            await CarPark.insert(
                CarPark(
                    code=code,
                    name=name,
                    district=district,
                    capacity=capacity,
                    free_minutes=free,
                    hourly_rate=rate,
                    daily_max=daily,
                )
            ).run()
            made += 1
    return [f"parking: {len(PARKS)} car parks ({made} new)"]
