"""The JSON routes of the console's 电子证照 page (``/admin/licences``, static/licences.{html,js}), thin over
:class:`console.licences.LicencesDesk`: any signed-in operator reads the issuers (with their keys) and the
departments they may be; an admin, with the CSRF token, registers an issuer (the secret is in that answer
only), revokes one and rotates its key. The operators' API (``/api/v1/admin/licences``) does the same for
machine credentials; these routes are the console session's way in."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from console.guards import console_admin, console_operator, provide_operator, same_site_post
from console.licences import LicencesDesk
from licences.controllers import NO_STORE
from licences.schemas import IssuerCreate

CHANGE = [console_admin, same_site_post]


class KeyView(msgspec.Struct):
    kid: str
    alg: str
    created_at: datetime
    active_from: datetime
    retired_at: datetime | None
    publish_until: datetime | None
    state: str  # signing | waiting (published, signing from active_from) | retired (verifies only)


class DeskIssuer(msgspec.Struct):
    code: str
    name_zh: str
    name_en: str
    department: str
    department_zh: str
    department_en: str
    types: list[str]
    client_id: str
    status: str
    created_at: datetime
    revoked_at: datetime | None
    keys: list[KeyView]  # the published ones, newest first (none once revoked: out of the trust list)
    client_secret: str | None = None  # once, in the answer to the registration


class TypeName(msgspec.Struct):
    code: str
    zh: str
    en: str


class Department(msgspec.Struct):
    code: str
    zh: str
    en: str
    types: list[TypeName]


class LicencesController(Controller):
    path = "/admin/licences"
    tags = ["operators: console"]
    guards = [console_operator]

    @get("/issuers", summary="The licence issuers, their published keys and which one signs")
    async def issuers(self, licences_desk: NamedDependency[LicencesDesk]) -> Response[list[DeskIssuer]]:
        rows = [msgspec.convert(i, DeskIssuer) for i in await licences_desk.issuers()]
        return Response(rows, headers=NO_STORE)

    @get("/departments", summary="The departments an issuer may be, and the licence types each issues")
    async def departments(self, licences_desk: NamedDependency[LicencesDesk]) -> list[Department]:
        return [msgspec.convert(d, Department) for d in licences_desk.departments()]

    @post(
        "/issuers",
        status_code=HTTP_201_CREATED,
        guards=CHANGE,
        summary="Register an issuer: its signing key and its credential (the secret is shown once)",
    )
    async def register(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[IssuerCreate],
        licences_desk: NamedDependency[LicencesDesk],
    ) -> Response[DeskIssuer]:
        made = await licences_desk.register(
            provide_operator(request).username,
            data.code,
            data.name_zh,
            data.name_en,
            data.department,
            list(data.types),
        )
        return Response(msgspec.convert(made, DeskIssuer), status_code=HTTP_201_CREATED, headers=NO_STORE)

    @post(
        "/issuers/{code:str}/revoke",
        status_code=HTTP_200_OK,
        guards=CHANGE,
        summary="Revoke an issuer: out of the trust list, its credential stops",
    )
    async def revoke(
        self,
        request: Request[Any, Any, Any],
        code: FromPath[str],
        licences_desk: NamedDependency[LicencesDesk],
    ) -> DeskIssuer:
        row = await licences_desk.revoke(provide_operator(request).username, code)
        return msgspec.convert(row, DeskIssuer)

    @post(
        "/issuers/{code:str}/rotate",
        status_code=HTTP_200_OK,
        guards=CHANGE,
        summary="Give an issuer a new signing key: published now, signing once inspectors can hold it",
    )
    async def rotate(
        self,
        request: Request[Any, Any, Any],
        code: FromPath[str],
        licences_desk: NamedDependency[LicencesDesk],
    ) -> DeskIssuer:
        row = await licences_desk.rotate(provide_operator(request).username, code)
        return msgspec.convert(row, DeskIssuer)
