"""The JSON routes of the console's payments page (``/admin/payments``, static/payments.{html,js}): the
reconciliation runs per day and channel with their mismatches (and a run's CSV), and the payment
statistics per channel, merchant or day (and their CSV). Any signed-in operator reads them; the
operators' API (``/api/v1/payments/reconciliation``, ``/api/v1/payments/statistics``) answers the same
for machine credentials, and these routes are the console session's way in."""

from __future__ import annotations

import datetime
from typing import Annotated, Any

from litestar import Controller, Request, Response, get
from litestar.params import FromQuery, QueryParameter

from console.guards import console_operator
from payments.controllers import latest_run_response, statistics_response
from payments.statistics import Group, runs, statistics

NO_STORE = {"Cache-Control": "no-store"}
From = Annotated[datetime.date, QueryParameter(name="from")]
To = Annotated[datetime.date, QueryParameter(name="to")]


class PaymentsDeskController(Controller):
    path = "/admin/payments"
    tags = ["operators: console"]
    guards = [console_operator]

    @get("/runs", summary="Reconciliation runs of a range of days, per channel, with their mismatches")
    async def runs(self, start: From, end: To, channel: FromQuery[str | None] = None) -> Response[Any]:
        body = {"from": start.isoformat(), "to": end.isoformat(), "runs": await runs(start, end, channel)}
        return Response(body, headers=NO_STORE)

    @get("/reconciliation.csv", summary="The latest run of a day and channel: its mismatches as CSV")
    async def run_csv(
        self, date: FromQuery[datetime.date], channel: FromQuery[str], request: Request[Any, Any, Any]
    ) -> Response[Any]:
        return await latest_run_response(date, channel, request, "csv")

    @get("/statistics", summary="Payments, refunds and the net per channel, merchant or day; JSON or CSV")
    async def statistics(
        self,
        start: From,
        end: To,
        request: Request[Any, Any, Any],
        group: FromQuery[Group] = "channel",
        format: FromQuery[str | None] = None,
    ) -> Response[Any]:
        return statistics_response(await statistics(start, end, group), request, format)
