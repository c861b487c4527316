"""The console's forms: what operators do that is more than editing a row, through the same services
as the command line (``shengshi scanners add``, ``... revoke``, ``keys rotate``). Only admin operators
reach them (the gate refuses readonly ones); the services write the audit events with the operator's
name, and the gate adds its own for the request. A new secret is shown in the answer, this once.

The forms' names and descriptions are configured in Chinese (piccolo-admin shows them as given; the
console's page script shows :data:`FORM_TEXTS`' English when the operator picks English); answers come
in the request's language."""

from __future__ import annotations

import json
from typing import Any, Literal

from piccolo_admin.endpoints import FormConfig
from pydantic import BaseModel, Field
from starlette.requests import Request

from auth.services import AuthServices
from backend import audit
from backend.errors import AppError
from backend.i18n import current_locale, pick, problem_text
from codes.services import CodeServices
from messages._announce import Segment
from messages.setup import MessageServices
from miniapps.contract import MiniApp
from miniapps.registry import credential_fields

GROUP = "凭证与密钥"
MESSAGES_GROUP = "消息与公告"
# the English of every Chinese text configured below (names, descriptions, field help)
FORM_TEXTS: dict[str, str] = {
    GROUP: "Credentials and keys",
    "登记扫码设备": "Enrol a scanner",
    "设备密钥只显示一次。": "The scanner's secret is shown once.",
    "登记商户、小程序或运营凭证": "Enrol a merchant, mini-app or operator API credential",
    "密钥只显示一次。": "The secret is shown once.",
    "吊销凭证": "Revoke a credential",
    "数秒内所有节点拒绝该凭证。": "Every worker refuses it within seconds.",
    "冻结或解冻市民账户": "Block or unblock a citizen account",
    "立即拒绝登录，所有闸机拒绝该账户的码。": (
        "Login is refused and the account's codes are refused at every gate at once."
    ),
    "轮换签名密钥": "Rotate a signing key",
    "旧公钥在其签发的内容仍可使用期间继续发布。": (
        "The old public key stays published while what it signed can still be used."
    ),
    "扫码设备所属的小程序，例如 transit": "the mini-app that owns the scanner, e.g. transit",
    "该小程序的扫码场景之一，例如 bus": "one of the app's scan contexts, e.g. bus",
    "设备所在位置，例如 B42 或 P-XIDAN": "where it stands, e.g. B42 or P-XIDAN",
    "供运营人员识别的名称": "a label for operators",
    "小程序凭证：所属小程序": "for a mini-app credential: the mini-app",
    "账户编号（市民账户表）": "the account's id (Citizens table)",
    "取消勾选即解冻": "untick to unblock",
    MESSAGES_GROUP: "Messages and announcements",
    "审核消息模板": "Review a message template",
    "批准、驳回或暂停模板的当前文本；文本改动后须重新批准。": (
        "Approve, reject or suspend the template's current text; a changed text needs approving again."
    ),
    "模板编号，例如 platform.city_notice（见消息模板表）": (
        "the template's id, e.g. platform.city_notice (see the Message templates table)"
    ),
    "审核意见（可选）": "a note (optional)",
    "发布公告": "Send an announcement",
    "以已批准的公告类模板向一类市民发送；进度见公告表。": (
        "An approved announcement template to a segment of citizens; its progress is in the Announcements"
        " table."
    ),
    "模板的占位数据，JSON 对象": "the template's placeholders' data, a JSON object",
    "对象：everyone 全体；entitlement 权益持有人；miniapp 小程序用户；district 辖区居民": (
        "who: everyone; entitlement holders; miniapp users; district residents"
    ),
    "权益：medical、social_security、health；小程序：其编号；辖区：区县代码；全体留空": (
        "entitlement: medical, social_security or health; miniapp: a mini-app's id; district: its code;"
        " empty for everyone"
    ),
    "每秒最多发送条数": "messages a second at most",
    "取消公告": "Cancel an announcement",
    "在下一批之前停止；已发送的消息不撤回。": "It stops before its next batch; what was sent stays sent.",
    "公告编号（公告表）": "the announcement's id (Announcements table)",
}


class EnrolScanner(BaseModel):
    app_id: str = Field(min_length=1, max_length=32, description="扫码设备所属的小程序，例如 transit")
    context: str = Field(default="", max_length=64, description="该小程序的扫码场景之一，例如 bus")
    place: str = Field(min_length=1, max_length=128, description="设备所在位置，例如 B113 或 P-ZHONGJIE")
    name: str = Field(default="", max_length=128, description="供运营人员识别的名称")


