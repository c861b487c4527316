"""Demo attractions of 沈阳 Shenyang with timed ticket sessions for today and the next days (China time,
made afresh on every ``seed-demo`` so the demo works next week too), and a hotel."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from miniapps.contract import DemoScanner, tally, upsert_by_code
from miniapps.tourism.rules import CHINA
from miniapps.tourism.tables import Attraction, Hotel, TicketSession

DAYS = 7  # today and the six days after it
# (code, Chinese name, English name, price in fen per ticket, timed entry windows, places per session)
ATTRACTIONS = [
    (
        "A-MUKDEN",
        "沈阳故宫博物院",
        "Shenyang Palace Museum (Mukden Palace)",
        5000,
        ["08:30-12:00", "12:00-16:30"],
        200,
    ),
    (
        "A-ZHAOLING",
        "北陵公园·清昭陵",
        "Beiling Park (Zhaoling Tomb)",
        5000,
        ["08:00-12:00", "12:00-17:00"],
        300,
    ),
    (
        "A-FANTAWILD",
        "沈阳方特欢乐世界",
        "Fantawild Adventure Shenyang",
        26000,
        ["09:00-13:00", "13:00-17:30"],
        500,
    ),
]
HOTEL = ("HT-ZHONGJIE", "中街盛京客栈（演示）", "Zhongjie Shengjing Inn (demo)")


async def seed(now: datetime) -> list[str]:
    done = []
    today = now.astimezone(CHINA).date()
    days = [(today + timedelta(days=d)).isoformat() for d in range(DAYS)]
    made = 0
    for code, name, name_en, price, windows, capacity in ATTRACTIONS:
        values = {"name": name, "name_en": name_en, "price": price}
        done.append(await upsert_by_code(Attraction, code, values))
        attraction = await Attraction.select(Attraction.id).where(Attraction.code == code).first().run()  # type: ignore[attr-defined]
        assert attraction is not None
        have = {
            (r["day"], r["window"])
            for r in await TicketSession.select(TicketSession.day, TicketSession.window).where(
                (TicketSession.attraction == attraction["id"]) & (TicketSession.day >= days[0])
            )
        }
        new = [
            TicketSession(id=uuid.uuid4(), attraction=attraction["id"], day=day, window=w, capacity=capacity)
            for day in days
            for w in windows
            if (day, w) not in have
        ]
        if new:
            await TicketSession.insert(*new).run()
        made += len(new)
    code, name, name_en = HOTEL
    done.append(await upsert_by_code(Hotel, code, {"name": name, "name_en": name_en}))
    return [
        f"tourism: {len(ATTRACTIONS)} attractions and 1 hotel in Shenyang {tally(done)}; "
        f"timed sessions {days[0]} to {days[-1]}: {made} new"
    ]


# The scanners `shengshi seed-demo` enrols, one at each kind of gate (their names are in Chinese, the
# console's language; ``formerly``: the name an earlier version gave them, both languages in one).
SCANNERS = (
    DemoScanner("tourism-gate", "A-MUKDEN", "演示：沈阳故宫 检票闸机", formerly="demo: 沈阳故宫 gate"),
    DemoScanner(
        "hotel-checkin", "HT-ZHONGJIE", "演示：中街盛京客栈 前台", formerly="demo: 中街盛京客栈 front desk"
    ),
)
