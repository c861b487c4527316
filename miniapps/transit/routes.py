"""Transit's routes under /api/v1/apps/transit: the network, the citizen's trips and fares."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litestar import get, post
from litestar.di import NamedDependency

from backend.pagination import DEFAULT_LIMIT, Limit, Offset, next_offset
from miniapps.deps import AppCaller, citizen_caller
from miniapps.transit.tables import TransitLine, TransitStation, TransitTrip

if TYPE_CHECKING:
    from miniapps.transit.app import TransitApp


def handlers(app: TransitApp) -> list[Any]:
    @get("/lines", summary="Lines and stations, with fares")
    async def lines() -> dict[str, Any]:
        rows = await TransitLine.select().order_by(TransitLine.code).run()
        stations = (
            await TransitStation.select(TransitStation.all_columns(), TransitStation.line.code)  # type: ignore[arg-type]
            .order_by(TransitStation.meters)
            .run()
        )
        return {
            "items": [
                {
                    **{k: r[k] for k in ("code", "name", "kind", "flat_fare")},
                    "stations": [
                        {"code": s["code"], "name": s["name"], "km": s["meters"] / 1000}
                        for s in stations
                        if s["line.code"] == r["code"]
                    ],
                }
                for r in rows
            ]
        }

    @get("/trips", guards=[citizen_caller], summary="The caller's trips and fares, newest first")
    async def trips(
        caller: NamedDependency[AppCaller], limit: Limit = DEFAULT_LIMIT, offset: Offset = 0
    ) -> dict[str, Any]:
        rows = (
            await TransitTrip.select()
            .where(TransitTrip.openid == caller.openid)
            .order_by(TransitTrip.started_at, ascending=False)
            .limit(limit + 1)
            .offset(offset)
            .run()
        )
        keep = (
            "kind",
            "line_code",
            "entry_code",
            "exit_code",
            "started_at",
            "ended_at",
            "state",
            "rule",
            "fare",
            "discount",
            "capped",
            "charged",
            "order_id",
            "day",
        )
        return {
            "items": [{"trip_id": str(r["id"]), **{k: r[k] for k in keep}} for r in rows[:limit]],
            "next_offset": next_offset(offset, limit, len(rows)),
        }

    @get("/fares", guards=[citizen_caller], summary="Today's spend against the cap, and unpaid fares")
    async def fares(caller: NamedDependency[AppCaller]) -> dict[str, Any]:
        from miniapps.transit.app import CHINA

        today = app.platform.now().astimezone(CHINA).date().isoformat()
        spent = (
            await TransitTrip.select(TransitTrip.charged)
            .where((TransitTrip.openid == caller.openid) & (TransitTrip.day == today))
            .run()
        )
        return {
            "day": today,
            "spent_today": sum(r["charged"] for r in spent),
            "daily_cap": app.cfg["daily_cap"],
            "unpaid": await app.platform.payments.unpaid_total(caller.openid),
            "unpaid_limit": app.cfg["unpaid_limit"],
        }

    @post(
        "/fares/pay",
        status_code=200,
        guards=[citizen_caller],
        summary="Pay every outstanding fare against the payment agreement",
    )
    async def pay(caller: NamedDependency[AppCaller]) -> dict[str, Any]:
        rows = (
            await TransitTrip.select(TransitTrip.order_id)
            .where((TransitTrip.openid == caller.openid) & (TransitTrip.order_id != ""))
            .run()
        )
        paid = 0
        for r in rows:
            order = await app.platform.payments.charge(r["order_id"])
            paid += 1 if order["state"] == "paid" else 0
        return {"orders": paid, "unpaid": await app.platform.payments.unpaid_total(caller.openid)}

    return [lines, trips, fares, pay]
