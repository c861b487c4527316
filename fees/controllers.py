"""Non-tax fee HTTP handlers (thin): departments' notices, citizens' lookups and payments, the fiscal
system's day statement and key set, operators' reconciliations."""

from __future__ import annotations

import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from auth.guards import PRINCIPAL, citizen_only, client_ip, machine_only, operator_only
from auth.principals import CitizenPrincipal, MachinePrincipal
from backend.pagination import DEFAULT_LIMIT, Limit, Offset, page
from fees.schemas import Notice, NoticeCreate, PayPayload, PublicNotice, ReconcileRequest
from fees.services import DIFFERENCE_FIELDS, STATEMENT_FIELDS, Department, to_csv
from fees.setup import FeeServices
from payments.schemas import PayRequest

department_only = machine_only("department")
department_or_operator = machine_only("department", "operator")


def department_of(machine: MachinePrincipal) -> Department:
    return Department(code=machine.app_id, name=machine.name, client_id=machine.client_id)


def wants_csv(request: Request[Any, Any, Any], format: str | None) -> bool:
    return format == "csv" or "text/csv" in request.headers.get("accept", "")


class NoticesController(Controller):
    """A department's payment notices (HTTP Basic, credential kind ``department``)."""

    path = "/api/v1/fees/notices"
    tags = ["fees"]
    guards = [department_only]

    @post(
        "",
        summary="Issue a payment notice (idempotent on the department's reference); answers its 缴款码",
        responses={200: ResponseSpec(Notice, description="The notice already issued with this reference")},
    )
    async def issue(
        self,
        data: JSONBody[NoticeCreate],
        machine: NamedDependency[MachinePrincipal],
        fees: NamedDependency[FeeServices],
    ) -> Response[Notice]:
        notice, created = await fees.centre.issue(department_of(machine), data)
        return Response(msgspec.convert(notice, Notice), status_code=201 if created else 200)

    @get("", summary="The department's notices, newest first (state: open, paid or cancelled)")
    async def list_notices(
        self,
        request: Request[Any, Any, Any],
        machine: NamedDependency[MachinePrincipal],
        fees: NamedDependency[FeeServices],
        wanted: Annotated[str | None, QueryParameter(name="state")] = None,
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        if wanted is not None and wanted not in ("open", "paid", "cancelled"):
            wanted = "unknown"  # lists nothing, as a filter on a state no notice has
        rows = await fees.centre.notices(machine.app_id, state=wanted, limit=limit + 1, offset=offset)
        return page(
            request,
            [msgspec.to_builtins(msgspec.convert(r, Notice)) for r in rows],
            limit=limit,
            offset=offset,
        )

    @get("/{notice_no:str}", summary="One of the department's notices")
    async def get_notice(
        self,
        notice_no: FromPath[str],
        machine: NamedDependency[MachinePrincipal],
        fees: NamedDependency[FeeServices],
    ) -> Notice:
        return msgspec.convert(await fees.centre.get(machine.app_id, notice_no), Notice)

    @post("/{notice_no:str}/cancel", status_code=200, summary="Cancel an unpaid notice")
    async def cancel(
        self,
        notice_no: FromPath[str],
        machine: NamedDependency[MachinePrincipal],
        fees: NamedDependency[FeeServices],
    ) -> Notice:
        return msgspec.convert(await fees.centre.cancel(machine.app_id, notice_no), Notice)


class StatementsController(Controller):
    path = "/api/v1/fees/statements"
    tags = ["fees"]
    guards = [department_or_operator]

    @get(
        "/{day:date}",
        summary="The notices paid on a day (China time), as JSON or CSV (format=csv or Accept: text/csv); "
        "a department sees its own",
    )
    async def statement(
        self,
        day: FromPath[datetime.date],
        request: Request[Any, Any, Any],
        fees: NamedDependency[FeeServices],
        format: FromQuery[str | None] = None,
    ) -> Response[Any]:
        machine: MachinePrincipal = request.state[PRINCIPAL]
        rows = await fees.centre.statement(day, machine.app_id if machine.kind == "department" else None)
        if wants_csv(request, format):
            return Response(
                to_csv(rows, STATEMENT_FIELDS),
                media_type="text/csv",
                headers={"Content-Disposition": f'attachment; filename="fees-{day}.csv"'},
            )
        return Response(
            {
                "date": day.isoformat(),
                "count": len(rows),
                "total": sum(r["amount"] for r in rows),
                "items": rows,
            }
        )


class ReconciliationsController(Controller):
    path = "/api/v1/fees/reconciliations"
    tags = ["fees"]
    guards = [operator_only]

    @post(
        "",
        status_code=200,
        summary="Reconcile the fiscal system's day file (CSV: notice_no, amount, paid_at, receipt_no) with "
        "the notices paid that day; JSON, or CSV of the differences with format=csv",
    )
    async def reconcile(
        self,
        data: JSONBody[ReconcileRequest],
        request: Request[Any, Any, Any],
        machine: NamedDependency[MachinePrincipal],
        fees: NamedDependency[FeeServices],
        format: FromQuery[str | None] = None,
    ) -> Response[Any]:
        result = await fees.centre.reconcile(data.date, data.csv, actor=machine.client_id)
        if wants_csv(request, format):
            return Response(to_csv(result["differences"], DIFFERENCE_FIELDS), media_type="text/csv")
        return Response(result)


class FiscalDeliveriesController(Controller):
    """Operators read a paid notice's notification to the fiscal system, and send a given-up one again."""

    path = "/api/v1/fees/fiscal-deliveries"
    tags = ["fees"]
    guards = [operator_only]

    @get("/{notice_no:str}", summary="A paid notice's notification to the fiscal system and its delivery log")
    async def delivery(self, notice_no: FromPath[str], fees: NamedDependency[FeeServices]) -> dict[str, Any]:
        return await fees.fiscal.delivery_log(notice_no)

    @post(
        "/{notice_no:str}/resend",
        status_code=200,
        summary="Send a notification that was given up (dead) again; false when it was not given up",
    )
    async def resend(self, notice_no: FromPath[str], fees: NamedDependency[FeeServices]) -> dict[str, Any]:
        await fees.fiscal.delivery_log(notice_no)  # 404 for a notice never paid
        return {"notice_no": notice_no, "resent": await fees.fiscal.resend(notice_no)}


class CitizenFeesController(Controller):
    """A citizen looks a notice up by its number and pays it."""

    path = "/api/v1/fees"
    tags = ["fees"]

    @get(
        "/fiscal-keys", summary="The public keys the fiscal system verifies our notifications with (JWK set)"
    )
    async def fiscal_keys(self, fees: NamedDependency[FeeServices]) -> dict[str, Any]:
        return {"keys": await fees.fiscal.published()}

    @get(
        "/{notice_no:str}",
        guards=[citizen_only],
        summary="A payment notice by its number: amount, item, department, masked payer, due date "
        "(rate-limited)",
        opt={"problems": [429]},
    )
    async def lookup(
        self,
        notice_no: FromPath[str],
        request: Request[Any, Any, Any],
        citizen: NamedDependency[CitizenPrincipal],
        fees: NamedDependency[FeeServices],
    ) -> PublicNotice:
        found = await fees.centre.lookup(notice_no, citizen.citizen_id, client_ip(request))
        return msgspec.convert(found, PublicNotice)

    @post(
        "/{notice_no:str}/pay",
        status_code=200,
        guards=[citizen_only],
        summary="What the app needs to pay the notice in a channel (as POST /payments/orders/{id}/pay) "
        "(rate-limited with the lookups)",
        opt={"problems": [429]},
    )
    async def pay(
        self,
        notice_no: FromPath[str],
        data: JSONBody[PayRequest],
        request: Request[Any, Any, Any],
        citizen: NamedDependency[CitizenPrincipal],
        fees: NamedDependency[FeeServices],
    ) -> PayPayload:
        paying = await fees.centre.pay(
            notice_no,
            citizen.citizen_id,
            data.channel,
            method=data.method,
            payer=data.payer,
            ip=client_ip(request),
        )
        return msgspec.convert(paying, PayPayload)


class MyFeesController(Controller):
    path = "/api/v1/me/fees"
    tags = ["fees"]
    guards = [citizen_only]

    @get("", summary="The payment notices addressed to the citizen (by phone, or by verified ID number)")
    async def mine(
        self,
        request: Request[Any, Any, Any],
        citizen: NamedDependency[CitizenPrincipal],
        fees: NamedDependency[FeeServices],
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        rows = await fees.centre.mine(citizen.citizen_id, limit=limit + 1, offset=offset)
        return page(
            request,
            [msgspec.to_builtins(msgspec.convert(r, PublicNotice)) for r in rows],
            limit=limit,
            offset=offset,
        )


CONTROLLERS = [
    NoticesController,
    StatementsController,
    ReconciliationsController,
    FiscalDeliveriesController,
    CitizenFeesController,
    MyFeesController,
]
