"""ASGI middleware: a request id on every response and log line, and an access log."""

from __future__ import annotations

import logging
import re
import secrets
import time

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from backend.context import request_id_var

REQUEST_ID_HEADER = b"x-request-id"
_VALID_ID = re.compile(rb"^[A-Za-z0-9._-]{8,64}$")
access_log = logging.getLogger("shengshitong.access")


def request_id_middleware(app: ASGIApp) -> ASGIApp:
    """Accept a well-formed ``X-Request-ID`` from the caller or make one; echo it on the response."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        incoming = next((v for k, v in scope["headers"] if k == REQUEST_ID_HEADER), None)
        rid = incoming.decode() if incoming and _VALID_ID.match(incoming) else secrets.token_hex(8)
        token = request_id_var.set(rid)
        started = time.perf_counter()
        status = 500
        path = scope["path"]  # before routing: a mounted app sees its own part of the path

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER, rid.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await app(scope, receive, send_with_id)
        finally:
            if access_log.isEnabledFor(logging.INFO):
                access_log.info(
                    "%s %s %d",
                    scope.get("method", ""),
                    path,
                    status,
                    extra={"status": status, "ms": round((time.perf_counter() - started) * 1000, 2)},
                )
            request_id_var.reset(token)

    return middleware
