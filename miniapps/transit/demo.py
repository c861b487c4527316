"""Demo network for the embedded default: two bus lines and one metro line."""

from __future__ import annotations

from miniapps.transit.tables import TransitLine, TransitStation

LINES = [("B42", "42路", "bus", 200), ("B7", "7路", "bus", 200), ("M1", "地铁1号线", "metro", 0)]
METRO = [
    ("M1-01", "苹果园", 0),
    ("M1-02", "古城", 2500),
    ("M1-03", "八角游乐园", 5000),
    ("M1-04", "八宝山", 8000),
    ("M1-05", "公主坟", 11500),
    ("M1-06", "木樨地", 15000),
    ("M1-07", "天安门西", 20000),
    ("M1-08", "四惠东", 36000),
]


async def seed() -> list[str]:
    made = 0
    for code, name, kind, fare in LINES:
        if not await TransitLine.exists().where(TransitLine.code == code).run():
            await TransitLine.insert(TransitLine(code=code, name=name, kind=kind, flat_fare=fare)).run()
            made += 1
    m1 = await TransitLine.select(TransitLine.id).where(TransitLine.code == "M1").first().run()  # type: ignore[attr-defined]
    assert m1 is not None
    for code, name, meters in METRO:
        if not await TransitStation.exists().where(TransitStation.code == code).run():
            await TransitStation.insert(
                TransitStation(line=m1["id"], code=code, name=name, meters=meters)
            ).run()
            made += 1
    return [f"transit: {len(LINES)} lines, {len(METRO)} metro stations ({made} new)"]
