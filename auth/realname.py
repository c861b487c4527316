"""Real-name verification providers (实名认证) behind one interface, chosen by settings
(``SHENGSHI_REALNAME_PROVIDER=development|http``).

A provider checks a name and an ID number with the authority (二要素核验), and where it offers it, a
liveness result from the app's SDK as well (实名核身: name + ID number + face), and answers with a
:class:`Verdict`: matched, not matched or unavailable, with its name, its own reference for the request,
the time and the level reached. Providers never raise for an answer they could not get: "unavailable" is
a verdict, so the service can audit it like any other.

The development provider (:class:`DevelopmentRealNameProvider`) is for ``make run`` and the tests; the
settings refuse it in production, like the development SMS gateway. The HTTP provider lives in
``auth/realname_http.py``.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from auth.pii import mask_id_number, mask_name

Outcome = Literal["matched", "not_matched", "unavailable"]
Level = Literal["two_factor", "face"]
LEVELS: tuple[Level, ...] = ("two_factor", "face")  # weakest first


@dataclass(frozen=True, repr=False)
class Claim:
    """What the citizen says: a normalised name and ID number (see auth/pii.py), and the liveness SDK's
    result token when the app ran a face check. Its repr shows them masked only."""

    name: str
    id_number: str
    liveness_token: str | None = None

    def __repr__(self) -> str:
        live = "yes" if self.liveness_token else "no"
        return (
            f"Claim(name={mask_name(self.name)}, id_number={mask_id_number(self.id_number)}, liveness={live})"
        )


@dataclass(frozen=True)
class Verdict:
    """A provider's answer. ``level`` is the level reached when matched (else ""); ``reason`` says why
    not (``name_mismatch``, ``id_not_found``, ``liveness_failed``) or why unavailable (for the logs and
    the audit, never shown as the authority's words to the citizen)."""

    outcome: Outcome
    provider: str
    reference: str
    at: datetime
    level: Level | Literal[""] = ""
    reason: str = ""
    liveness_score: float | None = field(default=None)

    @property
    def matched(self) -> bool:
        return self.outcome == "matched"


class RealNameProvider(ABC):
    """Checks a :class:`Claim` with the authority."""

    name: str

    @abstractmethod
    async def verify(self, claim: Claim, *, at: datetime) -> Verdict:
        """The authority's answer for ``claim``; "unavailable" (never an exception) when there is none."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections (called at shutdown)."""


# The development provider's documented markers (docs/identity.md): in a name, case-insensitive.
MISMATCH_MARKERS = ("不符", "mismatch")
UNAVAILABLE_MARKERS = ("不可用", "unavailable")
FAILED_LIVENESS = "fail"


class DevelopmentRealNameProvider(RealNameProvider):
    """Development only — asks no authority. Deterministic:

    - a name containing ``不符`` or ``mismatch`` → not matched (``name_mismatch``);
    - a name containing ``不可用`` or ``unavailable`` → unavailable (as if the authority were down);
    - otherwise any valid ID number (the service has checked its form and check digit) → matched, at
      ``face`` when a liveness token was given (the token ``fail`` → not matched, ``liveness_failed``),
      else at ``two_factor``.

    The reference is ``dev-`` and a random id, as a real provider's request id would be.
    """

    name = "development"

    async def verify(self, claim: Claim, *, at: datetime) -> Verdict:
        reference = "dev-" + uuid.uuid4().hex
        lowered = claim.name.lower()
        if any(m in lowered for m in UNAVAILABLE_MARKERS):
            return Verdict("unavailable", self.name, reference, at, reason="simulated_outage")
        if any(m in lowered for m in MISMATCH_MARKERS):
            return Verdict("not_matched", self.name, reference, at, reason="name_mismatch")
        if claim.liveness_token is None:
            return Verdict("matched", self.name, reference, at, level="two_factor")
        if claim.liveness_token == FAILED_LIVENESS:
            return Verdict("not_matched", self.name, reference, at, reason="liveness_failed")
        return Verdict("matched", self.name, reference, at, level="face", liveness_score=0.99)
