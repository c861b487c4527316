"""Where a citizen's entitlements come from. Each source answers for some entitlements; the code merges
them. Sources are chosen by the composition root; the defaults below work on the embedded default's own
data (the real-name profile and the store), and mini-apps add theirs (transit standing, tickets)."""

from __future__ import annotations

import uuid
from typing import Any, Protocol

from auth.tables import Citizen
from backend.crypto import Keyring
from backend.store import Store


class EntitlementSource(Protocol):
    name: str

    async def fetch(self, citizen_id: str) -> dict[str, Any]:
        """Fields of :class:`codes.entitlements.Entitlements` this source knows for the citizen."""


class RealNameInsuranceSource:
    """Medical insurance and social security for real-name-verified citizens, insured in the region of
    their ID number (its first six digits are the administrative region code). A city connects its
    insurance bureau by replacing this source; the embedded default and the demo use it as it is."""

    name = "insurance"

    def __init__(self, pii: Keyring) -> None:
        self._pii = pii

    async def fetch(self, citizen_id: str) -> dict[str, Any]:
        row = (
            await Citizen.select(Citizen.id_number_sealed, Citizen.name_sealed)
            .where((Citizen.id == uuid.UUID(citizen_id)) & (Citizen.status == "active"))
            .first()
            .run()
        )
        if row is None or not row["id_number_sealed"] or not row["name_sealed"]:
            return {}
        number = self._pii.decrypt(row["id_number_sealed"], f"citizen:{citizen_id}:id_number")
        region = number[:2] + "0000"  # insured at province level in the demo data
        return {"medical_region": region, "social_security": True}


class HealthStatusSource:
    """Health code colour, set by the health authority's feed into the store (green when absent)."""

    name = "health"

    def __init__(self, store: Store) -> None:
        self._store = store

    async def fetch(self, citizen_id: str) -> dict[str, Any]:
        colour = await self._store.get(f"health:{citizen_id}")
        return {"health": colour.decode()} if colour in (b"green", b"yellow", b"red") else {}

    async def set(self, citizen_id: str, colour: str) -> None:
        if colour not in ("green", "yellow", "red"):
            raise ValueError("health colour must be green, yellow or red")
        await self._store.set(f"health:{citizen_id}", colour)
