"""HTTP handlers of the web faces (thin: the services decide). Pages are static files from the package;
everything they show comes from the JSON APIs below and the citizen API."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.response import Redirect, ServerSentEvent, ServerSentEventMessage

from auth.guards import client_ip
from backend.errors import InvalidInput
from backend.i18n import current_locale
from backend.pages import PAGE_HEADERS
from console.admin import console_texts
from console.dashboard import Dashboard
from console.guards import (
    console_admin,
    console_operator,
    operators_of,
    provide_operator,
    same_site_post,
    signed_in,
)
from console.operators import OperatorService
from console.simulator import ScannerSimulator
from miniapps.schemas import ScanResult
from payments.channels.sandbox import PAGE_PATH

STATIC = Path(__file__).parent / "static"
MAX_IMAGE = 8 * 1024 * 1024


def page(name: str) -> Response[bytes]:
    """A page in the request's language (its script switches on request): the language is in <html lang>."""
    locale = current_locale()
    html = (STATIC / name).read_bytes().replace(b'<html lang="zh-CN">', f'<html lang="{locale}">'.encode(), 1)
    return Response(
        html,
        media_type="text/html; charset=utf-8",
        headers={**PAGE_HEADERS, "Content-Language": locale, "Vary": "Accept-Language"},
    )


class Pages(Controller):
    include_in_schema = False

    @get("/wallet", summary="The citizen web wallet")
    async def wallet(self) -> Response[bytes]:
        return page("wallet.html")

    @get("/wallet-sw.js", summary="The web wallet's service worker (Web Push notifications)")
    async def wallet_worker(self) -> Response[bytes]:
        """Served next to ``/wallet`` rather than under ``/static/web/``: a worker's scope cannot be wider
        than its own path, and the wallet registers it for the scope ``/wallet``."""
        return Response(
            (STATIC / "wallet-sw.js").read_bytes(),
            media_type="text/javascript; charset=utf-8",
            headers={**PAGE_HEADERS, "Cache-Control": "no-cache"},
        )

    @get("/admin/dashboard")
    async def dashboard(self, request: Request[Any, Any, Any]) -> Response[Any]:
        if await signed_in(request) is None:
            return Redirect("/admin/")
        return page("dashboard.html")

    @get("/admin/ratings")
    async def ratings(self, request: Request[Any, Any, Any]) -> Response[Any]:
        """The 好差评 page: statistics, cases, appeals, department units (console/_ratings_controller.py)."""
        if await signed_in(request) is None:
            return Redirect("/admin/")
        return page("ratings.html")

    @get("/admin/payments")
    async def payments(self, request: Request[Any, Any, Any]) -> Response[Any]:
        """The payments page: reconciliation runs and statistics (console/_payments_controller.py)."""
        if await signed_in(request) is None:
            return Redirect("/admin/")
        return page("payments.html")

    @get("/admin/licences")
    async def licences(self, request: Request[Any, Any, Any]) -> Response[Any]:
        """The 电子证照 page: the issuer register (console/_licences_controller.py)."""
        if await signed_in(request) is None:
            return Redirect("/admin/")
        return page("licences.html")

    @get("/admin/scanner")
    async def scanner(self, request: Request[Any, Any, Any]) -> Response[Any]:
        if await signed_in(request) is None:
            return Redirect("/admin/")
        return page("scanner.html")

    @get("/admin/console/texts")
    async def console_texts(self, request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
        """What the console's page script needs (names in both languages, money columns, what the
        signed-in operator may change; the login page asks too, so no operator is fine)."""
        operator = await signed_in(request)
        return Response(
            console_texts(operator.role if operator else None), headers={"Cache-Control": "no-store"}
        )


class SandboxPayPage(Controller):
    """The sandbox's payment page, what a sandbox payment's ``pay_url`` opens: the citizen signs in (the
    wallet's session), sees the order and pays it through the sandbox pay API. Mounted only while the
    sandbox channel is enabled (console/plugin.py)."""

    path = PAGE_PATH
    include_in_schema = False

    @get("/{order_id:str}", summary="The sandbox payment page (a person opens pay_url here)")
    async def pay(self, order_id: FromPath[str]) -> Response[bytes]:
        return page("sandbox-pay.html")  # the page reads the order id from its address


class DashboardController(Controller):
    path = "/admin/dashboard"
    tags = ["operators: console"]
    guards = [console_operator]

    @get("/frame", summary="The dashboard's figures now (the stream sends the same frames)")
    async def frame(self, dashboard: NamedDependency[Dashboard]) -> Response[dict[str, Any]]:
        return Response(await dashboard.frame(), headers={"Cache-Control": "no-store"})

    @get("/stream", summary="Server-sent events: a frame now, on every scan tick and every few seconds")
    async def stream(
        self,
        request: Request[Any, Any, Any],
        dashboard: NamedDependency[Dashboard],
    ) -> ServerSentEvent:
        still_signed_in = _session_check(operators_of(request), request.cookies.get("id"))
        return ServerSentEvent(
            _events(dashboard.stream(still_signed_in)), headers={"Cache-Control": "no-store"}
        )


def _session_check(operators: OperatorService, token: str | None) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return await operators.from_token(token) is not None

    return check


async def _events(stream: AsyncIterator[tuple[str, dict[str, Any]]]) -> AsyncIterator[ServerSentEventMessage]:
    async for event, data in stream:
        yield ServerSentEventMessage(data=json.dumps(data), event=event, retry=3000)


class SimulatedScan(msgspec.Struct, forbid_unknown_fields=True):
    scanner_id: Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
    code: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]


class ScannerController(Controller):
    path = "/admin/scanner"
    tags = ["operators: console"]
    guards = [console_operator]

    @get("/scanners", summary="Active scanners to simulate")
    async def scanners(self, scanner_simulator: NamedDependency[ScannerSimulator]) -> list[dict[str, Any]]:
        return await scanner_simulator.scanners()

    @post(
        "/decode",
        status_code=200,
        guards=[same_site_post],
        summary="Read the QR code in an uploaded image (the request body is the image)",
        request_max_body_size=MAX_IMAGE,
    )
    async def decode(
        self, request: Request[Any, Any, Any], scanner_simulator: NamedDependency[ScannerSimulator]
    ) -> dict[str, str]:
        image = await request.body()
        if not image:
            raise InvalidInput("send the image as the request body", code="empty_image")
        return {"code": await asyncio.to_thread(scanner_simulator.decode, image)}

    @post(
        "/scan", status_code=200, guards=[console_admin, same_site_post], summary="Show a code to a scanner"
    )
    async def scan(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[SimulatedScan],
        scanner_simulator: NamedDependency[ScannerSimulator],
    ) -> ScanResult:
        operator = provide_operator(request)
        return await scanner_simulator.scan(operator, data.scanner_id, data.code, ip=client_ip(request))
