"""SMS gateways behind one interface, chosen by settings (``SHENGSHI_SMS_GATEWAY``)."""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from datetime import datetime
from typing import Any

import httpx

from auth.pii import mask_phone
from backend.errors import ServiceUnavailable
from backend.store import Store

log = logging.getLogger("shengshitong.sms")


class SmsGateway(ABC):
    @abstractmethod
    async def send(self, phone: str, text: str, *, at: datetime) -> None:
        """Send ``text`` to an E.164 phone number; raise ServiceUnavailable when it cannot."""


class DevSmsGateway(SmsGateway):
    """Development only: keeps the last message per phone in the store (so every worker sees it)."""

    def __init__(self, store: Store, keep_seconds: int = 3600) -> None:
        self._store = store
        self._keep = keep_seconds

    async def send(self, phone: str, text: str, *, at: datetime) -> None:
        await self._store.set(
            f"dev-sms:{phone}", json.dumps({"text": text, "sent_at": at.isoformat()}), ttl=self._keep
        )
        log.info("dev sms kept for %s", mask_phone(phone))

    async def last(self, phone: str) -> dict[str, Any] | None:
        raw = await self._store.get(f"dev-sms:{phone}")
        return None if raw is None else dict(json.loads(raw))


class HttpSmsGateway(SmsGateway):
    """Posts ``{"phone", "text"}`` as JSON to the operator's SMS provider endpoint with a bearer token."""

    def __init__(
        self, url: str, token: str, *, timeout: float = 5.0, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._url = url
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.AsyncClient(timeout=timeout, transport=transport)

    async def send(self, phone: str, text: str, *, at: datetime) -> None:
        try:
            r = await self._client.post(self._url, json={"phone": phone, "text": text}, headers=self._headers)
        except httpx.HTTPError as exc:
            log.warning("sms provider unreachable for %s: %s", mask_phone(phone), type(exc).__name__)
            raise ServiceUnavailable(
                "the SMS provider cannot be reached; try again shortly", code="sms_unavailable"
            ) from exc
        if r.status_code >= 300:
            log.warning("sms provider refused %s: HTTP %d", mask_phone(phone), r.status_code)
            raise ServiceUnavailable(
                "the SMS provider refused the message; try again shortly", code="sms_unavailable"
            )

    async def close(self) -> None:
        await self._client.aclose()
