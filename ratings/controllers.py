"""HTTP handlers (thin) of the evaluation centre: the citizen rates and calls back; a unit (its own
credential, or the mini-app whose unit it is) works its cases; operators decide appeals, answer for
departments with no system of their own, add units and read the statistics."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from auth.guards import citizen_only, machine_only, operator_only
from auth.principals import CitizenPrincipal, MachinePrincipal
from backend.pagination import DEFAULT_LIMIT, Limit, Offset, page_parts
from ratings._cases import Actor
from ratings._stats import to_csv
from ratings.rules import Unit
from ratings.schemas import (
    AnswerBody,
    AppealBody,
    AppealDecision,
    CallbackCreate,
    CasePage,
    CaseView,
    EventPage,
    EventView,
    RatingCreate,
    RatingPage,
    RatingView,
    StatsRow,
    StatsView,
    UnitCreate,
    UnitView,
    VerifyBody,
)
from ratings.setup import RatingServices

NO_STORE = {"Cache-Control": "no-store"}
unit_or_miniapp = machine_only("unit", "miniapp")
States = Literal["open", "rectifying", "answered", "closed", "appealed", "void"]
By = Literal["unit", "service", "district", "month"]


class MyRatingsController(Controller):
    path = "/api/v1/me/ratings"
    tags = ["citizens: ratings"]
    guards = [citizen_only]

    @get("/pending", summary="Services I had that I may still rate, the soonest to close first")
    async def pending(
        self,
        request: Request[Any, Any, Any],
        citizen: NamedDependency[CitizenPrincipal],
        ratings: NamedDependency[RatingServices],
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
    ) -> Response[EventPage]:
        rows = await ratings.centre.pending(citizen.citizen_id, limit=limit, offset=offset)
        items, after, link = page_parts(request, rows, limit=limit, offset=offset)
        body = EventPage(items=[msgspec.convert(i, EventView) for i in items], next_offset=after, next=link)
        return Response(body, headers=NO_STORE)

    @get("/events/{event_id:str}", summary="One service event of mine: what to rate it on, until when")
    async def event(
        self,
        event_id: FromPath[str],
        citizen: NamedDependency[CitizenPrincipal],
        ratings: NamedDependency[RatingServices],
    ) -> EventView:
        return msgspec.convert(await ratings.centre.event(citizen.citizen_id, event_id), EventView)

    @post(
        "",
        status_code=HTTP_201_CREATED,
        summary="Rate a service I had, once, within its window (a bad rating opens a case)",
        opt={"problems": [403, 404, 409, 410]},
    )
    async def rate(
        self,
        data: JSONBody[RatingCreate],
        citizen: NamedDependency[CitizenPrincipal],
        ratings: NamedDependency[RatingServices],
    ) -> RatingView:
        row = await ratings.centre.rate(
            citizen.citizen_id, data.event_id, data.level, data.indicators, data.comment
        )
        return msgspec.convert(row, RatingView)

    @get("", summary="My ratings, newest first, with where each bad rating's case stands")
    async def mine(
        self,
        request: Request[Any, Any, Any],
        citizen: NamedDependency[CitizenPrincipal],
        ratings: NamedDependency[RatingServices],
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
    ) -> Response[RatingPage]:
        rows = await ratings.centre.mine(citizen.citizen_id, limit=limit, offset=offset)
        items, after, link = page_parts(request, rows, limit=limit, offset=offset)
        body = RatingPage(items=[msgspec.convert(i, RatingView) for i in items], next_offset=after, next=link)
        return Response(body, headers=NO_STORE)

    @get("/{rating_id:str}", summary="One rating of mine, with its case: the unit's answer and each step")
    async def one(
        self,
        rating_id: FromPath[str],
        citizen: NamedDependency[CitizenPrincipal],
        ratings: NamedDependency[RatingServices],
    ) -> RatingView:
        return msgspec.convert(await ratings.centre.my_rating(citizen.citizen_id, rating_id), RatingView)

    @post(
        "/{rating_id:str}/callback",
        status_code=HTTP_200_OK,
        summary="My view of the unit's answer to my bad rating (回访), once",
        opt={"problems": [404, 409]},
    )
    async def callback(
        self,
        rating_id: FromPath[str],
        data: JSONBody[CallbackCreate],
        citizen: NamedDependency[CitizenPrincipal],
        ratings: NamedDependency[RatingServices],
    ) -> RatingView:
        row = await ratings.centre.callback(citizen.citizen_id, rating_id, data.level, data.comment)
        return msgspec.convert(row, RatingView)


def _actor(machine: MachinePrincipal) -> Actor:
    if machine.kind == "unit":
        return Actor("unit", machine.client_id, unit=machine.app_id)
    if machine.kind == "miniapp":
        return Actor("miniapp", machine.client_id, owner=machine.app_id)
    return Actor("operator", f"{machine.client_id}:{machine.name}")


async def _cases(
    request: Request[Any, Any, Any],
    ratings: RatingServices,
    actor: Actor,
    *,
    state: str | None,
    overdue: bool,
    unit: str | None,
    limit: int,
    offset: int,
) -> CasePage:
    rows = await ratings.cases.find(
        actor, state=state, overdue=overdue, unit=unit, limit=limit, offset=offset
    )
    items, after, link = page_parts(request, rows, limit=limit, offset=offset)
    return CasePage(items=[msgspec.convert(i, CaseView) for i in items], next_offset=after, next=link)


async def _case(ratings: RatingServices, actor: Actor, case_id: str) -> CaseView:
    row = await ratings.cases.get(actor, case_id, rater=ratings.centre.rater)
    return msgspec.convert(row, CaseView)


class UnitCasesController(Controller):
    """A unit's case-handling system: its own credential (kind ``unit``) sees its cases; a mini-app's
    backend credential sees the cases of the mini-app's units."""

    path = "/api/v1/ratings/cases"
    tags = ["units: rating cases"]
    guards = [unit_or_miniapp]

    @get("", summary="My units' cases, the nearest deadline first")
    async def list_cases(
        self,
        request: Request[Any, Any, Any],
        machine: NamedDependency[MachinePrincipal],
        ratings: NamedDependency[RatingServices],
        case_state: Annotated[States | None, QueryParameter(name="state")] = None,
        overdue: FromQuery[bool] = False,
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
    ) -> CasePage:
        return await _cases(
            request,
            ratings,
            _actor(machine),
            state=case_state,
            overdue=overdue,
            unit=None,
            limit=limit,
            offset=offset,
        )

    @get("/{case_id:str}", summary="One case: the rating (the rater as a handle), the deadline, every step")
    async def one(
        self,
        case_id: FromPath[str],
        machine: NamedDependency[MachinePrincipal],
        ratings: NamedDependency[RatingServices],
    ) -> CaseView:
        return await _case(ratings, _actor(machine), case_id)

    @post("/{case_id:str}/verify", status_code=HTTP_200_OK, summary="Verified (核实): rectifying now")
    async def verify(
        self,
        case_id: FromPath[str],
        data: JSONBody[VerifyBody],
        machine: NamedDependency[MachinePrincipal],
        ratings: NamedDependency[RatingServices],
    ) -> CaseView:
        return msgspec.convert(await ratings.cases.verify(_actor(machine), case_id, data.note), CaseView)

    @post(
        "/{case_id:str}/answer",
        status_code=HTTP_200_OK,
        summary="Answer (反馈): rectified, or explained; the rater gets it and may call back",
    )
    async def answer(
        self,
        case_id: FromPath[str],
        data: JSONBody[AnswerBody],
        machine: NamedDependency[MachinePrincipal],
        ratings: NamedDependency[RatingServices],
    ) -> CaseView:
        row = await ratings.cases.answer(_actor(machine), case_id, data.outcome, data.text)
        return msgspec.convert(row, CaseView)

    @post(
        "/{case_id:str}/appeal",
        status_code=HTTP_200_OK,
        summary="Appeal (申诉) a mistaken, false or malicious rating; an operator decides",
    )
    async def appeal(
        self,
        case_id: FromPath[str],
        data: JSONBody[AppealBody],
        machine: NamedDependency[MachinePrincipal],
        ratings: NamedDependency[RatingServices],
    ) -> CaseView:
        row = await ratings.cases.appeal(_actor(machine), case_id, data.reason, data.text)
        return msgspec.convert(row, CaseView)


