"""The operators' console at /admin: piccolo-admin over the operational tables, behind our own rules.

piccolo-admin gives the screens, the password login and its sessions (``console_session``) and CSRF.
Around it, :class:`ConsoleGate` adds what a city's console needs and piccolo-admin does not do:

* roles: a ``readonly`` operator may look but every change (POST/PUT/PATCH/DELETE under ``/api``) is
  refused with 403 before piccolo-admin sees it; only the own password may be changed;
* an audit event for every change that succeeded (who, which table and row, which fields; no values),
  and for every sign-in and failed sign-in;
* sign-in attempts limited per client address in the shared store, so several workers count together;
* per table, what can change at all: money and the audit log never change here (the ledger and the
  payment centre own them); credentials are never created here (their secret is shown once, by the
  CLI) nor deleted (revoked instead), and only their label, place and revocation can be edited.

Personal data: citizens appear with their masked phone only; sealed columns are secret columns, which
piccolo-api never returns.

Screens: lists are newest first; :data:`VIEWS` and :data:`COLUMNS` name tables and columns in both
languages, and ``static/console.js`` (added to piccolo-admin's page) shows them in the language picked
in piccolo-admin's menu, money in yuan, and offers no add, delete or save where the rules above refuse
them (piccolo-admin 1.14 has no per-table read-only screens, display names or value formats).
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from piccolo.columns import JSON, Column
from piccolo.table import Table
from piccolo_admin.endpoints import FormConfig, TableConfig, create_admin
from piccolo_admin.translations.data import ENGLISH, SIMPLIFIED_CHINESE
from piccolo_api.crud.endpoints import OrderBy
from piccolo_api.crud.hooks import Hook, HookType
from piccolo_api.crud.validators import Validators
from starlette.exceptions import HTTPException
from starlette.requests import Request

from auth.tables import Citizen, MachineClient
from backend import audit
from backend.errors import problem_body
from backend.i18n import current_locale, message
from backend.runtime import Runtime
from backend.store import StoreUnavailable
from backend.tables import AuditEvent
from console.forms import FORM_TEXTS
from console.operators import OperatorService, session_token
from console.tables import ConsoleOperator, ConsoleSession
from messages.tables import Announcement, MessageDelivery, MessageTemplate
from payments.tables import ChannelNotification, Overpayment, PaymentOrder, Refund, WebhookDelivery

log = logging.getLogger("shengshitong.console")

PREFIX = "/admin"
SITE_NAME = ("盛事通运管后台", "Shengshitong console")
LINKS = (
    ("运管中心", "Live dashboard", f"{PREFIX}/dashboard"),
    ("扫码模拟", "Scanner simulator", f"{PREFIX}/scanner"),
    ("好差评", "Service ratings", f"{PREFIX}/ratings"),
    ("电子证照", "E-licences", f"{PREFIX}/licences"),
)
CONSOLE_ASSETS = (
    '<link rel="stylesheet" href="/static/web/console.css">'
    '<script src="/static/web/console.js" defer></script>'
)
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
# what an admin operator may edit on a credential; other fields sent are dropped
CREDENTIAL_EDITABLE = {"name", "place", "revoked_at"}
LOGIN_LIMIT = 10  # failed or not, per client address per window
LOGIN_WINDOW = 300.0
MAX_BODY = 1 << 20


def _refuse(code: str) -> Any:
    async def validator(piccolo_crud: Any, request: Request) -> None:
        raise HTTPException(status_code=405, detail=message(code))

    return validator


def _read_only() -> Validators:
    no = _refuse("table_read_only")
    return Validators(
        post_single=[no], put_single=[no], patch_single=[no], delete_single=[no], delete_all=[no]
    )


def _keep_editable(row_id: Any, values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k in CREDENTIAL_EDITABLE}


def _cols(table: type[Table], *names: str) -> list[Column]:
    return [table._meta.get_column_by_name(n) for n in names]


@dataclass(frozen=True)
class TableView:
    """How the console shows one table: its name in both languages, the list's columns (in order), the
    column the list is sorted by (newest first), which columns are money (fen, shown as ¥ yuan) and
    whether an admin operator may edit anything in it (no table takes new rows or deletions here)."""

    table: type[Table]
    label: tuple[str, str]  # (zh-CN, en)
    group: str  # a key of GROUPS
    columns: tuple[str, ...]
    filters: tuple[str, ...]
    newest: str
    money: tuple[str, ...] = ()
    editable: bool = False


# menu groups, by the Chinese name piccolo-admin is given (its UI shows the configured text)
GROUPS: dict[str, str] = {
    "凭证": "Credentials",
    "支付": "Payments",
    "消息": "Messages",
    "审计": "Audit",
    "市民": "Citizens",
}
VIEWS: tuple[TableView, ...] = (
    TableView(
        MachineClient,
        ("凭证", "Credentials"),
        "凭证",
        ("kind", "client_id", "name", "app_id", "context", "place", "last_seen_at", "revoked_at"),
        ("kind", "app_id", "context", "client_id", "revoked_at"),
        newest="created_at",
        editable=True,  # the label, place and revocation, by an admin (see CREDENTIAL_EDITABLE)
    ),
    TableView(
        PaymentOrder,
        ("支付订单", "Payment orders"),
        "支付",
        (
            "id",
            "app_id",
            "reference",
            "amount",
            "state",
            "deferred",
            "channel",
            "refunded",
            "created_at",
            "paid_at",
        ),
        ("app_id", "state", "deferred", "channel", "reference", "citizen_id"),
        newest="created_at",
        money=("amount", "refunded"),
    ),
    TableView(
        Refund,
        ("退款", "Refunds"),
        "支付",
        ("id", "order", "amount", "state", "reason", "failure", "created_at", "succeeded_at", "failed_at"),
        ("state", "order"),
        newest="created_at",
        money=("amount",),
    ),
    TableView(
        Overpayment,  # money a citizen paid that an order did not need: to be refunded at the channel
        ("多付款项", "Overpayments"),
        "支付",
        ("id", "order", "channel", "channel_txn", "amount", "reason", "state", "created_at", "refunded_at"),
        ("state", "channel", "reason", "order"),
        newest="created_at",
        money=("amount",),
    ),
    TableView(
        ChannelNotification,  # every verified channel callback, and why one was refused (mismatches)
        ("渠道通知", "Channel notifications"),
        "支付",
        ("channel", "kind", "order_ref", "amount", "channel_txn", "status", "reason", "received_at"),
        ("status", "reason", "channel", "kind", "order_ref"),
        newest="received_at",
        money=("amount",),
    ),
    TableView(
        WebhookDelivery,
        ("通知投递", "Webhook deliveries"),
        "支付",
        ("target", "state", "attempts", "next_attempt_at", "last_error", "delivered_at"),
        ("state", "target"),
        newest="next_attempt_at",
    ),
    TableView(
        MessageTemplate,  # decided with the form "审核消息模板" (the service keeps the approved digest)
        ("消息模板", "Message templates"),
        "消息",
        ("template_id", "owner", "category", "status", "decided_by", "decided_at", "note", "declared_at"),
        ("status", "owner", "category", "template_id"),
        newest="declared_at",
    ),
    TableView(
        Announcement,  # sent and cancelled with the forms; here: their progress
        ("公告", "Announcements"),
        "消息",
        (
            "id",
            "template_id",
            "segment",
            "state",
            "rate",
            "scanned",
            "sent",
            "skipped",
            "created_by",
            "created_at",
            "finished_at",
            "error",
        ),
        ("state", "template_id", "created_by"),
        newest="created_at",
    ),
    TableView(
        MessageDelivery,  # the delivery log (Web Push, SMS): no message's content is in this table
        ("消息投递", "Message deliveries"),
        "消息",
        ("message", "citizen_id", "channel", "state", "attempts", "next_attempt_at", "last_error", "sent_at"),
        ("state", "channel", "message", "citizen_id"),
        newest="created_at",
    ),
    TableView(
        AuditEvent,
        ("审计日志", "Audit log"),
        "审计",
        ("at", "action", "actor_kind", "actor_id", "subject", "ip"),
        ("action", "actor_kind", "actor_id", "subject"),
        newest="at",
    ),
    TableView(
        Citizen,
        ("市民账户", "Citizen accounts"),
        "市民",
        ("id", "status", "phone_masked", "created_at", "deleted_at"),
        ("status",),
        newest="created_at",
    ),
)
# column and form-field names as people read them, (zh-CN, en), by the column's name in any table
COLUMNS: dict[str, tuple[str, str]] = {
    "id": ("编号", "ID"),
    "kind": ("类型", "Kind"),
    "client_id": ("客户端编号", "Client ID"),
    "secret_hash": ("密钥哈希", "Secret hash"),
    "name": ("名称", "Name"),
    "app_id": ("小程序", "Mini-app"),
    "context": ("扫码场景", "Scan context"),
    "place": ("位置", "Place"),
    "created_at": ("创建时间", "Created"),
    "updated_at": ("更新时间", "Updated"),
    "last_seen_at": ("最近使用", "Last seen"),
    "revoked_at": ("吊销时间", "Revoked"),
    "owner": ("所属方", "Owner"),
    "reference": ("业务单号", "Reference"),
    "owner_reference": ("所属方单号", "Owner reference"),
    "citizen_id": ("市民账户编号", "Citizen ID"),
    "description": ("说明", "Description"),
    "amount": ("金额", "Amount"),
    "currency": ("币种", "Currency"),
    "state": ("状态", "State"),
    "deferred": ("先享后付", "Deferred"),
    "channel": ("支付渠道", "Channel"),
    "channel_txn": ("渠道交易号", "Channel transaction"),
    "refunded": ("已退款", "Refunded"),
    "expires_at": ("过期时间", "Expires"),
    "paid_at": ("支付时间", "Paid"),
    "closed_at": ("关闭时间", "Closed"),
    "order": ("订单", "Order"),
    "order_reference": ("退款单号", "Refund reference"),
    "reason": ("原因", "Reason"),
    "succeeded_at": ("退款成功时间", "Succeeded"),
    "failure": ("渠道失败原因", "Channel's failure"),
    "failed_at": ("失败时间", "Failed"),
    "txn_key": ("渠道与交易号", "Channel and transaction"),
    "refund_txn": ("退款交易号", "Refund transaction"),
    "notify_key": ("通知编号", "Notification key"),
    "order_ref": ("订单号", "Order"),
    "refund_ref": ("退款编号", "Refund"),
    "received_at": ("收到时间", "Received"),
    "applied_at": ("处理时间", "Applied"),
    "summary": ("摘要", "Summary"),
    "event": ("事件", "Event"),
    "target": ("投递目标", "Target"),
    "event_target": ("事件与目标", "Event and target"),
    "attempts": ("尝试次数", "Attempts"),
    "next_attempt_at": ("下次尝试", "Next attempt"),
    "last_error": ("最近错误", "Last error"),
    "delivered_at": ("送达时间", "Delivered"),
    "at": ("时间", "Time"),
    "action": ("操作", "Action"),
    "actor_kind": ("操作者类型", "Actor kind"),
    "actor_id": ("操作者", "Actor"),
    "subject": ("对象", "Subject"),
    "ip": ("IP 地址", "IP address"),
    "request_id": ("请求编号", "Request ID"),
    "data": ("数据", "Data"),
    "status": ("状态", "Status"),
    "phone_index": ("手机号索引", "Phone index"),
    "phone_sealed": ("手机号（加密）", "Phone (sealed)"),
    "phone_masked": ("手机号（脱敏）", "Phone (masked)"),
    "name_sealed": ("姓名（加密）", "Name (sealed)"),
    "id_number_sealed": ("身份证号（加密）", "ID number (sealed)"),
    "id_number_index": ("身份证号索引", "ID number index"),
    "deleted_at": ("注销时间", "Closed"),
    "template_id": ("模板编号", "Template"),
    "category": ("类别", "Category"),
    "declared": ("声明内容", "As declared"),
    "digest": ("文本摘要", "Text digest"),
    "approved_digest": ("已批准文本摘要", "Approved digest"),
    "decided_by": ("审核人", "Decided by"),
    "decided_at": ("审核时间", "Decided"),
    "note": ("审核意见", "Note"),
    "declared_at": ("声明时间", "Declared"),
    "segment": ("发送对象", "Segment"),
    "rate": ("速率（条/秒）", "Rate (a second)"),
    "cursor": ("进度游标", "Cursor"),
    "scanned": ("已检查", "Scanned"),
    "sent": ("已发送", "Sent"),
    "skipped": ("已跳过", "Skipped"),
    "created_by": ("发布人", "Sent by"),
    "finished_at": ("完成时间", "Finished"),
    "error": ("错误", "Error"),
    "message": ("消息", "Message"),
    "sent_at": ("发送时间", "Sent at"),
    # the forms' fields
    "blocked": ("冻结", "Blocked"),
    "purpose": ("用途", "Purpose"),
    "alg": ("算法", "Algorithm"),
    "decision": ("决定", "Decision"),
    "segment_kind": ("发送对象", "Segment"),
    "segment_value": ("对象取值", "Segment value"),
    "announcement_id": ("公告编号", "Announcement"),
}


def table_configs() -> list[TableConfig]:
    configs = []
    for view in VIEWS:
        t = view.table
        if t is MachineClient:
            validators = Validators(
                post_single=[_refuse("credential_not_created_here")],
                put_single=[_refuse("credential_not_created_here")],
                delete_single=[_refuse("credential_not_deleted")],
                delete_all=[_refuse("credential_not_deleted")],
            )
            hooks = [Hook(hook_type=HookType.pre_patch, callable=_keep_editable)]
        else:
            validators, hooks = _read_only(), []
        configs.append(
            TableConfig(
                t,
                visible_columns=_cols(t, *view.columns),
                visible_filters=_cols(t, *view.filters),
                order_by=[OrderBy(column=t._meta.get_column_by_name(view.newest), ascending=False)],
                validators=validators,
                hooks=hooks or None,
                menu_group=view.group,
            )
        )
    return configs


def console_texts(role: str | None) -> dict[str, Any]:
    """What the console's page script (static/console.js) needs to show piccolo-admin's screens in one
    language: the tables' and columns' names, money columns, what the operator may change, and the
    English of the Chinese texts configured here (site name, menu groups, links, forms)."""
    tables = {
        v.table._meta.tablename: {
            "label": v.label,
            "columns": list(v.columns),
            "money": list(v.money),
            "editable": v.editable and role == "admin",
        }
        for v in VIEWS
    }
    texts = {SITE_NAME[0]: SITE_NAME[1], **GROUPS, **{zh: en for zh, en, _ in LINKS}, **FORM_TEXTS}
    return {"role": role, "tables": tables, "columns": COLUMNS, "texts": texts}


def _problem(status: int, code: str, detail: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    body = json.dumps(problem_body(status, code, detail), ensure_ascii=False).encode()
    return (
        status,
        [
            (b"content-type", b"application/problem+json"),
            (b"content-length", str(len(body)).encode()),
            (b"content-language", current_locale().encode()),
        ],
        body,
    )


class ConsoleGate:
    """The ASGI app mounted at /admin: our rules around piccolo-admin (see the module docstring)."""

    def __init__(
        self, runtime: Runtime, operators: OperatorService, forms: Callable[[], list[FormConfig]]
    ) -> None:
        self.runtime = runtime
        self.operators = operators
        self._forms = forms  # the console's forms, made with the piccolo-admin they belong to

    @functools.cached_property
    def admin(self) -> Any:
        """piccolo-admin, built on the first console request: building it costs more than the rest of
        the app together, and CLI commands and most workers' lives never need it."""
        s = self.runtime.settings
        admin = create_admin(
            tables=table_configs(),
            forms=self._forms(),
            auth_table=ConsoleOperator,
            session_table=ConsoleSession,
            site_name=SITE_NAME[0],
            production=s.env == "prod",
            allowed_hosts=_allowed_hosts(s.console_allowed_hosts, s.public_url),
            sidebar_links={zh: path for zh, _, path in LINKS},
            default_language_code="zh-CN",  # Chinese first; the header switches language
            translations=[SIMPLIFIED_CHINESE, ENGLISH],  # the product's two languages
            auto_include_related=False,  # only the tables above, each with its rules
        )
        # our page script: names in the chosen language, money in yuan, no add/edit where nothing may
        # change (piccolo-admin's screens offer them on every table)
        admin.template = admin.template.replace("</head>", CONSOLE_ASSETS + "</head>", 1)
        return admin

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.admin(scope, receive, send)
        # piccolo-admin is a Starlette app: give it the full path with /admin as its root path
        raw = scope.get("raw_path") or scope["path"].encode()
        full = unquote(raw.split(b"?", 1)[0].decode("latin-1"))
        scope = {**scope, "path": full, "root_path": PREFIX}
        sub = full[len(PREFIX) :] or "/"
        method = scope["method"]
        if method not in MUTATING:
            if problem := _query_problem(sub, scope.get("query_string", b"")):
                return await _send(send, *_problem(400, "invalid_query", problem))
            return await self.admin(scope, receive, send)
        ip = scope["client"][0] if scope.get("client") else ""
        if sub.startswith("/public/login"):
            return await self._login(scope, receive, send, ip)
        if sub.startswith("/public/"):  # logout
            return await self.admin(scope, receive, send)
        operator = await self.operators.from_token(session_token(scope))
        if operator is None:
            return await _send(send, *_problem(401, "unauthorized", "sign in to the console first"))
        own_password = sub.startswith("/api/change-password")
        if not operator.can_change and not own_password:
            log.info(
                "console change refused: read-only operator",
                extra={"operator": operator.username, "path": sub},
            )
            await audit.record(
                "console.change_refused",
                actor_kind="operator",
                actor_id=operator.username,
                subject=sub[:128],
                ip=ip,
            )
            return await _send(send, *_problem(403, "read_only", "your console role is read-only"))
        body = await _read_body(receive)
        if body is None:
            return await _send(send, *_problem(413, "body_too_large", "the request body is too large"))
        if method != "DELETE" and not _json_object(body):
            return await _send(send, *_problem(400, "malformed_request", "the body must be a JSON object"))
        status = await _forward(self.admin, scope, body, send)
        if status < 400:
            table, row = _table_row(sub)
            await audit.record(
                "console.password_changed" if own_password else f"console.{method.lower()}",
                actor_kind="operator",
                actor_id=operator.username,
                subject=f"{table}:{row}" if table else sub[:128],
                ip=ip,
                fields=_fields(body, table),
            )

    async def _login(self, scope: dict[str, Any], receive: Any, send: Any, ip: str) -> None:
        try:
            n = await self.runtime.store.incr(f"console:login:{ip}", ttl=LOGIN_WINDOW)
        except StoreUnavailable:
            return await _send(send, *_problem(503, "store_unavailable", "try again shortly"))
        if n > LOGIN_LIMIT:
            return await _send(
                send, *_problem(429, "rate_limited", "too many sign-in attempts; wait a few minutes")
            )
        body = await _read_body(receive)
        if body is None:
            return await _send(send, *_problem(413, "body_too_large", "the request body is too large"))
        if not _json_object(body):
            return await _send(send, *_problem(400, "malformed_request", "the body must be a JSON object"))
        status = await _forward(self.admin, scope, body, send)
        username = ""
        try:
            username = str(json.loads(body or b"{}").get("username", ""))[:100]
        except (ValueError, AttributeError):
            pass
        await audit.record(
            "console.signed_in" if status < 400 else "console.sign_in_failed",
            actor_kind="operator",
            actor_id=username,
            ip=ip,
        )


