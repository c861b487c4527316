"""What a citizen's code claims, and where each claim comes from.

Only from the systems that own them:

- medical insurance, social security and the health status: from the facts their owners pushed
  (:mod:`codes.owners`), addressed by ID number, and only for a citizen whose real name and ID number a
  provider verified (a self-typed ID number grants nothing);
- transit standing and tickets: from the mini-apps that contribute them through the contract (the
  composition root hands them over as :class:`Contributor`), asked when the code is issued.

An unverified account is granted nothing; a refusal (transit: unpaid fares) applies to any account.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from auth.tables import Citizen, MachineClient
from backend.clock import Clock
from codes.entitlements import Entitlements
from codes.owners import OWNERS, Fact, Facts


class Contributed(NamedTuple):
    granted: bool
    until: datetime | None = None
    reason: str = ""
    detail: dict[str, Any] = {}


class Contributor(Protocol):
    """A mini-app's part of the code (transit standing, tickets), adapted by the mini-app platform."""

    entitlement: str  # "transit" | "tickets"
    app_id: str
    names: tuple[str, str]  # the mini-app's name in Chinese and English

    async def contribution(self, citizen_id: str, at: datetime) -> Contributed: ...


class KeyedContributor(Protocol):
    """A mini-app's keyed claims in the code (the offline doors' community claims): values computed for
    one code's ``cti`` with the mini-app's own keys, which only its terminals can read."""

    app_id: str

    async def keyed(self, citizen_id: str, cti: bytes) -> list[tuple[int, bytes]]: ...


@dataclass
class Held:
    """One entitlement as the wallet shows it: granted or not, why not, and who says so since when."""

    name: str
    granted: bool
    status: str  # insured | not_insured | green | yellow | red | unknown | in_good_standing | ...
    reason: str | None = None  # why it is not available (a machine code the app explains)
    # {"kind": "owner"|"miniapp", "id" (the owner's kind or the mini-app's id), "name_zh", "name_en"}
    source: dict[str, Any] | None = None
    effective_at: datetime | None = None
    valid_until: datetime | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def readable(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "granted": self.granted,
            "status": self.status,
            "reason": self.reason,
            "source": self.source,
            "effective_at": self.effective_at,
            "valid_until": self.valid_until,
            "detail": self.detail,
        }


class Standing(NamedTuple):
    entitlements: Entitlements
    held: list[Held]
    verified: bool
    changes_at: datetime | None  # the next time it changes by itself (a validity ending), if any


_ORDER = ("medical", "social_security", "health", "transit", "tickets")


