"""Response bodies of the citizen-code API (the gate's scan bodies are in ``miniapps.schemas``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec


class CurrentCode(msgspec.Struct):
    token: str
    issued_at: datetime
    expires_at: datetime
    refresh_after: datetime
    entitlements: dict[str, Any]
    kid: str
    # the QR of ``token`` as an SVG document, when asked for (``?qr=svg``): one request gives a web
    # wallet the code and its picture, which cannot differ
    qr_svg: str | None = None
    # the server's clock when answering, so a device with a wrong clock still counts down correctly
    server_time: datetime | None = None
