"""The console's forms: what operators do that is more than editing a row, through the same services
as the command line (``shengshi scanners add``, ``... revoke``, ``keys rotate``). Only admin operators
reach them (the gate refuses readonly ones); the services write the audit events with the operator's
name, and the gate adds its own for the request. A new secret is shown in the answer, this once."""

from __future__ import annotations

from typing import Any, Literal

from piccolo_admin.endpoints import FormConfig
from pydantic import BaseModel, Field
from starlette.requests import Request

from backend import audit
from backend.errors import AppError
from backend.runtime import Runtime
from miniapps.registry import credential_fields

GROUP = "Credentials and keys 凭证与密钥"


class EnrolScanner(BaseModel):
    app_id: str = Field(
        min_length=1, max_length=32, description="the mini-app that owns the scanner, e.g. transit"
    )
    context: str = Field(default="", max_length=64, description="one of the app's scan contexts, e.g. bus")
    place: str = Field(min_length=1, max_length=128, description="where it stands, e.g. B113 or P-ZHONGJIE")
    name: str = Field(default="", max_length=128, description="a label for operators")


class EnrolClient(BaseModel):
    kind: Literal["merchant", "miniapp", "operator"]
    name: str = Field(min_length=1, max_length=128)
    app_id: str = Field(default="", max_length=32, description="for a mini-app credential: the mini-app")


class RevokeCredential(BaseModel):
    client_id: str = Field(min_length=1, max_length=40)


class BlockCitizen(BaseModel):
    citizen_id: str = Field(min_length=36, max_length=36, description="the account's id (Citizens table)")
    blocked: bool = Field(default=True, description="untick to unblock")


class RotateKey(BaseModel):
    purpose: Literal["access", "code", "trust-root"]
    alg: Literal["ES256", "EdDSA"] = "ES256"


def _actor(request: Request) -> str:
    user = getattr(request.user, "user", None)
    return str(getattr(user, "username", "operator"))


def _created(cred: dict[str, Any]) -> str:
    return (
        f"已登记 Enrolled {cred['kind']}: client id {cred['client_id']}, secret {cred['client_secret']} "
        "— 仅显示这一次 shown this once; only its hash is kept"
    )


def console_forms(runtime: Runtime) -> list[FormConfig]:
    def services() -> tuple[Any, dict[str, Any]]:
        return runtime.services["auth"], runtime.services["miniapps"].apps

    async def enrol_scanner(request: Request, data: EnrolScanner) -> str:
        auth, apps = services()
        try:
            fields = credential_fields(apps, "scanner", data.app_id, data.context)
            cred = await auth.machines.create(
                "scanner",
                actor=_actor(request),
                app_id=data.app_id,
                place=data.place,
                name=data.name,
                **fields,
            )
        except AppError as exc:
            raise ValueError(exc.detail) from exc
        return _created(cred)

    async def enrol_client(request: Request, data: EnrolClient) -> str:
        auth, apps = services()
        fields: dict[str, str] = {"name": data.name}
        try:
            if data.kind == "miniapp":
                credential_fields(apps, "miniapp", data.app_id, "")
                fields["app_id"] = data.app_id
            cred = await auth.machines.create(data.kind, actor=_actor(request), **fields)
        except AppError as exc:
            raise ValueError(exc.detail) from exc
        return _created(cred)

    async def revoke(request: Request, data: RevokeCredential) -> str:
        auth, _ = services()
        try:
            done = await auth.machines.revoke(data.client_id, actor=_actor(request))
        except AppError as exc:
            raise ValueError(exc.detail) from exc
        return f"已吊销 Revoked {data.client_id}" + (
            "（之前已吊销 already revoked）" if done["already"] else ""
        )

    async def block(request: Request, data: BlockCitizen) -> str:
        auth, _ = services()
        try:
            await auth.sessions.set_blocked(data.citizen_id, data.blocked, actor=_actor(request))
        except AppError as exc:
            raise ValueError(exc.detail) from exc
        if data.blocked:
            return f"已冻结 Blocked {data.citizen_id}: login refused, codes refused at every gate"
        return f"已解冻 Unblocked {data.citizen_id}"

    async def rotate(request: Request, data: RotateKey) -> str:
        if data.purpose == "access":
            store = runtime.services["auth"].keys
        elif data.purpose == "code":
            store = runtime.services["codes"].keys.issuer
        else:
            store = runtime.services["codes"].keys.root
        key = await store.rotate(data.alg)
        await audit.record(
            "keys_rotated",
            actor_kind="operator",
            actor_id=_actor(request),
            subject=f"{store.purpose}:{key.kid}",
        )
        note = (
            " 扫码设备需重新固定根公钥 scanners must re-pin the root key"
            if data.purpose == "trust-root"
            else ""
        )
        return f"新密钥 New {store.purpose} key {key.kid} ({key.alg}) 已启用 is active.{note}"

    return [
        FormConfig(
            name="登记扫码设备 Enrol a scanner",
            pydantic_model=EnrolScanner,
            endpoint=enrol_scanner,
            description="The scanner's secret is shown once. 设备密钥只显示一次。",
            form_group=GROUP,
        ),
        FormConfig(
            name="登记商户、小程序或运营凭证 Enrol a merchant, mini-app or operator API credential",
            pydantic_model=EnrolClient,
            endpoint=enrol_client,
            description="The secret is shown once. 密钥只显示一次。",
            form_group=GROUP,
        ),
        FormConfig(
            name="吊销凭证 Revoke a credential",
            pydantic_model=RevokeCredential,
            endpoint=revoke,
            description="Every worker refuses it within seconds. 数秒内所有节点拒绝该凭证。",
            form_group=GROUP,
        ),
        FormConfig(
            name="冻结或解冻市民账户 Block or unblock a citizen account",
            pydantic_model=BlockCitizen,
            endpoint=block,
            description="Login is refused and the account's codes are refused at every gate at once.",
            form_group="Citizens 市民",
        ),
        FormConfig(
            name="轮换签名密钥 Rotate a signing key",
            pydantic_model=RotateKey,
            endpoint=rotate,
            description="The old public key stays published while what it signed can still be used.",
            form_group=GROUP,
        ),
    ]
