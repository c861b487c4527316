"""HTTP handlers (thin) of the e-licence centre: what inspectors fetch while online (the issuer trust list,
status lists), what issuers do, what citizens see and decide, what requesters receive, and the issuer
register operators keep."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_304_NOT_MODIFIED

from auth.guards import citizen_only, machine_only, operator_only
from auth.principals import CitizenPrincipal, MachinePrincipal
from backend.pagination import DEFAULT_LIMIT, Limit, Offset, page_parts
from licences.rules import TYPES
from licences.schemas import (
    Approval,
    CredentialRequest,
    CredentialView,
    FieldsRequest,
    HandoverView,
    IssuedView,
    IssuerCreate,
    IssuerView,
    LicenceIssue,
    LicenceList,
    LicenceUpdate,
    LicenceView,
    NonceView,
    RequestPage,
    RequestView,
    SharedView,
    ShowRequest,
    ShowView,
    StatusChange,
    TypeField,
    TypeView,
    UsePage,
    UseView,
)
from licences.setup import LicenceServices
from licences.verifier import vct_of

NO_STORE = {"Cache-Control": "no-store"}
issuer_only = machine_only("issuer")
inspector_only = machine_only("inspector")
requester_only = machine_only("miniapp", "relying_party")
RequestState = Literal["pending", "approved", "refused", "expired", "used", "revoked"]


def _etag_matches(request: Request[Any, Any, Any], etag: str) -> bool:
    candidates = [t.strip() for t in request.headers.get("if-none-match", "").split(",")]
    return etag in candidates or etag.removeprefix("W/") in candidates or "*" in candidates


class PublicLicencesController(Controller):
    path = "/api/v1/licences"
    tags = ["e-licences: published"]

    @get("/types", summary="The licence types: their SD-JWT VC type (vct) and fields")
    async def types(self) -> list[TypeView]:
        return [
            TypeView(
                code=t.code,
                vct=vct_of(t.code),
                zh=t.zh,
                en=t.en,
                department=t.department,
                fields=[TypeField(f.name, f.zh, f.en, f.required, f.kind) for f in t.fields],
            )
            for t in TYPES.values()
        ]

    @get("/trust-list", summary="The issuer trust list, signed by the root key (ETag / If-None-Match)")
    async def trust_list(
        self, request: Request[Any, Any, Any], licences: NamedDependency[LicenceServices]
    ) -> Response[Any]:
        document, etag = await licences.issuers.signed_trust_list()
        headers = {"ETag": etag, "Cache-Control": "public, max-age=60"}
        if _etag_matches(request, etag):
            return Response(b"", status_code=HTTP_304_NOT_MODIFIED, headers=headers)
        return Response(document, headers=headers)

    @get("/trust-root", summary="The root public key that signs the issuer trust list (pin it)")
    async def trust_root(self, licences: NamedDependency[LicenceServices]) -> dict[str, Any]:
        return {"keys": [await licences.issuers.root_jwk()]}

    @get(
        "/status/{issuer:str}/{number:int}",
        summary="A Status List Token (IETF Token Status List) of an issuer's licences",
        media_type="application/statuslist+jwt",
        opt={"problems": [404, 409]},  # 409 issuer_revoked: a revoked issuer's key signs nothing
    )
    async def status_list(
        self,
        request: Request[Any, Any, Any],
        issuer: FromPath[str],
        number: FromPath[int],
        licences: NamedDependency[LicenceServices],
    ) -> Response[str]:
        token, etag, ttl = await licences.statuses.token(issuer, number)
        headers = {"ETag": etag, "Cache-Control": f"public, max-age={ttl}"}
        if _etag_matches(request, etag):
            return Response(
                "",
                status_code=HTTP_304_NOT_MODIFIED,
                headers=headers,
                media_type="application/statuslist+jwt",
            )
        return Response(token, headers=headers, media_type="application/statuslist+jwt")

    @get(
        "/handover/{ref:str}",
        guards=[inspector_only],
        summary="An inspector fetches a presentation a citizen handed over by reference (once)",
        opt={"problems": [404]},
    )
    async def handover(
        self,
        ref: FromPath[str],
        machine: NamedDependency[MachinePrincipal],
        licences: NamedDependency[LicenceServices],
    ) -> Response[HandoverView]:
        body = await licences.showing.fetch_handover(machine, ref)
        return Response(msgspec.convert(body, HandoverView), headers=NO_STORE)


class IssuedLicencesController(Controller):
    path = "/api/v1/licences/issued"
    tags = ["e-licences: issuers"]
    guards = [issuer_only]

    @post(
        "",
        status_code=HTTP_201_CREATED,
        summary="Issue a licence to the holder of an ID number (the same number again: the same licence)",
        opt={"problems": [403, 409]},
    )
    async def issue(
        self,
        data: JSONBody[LicenceIssue],
        machine: NamedDependency[MachinePrincipal],
        licences: NamedDependency[LicenceServices],
    ) -> Response[IssuedView]:
        issuer = await licences.issuers.of_client(machine.client_id)
        view, created = await licences.book.issue(
            issuer, data.type, data.id_number, dict(data.fields), data.valid_until
        )
        return Response(
            msgspec.convert(view, IssuedView), status_code=HTTP_201_CREATED if created else HTTP_200_OK
        )

    @get("/{licence_id:str}", summary="One licence this issuer issued", opt={"problems": [404]})
    async def one(
        self,
        licence_id: FromPath[str],
        machine: NamedDependency[MachinePrincipal],
        licences: NamedDependency[LicenceServices],
    ) -> IssuedView:
        issuer = await licences.issuers.of_client(machine.client_id)
        return msgspec.convert(await licences.book.for_issuer(issuer, licence_id), IssuedView)

    @patch(
        "/{licence_id:str}",
        summary="Update a licence's details (its version goes up)",
        opt={"problems": [404, 409]},
    )
    async def update(
        self,
        licence_id: FromPath[str],
        data: JSONBody[LicenceUpdate],
        machine: NamedDependency[MachinePrincipal],
        licences: NamedDependency[LicenceServices],
    ) -> IssuedView:
        issuer = await licences.issuers.of_client(machine.client_id)
        view = await licences.book.update(issuer, licence_id, dict(data.fields), data.valid_until)
        return msgspec.convert(view, IssuedView)

    @post(
        "/{licence_id:str}/{action:str}",
        status_code=HTTP_200_OK,
        summary="Suspend, reinstate or revoke a licence (action: suspend | reinstate | revoke)",
        opt={"problems": [404, 409]},
    )
    async def change(
        self,
        licence_id: FromPath[str],
        action: FromPath[Literal["suspend", "reinstate", "revoke"]],
        data: JSONBody[StatusChange],
        machine: NamedDependency[MachinePrincipal],
        licences: NamedDependency[LicenceServices],
    ) -> IssuedView:
        issuer = await licences.issuers.of_client(machine.client_id)
        return msgspec.convert(
            await licences.book.set_status(issuer, licence_id, action, data.reason), IssuedView
        )


class MyLicencesController(Controller):
    path = "/api/v1/me/licences"
    tags = ["citizens: e-licences"]
    guards = [citizen_only]

    @get("", summary="My licences (once my real name is verified)")
    async def mine(
        self, citizen: NamedDependency[CitizenPrincipal], licences: NamedDependency[LicenceServices]
    ) -> Response[LicenceList]:
        verified, items = await licences.book.mine(citizen.citizen_id)
        return Response(
            msgspec.convert({"verified": verified, "items": items}, LicenceList), headers=NO_STORE
        )

    @post("/nonce", status_code=HTTP_200_OK, summary="A one-time nonce for the device key's proof")
    async def nonce(
        self, citizen: NamedDependency[CitizenPrincipal], licences: NamedDependency[LicenceServices]
    ) -> Response[NonceView]:
        value, ttl = await licences.book.nonce(citizen.citizen_id)
        body = NonceView(c_nonce=value, expires_in=ttl, audience=licences.issuers.s.public_url)
        return Response(body, headers=NO_STORE)

    @post(
        "/presentations",
        status_code=HTTP_200_OK,
        summary="亮证: check a presentation my device made and get what the QR shows (inline or a reference)",
        opt={"problems": [403, 409]},
    )
    async def show(
        self,
        data: JSONBody[ShowRequest],
        citizen: NamedDependency[CitizenPrincipal],
        licences: NamedDependency[LicenceServices],
    ) -> Response[ShowView]:
        shown = await licences.showing.show(citizen.citizen_id, data.presentation, handover=data.handover)
        return Response(msgspec.convert(shown, ShowView, from_attributes=True), headers=NO_STORE)

    @get(
        "/{licence_id:str}",
        summary="One licence of mine, every field, and the devices holding it",
        opt={"problems": [404]},
    )
    async def one(
        self,
        licence_id: FromPath[str],
        citizen: NamedDependency[CitizenPrincipal],
        licences: NamedDependency[LicenceServices],
    ) -> Response[LicenceView]:
        view = await licences.book.view(citizen.citizen_id, licence_id)
        return Response(msgspec.convert(view, LicenceView), headers=NO_STORE)

    @post(
        "/{licence_id:str}/credential",
        status_code=HTTP_200_OK,
        summary="A credential of the licence (SD-JWT VC) bound to my device's key",
        opt={"problems": [404, 409]},
    )
    async def credential(
        self,
        licence_id: FromPath[str],
        data: JSONBody[CredentialRequest],
        citizen: NamedDependency[CitizenPrincipal],
        licences: NamedDependency[LicenceServices],
    ) -> Response[CredentialView]:
        body = await licences.book.credential(citizen.citizen_id, licence_id, data.proof)
        return Response(msgspec.convert(body, CredentialView), headers=NO_STORE)

    @delete(
        "/{licence_id:str}/devices/{jkt:str}",
        status_code=HTTP_200_OK,
        summary="Withdraw a device's credentials of a licence (a lost phone)",
        opt={"problems": [404]},
    )
    async def withdraw(
        self,
        licence_id: FromPath[str],
        jkt: FromPath[str],
        citizen: NamedDependency[CitizenPrincipal],
        licences: NamedDependency[LicenceServices],
    ) -> dict[str, int]:
        return {"withdrawn": await licences.book.withdraw_device(citizen.citizen_id, licence_id, jkt)}


class MyLicenceRequestsController(Controller):
    path = "/api/v1/me/licence-requests"
    tags = ["citizens: e-licences"]
    guards = [citizen_only]

    @get("", summary="Requests for my licences' fields (授权), newest first")
    async def mine(
        self,
        request: Request[Any, Any, Any],
        citizen: NamedDependency[CitizenPrincipal],
        licences: NamedDependency[LicenceServices],
        request_state: Annotated[RequestState | None, QueryParameter(name="state")] = None,
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
    ) -> Response[RequestPage]:
        rows = await licences.consents.mine(citizen.citizen_id, request_state, limit=limit + 1, offset=offset)
        items, after, link = page_parts(request, rows, limit=limit, offset=offset)
        body = RequestPage(
            items=[msgspec.convert(i, RequestView) for i in items], next_offset=after, next=link
        )
        return Response(body, headers=NO_STORE)

    @post(
        "/{request_id:str}/approve",
        status_code=HTTP_200_OK,
        summary="Approve a request",
        opt={"problems": [404, 409]},
    )
    async def approve(
        self,
        request_id: FromPath[str],
        data: JSONBody[Approval],
        citizen: NamedDependency[CitizenPrincipal],
        licences: NamedDependency[LicenceServices],
    ) -> RequestView:
        row = await licences.consents.decide(citizen.citizen_id, request_id, True, data.licence)
        return msgspec.convert(row, RequestView)

    @post(
        "/{request_id:str}/refuse",
        status_code=HTTP_200_OK,
        summary="Refuse a request",
        opt={"problems": [404, 409]},
    )
    async def refuse(
        self,
        request_id: FromPath[str],
        citizen: NamedDependency[CitizenPrincipal],
        licences: NamedDependency[LicenceServices],
    ) -> RequestView:
        return msgspec.convert(
            await licences.consents.decide(citizen.citizen_id, request_id, False), RequestView
        )

    @post(
        "/{request_id:str}/revoke",
        status_code=HTTP_200_OK,
        summary="Withdraw a consent I gave",
        opt={"problems": [404, 409]},
    )
    async def revoke(
        self,
        request_id: FromPath[str],
        citizen: NamedDependency[CitizenPrincipal],
        licences: NamedDependency[LicenceServices],
    ) -> RequestView:
        return msgspec.convert(await licences.consents.revoke(citizen.citizen_id, request_id), RequestView)


class MyLicenceUsesController(Controller):
    path = "/api/v1/me/licence-uses"
    tags = ["citizens: e-licences"]
    guards = [citizen_only]

    @get("", summary="Who saw which fields of my licences, when, for what: newest first")
    async def uses(
        self,
        request: Request[Any, Any, Any],
        citizen: NamedDependency[CitizenPrincipal],
        licences: NamedDependency[LicenceServices],
        licence: FromQuery[str | None] = None,
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
    ) -> Response[UsePage]:
        rows = await licences.uses.of(citizen.citizen_id, licence=licence, limit=limit + 1, offset=offset)
        items, after, link = page_parts(request, rows, limit=limit, offset=offset)
        body = UsePage(items=[msgspec.convert(i, UseView) for i in items], next_offset=after, next=link)
        return Response(body, headers=NO_STORE)


class LicenceRequestsController(Controller):
    path = "/api/v1/licences/requests"
    tags = ["e-licences: requesters"]
    guards = [requester_only]

    @post(
        "",
        status_code=HTTP_201_CREATED,
        summary="Ask a citizen for named fields of a licence type for a purpose (same key: same request)",
        opt={"problems": [404]},
    )
    async def ask(
        self,
        data: JSONBody[FieldsRequest],
        machine: NamedDependency[MachinePrincipal],
        licences: NamedDependency[LicenceServices],
    ) -> Response[RequestView]:
        requester, citizen = await licences.subject(machine, openid=data.openid, id_number=data.id_number)
        row, created = await licences.consents.request(
            requester,
            citizen,
            data.type,
            list(data.fields),
            data.purpose,
            data.mode,
            key=data.key,
            standing_days=data.standing_days,
        )
        return Response(
            msgspec.convert(row, RequestView), status_code=HTTP_201_CREATED if created else HTTP_200_OK
        )

    @get("/{request_id:str}", summary="Where my request stands", opt={"problems": [404]})
    async def one(
        self,
        request_id: FromPath[str],
        machine: NamedDependency[MachinePrincipal],
        licences: NamedDependency[LicenceServices],
    ) -> RequestView:
        row = await licences.consents.for_requester(licences.requester(machine), request_id)
        return msgspec.convert(row, RequestView)

    @post(
        "/{request_id:str}/presentation",
        status_code=HTTP_200_OK,
        summary="The consented fields as an issuer-signed presentation (a one-time consent: once)",
        opt={"problems": [404, 409]},
    )
    async def presentation(
        self,
        request_id: FromPath[str],
        machine: NamedDependency[MachinePrincipal],
        licences: NamedDependency[LicenceServices],
    ) -> Response[SharedView]:
        body = await licences.consents.share(licences.requester(machine), request_id)
        return Response(msgspec.convert(body, SharedView), headers=NO_STORE)


class OperatorLicencesController(Controller):
    path = "/api/v1/admin/licences"
    tags = ["operators: e-licences"]
    guards = [operator_only]

    @get("/issuers", summary="The issuers: departments that issue licences")
    async def issuers(self, licences: NamedDependency[LicenceServices]) -> list[IssuerView]:
        return [msgspec.convert(i, IssuerView) for i in await licences.issuers.list()]

    @post(
        "/issuers",
        status_code=HTTP_201_CREATED,
        summary="Register an issuer: its signing key and its credential (the secret is shown once)",
        opt={"problems": [409]},
    )
    async def create_issuer(
        self,
        data: JSONBody[IssuerCreate],
        machine: NamedDependency[MachinePrincipal],
        licences: NamedDependency[LicenceServices],
    ) -> Response[IssuerView]:
        made = await licences.issuers.create(
            data.code, data.name_zh, data.name_en, data.department, list(data.types), actor=machine.client_id
        )
        return Response(msgspec.convert(made, IssuerView), headers=NO_STORE, status_code=HTTP_201_CREATED)

    @post(
        "/issuers/{code:str}/revoke",
        status_code=HTTP_200_OK,
        summary="Revoke an issuer: out of the trust list, its credential stops",
        opt={"problems": [404]},
    )
    async def revoke_issuer(
        self,
        code: FromPath[str],
        machine: NamedDependency[MachinePrincipal],
        licences: NamedDependency[LicenceServices],
    ) -> IssuerView:
        return msgspec.convert(await licences.issuers.revoke(code, actor=machine.client_id), IssuerView)

    @post(
        "/issuers/{code:str}/rotate",
        status_code=HTTP_200_OK,
        summary="Give an issuer a new signing key: published now, signing from signs_from (once inspectors"
        " hold it); the old one stays published while its credentials live",
        opt={"problems": [404]},
    )
    async def rotate(
        self,
        code: FromPath[str],
        machine: NamedDependency[MachinePrincipal],
        licences: NamedDependency[LicenceServices],
    ) -> dict[str, str]:
        return await licences.issuers.rotate(code, actor=machine.client_id)