def _allowed_hosts(configured: str, public_url: str) -> list[str]:
    """Hosts piccolo-admin's CSRF check accepts as the referer under HTTPS: the configured ones, else the
    host of the public URL."""
    hosts = [h.strip() for h in configured.split(",") if h.strip()]
    return hosts or [h for h in [urlsplit(public_url).hostname] if h]


# the tables the console shows, by name: what a listing's query is checked against
TABLES: dict[str, type[Table]] = {v.table._meta.tablename: v.table for v in VIEWS}


def _query_problem(sub: str, query: bytes) -> str | None:
    """What is wrong with a table listing's query, before piccolo-api answers it with a 500 (a negative
    page size, ordering by an unknown column, filtering on a JSON column); None when nothing is."""
    table_name, _row = _table_row(sub)
    table = TABLES.get(table_name)
    if table is None or not query:
        return None
    columns = {c._meta.name: c for c in table._meta.columns}
    for key, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if key in ("__page", "__page_size"):
            if not value.isdigit() or int(value) < 1:
                return f"{key} must be a whole number of at least 1"
        elif key == "__order":
            for name in value.split(","):
                column = columns.get(name.strip().lstrip("-"))
                if column is None or column._meta.secret:
                    return f"cannot order by {name.strip()!r}"
        elif not key.startswith("__"):
            column = columns.get(key.split("__", 1)[0])
            if column is not None and isinstance(column, JSON):
                return f"cannot filter on {column._meta.name!r}"
    return None


