"""Who may use the console's own pages and their JSON routes (besides piccolo-admin's, which the gate in
console/admin.py guards): a signed-in console operator (piccolo-admin's session cookie), an admin for a
change, and the CSRF token piccolo-admin's own requests carry on every cookie-authenticated POST."""

from __future__ import annotations

import hmac
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from backend.errors import Forbidden, Unauthorized
from backend.openapi import requires
from console.operators import Operator, OperatorService
from console.services import CONSOLE

OPERATOR = "console_operator"


def operators_of(connection: ASGIConnection[Any, Any, Any, Any]) -> OperatorService:
    return CONSOLE.of(connection.app).operators


async def signed_in(connection: ASGIConnection[Any, Any, Any, Any]) -> Operator | None:
    return await operators_of(connection).from_token(connection.cookies.get("id"))


@requires({"consoleSession": []})
async def console_operator(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    operator = await signed_in(connection)
    if operator is None:
        raise Unauthorized("sign in to the console at /admin/ first", code="console_sign_in")
    connection.state[OPERATOR] = operator


@requires({"consoleSession": []})
async def console_admin(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    await console_operator(connection, handler)
    if not connection.state[OPERATOR].can_change:
        raise Forbidden("your console role is read-only", code="read_only")


@requires({"consoleCsrf": []})
async def same_site_post(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Cookie-authenticated POSTs carry the console's CSRF token (cookie ``csrftoken`` repeated in the
    ``X-CSRFToken`` header, as piccolo-admin's own requests do)."""
    cookie = connection.cookies.get("csrftoken", "")
    header = connection.headers.get("x-csrftoken", "")
    if not cookie or not hmac.compare_digest(cookie, header):
        raise Forbidden("missing or wrong CSRF token", code="csrf_failed")


def provide_operator(request: Request[Any, Any, Any]) -> Operator:
    return request.state[OPERATOR]  # type: ignore[no-any-return]
