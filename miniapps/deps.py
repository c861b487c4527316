"""What a mini-app's own routes may declare: the calling citizen as a pairwise id of this mini-app.

Mini-apps take these from :mod:`miniapps.contract`, which re-exports them; the platform's plugin mounts
:data:`DEPENDENCIES`."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.di import Provide
from litestar.handlers.base import BaseRouteHandler

from auth.guards import PRINCIPAL, citizen_only, miniapp_only, scanner_only
from auth.principals import CitizenPrincipal
from auth.services import AUTH
from backend.errors import Forbidden
from backend.i18n import pick
from backend.openapi import requires

APP_CALLER = "miniapp_caller"


class AppCaller(msgspec.Struct, frozen=True):
    """The citizen calling a mini-app route: their pairwise id for this mini-app, nothing else."""

    app_id: str
    openid: str


@requires({"citizenToken": []})
async def citizen_caller(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """Guard for mini-app routes: a citizen's platform access token, turned into this app's openid."""
    await citizen_only(connection, handler)
    principal: CitizenPrincipal = connection.state[PRINCIPAL]
    app_id = str(handler.opt.get("miniapp_id") or connection.path_params.get("app_id") or "")
    pairwise = AUTH.of(connection.app).pairwise
    connection.state[APP_CALLER] = AppCaller(
        app_id=app_id, openid=await pairwise.issue(app_id, principal.citizen_id)
    )


def names(zh: str, en: str, field: str = "name") -> dict[str, str]:
    """A name a person reads, in a route's answer the way the catalogue gives its descriptions: ``field``
    in the request's language (``Accept-Language``, Chinese by default), and ``field_zh`` and ``field_en``
    for an app that switches language without asking again. A name missing in one language is given in
    the other (never both in one string)."""
    zh, en = zh or en, en or zh
    return {field: pick(zh, en), f"{field}_zh": zh, f"{field}_en": en}


def provide_caller(request: Request[Any, Any, Any]) -> AppCaller:
    caller = request.state.get(APP_CALLER)
    if not isinstance(caller, AppCaller):
        raise RuntimeError("route asks for the caller but has no citizen_caller guard")
    return caller


DEPENDENCIES = {"caller": Provide(provide_caller, sync_to_thread=False)}


@requires({"machineCredential": []})
async def app_backend(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """Guard for a mini-app's back-office routes: its own backend's credential (HTTP Basic), no other's."""
    await miniapp_only(connection, handler)
    app_id = str(handler.opt.get("miniapp_id") or "")
    if connection.state[PRINCIPAL].app_id != app_id:
        raise Forbidden(f"this route is for {app_id!r}'s own backend", code="wrong_miniapp")


# ---- a scanner of the app calling one of its routes (扫码门禁 doors) ----------------
SCANNER_CALLER = "miniapp_scanner"


class ScannerCaller(msgspec.Struct, frozen=True):
    """The scanner (terminal) calling a mini-app route: its client id, place and scan context."""

    client_id: str
    place: str
    context: str


@requires({"machineCredential": []})
async def scanner_caller(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """Guard for routes a mini-app's terminals call (a door fetching its offline list): a scanner's
    credential (HTTP Basic) enrolled for this mini-app, no other's; the route declares
    ``scanner: NamedDependency[ScannerCaller]``."""
    await scanner_only(connection, handler)
    app_id = str(handler.opt.get("miniapp_id") or "")
    principal = connection.state[PRINCIPAL]
    if principal.app_id != app_id:
        raise Forbidden(f"this route is for {app_id!r}'s own scanners", code="wrong_miniapp")
    connection.state[SCANNER_CALLER] = ScannerCaller(
        client_id=principal.client_id, place=principal.place, context=principal.context
    )


def provide_scanner(request: Request[Any, Any, Any]) -> ScannerCaller:
    scanner = request.state.get(SCANNER_CALLER)
    if not isinstance(scanner, ScannerCaller):
        raise RuntimeError("route asks for the scanner but has no scanner_caller guard")
    return scanner


DEPENDENCIES["scanner"] = Provide(provide_scanner, sync_to_thread=False)
