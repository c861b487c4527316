"""Identity HTTP handlers: thin; the services own the logic."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_202_ACCEPTED, HTTP_204_NO_CONTENT

from auth._profile import DISTRICTS
from auth.guards import citizen_only
from auth.pii import mask_phone, normalise_phone
from auth.principals import CitizenPrincipal
from auth.schemas import (
    DeviceOut,
    DevicePage,
    DevSms,
    LoginRequest,
    OtpRequest,
    OtpSent,
    Profile,
    ProfileUpdate,
    RealNameVerificationCreate,
    RefreshRequest,
    TokenPairOut,
)
from auth.services import AuthServices
from auth.sms import DevSmsGateway
from backend.errors import NotFound
from backend.pagination import DEFAULT_LIMIT, Limit, Offset, page_parts


class AuthController(Controller):
    path = "/api/v1/auth"
    tags = ["citizens: auth"]

    @post(
        "/otp",
        status_code=HTTP_202_ACCEPTED,
        summary="Send a 6-digit login code by SMS",
        opt={"problems": [429]},  # per phone and per address (the OpenAPI document says so)
    )
    async def send_otp(
        self, data: JSONBody[OtpRequest], auth: NamedDependency[AuthServices], ip: NamedDependency[str]
    ) -> OtpSent:
        # the same answer whether or not the phone has an account
        await auth.otp.send(normalise_phone(data.phone), ip)
        s = auth.otp._s
        return OtpSent(status="sent", expires_in=s.otp_ttl, resend_after=s.otp_resend_interval)

    @post("/login", status_code=200, summary="Log in with the SMS code; registers the device")
    async def login(
        self, data: JSONBody[LoginRequest], auth: NamedDependency[AuthServices], ip: NamedDependency[str]
    ) -> TokenPairOut:
        pair = await auth.sessions.login(
            phone=normalise_phone(data.phone),
            code=data.code,
            device_id=data.device_id,
            device_name=data.device_name,
            ip=ip,
        )
        return msgspec.convert(pair, TokenPairOut)

    @post("/refresh", status_code=200, summary="Spend a refresh token for a new pair (reuse revokes)")
    async def refresh(
        self, data: JSONBody[RefreshRequest], auth: NamedDependency[AuthServices], ip: NamedDependency[str]
    ) -> TokenPairOut:
        return msgspec.convert(await auth.sessions.refresh(data.refresh_token, ip=ip), TokenPairOut)

    @post("/logout", status_code=HTTP_204_NO_CONTENT, guards=[citizen_only], summary="Sign this device out")
    async def logout(
        self,
        citizen: NamedDependency[CitizenPrincipal],
        auth: NamedDependency[AuthServices],
        ip: NamedDependency[str],
    ) -> None:
        await auth.sessions.logout(citizen, ip=ip)


class MeController(Controller):
    path = "/api/v1/me"
    tags = ["citizens: profile"]
    guards = [citizen_only]

    @get("", summary="The citizen's profile (personal data masked)")
    async def get_me(
        self, citizen: NamedDependency[CitizenPrincipal], auth: NamedDependency[AuthServices]
    ) -> Profile:
        return msgspec.convert(await auth.profile.get(citizen.citizen_id), Profile)

    @patch(
        "",
        summary="Set the real name and ID number: verified first, as POST /api/v1/me/real-name",
        opt={"problems": [409, 429, 503]},
    )
    async def update_me(
        self,
        data: JSONBody[ProfileUpdate],
        citizen: NamedDependency[CitizenPrincipal],
        auth: NamedDependency[AuthServices],
        ip: NamedDependency[str],
    ) -> Profile:
        profile = await auth.profile.update(
            citizen.citizen_id,
            real_name=None if data.real_name is msgspec.UNSET else data.real_name,
            id_number=None if data.id_number is msgspec.UNSET else data.id_number,
            liveness_token=None if data.liveness is msgspec.UNSET else data.liveness.token,
            district=None if data.district is msgspec.UNSET else data.district,
            ip=ip,
        )
        return msgspec.convert(profile, Profile)

    @post(
        "/real-name",
        status_code=200,
        summary="Real-name verification (实名认证): kept only when the provider says they match",
        opt={"problems": [409, 429, 503]},
    )
    async def verify_real_name(
        self,
        data: JSONBody[RealNameVerificationCreate],
        citizen: NamedDependency[CitizenPrincipal],
        auth: NamedDependency[AuthServices],
        ip: NamedDependency[str],
    ) -> Profile:
        profile = await auth.profile.update(
            citizen.citizen_id,
            real_name=data.real_name,
            id_number=data.id_number,
            liveness_token=data.liveness.token if data.liveness else None,
            ip=ip,
        )
        return msgspec.convert(profile, Profile)

    @delete(
        "/real-name",
        status_code=HTTP_204_NO_CONTENT,
        summary="Withdraw the real name: name, ID number and verification are deleted",
    )
    async def clear_real_name(
        self,
        citizen: NamedDependency[CitizenPrincipal],
        auth: NamedDependency[AuthServices],
        ip: NamedDependency[str],
    ) -> None:
        await auth.realname.clear(
            citizen.citizen_id, actor_kind="citizen", actor_id=citizen.citizen_id, ip=ip
        )

    @delete("", status_code=HTTP_204_NO_CONTENT, summary="Delete the account: data gone, tokens stop at once")
    async def delete_me(
        self,
        citizen: NamedDependency[CitizenPrincipal],
        auth: NamedDependency[AuthServices],
        ip: NamedDependency[str],
    ) -> None:
        await auth.sessions.delete_account(citizen, ip=ip)

    @get("/devices", summary="Devices signed in to this account")
    async def devices(
        self,
        request: Request[Any, Any, Any],
        citizen: NamedDependency[CitizenPrincipal],
        auth: NamedDependency[AuthServices],
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
    ) -> DevicePage:
        rows = await auth.sessions.list_devices(citizen, limit=limit + 1, offset=offset)
        items, after, link = page_parts(request, rows, limit=limit, offset=offset)
        return DevicePage(items=[msgspec.convert(r, DeviceOut) for r in items], next_offset=after, next=link)

    @delete("/devices/{device_id:str}", status_code=HTTP_204_NO_CONTENT, summary="Sign a device out")
    async def revoke_device(
        self,
        device_id: FromPath[str],
        citizen: NamedDependency[CitizenPrincipal],
        auth: NamedDependency[AuthServices],
        ip: NamedDependency[str],
    ) -> None:
        await auth.sessions.revoke_device(citizen, device_id, ip=ip)


class JwksController(Controller):
    path = "/.well-known"
    tags = ["citizens: auth"]

    @get("/jwks.json", summary="Public keys that sign access tokens")
    async def jwks(self, auth: NamedDependency[AuthServices]) -> Response[dict[str, Any]]:
        keys = [k.jwk for k in await auth.keys.published()]
        return Response({"keys": keys}, headers={"Cache-Control": "public, max-age=300"})


class District(msgspec.Struct):
    code: str
    name_zh: str
    name_en: str


class DistrictsController(Controller):
    path = "/api/v1/districts"
    tags = ["citizens: profile"]

    @get("", summary="Shenyang's districts and counties a citizen may name as where they live")
    async def districts(self) -> Response[list[District]]:
        return Response(
            [District(code, zh, en) for code, (zh, en) in DISTRICTS.items()],
            headers={"Cache-Control": "public, max-age=86400"},
        )


class DevSmsController(Controller):
    """Development only: the last SMS the development gateway 'sent' to a phone."""

    path = "/api/v1/dev"
    tags = ["development"]

    @get("/sms", summary="Last SMS sent to a phone by the development gateway (dev only)")
    async def last_sms(self, phone: FromQuery[str], auth: NamedDependency[AuthServices]) -> DevSms:
        number = normalise_phone(phone)
        assert isinstance(auth.sms, DevSmsGateway)
        message = await auth.sms.last(number)
        if message is None:
            raise NotFound("no SMS was sent to this phone recently", code="no_sms")
        return DevSms(phone=mask_phone(number), text=message["text"], sent_at=message["sent_at"])