class EnrolClient(BaseModel):
    kind: Literal["merchant", "miniapp", "operator"]
    name: str = Field(min_length=1, max_length=128)
    app_id: str = Field(default="", max_length=32, description="小程序凭证：所属小程序")


class RevokeCredential(BaseModel):
    client_id: str = Field(min_length=1, max_length=40)


class BlockCitizen(BaseModel):
    citizen_id: str = Field(min_length=36, max_length=36, description="账户编号（市民账户表）")
    blocked: bool = Field(default=True, description="取消勾选即解冻")


class ReviewTemplate(BaseModel):
    template_id: str = Field(
        min_length=3, max_length=96, description="模板编号，例如 platform.city_notice（见消息模板表）"
    )
    decision: Literal["approve", "reject", "suspend"]
    note: str = Field(default="", max_length=256, description="审核意见（可选）")


class SendAnnouncement(BaseModel):
    template_id: str = Field(
        default="platform.city_notice",
        min_length=3,
        max_length=96,
        description="模板编号，例如 platform.city_notice（见消息模板表）",
    )
    data: str = Field(min_length=2, max_length=8192, description="模板的占位数据，JSON 对象")
    segment_kind: Literal["everyone", "entitlement", "miniapp", "district"] = Field(
        description="对象：everyone 全体；entitlement 权益持有人；miniapp 小程序用户；district 辖区居民"
    )
    segment_value: str = Field(
        default="",
        max_length=32,
        description="权益：medical、social_security、health；小程序：其编号；辖区：区县代码；全体留空",
    )
    rate: int = Field(default=2000, ge=1, le=100_000, description="每秒最多发送条数")


class CancelAnnouncement(BaseModel):
    announcement_id: str = Field(min_length=1, max_length=64, description="公告编号（公告表）")


class RotateKey(BaseModel):
    purpose: Literal["access", "code", "trust-root"]
    alg: Literal["ES256", "EdDSA"] = "ES256"


def _actor(request: Request) -> str:
    user = getattr(request.user, "user", None)
    return str(getattr(user, "username", "operator"))


def _created(cred: dict[str, Any]) -> str:
    return pick(
        f"已登记 {cred['kind']}：客户端编号 {cred['client_id']} ，密钥 {cred['client_secret']}"
        " —— 密钥仅显示这一次，服务器只保存其哈希",
        f"Enrolled {cred['kind']}: client id {cred['client_id']}, secret {cred['client_secret']}"
        " — shown this once; only its hash is kept",
    )


def _refused(exc: AppError) -> ValueError:
    """A service's refusal as the form's error, in the request's language."""
    return ValueError(
        problem_text(exc.status, exc.code, exc.title, exc.detail, current_locale(), exc.extra)[1]
    )


_DECIDED = {
    "approve": ("已批准", "Approved"),
    "reject": ("已驳回", "Rejected"),
    "suspend": ("已暂停", "Suspended"),
}
_STATES = {"sending": "发送中", "cancelled": "已取消", "done": "已完成", "failed": "失败"}


