"""Merchants' HTTP handlers (thin): their orders and settlements, order QR codes, tills, the pay code at
the till, and the citizen's pay-code settings and confirmations."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, delete, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from auth.guards import PRINCIPAL, citizen_only, machine_only, merchant_or_miniapp
from auth.principals import CitizenPrincipal, MachinePrincipal
from backend.pagination import DEFAULT_LIMIT, Limit, Offset, page
from payments.controllers import owner_of
from payments.merchant_schemas import (
    Confirmations,
    Decision,
    OrderPage,
    PayCodePayment,
    PayCodeScan,
    PayCodeSettings,
    PayCodeSettingsUpdate,
    Settlement,
    TillCreate,
    TillCreated,
    Tills,
)
from payments.merchants import MerchantService, parse_day, settlements_csv
from payments.paycode import PayCodeService
from payments.schemas import Order

merchant_only = machine_only("merchant")
till_only = machine_only("till")


class MerchantController(Controller):
    path = "/api/v1/merchant"
    tags = ["merchants"]
    guards = [merchant_only]

    @get("/orders", summary="The merchant's orders, newest first (state, and a day in China time)")
    async def orders(
        self,
        request: Request[Any, Any, Any],
        machine: NamedDependency[MachinePrincipal],
        merchants: NamedDependency[MerchantService],
        order_state: Annotated[
            str | None, QueryParameter(name="state", description="only orders in this state")
        ] = None,
        day: FromQuery[date | None] = None,
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
    ) -> OrderPage:
        rows = await merchants.list_orders(
            owner_of(machine), state=order_state, day=day, limit=limit + 1, offset=offset
        )
        return msgspec.convert(page(request, rows, limit=limit, offset=offset), OrderPage)

    @post(
        "/orders/{order_id:str}/charge",
        status_code=200,
        summary="Charge an order taken on the citizen's credit against the citizen's payment agreement",
    )
    async def charge(
        self,
        order_id: FromPath[str],
        machine: NamedDependency[MachinePrincipal],
        paycode: NamedDependency[PayCodeService],
    ) -> Order:
        return msgspec.convert(await paycode.charge_credit(order_id, owner=owner_of(machine)), Order)

    @get(
        "/settlements",
        summary="Settlement per day (China time): paid count and amount, refunded, net, by channel; "
        "JSON or CSV (format=csv or Accept: text/csv)",
    )
    async def settlements(
        self,
        request: Request[Any, Any, Any],
        machine: NamedDependency[MachinePrincipal],
        merchants: NamedDependency[MerchantService],
        from_: Annotated[str, QueryParameter(name="from", description="first day, YYYY-MM-DD")],
        to: Annotated[str, QueryParameter(name="to", description="last day, YYYY-MM-DD")],
        format: FromQuery[str | None] = None,
    ) -> Response[Any]:
        start, end = parse_day(from_, "from"), parse_day(to, "to")
        days = await merchants.settlements(owner_of(machine), start, end)
        if format == "csv" or "text/csv" in request.headers.get("accept", ""):
            return Response(
                settlements_csv(days),
                media_type="text/csv",
                headers={"Content-Disposition": f'attachment; filename="settlement-{start}-{end}.csv"'},
            )
        return Response(
            msgspec.convert({"from": start.isoformat(), "to": end.isoformat(), "days": days}, Settlement)
        )

    @post("/tills", status_code=201, summary="Enrol a till (its credential is shown once)")
    async def add_till(
        self,
        data: JSONBody[TillCreate],
        machine: NamedDependency[MachinePrincipal],
        merchants: NamedDependency[MerchantService],
    ) -> TillCreated:
        return msgspec.convert(
            await merchants.add_till(machine.client_id, place=data.place, name=data.name), TillCreated
        )

    @get("/tills", summary="The merchant's tills")
    async def tills(
        self, machine: NamedDependency[MachinePrincipal], merchants: NamedDependency[MerchantService]
    ) -> Tills:
        return msgspec.convert({"items": await merchants.tills(machine.client_id)}, Tills)

    @delete("/tills/{client_id:str}", status_code=204, summary="Revoke a till's credential")
    async def revoke_till(
        self,
        client_id: FromPath[str],
        machine: NamedDependency[MachinePrincipal],
        merchants: NamedDependency[MerchantService],
    ) -> None:
        await merchants.revoke_till(machine.client_id, client_id)


class OrderQrController(Controller):
    path = "/api/v1/payments/orders"
    tags = ["payments"]
    guards = [merchant_or_miniapp]

    @get("/{order_id:str}/qr.svg", media_type="image/svg+xml", summary="The order's pay link as a QR (SVG)")
    async def qr_svg(
        self,
        order_id: FromPath[str],
        request: Request[Any, Any, Any],
        merchants: NamedDependency[MerchantService],
    ) -> Response[bytes]:
        body = await merchants.qr(order_id, owner_of(request.state[PRINCIPAL]), "svg")
        return Response(body, media_type="image/svg+xml", headers={"Cache-Control": "no-store"})

    @get("/{order_id:str}/qr.png", media_type="image/png", summary="The order's pay link as a QR (PNG)")
    async def qr_png(
        self,
        order_id: FromPath[str],
        request: Request[Any, Any, Any],
        merchants: NamedDependency[MerchantService],
    ) -> Response[bytes]:
        body = await merchants.qr(order_id, owner_of(request.state[PRINCIPAL]), "png")
        return Response(body, media_type="image/png", headers={"Cache-Control": "no-store"})


class PayCodeController(Controller):
    path = "/api/v1/payments/paycode"
    tags = ["merchants: pay code"]
    guards = [till_only]

    @post(
        "",
        status_code=200,
        summary="Take a payment by the citizen code a till scanned (idempotent per reference)",
    )
    async def pay(
        self,
        data: JSONBody[PayCodeScan],
        request: Request[Any, Any, Any],
        paycode: NamedDependency[PayCodeService],
    ) -> PayCodePayment:
        answer = await paycode.pay(
            request.state[PRINCIPAL],
            token=data.code,
            amount=data.amount,
            reference=data.reference,
            description=data.description,
        )
        return msgspec.convert(answer, PayCodePayment)

    @get("/{reference:str}", summary="A pay-code payment by the till's reference (what a till polls)")
    async def status(
        self,
        reference: FromPath[str],
        request: Request[Any, Any, Any],
        paycode: NamedDependency[PayCodeService],
    ) -> PayCodePayment:
        return msgspec.convert(await paycode.status(request.state[PRINCIPAL], reference), PayCodePayment)


class MyPayCodeController(Controller):
    path = "/api/v1/me/paycode"
    tags = ["citizens: pay code"]
    guards = [citizen_only]

    @get("", summary="What the citizen's code pays with at a till, the limit, the agreements")
    async def get_settings(
        self, citizen: NamedDependency[CitizenPrincipal], paycode: NamedDependency[PayCodeService]
    ) -> PayCodeSettings:
        return msgspec.convert(await paycode.settings(citizen.citizen_id), PayCodeSettings)

    @put("", summary="Turn paying by code on or off, choose the method and the per-payment limit")
    async def put_settings(
        self,
        data: JSONBody[PayCodeSettingsUpdate],
        citizen: NamedDependency[CitizenPrincipal],
        paycode: NamedDependency[PayCodeService],
    ) -> PayCodeSettings:
        updated = await paycode.update(
            citizen.citizen_id, enabled=data.enabled, method=data.method, limit=data.limit
        )
        return msgspec.convert(updated, PayCodeSettings)

    @get("/confirmations", summary="Payments waiting for the citizen's confirmation, newest first")
    async def pending(
        self, citizen: NamedDependency[CitizenPrincipal], paycode: NamedDependency[PayCodeService]
    ) -> Confirmations:
        return msgspec.convert({"items": await paycode.pending(citizen.citizen_id)}, Confirmations)

    @post("/confirmations/{confirmation_id:str}", status_code=200, summary="Approve or decline a payment")
    async def decide(
        self,
        confirmation_id: FromPath[str],
        data: JSONBody[Decision],
        citizen: NamedDependency[CitizenPrincipal],
        paycode: NamedDependency[PayCodeService],
    ) -> PayCodePayment:
        decided = await paycode.decide(
            citizen.citizen_id, confirmation_id, approve=data.decision == "approve"
        )
        return msgspec.convert(decided, PayCodePayment)
