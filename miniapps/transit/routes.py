"""Transit's routes under /api/v1/apps/transit: the network, the citizen's trips and fares."""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.di import NamedDependency

from miniapps.contract import DEFAULT_LIMIT, AppCaller, Limit, Offset, Platform, citizen_caller, names, page
from miniapps.transit.rules import service_day
from miniapps.transit.tables import TransitLine, TransitStation, TransitTrip


def handlers(platform: Platform) -> list[Any]:
    """The routes, answering with ``platform`` (the one transit's app was given)."""

    @get("/lines", summary="Lines and their stations in order, with fares; names in the request's language")
    async def lines(
        request: Request[Any, Any, Any], limit: Limit = DEFAULT_LIMIT, offset: Offset = 0
    ) -> dict[str, Any]:
        rows = await TransitLine.select().order_by(TransitLine.code).limit(limit + 1).offset(offset).run()
        stations = (
            await TransitStation.select(TransitStation.all_columns(), TransitStation.line.code)  # type: ignore[arg-type]
            .where(TransitStation.line.code.is_in([r["code"] for r in rows] or [""]))
            .order_by(TransitStation.meters)
            .run()
        )
        return page(
            request,
            [
                {
                    "code": r["code"],
                    **names(r["name"], r["name_en"]),
                    **{k: r[k] for k in ("kind", "flat_fare")},
                    "stations": [
                        {"code": s["code"], **names(s["name"], s["name_en"]), "km": s["meters"] / 1000}
                        for s in stations
                        if s["line.code"] == r["code"]
                    ],
                }
                for r in rows
            ],
            limit=limit,
            offset=offset,
        )

    @get("/trips", guards=[citizen_caller], summary="The caller's trips and fares, newest first")
    async def trips(
        request: Request[Any, Any, Any],
        caller: NamedDependency[AppCaller],
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        rows = (
            await TransitTrip.select()
            .where(TransitTrip.openid == caller.openid)
            .order_by(TransitTrip.started_at, ascending=False)
            .order_by(TransitTrip.id)
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
        return page(
            request,
            [{"trip_id": str(r["id"]), **{k: r[k] for k in keep}} for r in rows],
            limit=limit,
            offset=offset,
        )

    @get("/fares", guards=[citizen_caller], summary="Today's spend against the cap, and unpaid fares")
    async def fares(caller: NamedDependency[AppCaller]) -> dict[str, Any]:
        today = service_day(platform.now())
        spent = (
            await TransitTrip.select(TransitTrip.charged)
            .where((TransitTrip.openid == caller.openid) & (TransitTrip.day == today))
            .run()
        )
        return {
            "day": today,
            "spent_today": sum(r["charged"] for r in spent),
            "daily_cap": platform.config["daily_cap"],
            "unpaid": await platform.payments.unpaid_total(caller.openid),
            "unpaid_limit": platform.config["unpaid_limit"],
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
            order = await platform.payments.charge(r["order_id"])
            paid += 1 if order["state"] == "paid" else 0
        return {"orders": paid, "unpaid": await platform.payments.unpaid_total(caller.openid)}

    return [lines, trips, fares, pay]
