"""Mini-app platform HTTP handlers (thin): catalogue, authorisation, token exchange, userinfo, grants, and
the gate's (scans online and uploaded, a citizen's scan history)."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_204_NO_CONTENT

from auth.deps import provide_machine
from auth.guards import citizen_only, miniapp_only, scanner_only
from auth.principals import CitizenPrincipal, MachinePrincipal
from backend.errors import Unauthorized
from backend.i18n import current_locale
from backend.pagination import DEFAULT_LIMIT, Limit, Offset, page_parts, window
from miniapps.gate import Gate
from miniapps.schemas import (
    AuthorizeRequest,
    AuthorizeResult,
    BatchRequest,
    BatchResult,
    Catalogue,
    CatalogueEntry,
    Grant,
    GrantPage,
    ScanHistoryItem,
    ScanHistoryPage,
    ScanRequest,
    ScanResult,
    TokenRequest,
    TokenResult,
)
from miniapps.services import MINIAPPS, MiniAppAuth, MiniAppServices
from miniapps.tables import ScanRecord


def _bearer(request: Request[Any, Any, Any]) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized(
            "a mini-app access token is required",
            code="invalid_token",
            headers={"WWW-Authenticate": 'Bearer realm="shengshitong-miniapps"'},
        )
    return token.strip()


class MiniAppsController(Controller):
    path = "/api/v1/miniapps"
    tags = ["mini-apps"]

    @get("", summary="The mini-app catalogue (no token needed)")
    async def catalogue(
        self,
        request: Request[Any, Any, Any],
        miniapps: NamedDependency[MiniAppServices],
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
    ) -> Catalogue:
        apps = window(list(miniapps.apps.values()), limit=limit, offset=offset)
        shown, after, link = page_parts(request, apps, limit=limit, offset=offset)
        locale = current_locale()
        items = [
            msgspec.convert(
                {
                    **msgspec.to_builtins(a.manifest),
                    "description": a.manifest.describe(locale),
                    "description_zh": a.manifest.describe("zh-CN"),
                    "description_en": a.manifest.describe("en"),
                },
                CatalogueEntry,
                strict=False,
            )
            for a in shown
        ]
        return Catalogue(items=items, next_offset=after, next=link)

    @post(
        "/{app_id:str}/authorize",
        status_code=200,
        guards=[citizen_only],
        summary="Authorise a mini-app for scopes: a one-time code for its backend (5 minutes)",
    )
    async def authorize(
        self,
        app_id: FromPath[str],
        data: JSONBody[AuthorizeRequest],
        citizen: NamedDependency[CitizenPrincipal],
        miniapp_auth: NamedDependency[MiniAppAuth],
        ip: NamedDependency[str],
    ) -> AuthorizeResult:
        result = await miniapp_auth.authorize(citizen.citizen_id, app_id, data.scopes, ip=ip)
        return msgspec.convert(result, AuthorizeResult)

    @post(
        "/{app_id:str}/token",
        status_code=200,
        guards=[miniapp_only],
        summary="The mini-app's backend exchanges the code for the pairwise openid and a scoped token",
    )
    async def token(
        self,
        app_id: FromPath[str],
        data: JSONBody[TokenRequest],
        machine: NamedDependency[MachinePrincipal],
        miniapp_auth: NamedDependency[MiniAppAuth],
    ) -> TokenResult:
        result = await miniapp_auth.exchange(app_id, data.code, caller_app_id=machine.app_id)
        return msgspec.convert(result, TokenResult)

    @get(
        "/{app_id:str}/userinfo",
        summary="What the granted scopes allow the mini-app to know (mini-app token)",
        security=[{"miniappToken": []}],
    )
    async def userinfo(
        self,
        app_id: FromPath[str],
        request: Request[Any, Any, Any],
        miniapp_auth: NamedDependency[MiniAppAuth],
    ) -> dict[str, Any]:
        return await miniapp_auth.userinfo(app_id, _bearer(request))

    @get(
        "/{app_id:str}/userinfo/{scope_name:str}",
        summary="One scope's claims; 403 insufficient_scope without it",
        security=[{"miniappToken": []}],
    )
    async def userinfo_scope(
        self,
        app_id: FromPath[str],
        scope_name: FromPath[str],
        request: Request[Any, Any, Any],
        miniapp_auth: NamedDependency[MiniAppAuth],
    ) -> dict[str, Any]:
        return await miniapp_auth.userinfo(app_id, _bearer(request), need=scope_name)


class GrantsController(Controller):
    path = "/api/v1/me/grants"
    tags = ["mini-apps"]
    guards = [citizen_only]

    @get("", summary="Mini-apps this citizen has authorised, with the scopes granted")
    async def grants(
        self,
        request: Request[Any, Any, Any],
        citizen: NamedDependency[CitizenPrincipal],
        miniapp_auth: NamedDependency[MiniAppAuth],
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
    ) -> GrantPage:
        rows = await miniapp_auth.grants(citizen.citizen_id, limit=limit + 1, offset=offset)
        items, after, link = page_parts(request, rows, limit=limit, offset=offset)
        return GrantPage(items=[msgspec.convert(r, Grant) for r in items], next_offset=after, next=link)

    @delete("/{app_id:str}", status_code=HTTP_204_NO_CONTENT, summary="Revoke a mini-app's access at once")
    async def revoke(
        self,
        app_id: FromPath[str],
        citizen: NamedDependency[CitizenPrincipal],
        miniapp_auth: NamedDependency[MiniAppAuth],
        ip: NamedDependency[str],
    ) -> None:
        await miniapp_auth.revoke(citizen.citizen_id, app_id, ip=ip)


class ScansController(Controller):
    path = "/api/v1/scans"
    tags = ["scanners"]
    guards = [scanner_only]

    @post("", status_code=200, summary="Verify a scanned code online and route it to the scanner's mini-app")
    async def scan(self, request: Request[Any, Any, Any], data: JSONBody[ScanRequest]) -> ScanResult:
        # the gate's hot path takes no injected dependencies: Litestar resolves two or more of them in
        # an anyio task group, which cost ~0.2 ms of a scan's CPU (the scanner is the guard's, the gate
        # the app's)
        return await MINIAPPS.of(request.app).gate.scan(provide_machine(request), data)

    @post("/batch", status_code=200, summary="Upload scans from an offline terminal (idempotent per record)")
    async def batch(
        self,
        data: JSONBody[BatchRequest],
        machine: NamedDependency[MachinePrincipal],
        gate: NamedDependency[Gate],
    ) -> BatchResult:
        return BatchResult(results=await gate.batch(machine, data.records))


class MyScansController(Controller):
    path = "/api/v1/me/scans"
    tags = ["citizens: profile"]
    guards = [citizen_only]

    @get("", summary="The citizen's scan history: what was scanned, where, by which service, and the result")
    async def my_scans(
        self,
        request: Request[Any, Any, Any],
        citizen: NamedDependency[CitizenPrincipal],
        miniapps: NamedDependency[MiniAppServices],
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
    ) -> Response[ScanHistoryPage]:
        rows = (
            await ScanRecord.select(
                ScanRecord.scanned_at,
                ScanRecord.app_id,
                ScanRecord.place,
                ScanRecord.context,
                ScanRecord.result,
                ScanRecord.reason,
                ScanRecord.offline,
            )
            .where(ScanRecord.citizen_id == citizen.citizen_id)
            .order_by(ScanRecord.scanned_at, ascending=False)
            .order_by(ScanRecord.id)
            .limit(limit + 1)
            .offset(offset)
            .run()
        )
        items = []
        for r in rows[:limit]:
            app = miniapps.apps.get(r["app_id"])
            items.append(
                ScanHistoryItem(
                    **r,
                    app_name_zh=app.manifest.name_zh if app else r["app_id"],
                    app_name_en=app.manifest.name_en if app else r["app_id"],
                )
            )
        _, after, link = page_parts(request, rows, limit=limit, offset=offset)
        return Response(
            ScanHistoryPage(items=items, next_offset=after, next=link),
            headers={"Cache-Control": "no-store"},
        )
