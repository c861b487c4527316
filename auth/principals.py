"""Who is calling: the result of authenticating a request."""

from __future__ import annotations

import msgspec


class CitizenPrincipal(msgspec.Struct, frozen=True):
    citizen_id: str
    session_id: str  # the refresh-token family: one login on one device
    device_id: str
    token_id: str


class MachinePrincipal(msgspec.Struct, frozen=True):
    id: str
    client_id: str
    kind: str  # scanner | miniapp | merchant | operator | source | unit | issuer | inspector | relying_party
    name: str
    app_id: str
    place: str
    context: str
