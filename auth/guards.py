"""Guards: a route declares who may call it. The authenticated principal is kept in the request state
and handed to the handler by the ``citizen`` / ``machine`` dependencies (see ``auth.deps``)."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from auth._tokens import invalid_token
from auth.services import AUTH, AuthServices
from backend.openapi import requires

PRINCIPAL = "principal"


def auth_services(connection: ASGIConnection[Any, Any, Any, Any]) -> AuthServices:
    return AUTH.of(connection.app)


def client_ip(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    return connection.client.host if connection.client else ""


@requires({"citizenToken": []})
async def citizen_only(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    header = connection.headers.get("authorization", "")
    scheme, _sep, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise invalid_token("a bearer access token is required")
    connection.state[PRINCIPAL] = await auth_services(connection).tokens.verify(token.strip())


def machine_only(*kinds: str) -> Any:
    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        connection.state[PRINCIPAL] = await auth_services(connection).machines.authenticate(
            connection.headers.get("authorization"), kinds, ip=client_ip(connection)
        )

    guard.__name__ = f"machine_only_{'_'.join(kinds)}"
    return requires({"machineCredential": []})(guard)


scanner_only = machine_only("scanner")
miniapp_only = machine_only("miniapp")
merchant_or_miniapp = machine_only("merchant", "miniapp")
operator_only = machine_only("operator")
source_only = machine_only("source")  # the systems that own entitlements (bureaus, the health authority)
