"""Citizen-code and scan HTTP handlers (thin)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter
from litestar.status_codes import HTTP_304_NOT_MODIFIED

from auth.guards import citizen_only
from auth.principals import CitizenPrincipal
from codes import qr
from codes.schemas import CurrentCode
from codes.services import CodeIssuer, CodeKeys, iso

NO_STORE = {"Cache-Control": "no-store"}


def _current(issued: dict[str, Any], **extra: Any) -> CurrentCode:
    return CurrentCode(
        token=issued["token"],
        issued_at=iso(issued["issued_at"]),
        expires_at=iso(issued["expires_at"]),
        refresh_after=iso(issued["refresh_after"]),
        entitlements=issued["entitlements"],
        kid=issued["kid"],
        **extra,
    )


class CodesController(Controller):
    path = "/api/v1/codes"
    tags = ["citizens: code"]

    @get(
        "/current",
        guards=[citizen_only],
        summary="The citizen's current code (token + readable entitlements)",
    )
    async def current(
        self,
        citizen: NamedDependency[CitizenPrincipal],
        code_issuer: NamedDependency[CodeIssuer],
        qr_format: Annotated[Literal["svg"] | None, QueryParameter(name="qr")] = None,
    ) -> Response[CurrentCode]:
        issued = await code_issuer.current(citizen)
        extra: dict[str, Any] = {"server_time": iso(code_issuer.clock.time())}
        if qr_format == "svg":
            extra["qr_svg"] = qr.svg(issued["token"], inline=True).decode()
        return Response(_current(issued, **extra), headers=NO_STORE)

    @get("/current.svg", guards=[citizen_only], media_type="image/svg+xml", summary="The current code as SVG")
    async def current_svg(
        self, citizen: NamedDependency[CitizenPrincipal], code_issuer: NamedDependency[CodeIssuer]
    ) -> Response[bytes]:
        issued = await code_issuer.current(citizen)
        return Response(qr.svg(issued["token"]), media_type="image/svg+xml", headers=NO_STORE)

    @get("/current.png", guards=[citizen_only], media_type="image/png", summary="The current code as PNG")
    async def current_png(
        self, citizen: NamedDependency[CitizenPrincipal], code_issuer: NamedDependency[CodeIssuer]
    ) -> Response[bytes]:
        issued = await code_issuer.current(citizen)
        return Response(qr.png(issued["token"]), media_type="image/png", headers=NO_STORE)

    @get("/trust-list", summary="Signed trust list for offline scanners (ETag / If-None-Match)")
    async def trust_list(
        self, request: Request[Any, Any, Any], code_keys: NamedDependency[CodeKeys]
    ) -> Response[Any]:
        document, etag = await code_keys.signed_trust_list()
        headers = {"ETag": etag, "Cache-Control": "public, max-age=60"}
        candidates = [t.strip() for t in request.headers.get("if-none-match", "").split(",")]
        if etag in candidates or etag.removeprefix("W/") in candidates or "*" in candidates:
            return Response(b"", status_code=HTTP_304_NOT_MODIFIED, headers=headers)
        return Response(document, headers=headers)

    @get("/trust-root", summary="The root public key that signs the trust list (pin it in scanners)")
    async def trust_root(self, code_keys: NamedDependency[CodeKeys]) -> dict[str, Any]:
        root = await code_keys.root.active()
        return {"keys": [root.jwk]}
