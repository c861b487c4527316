"""Privacy numbers (隐私号 / 虚拟号): a virtual number bound to a citizen's phone for a few minutes, so a
stranger can call them (扫码挪车) without either side seeing the other's real number.

The provider is a telecom operator's service (an "AX" binding: calls to X reach A, and A sees X). The
platform resolves the citizen's phone itself and hands the provider only that; a mini-app gets the
binding (:class:`miniapps.contract.PrivacyBinding`), never the phone.

- ``development``: in-process, for ``make run`` and the tests. It hands out numbers of a range no
  operator assigns (+86 170 0000 xxxx) and records each binding in memory, so a test can "dial" one and
  see where it leads (:meth:`DevPrivacyNumbers.dial`). Refused in production (``backend.settings``).
- ``off``: no provider; asking for a number answers 503 ``privacy_number_unavailable``.
"""

from __future__ import annotations

import secrets
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime, timedelta

from backend.errors import ServiceUnavailable


@dataclass(frozen=True)
class Binding:
    number: str
    expires_at: datetime
    binding: str


class PrivacyNumbers(ABC):
    @abstractmethod
    async def bind(self, phone: str, *, minutes: int, at: datetime) -> Binding:
        """A virtual number that reaches ``phone`` until ``at + minutes``."""


class NoPrivacyNumbers(PrivacyNumbers):
    async def bind(self, phone: str, *, minutes: int, at: datetime) -> Binding:
        raise ServiceUnavailable(
            "no privacy-number provider is configured", code="privacy_number_unavailable"
        )


class DevPrivacyNumbers(PrivacyNumbers):
    """Development only: numbers from a range no operator assigns, bindings kept in this process."""

    def __init__(self) -> None:
        self._bindings: dict[str, tuple[str, datetime, str]] = {}

    async def bind(self, phone: str, *, minutes: int, at: datetime) -> Binding:
        expires = at + timedelta(minutes=minutes)
        # a number free at ``at`` (one whose binding ran out may be handed out again)
        for _ in range(100):
            number = f"+861700000{secrets.randbelow(10_000):04d}"
            held = self._bindings.get(number)
            if held is None or held[1] <= at:
                break
        else:
            raise ServiceUnavailable("no privacy number is free", code="privacy_number_unavailable")
        binding = secrets.token_hex(8)
        self._bindings[number] = (phone, expires, binding)
        return Binding(number=number, expires_at=expires, binding=binding)

    def dial(self, number: str, at: datetime) -> str | None:
        """Where a call to ``number`` at ``at`` goes: the bound phone, or None (unbound or run out)."""
        held = self._bindings.get(number)
        if held is None or held[1] <= at:
            return None
        return held[0]


def create_privacy_numbers(provider: str) -> PrivacyNumbers:
    return DevPrivacyNumbers() if provider == "development" else NoPrivacyNumbers()