def console_forms(
    auth: AuthServices, codes: CodeServices, apps: dict[str, MiniApp], messages: MessageServices
) -> list[FormConfig]:
    def services() -> tuple[AuthServices, dict[str, MiniApp]]:
        return auth, apps

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
            raise _refused(exc) from exc
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
            raise _refused(exc) from exc
        return _created(cred)

    async def revoke(request: Request, data: RevokeCredential) -> str:
        auth, _ = services()
        try:
            done = await auth.machines.revoke(data.client_id, actor=_actor(request))
        except AppError as exc:
            raise _refused(exc) from exc
        if done["already"]:
            return pick(f"{data.client_id} 之前已吊销", f"{data.client_id} was revoked already")
        return pick(f"已吊销 {data.client_id}", f"Revoked {data.client_id}")

    async def block(request: Request, data: BlockCitizen) -> str:
        auth, _ = services()
        try:
            await auth.sessions.set_blocked(data.citizen_id, data.blocked, actor=_actor(request))
        except AppError as exc:
            raise _refused(exc) from exc
        if data.blocked:
            return pick(
                f"已冻结 {data.citizen_id}：拒绝登录，所有闸机拒绝其市民码",
                f"Blocked {data.citizen_id}: login refused, codes refused at every gate",
            )
        return pick(f"已解冻 {data.citizen_id}", f"Unblocked {data.citizen_id}")

    async def rotate(request: Request, data: RotateKey) -> str:
        if data.purpose == "access":
            store = auth.keys
        elif data.purpose == "code":
            store = codes.keys.issuer
        else:
            store = codes.keys.root
        key = await store.rotate(data.alg)
        await audit.record(
            "keys_rotated",
            actor_kind="operator",
            actor_id=_actor(request),
            subject=f"{store.purpose}:{key.kid}",
        )
        if data.purpose == "trust-root":
            return pick(
                f"新的 {store.purpose} 密钥 {key.kid}（{key.alg}）已启用。扫码设备需重新固定根公钥。",
                f"New {store.purpose} key {key.kid} ({key.alg}) is active."
                " Scanners must re-pin the root key.",
            )
        if key.active_from > key.created_at:  # a code key: published now, signing later
            when = key.active_from.isoformat(timespec="seconds")
            return pick(
                f"新的 {store.purpose} 密钥 {key.kid}（{key.alg}）已发布到信任列表，将于 {when} 起签发。",
                f"New {store.purpose} key {key.kid} ({key.alg}) is published in the trust list;"
                f" it signs from {when}.",
            )
        return pick(
            f"新的 {store.purpose} 密钥 {key.kid}（{key.alg}）已启用。",
            f"New {store.purpose} key {key.kid} ({key.alg}) is active.",
        )

    async def review(request: Request, data: ReviewTemplate) -> str:
        try:
            view = await messages.templates.decide(
                data.template_id, data.decision, operator=_actor(request), note=data.note
            )
        except AppError as exc:
            raise _refused(exc) from exc
        zh, en = _DECIDED[data.decision]
        if view["in_use"] and view["usable"]:
            return pick(
                f"{zh} {data.template_id}：现在可以使用", f"{en} {data.template_id}: it may be used now"
            )
        return pick(f"{zh} {data.template_id}", f"{en} {data.template_id}")

    async def announce(request: Request, data: SendAnnouncement) -> str:
        try:
            values = json.loads(data.data)
        except ValueError:
            values = None
        if not isinstance(values, dict):
            raise ValueError(
                pick(
                    '数据须为 JSON 对象，例如 {"headline": "…"}',
                    'the data must be a JSON object, e.g. {"headline": "…"}',
                )
            )
        try:
            view = await messages.announcements.create(
                data.template_id,
                values,
                Segment(kind=data.segment_kind, value=data.segment_value.strip()),
                rate=data.rate,
                operator=_actor(request),
            )
        except AppError as exc:
            raise _refused(exc) from exc
        return pick(
            f"公告 {view['id']} 已开始发送（每秒至多 {data.rate} 条）；进度见公告表",
            f"Announcement {view['id']} is being sent (at most {data.rate} a second);"
            " its progress is in the Announcements table",
        )

    async def cancel(request: Request, data: CancelAnnouncement) -> str:
        try:
            view = await messages.announcements.cancel(data.announcement_id.strip(), operator=_actor(request))
        except AppError as exc:
            raise _refused(exc) from exc
        return pick(
            f"公告 {view['id']} 已取消：已发送 {view['sent']} 条",
            f"Announcement {view['id']} cancelled: {view['sent']} sent",
        )

    return [
        FormConfig(
            name="登记扫码设备",
            pydantic_model=EnrolScanner,
            endpoint=enrol_scanner,
            description="设备密钥只显示一次。",
            form_group=GROUP,
        ),
        FormConfig(
            name="登记商户、小程序或运营凭证",
            pydantic_model=EnrolClient,
            endpoint=enrol_client,
            description="密钥只显示一次。",
            form_group=GROUP,
        ),
        FormConfig(
            name="吊销凭证",
            pydantic_model=RevokeCredential,
            endpoint=revoke,
            description="数秒内所有节点拒绝该凭证。",
            form_group=GROUP,
        ),
        FormConfig(
            name="冻结或解冻市民账户",
            pydantic_model=BlockCitizen,
            endpoint=block,
            description="立即拒绝登录，所有闸机拒绝该账户的码。",
            form_group="市民",
        ),
        FormConfig(
            name="轮换签名密钥",
            pydantic_model=RotateKey,
            endpoint=rotate,
            description="旧公钥在其签发的内容仍可使用期间继续发布。",
            form_group=GROUP,
        ),
        FormConfig(
            name="审核消息模板",
            pydantic_model=ReviewTemplate,
            endpoint=review,
            description="批准、驳回或暂停模板的当前文本；文本改动后须重新批准。",
            form_group=MESSAGES_GROUP,
        ),
        FormConfig(
            name="发布公告",
            pydantic_model=SendAnnouncement,
            endpoint=announce,
            description="以已批准的公告类模板向一类市民发送；进度见公告表。",
            form_group=MESSAGES_GROUP,
        ),
        FormConfig(
            name="取消公告",
            pydantic_model=CancelAnnouncement,
            endpoint=cancel,
            description="在下一批之前停止；已发送的消息不撤回。",
            form_group=MESSAGES_GROUP,
        ),
    ]
