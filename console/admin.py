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
"""

from __future__ import annotations

import functools
import json
import logging
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from piccolo.columns import JSON, Column
from piccolo.table import Table
from piccolo_admin.endpoints import TableConfig, create_admin
from piccolo_api.crud.hooks import Hook, HookType
from piccolo_api.crud.validators import Validators
from starlette.exceptions import HTTPException
from starlette.requests import Request

from auth.tables import Citizen, MachineClient
from backend import audit
from backend.errors import problem_body
from backend.runtime import Runtime
from backend.store import StoreUnavailable
from backend.tables import AuditEvent
from console.forms import console_forms
from console.operators import OperatorService, session_token
from console.tables import ConsoleOperator, ConsoleSession
from payments.tables import PaymentOrder, Refund, WebhookDelivery

log = logging.getLogger("shengshitong.console")

PREFIX = "/admin"
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
# what an admin operator may edit on a credential; other fields sent are dropped
CREDENTIAL_EDITABLE = {"name", "place", "revoked_at"}
LOGIN_LIMIT = 10  # failed or not, per client address per window
LOGIN_WINDOW = 300.0
MAX_BODY = 1 << 20


def _refuse(message: str) -> Any:
    async def validator(piccolo_crud: Any, request: Request) -> None:
        raise HTTPException(status_code=405, detail=message)

    return validator


def _read_only(table_name: str) -> Validators:
    no = _refuse(f"{table_name} cannot be changed in the console")
    return Validators(
        post_single=[no], put_single=[no], patch_single=[no], delete_single=[no], delete_all=[no]
    )


def _keep_editable(row_id: Any, values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k in CREDENTIAL_EDITABLE}


def _cols(table: type[Table], *names: str) -> list[Column]:
    return [table._meta.get_column_by_name(n) for n in names]


def table_configs() -> list[TableConfig]:
    cred_no_create = _refuse(
        "credentials are created with `shengshi scanners|miniapps|merchants add` (the secret is shown once)"
    )
    cred_no_delete = _refuse("credentials are revoked (set revoked at), not deleted: their history stays")
    return [
        TableConfig(
            MachineClient,
            visible_columns=_cols(
                MachineClient,
                "kind",
                "client_id",
                "name",
                "app_id",
                "context",
                "place",
                "last_seen_at",
                "revoked_at",
            ),
            visible_filters=_cols(MachineClient, "kind", "app_id", "context", "client_id", "revoked_at"),
            validators=Validators(
                post_single=[cred_no_create],
                put_single=[cred_no_create],
                delete_single=[cred_no_delete],
                delete_all=[cred_no_delete],
            ),
            hooks=[Hook(hook_type=HookType.pre_patch, callable=_keep_editable)],
            menu_group="Credentials 凭证",
        ),
        TableConfig(
            PaymentOrder,
            visible_columns=_cols(
                PaymentOrder,
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
            visible_filters=_cols(
                PaymentOrder, "app_id", "state", "deferred", "channel", "reference", "citizen_id"
            ),
            validators=_read_only("payment orders"),
            menu_group="Payments 支付",
        ),
        TableConfig(
            Refund,
            visible_columns=_cols(
                Refund, "id", "order", "amount", "state", "reason", "created_at", "succeeded_at"
            ),
            visible_filters=_cols(Refund, "state", "order"),
            validators=_read_only("refunds"),
            menu_group="Payments 支付",
        ),
        TableConfig(
            WebhookDelivery,
            visible_columns=_cols(
                WebhookDelivery,
                "target",
                "state",
                "attempts",
                "next_attempt_at",
                "last_error",
                "delivered_at",
            ),
            visible_filters=_cols(WebhookDelivery, "state", "target"),
            validators=_read_only("webhook deliveries"),
            menu_group="Payments 支付",
        ),
        TableConfig(
            AuditEvent,
            visible_columns=_cols(AuditEvent, "at", "action", "actor_kind", "actor_id", "subject", "ip"),
            visible_filters=_cols(AuditEvent, "action", "actor_kind", "actor_id", "subject"),
            validators=_read_only("the audit log"),
            menu_group="Audit 审计",
        ),
        TableConfig(
            Citizen,
            visible_columns=_cols(Citizen, "id", "status", "phone_masked", "created_at", "deleted_at"),
            visible_filters=_cols(Citizen, "status"),
            validators=_read_only("citizen accounts (block with `shengshi citizens block`)"),
            menu_group="Citizens 市民",
        ),
    ]


def _problem(status: int, code: str, detail: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    body = json.dumps(problem_body(status, code, detail), ensure_ascii=False).encode()
    return (
        status,
        [(b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode())],
        body,
    )


class ConsoleGate:
    """The ASGI app mounted at /admin: our rules around piccolo-admin (see the module docstring)."""

    def __init__(self, runtime: Runtime, operators: OperatorService) -> None:
        self.runtime = runtime
        self.operators = operators

    @functools.cached_property
    def admin(self) -> Any:
        """piccolo-admin, built on the first console request: building it costs more than the rest of
        the app together, and CLI commands and most workers' lives never need it."""
        s = self.runtime.settings
        return create_admin(
            tables=table_configs(),
            forms=console_forms(self.runtime),
            auth_table=ConsoleOperator,
            session_table=ConsoleSession,
            site_name="盛事通 运管后台 Shengshitong console",
            production=s.env == "prod",
            allowed_hosts=_allowed_hosts(s.console_allowed_hosts, s.public_url),
            sidebar_links={
                "运管中心 Live dashboard": f"{PREFIX}/dashboard",
                "扫码模拟 Scanner simulator": f"{PREFIX}/scanner",
            },
            default_language_code="zh-CN",  # Chinese first; the header switches language
            auto_include_related=False,  # only the tables above, each with its rules
        )

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
TABLES: dict[str, type[Table]] = {c.table_class._meta.tablename: c.table_class for c in table_configs()}


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