def _json_object(body: bytes) -> bool:
    """Everything piccolo-admin's API takes is one JSON object; some of its handlers fail with a 500 on
    anything else (a list, malformed JSON), so it never sees anything else."""
    try:
        return isinstance(json.loads(body), dict)
    except (ValueError, UnicodeDecodeError):
        return False


def _table_row(sub: str) -> tuple[str, str]:
    parts = [p for p in sub.split("/") if p]
    if len(parts) >= 3 and parts[0] == "api" and parts[1] == "tables":
        return parts[2], parts[3] if len(parts) > 3 else ""
    return "", ""


def _fields(body: bytes, table: str) -> list[str]:
    try:
        data = json.loads(body) if body else {}
    except ValueError:
        return []
    if not isinstance(data, dict):
        return []
    names = sorted(str(k) for k in data)
    if table == MachineClient._meta.tablename:
        names = [n for n in names if n in CREDENTIAL_EDITABLE]
    return [n for n in names if "password" not in n]


async def _read_body(receive: Any) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    return b"".join(chunks)


async def _forward(app: Any, scope: dict[str, Any], body: bytes, send: Any) -> int:
    sent = False
    status = 500

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    async def watch(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        await send(message)

    await app(scope, replay, watch)
    return status


async def _send(send: Any, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
