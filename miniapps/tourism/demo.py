"""Demo attractions with a week of timed sessions, and a hotel."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from miniapps.tourism.tables import Attraction, Hotel, TicketSession

CHINA = timezone(timedelta(hours=8))


async def seed(now: datetime) -> list[str]:
    if await Attraction.exists().where(Attraction.code == "A-PALACE").run():
        return ["tourism: demo data present"]
    for code, name, price in (("A-PALACE", "故宫博物院", 6000), ("A-ZOO", "动物园", 1500)):
        await Attraction.insert(Attraction(code=code, name=name, price=price)).run()
        attraction = await Attraction.select(Attraction.id).where(Attraction.code == code).first().run()  # type: ignore[attr-defined]
        assert attraction is not None
        for day in range(7):
            date = (now.astimezone(CHINA) + timedelta(days=day)).date().isoformat()
            for window in ("09:00-12:00", "12:00-17:00"):
                await TicketSession.insert(
                    TicketSession(attraction=attraction["id"], day=date, window=window, capacity=200)
                ).run()
    await Hotel.insert(Hotel(code="HT-CITY", name="城市酒店")).run()
    return ["tourism: 2 attractions, 28 timed sessions, 1 hotel"]
