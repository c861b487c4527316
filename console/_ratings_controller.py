"""The JSON routes of the console's 好差评 page (``/admin/ratings``, static/ratings.{html,js}), thin over
:class:`console.ratings.RatingsDesk`: any signed-in operator reads the statistics (and their CSV), the
cases and the units; an admin, with the CSRF token, decides appeals, verifies and answers for department
units and adds departments. The operators' API (``/api/v1/admin/ratings``) does the same for machine
credentials; these routes are the console session's way in."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from backend.pagination import DEFAULT_LIMIT, Limit, Offset, page_parts
from console.guards import console_admin, console_operator, provide_operator, same_site_post
from console.ratings import RatingsDesk
from ratings.controllers import NO_STORE, By, States
from ratings.rules import Unit
from ratings.schemas import (
    AnswerBody,
    AppealDecision,
    CasePage,
    CaseView,
    StatsView,
    UnitCreate,
    UnitView,
    VerifyBody,
)

CHANGE = [console_admin, same_site_post]


class RatingsController(Controller):
    path = "/admin/ratings"
    tags = ["operators: console"]
    guards = [console_operator]

    @get("/stats", summary="The 好差评 statistics of a range of months, by unit (ranked), service, …")
    async def stats(
        self,
        ratings_desk: NamedDependency[RatingsDesk],
        by: FromQuery[By] = "unit",
        month_from: FromQuery[str | None] = None,
        month_to: FromQuery[str | None] = None,
    ) -> Response[StatsView]:
        body = await ratings_desk.stats(by, month_from, month_to)
        return Response(msgspec.convert(body, StatsView), headers=NO_STORE)

    @get(
        "/stats.csv",
        summary="The same statistics as CSV (UTF-8 with a byte-order mark, for spreadsheets)",
        media_type="text/csv",
    )
    async def stats_csv(
        self,
        ratings_desk: NamedDependency[RatingsDesk],
        by: FromQuery[By] = "unit",
        month_from: FromQuery[str | None] = None,
        month_to: FromQuery[str | None] = None,
    ) -> Response[str]:
        name, text = await ratings_desk.stats_csv(by, month_from, month_to)
        return Response(
            text,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"', **NO_STORE},
        )

    @get("/cases", summary="Every unit's cases, the nearest deadline first (overdue=true: past it)")
    async def cases(
        self,
        request: Request[Any, Any, Any],
        ratings_desk: NamedDependency[RatingsDesk],
        case_state: Annotated[States | None, QueryParameter(name="state")] = None,
        overdue: FromQuery[bool] = False,
        unit: FromQuery[str | None] = None,
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
    ) -> Response[CasePage]:
        rows = await ratings_desk.cases(
            state=case_state, overdue=overdue, unit=unit, limit=limit, offset=offset
        )
        items, after, link = page_parts(request, rows, limit=limit, offset=offset)
        body = CasePage(items=[msgspec.convert(i, CaseView) for i in items], next_offset=after, next=link)
        return Response(body, headers=NO_STORE)

    @get("/cases/{case_id:str}", summary="One case: its rating (the rater as a handle) and every step")
    async def case(self, case_id: FromPath[str], ratings_desk: NamedDependency[RatingsDesk]) -> CaseView:
        return msgspec.convert(await ratings_desk.case(case_id), CaseView)

    @post(
        "/cases/{case_id:str}/appeal-decision",
        status_code=HTTP_200_OK,
        guards=CHANGE,
        summary="Uphold a unit's appeal (the rating leaves the statistics) or reject it",
    )
    async def decide(
        self,
        request: Request[Any, Any, Any],
        case_id: FromPath[str],
        data: JSONBody[AppealDecision],
        ratings_desk: NamedDependency[RatingsDesk],
    ) -> CaseView:
        operator = provide_operator(request).username
        row = await ratings_desk.decide(operator, case_id, uphold=data.uphold, note=data.note)
        return msgspec.convert(row, CaseView)

    @post(
        "/cases/{case_id:str}/verify",
        status_code=HTTP_200_OK,
        guards=CHANGE,
        summary="Verify (核实) a department unit's case for it",
    )
    async def verify(
        self,
        request: Request[Any, Any, Any],
        case_id: FromPath[str],
        data: JSONBody[VerifyBody],
        ratings_desk: NamedDependency[RatingsDesk],
    ) -> CaseView:
        row = await ratings_desk.verify(provide_operator(request).username, case_id, data.note)
        return msgspec.convert(row, CaseView)

    @post(
        "/cases/{case_id:str}/answer",
        status_code=HTTP_200_OK,
        guards=CHANGE,
        summary="Answer (反馈: rectified or explained) a department unit's case for it",
    )
    async def answer(
        self,
        request: Request[Any, Any, Any],
        case_id: FromPath[str],
        data: JSONBody[AnswerBody],
        ratings_desk: NamedDependency[RatingsDesk],
    ) -> CaseView:
        operator = provide_operator(request).username
        row = await ratings_desk.answer(operator, case_id, outcome=data.outcome, text=data.text)
        return msgspec.convert(row, CaseView)

    @get("/units", summary="The units that answer for their services' ratings")
    async def units(self, ratings_desk: NamedDependency[RatingsDesk]) -> Response[list[UnitView]]:
        rows = [msgspec.convert(u, UnitView) for u in await ratings_desk.units()]
        return Response(rows, headers=NO_STORE)

    @post(
        "/units",
        status_code=HTTP_201_CREATED,
        guards=CHANGE,
        summary="Add or rename a department's unit (platform/<code>)",
    )
    async def add_unit(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[UnitCreate],
        ratings_desk: NamedDependency[RatingsDesk],
    ) -> UnitView:
        unit = Unit(code=data.code, name_zh=data.name_zh, name_en=data.name_en, district=data.district)
        row = await ratings_desk.add_department(provide_operator(request).username, unit)
        return msgspec.convert(row, UnitView)
