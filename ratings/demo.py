"""Demo data for the evaluation centre (``shengshi seed-demo``, never in production): the demo citizen
(13800138000) has one service still to rate and one bad rating whose case its unit verified and answered,
so the wallet's ratings (``/wallet#ratings``), the console's 好差评 page and the dashboard's panel show
something. Both are the platform's own service (a payment, at the unified payment centre), so the demo
does not depend on which mini-apps are enabled.

Idempotent: the answered rating is one event (its key), rated and answered once; a new service to rate
is recorded only when the demo citizen has none of the demo's open (a re-run after they rated it, or
after its window closed, gives them another)."""

from __future__ import annotations

import uuid

from auth.tables import Citizen
from backend.errors import Gone
from messages.services import PLATFORM
from ratings._cases import OPEN_STATES, Actor
from ratings.setup import RatingServices
from ratings.tables import Rating, RatingEvent

DEMO_PHONE_MASKED = "138****8000"
SERVICE, UNIT = "payment", "payments"
RATED_KEY, PENDING_KEY = "demo:answered", "demo:pending:"
UNIT_ACTOR = Actor("unit", "demo", unit=f"{PLATFORM}/{UNIT}")
COMMENT = "付款成功后订单过了很久才显示已支付，重复扣款让人担心。"
VERIFIED = "核实：渠道回调延迟约 3 分钟，期间页面仍显示待支付。"
ANSWER = "已将支付结果查询改为每 10 秒一次，付款后页面立即显示处理中；未发生重复扣款。感谢您的反馈。"


async def seed(services: RatingServices) -> list[str]:
    demo = await Citizen.select(Citizen.id).where(Citizen.phone_masked == DEMO_PHONE_MASKED).first().run()
    if demo is None:
        return []
    citizen = str(demo["id"])
    return [await _answered(services, citizen), await _pending(services, citizen)]


async def _answered(services: RatingServices, citizen: str) -> str:
    """A bad rating (不满意) of a payment, its case verified and answered by the payment centre's unit."""
    centre, cases = services.centre, services.cases
    event_id, new = await centre.record(PLATFORM, SERVICE, citizen, RATED_KEY, unit=UNIT)
    row = await Rating.select(Rating.id).where(Rating.event == uuid.UUID(event_id)).first().run()
    if row is None:
        try:
            rated = await centre.rate(
                citizen, event_id, "dissatisfied", {"efficiency": "very_dissatisfied"}, COMMENT
            )
        except Gone:  # recorded by an earlier run that stopped before rating it, long ago
            return "ratings: the demo's rated payment closed before it was rated"
        rating_id = uuid.UUID(rated["id"])
    else:
        rating_id = row["id"]
    case = (await cases.of_ratings([rating_id])).get(rating_id)
    if case is not None and case["state"] in OPEN_STATES:
        if case["state"] == "open":
            await cases.verify(UNIT_ACTOR, str(case["id"]), VERIFIED)
        await cases.answer(UNIT_ACTOR, str(case["id"]), "rectified", ANSWER)
        new = True
    return f"ratings: a bad rating of a payment, answered by its unit, for the demo citizen ({_said(new)})"


async def _pending(services: RatingServices, citizen: str) -> str:
    """A payment the demo citizen may still rate, unless one of the demo's is still open."""
    mine = (
        await RatingEvent.select(RatingEvent.id)
        .where(
            (RatingEvent.citizen_id == citizen) & RatingEvent.idempotency.like(f"{PLATFORM}/{PENDING_KEY}%")
        )
        .run()
    )
    open_ = {e["id"] for e in await services.centre.pending(citizen, limit=100, offset=0)}
    new = not any(str(e["id"]) in open_ for e in mine)
    if new:
        await services.centre.record(PLATFORM, SERVICE, citizen, f"{PENDING_KEY}{len(mine) + 1}", unit=UNIT)
    return f"ratings: a payment to rate for the demo citizen ({_said(new)})"


def _said(new: bool) -> str:
    return "new" if new else "already there"
