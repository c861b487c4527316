"""Payment centre HTTP handlers (thin)."""

from __future__ import annotations

import datetime
import json
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.handlers import HTTPRouteHandler
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, FromQuery, JSONBody, Parameter, QueryParameter

from auth.guards import PRINCIPAL, auth_services, citizen_only, client_ip, merchant_or_miniapp, operator_only
from auth.pairwise import Pairwise
from auth.principals import CitizenPrincipal, MachinePrincipal
from backend.errors import InvalidInput, NotFound
from backend.openapi import requires
from backend.pagination import DEFAULT_LIMIT, Limit, Offset, page
from payments.reconciliation import to_csv
from payments.registry import NOTIFY_PATH
from payments.schemas import (
    Order,
    OrderCreate,
    PaymentChannels,
    PayRequest,
    RefundAccepted,
    RefundCreate,
)
from payments.services import NotificationService, OrderService
from payments.statistics import Group, runs, statistics, statistics_csv
from payments.tables import ReconciliationRun


def owner_of(machine: MachinePrincipal) -> str:
    return f"miniapp:{machine.app_id}" if machine.kind == "miniapp" else f"merchant:{machine.client_id}"


@requires({"machineCredential": []}, {"citizenToken": []})
async def owner_or_citizen(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """Orders are read by their owner (HTTP Basic) or by their citizen (bearer token)."""
    if connection.headers.get("authorization", "").lower().startswith("basic "):
        connection.state[PRINCIPAL] = await auth_services(connection).machines.authenticate(
            connection.headers.get("authorization"), ("merchant", "miniapp"), ip=client_ip(connection)
        )
    else:
        await citizen_only(connection, handler)


class OrdersController(Controller):
    path = "/api/v1/payments/orders"
    tags = ["payments"]

    @post(
        "",
        guards=[merchant_or_miniapp],
        summary="Create an order (idempotent on the caller's reference); without a citizen it carries a "
        "pay link for the till's QR code",
        responses={200: ResponseSpec(Order, description="The order already made with this reference")},
    )
    async def create(
        self,
        data: JSONBody[OrderCreate],
        machine: NamedDependency[MachinePrincipal],
        orders: NamedDependency[OrderService],
        pairwise: NamedDependency[Pairwise],
        request: Request[Any, Any, Any],
    ) -> Response[Order]:
        citizen_id = None
        if data.openid is not None:
            if machine.kind != "miniapp":
                raise InvalidInput("only a mini-app names a citizen by openid", code="openid_not_allowed")
            citizen_id = await pairwise.citizen(machine.app_id, data.openid)
            if citizen_id is None:
                raise InvalidInput("unknown openid for this mini-app", code="unknown_openid")
        order, created = await orders.create(
            owner=owner_of(machine),
            app_id=machine.app_id,
            reference=data.reference,
            amount=data.amount,
            citizen_id=citizen_id,
            description=data.description,
            deferred=data.deferred,
        )
        return Response(msgspec.convert(order, Order), status_code=201 if created else 200)

    @get(
        "/{order_id:str}",
        guards=[owner_or_citizen],
        summary="Order state, amounts, refunds and overpayments (a citizen also sees an unclaimed order "
        "reached through its pay link)",
    )
    async def get_order(
        self, order_id: FromPath[str], request: Request[Any, Any, Any], orders: NamedDependency[OrderService]
    ) -> Order:
        principal = request.state[PRINCIPAL]
        if isinstance(principal, CitizenPrincipal):
            return msgspec.convert(await orders.get_for(order_id, citizen_id=principal.citizen_id), Order)
        return msgspec.convert(await orders.get_for(order_id, owner=owner_of(principal)), Order)

    @post(
        "/{order_id:str}/pay",
        status_code=200,
        guards=[citizen_only],
        summary="What the app needs to pay this order in a channel; an order without a citizen becomes "
        "this citizen's (the first to pay it)",
    )
    async def pay(
        self,
        order_id: FromPath[str],
        data: JSONBody[PayRequest],
        citizen: NamedDependency[CitizenPrincipal],
        orders: NamedDependency[OrderService],
    ) -> dict[str, Any]:
        return await orders.pay(
            order_id, citizen.citizen_id, data.channel, method=data.method, payer=data.payer
        )

    @post(
        "/{order_id:str}/refunds",
        status_code=202,
        guards=[merchant_or_miniapp],
        summary="Refund (partial allowed; idempotent)",
        responses={200: ResponseSpec(RefundAccepted, description="The refund asked with this reference")},
    )
    async def refund(
        self,
        order_id: FromPath[str],
        data: JSONBody[RefundCreate],
        machine: NamedDependency[MachinePrincipal],
        orders: NamedDependency[OrderService],
    ) -> Response[RefundAccepted]:
        result, created = await orders.refund(
            order_id,
            owner=owner_of(machine),
            reference=data.reference,
            amount=data.amount,
            reason=data.reason,
        )
        return Response(msgspec.convert(result, RefundAccepted), status_code=202 if created else 200)


@get(
    "/api/v1/payments/channels",
    tags=["payments"],
    summary="The payment channels enabled here, in the configured order (no sign-in needed)",
)
async def enabled_channels(orders: NamedDependency[OrderService]) -> PaymentChannels:
    return PaymentChannels(channels=list(orders.channels))


NOTIFY_TAGS = ["payments: channel callbacks"]
NOTIFY_OPT = {"own_format": "The channel's own acknowledgement or refusal (docs/payments.md)"}


def notify_route(enabled: list[str]) -> HTTPRouteHandler:
    """The channels' callbacks, one route for all: ``POST /api/v1/payments/notify/{channel}``, verified
    over the raw bytes by the channel and answered in its own words. The OpenAPI document lists the
    enabled channels; any other name is the usual 404 problem (as a path that is not there)."""

    async def notify(
        channel: str, request: Request[Any, Any, Any], notifications: NamedDependency[NotificationService]
    ) -> Response[bytes]:
        if channel not in notifications.channels:
            raise NotFoundException()  # the same answer as a path that is not there
        body = await request.body()
        reply, _ = await notifications.handle(channel, dict(request.headers), body)
        return Response(reply.body, status_code=reply.status, media_type=reply.media_type)

    # the document lists this deployment's channels (an annotation made here, not a name to resolve)
    notify.__annotations__["channel"] = Annotated[
        str, Parameter(description="the channel's name", schema_extra={"enum": list(enabled)})
    ]
    return post(
        f"{NOTIFY_PATH}/{{channel:str}}",
        status_code=200,
        tags=NOTIFY_TAGS,
        opt=NOTIFY_OPT,
        summary="A payment channel's notification (in that channel's own protocol)",
        description="Enabled here: " + ", ".join(enabled) + ". See docs/payments.md for each one's format.",
    )(notify)


class SandboxPayController(Controller):
    """The sandbox's 'payment page': paying here makes the sandbox send its signed callback."""

    path = "/api/v1/payments/sandbox"
    tags = ["payments: sandbox"]

    @post(
        "/orders/{order_id:str}/pay",
        status_code=200,
        guards=[citizen_only],
        summary="Pay an order in the sandbox (development and demos)",
    )
    async def pay(
        self,
        order_id: FromPath[str],
        citizen: NamedDependency[CitizenPrincipal],
        orders: NamedDependency[OrderService],
        lose_notice: Annotated[
            bool,
            QueryParameter(
                name="lose_notice",
                description="(development) the sandbox takes the money and its notice is lost: the "
                "payment centre's query recovers it (docs/payments.md)",
            ),
        ] = False,
    ) -> Order:
        if lose_notice:
            await orders.get_for(order_id, citizen_id=citizen.citizen_id)  # the citizen's order
            await orders.sandbox_pay(order_id, lose_notice=True)
            return msgspec.convert(await orders.get_for(order_id, citizen_id=citizen.citizen_id), Order)
        return msgspec.convert(await orders.pay_on_page(order_id, citizen.citizen_id), Order)


class ReconciliationController(Controller):
    path = "/api/v1/payments/reconciliation"
    tags = ["payments"]
    guards = [operator_only]

    @get("", summary="The latest reconciliation of a day and channel: mismatches as JSON or CSV")
    async def report(
        self,
        date: FromQuery[datetime.date],
        channel: FromQuery[str],
        request: Request[Any, Any, Any],
        format: FromQuery[str | None] = None,
    ) -> Response[Any]:

        return await latest_run_response(date, channel, request, format)

    @get("/runs", summary="Reconciliation runs per day and channel (newest first) with their mismatches")
    async def runs(
        self,
        start: Annotated[datetime.date, QueryParameter(name="from")],
        end: Annotated[datetime.date, QueryParameter(name="to")],
        channel: FromQuery[str | None] = None,
    ) -> dict[str, Any]:
        return {"from": start.isoformat(), "to": end.isoformat(), "runs": await runs(start, end, channel)}


async def latest_run_response(
    day: datetime.date, channel: str, request: Request[Any, Any, Any], format: str | None
) -> Response[Any]:
    """The latest reconciliation of ``day`` and ``channel``: its mismatches as JSON, or CSV (``format=csv``
    or ``Accept: text/csv``). The operators' API and the console's page both answer with it."""
    run = (
        await ReconciliationRun.select()
        .where((ReconciliationRun.day == day.isoformat()) & (ReconciliationRun.channel == channel))
        .order_by(ReconciliationRun.created_at, ascending=False)
        .first()
        .run()
    )
    if run is None:
        raise NotFound(
            f"no reconciliation of {channel} for {day}; run 'shengshi payments reconcile'",
            code="no_reconciliation",
            channel=channel,
            day=day.isoformat(),
        )
    mismatches = run["mismatches"] if isinstance(run["mismatches"], list) else json.loads(run["mismatches"])
    wants_csv = format == "csv" or "text/csv" in request.headers.get("accept", "")
    if wants_csv:
        return Response(
            to_csv(mismatches),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="recon-{channel}-{day}.csv"'},
        )
    return Response(
        {
            "date": day.isoformat(),
            "channel": channel,
            "statement_rows": run["statement_rows"],
            "ledger_rows": run["ledger_rows"],
            "created_at": run["created_at"].isoformat(),
            "mismatches": mismatches,
        }
    )


class StatisticsController(Controller):
    path = "/api/v1/payments/statistics"
    tags = ["payments"]
    guards = [operator_only]

    @get(
        "",
        summary="Payments, refunds and the net per channel, merchant or day (China time) from the ledger; "
        "JSON or CSV",
    )
    async def statistics(
        self,
        start: Annotated[datetime.date, QueryParameter(name="from")],
        end: Annotated[datetime.date, QueryParameter(name="to")],
        request: Request[Any, Any, Any],
        group: FromQuery[Group] = "channel",
        format: FromQuery[str | None] = None,
    ) -> Response[Any]:
        return statistics_response(await statistics(start, end, group), request, format)


def statistics_response(
    stats: dict[str, Any], request: Request[Any, Any, Any], format: str | None
) -> Response[Any]:
    if format == "csv" or "text/csv" in request.headers.get("accept", ""):
        name = f"payments-{stats['group']}-{stats['from']}-{stats['to']}.csv"
        return Response(
            statistics_csv(stats),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    return Response(stats)


class MyOrdersController(Controller):
    path = "/api/v1/me/orders"
    tags = ["payments"]
    guards = [citizen_only]

    @get("", summary="The citizen's orders, newest first; unpaid=true lists what is still owed")
    async def mine(
        self,
        request: Request[Any, Any, Any],
        citizen: NamedDependency[CitizenPrincipal],
        orders: NamedDependency[OrderService],
        unpaid: FromQuery[bool] = False,
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        rows = await orders.for_citizen(
            citizen.citizen_id, unpaid_only=unpaid, limit=limit + 1, offset=offset
        )
        return {
            **page(
                request,
                [msgspec.to_builtins(msgspec.convert(r, Order)) for r in rows],
                limit=limit,
                offset=offset,
            ),
            "unpaid_total": await orders.unpaid_total(citizen.citizen_id),
        }
