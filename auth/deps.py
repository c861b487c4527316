"""Dependencies handlers declare to receive the caller and the identity services."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.di import Provide

from auth.guards import PRINCIPAL, auth_services, client_ip
from auth.principals import CitizenPrincipal, MachinePrincipal
from auth.services import AuthServices


def provide_citizen(request: Request[Any, Any, Any]) -> CitizenPrincipal:
    principal = request.state.get(PRINCIPAL)
    if not isinstance(principal, CitizenPrincipal):
        raise RuntimeError("route asks for a citizen but has no citizen_only guard")
    return principal


def provide_machine(request: Request[Any, Any, Any]) -> MachinePrincipal:
    principal = request.state.get(PRINCIPAL)
    if not isinstance(principal, MachinePrincipal):
        raise RuntimeError("route asks for a machine caller but has no machine guard")
    return principal


def provide_auth(request: Request[Any, Any, Any]) -> AuthServices:
    return auth_services(request)


def provide_ip(request: Request[Any, Any, Any]) -> str:
    return client_ip(request)


DEPENDENCIES = {
    "citizen": Provide(provide_citizen, sync_to_thread=False),
    "machine": Provide(provide_machine, sync_to_thread=False),
    "auth": Provide(provide_auth, sync_to_thread=False),
    "ip": Provide(provide_ip, sync_to_thread=False),
}