class EntitlementService:
    def __init__(self, facts: Facts, clock: Clock) -> None:
        self.facts = facts
        self._clock = clock
        self._contributors: dict[str, Contributor] = {}
        self._keyed: KeyedContributor | None = None
        self._source_names: dict[str, str] = {}

    def contribute_keyed(self, contributor: KeyedContributor) -> None:
        """Called by the mini-app platform for the one mini-app that adds keyed claims to the code."""
        if self._keyed is not None:
            raise RuntimeError(
                f"both {self._keyed.app_id} and {contributor.app_id} add keyed claims to the code: one may"
            )
        self._keyed = contributor

    async def keyed(self, citizen_id: str, cti: bytes) -> list[tuple[int, bytes]]:
        """The keyed claims of the code ``cti`` about to be issued (none when no mini-app adds them)."""
        if self._keyed is None:
            return []
        return await self._keyed.keyed(citizen_id, cti)

    def contribute(self, contributor: Contributor) -> None:
        """Called by the mini-app platform at its construction, for each contributing mini-app."""
        if contributor.entitlement in self._contributors:
            other = self._contributors[contributor.entitlement].app_id
            raise RuntimeError(
                f"both {other} and {contributor.app_id} contribute {contributor.entitlement!r}: one may"
            )
        self._contributors[contributor.entitlement] = contributor

    async def _source(self, kind: str, client_id: str) -> dict[str, Any]:
        name = self._source_names.get(client_id)
        if name is None:
            row = (
                await MachineClient.select(MachineClient.name)
                .where(MachineClient.client_id == client_id)
                .first()
                .run()
            )
            name = row["name"] if row else ""
            self._source_names[client_id] = name
        zh, en = OWNERS[kind]
        return {"kind": "owner", "id": kind, "name_zh": name or zh, "name_en": name or en}

    async def standing(self, citizen_id: str) -> Standing:
        at = self._clock.now()
        row = (
            await Citizen.select(Citizen.id_number_index, Citizen.real_name_verified_at)
            .where((Citizen.id == uuid.UUID(citizen_id)) & (Citizen.status == "active"))
            .first()
            .run()
        )
        verified = bool(row and row["real_name_verified_at"] and row["id_number_index"])
        contributed = await asyncio.gather(
            *(c.contribution(citizen_id, at) for c in self._contributors.values())
        )
        by_name = dict(zip(self._contributors, contributed, strict=True))
        facts: dict[str, Fact] = {}
        changes_at: datetime | None = None
        if verified:
            assert row is not None
            facts, changes_at = await self.facts.held(row["id_number_index"], at)
        held: list[Held] = []
        for kind in ("medical", "social_security", "health"):
            held.append(await self._owned(kind, facts.get(kind), verified))
        for name in ("transit", "tickets"):
            contributor = self._contributors.get(name)
            answer = by_name.get(name)
            if contributor is None or answer is None:
                held.append(
                    Held(name, name == "transit", "unknown", None if name == "transit" else "no_source")
                )
                continue
            if answer.until is not None:
                changes_at = answer.until if changes_at is None else min(changes_at, answer.until)
            source = {
                "kind": "miniapp",
                "id": contributor.app_id,
                "name_zh": contributor.names[0],
                "name_en": contributor.names[1],
            }
            granted = answer.granted
            reason = None if granted else (answer.reason or "not_granted")
            # tickets are a grant (a verified citizen's); transit standing only ever refuses, so an
            # unverified rider in good standing rides, as the gate says
            if granted and not verified and name != "transit":
                granted, reason = False, "real_name_unverified"
            status = _status(name, answer.granted)
            held.append(Held(name, granted, status, reason, source, None, answer.until, dict(answer.detail)))
        return Standing(_entitlements(held, by_name), held, verified, changes_at)

    async def _owned(self, kind: str, fact: Fact | None, verified: bool) -> Held:
        if not verified:
            return Held(kind, False, "unknown", "real_name_unverified")
        if fact is None:
            return Held(kind, False, "unknown", "no_record")
        source = await self._source(kind, fact.source)
        value = fact.value
        if kind == "health":
            colour = str(value.get("status", "unknown"))
            detail = {"reason": value.get("reason") or ""}
            reason = None if colour == "green" else f"health_{colour}"
            return Held(
                kind, colour == "green", colour, reason, source, fact.effective_at, fact.valid_until, detail
            )
        insured = bool(value.get("insured"))
        detail = {k: v for k, v in value.items() if k != "insured" and v is not None}
        return Held(
            kind,
            insured,
            "insured" if insured else "not_insured",
            None if insured else "not_insured",
            source,
            fact.effective_at,
            fact.valid_until,
            detail,
        )


def _status(name: str, granted: bool) -> str:
    if name == "transit":
        return "in_good_standing" if granted else "refused"
    return "holds_ticket_today" if granted else "no_ticket_today"


def _entitlements(held: list[Held], contributed: dict[str, Contributed]) -> Entitlements:
    """The claims the code carries. A refusal a mini-app says (transit: unpaid fares) is carried for any
    account; a grant only for a verified one (``held`` already says so)."""
    by = {h.name: h for h in held}
    medical = by["medical"]
    transit_answer = contributed.get("transit")
    transit: bool | None
    if transit_answer is None or transit_answer.reason == "source_unavailable":
        transit = None
    elif not transit_answer.granted:
        transit = False
    else:
        transit = True if by["transit"].granted else None
    health = by["health"]
    return Entitlements(
        medical_region=str(medical.detail.get("region")) if medical.granted else None,
        transit=transit,
        health=health.status if health.status in ("green", "yellow", "red") else "unknown",
        tickets=by["tickets"].granted,
        social_security=by["social_security"].granted,
    )


def ordered(held: list[Held]) -> list[Held]:
    return sorted(held, key=lambda h: _ORDER.index(h.name))