class OperatorRatingsController(Controller):
    path = "/api/v1/admin/ratings"
    tags = ["operators: ratings"]
    guards = [operator_only]

    @get("/cases", summary="Every unit's cases (overdue=true: past the deadline with no answer)")
    async def list_cases(
        self,
        request: Request[Any, Any, Any],
        machine: NamedDependency[MachinePrincipal],
        ratings: NamedDependency[RatingServices],
        case_state: Annotated[States | None, QueryParameter(name="state")] = None,
        overdue: FromQuery[bool] = False,
        unit: FromQuery[str | None] = None,
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
    ) -> CasePage:
        return await _cases(
            request,
            ratings,
            _actor(machine),
            state=case_state,
            overdue=overdue,
            unit=unit,
            limit=limit,
            offset=offset,
        )

    @get("/cases/{case_id:str}", summary="One case with its rating and every step")
    async def one(
        self,
        case_id: FromPath[str],
        machine: NamedDependency[MachinePrincipal],
        ratings: NamedDependency[RatingServices],
    ) -> CaseView:
        return await _case(ratings, _actor(machine), case_id)

    @post(
        "/cases/{case_id:str}/appeal-decision",
        status_code=HTTP_200_OK,
        summary="Uphold an appeal (the rating leaves the statistics) or reject it (audited)",
    )
    async def decide(
        self,
        case_id: FromPath[str],
        data: JSONBody[AppealDecision],
        machine: NamedDependency[MachinePrincipal],
        ratings: NamedDependency[RatingServices],
    ) -> CaseView:
        row = await ratings.cases.decide_appeal(_actor(machine), case_id, data.uphold, data.note)
        return msgspec.convert(row, CaseView)

    @post(
        "/cases/{case_id:str}/verify",
        status_code=HTTP_200_OK,
        summary="Verify for a unit with no system of its own",
    )
    async def verify(
        self,
        case_id: FromPath[str],
        data: JSONBody[VerifyBody],
        machine: NamedDependency[MachinePrincipal],
        ratings: NamedDependency[RatingServices],
    ) -> CaseView:
        return msgspec.convert(await ratings.cases.verify(_actor(machine), case_id, data.note), CaseView)

    @post(
        "/cases/{case_id:str}/answer",
        status_code=HTTP_200_OK,
        summary="Answer for a unit with no system of its own",
    )
    async def answer(
        self,
        case_id: FromPath[str],
        data: JSONBody[AnswerBody],
        machine: NamedDependency[MachinePrincipal],
        ratings: NamedDependency[RatingServices],
    ) -> CaseView:
        row = await ratings.cases.answer(_actor(machine), case_id, data.outcome, data.text)
        return msgspec.convert(row, CaseView)

    @get("/stats", summary="Satisfaction, bad-rating, feedback, rectification and on-time rates, ranked")
    async def stats(
        self,
        ratings: NamedDependency[RatingServices],
        by: FromQuery[By] = "unit",
        month_from: FromQuery[str | None] = None,
        month_to: FromQuery[str | None] = None,
    ) -> StatsView:
        first, last = _months(ratings, month_from, month_to)
        rows = await ratings.stats.compute(by, month_from=first, month_to=last)
        return StatsView(
            by=by, month_from=first, month_to=last, rows=[msgspec.convert(r, StatsRow) for r in rows]
        )

    @get(
        "/stats.csv",
        summary="The same statistics as CSV (UTF-8 with a byte-order mark, for spreadsheets)",
        media_type="text/csv",
    )
    async def stats_csv(
        self,
        ratings: NamedDependency[RatingServices],
        by: FromQuery[By] = "unit",
        month_from: FromQuery[str | None] = None,
        month_to: FromQuery[str | None] = None,
    ) -> Response[str]:
        first, last = _months(ratings, month_from, month_to)
        rows = await ratings.stats.compute(by, month_from=first, month_to=last)
        name = f"ratings-{by}-{first}-{last}.csv"
        return Response(
            to_csv(rows),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"', **NO_STORE},
        )

    @get("/units", summary="Units that answer for their services' ratings")
    async def units(self, ratings: NamedDependency[RatingServices]) -> list[UnitView]:
        return [msgspec.convert(u, UnitView) for u in await ratings.centre.units.all()]

    @post(
        "/units", status_code=HTTP_201_CREATED, summary="Add or rename a department's unit (platform/<code>)"
    )
    async def add_unit(
        self,
        data: JSONBody[UnitCreate],
        machine: NamedDependency[MachinePrincipal],
        ratings: NamedDependency[RatingServices],
    ) -> UnitView:
        unit = Unit(code=data.code, name_zh=data.name_zh, name_en=data.name_en, district=data.district)
        row = await ratings.centre.add_department(unit, operator=f"{machine.client_id}:{machine.name}")
        return msgspec.convert(row, UnitView)


def _months(ratings: RatingServices, first: str | None, last: str | None) -> tuple[str, str]:
    this = ratings.centre.this_month()
    return first or last or this, last or first or this
