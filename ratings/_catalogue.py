"""What can be rated and who answers for it: the rateable services (事项) the platform and the mini-apps
declare in code, and the units (单位) that serve them, kept in the database (a mini-app's hospitals, the
departments operators add) with a small cache of their names."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from auth._profile import DISTRICTS
from backend import db
from backend.clock import Clock
from backend.errors import InvalidInput, NotFound
from ratings.rules import Rateable, Unit
from ratings.tables import RatingUnit

UNIT_CACHE = 60.0  # seconds a worker trusts a unit's name and district it read


@dataclass
class Declared:
    """The rateable services the platform and the enabled mini-apps declared, by id "<owner>.<name>"."""

    services: dict[str, Rateable] = field(default_factory=dict)
    units: dict[str, list[Unit]] = field(default_factory=dict)  # owner -> the units declared in code

    def declare(self, owner: str, services: dict[str, Rateable], units: list[Unit] | None = None) -> None:
        for name, service in services.items():
            if problems := service.problems():
                raise ValueError(f"rateable service {owner}.{name}: {'; '.join(problems)}")
            self.services[f"{owner}.{name}"] = service
        self.units.setdefault(owner, []).extend(units or [])

    def service(self, service_id: str) -> Rateable:
        found = self.services.get(service_id)
        if found is None:
            raise NotFound(
                f"no rateable service {service_id!r}", code="rating_service_not_found", service=service_id
            )
        return found

    def names(self, service_id: str) -> tuple[str, str]:
        found = self.services.get(service_id)
        return (found.name_zh, found.name_en) if found else (service_id, service_id)


class Units:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        # unit id -> (read at, the row): a worker trusts a unit it read for UNIT_CACHE seconds, so a unit
        # renamed (or moved to another district) on one worker reaches every worker within them
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}

    # -----------------------------------------------------------------------------------------
    async def sync(self, declared: Declared) -> None:
        """Record the units declared in code (a mini-app's default unit, the platform's), at start-up."""
        for owner, units in declared.units.items():
            await self.save(owner, units)

    async def save(self, owner: str, units: list[Unit]) -> None:
        """Add or rename ``owner``'s units (a mini-app's hospitals, operators' departments)."""
        for unit in units:
            if problems := unit.problems():
                raise InvalidInput("; ".join(problems), code="invalid_unit")
            if unit.district and unit.district not in DISTRICTS:
                raise InvalidInput(f"unknown district {unit.district!r}", code="invalid_district")
        rows = [
            {
                "unit_id": f"{owner}/{u.code}",
                "owner": owner,
                "name_zh": u.name_zh,
                "name_en": u.name_en,
                "district": u.district,
            }
            for u in units
        ]
        if rows:
            await db.bulk_insert(RatingUnit, rows, on_conflict_update=("unit_id", None))
            for row in rows:
                self._cache.pop(row["unit_id"], None)

    async def get(self, unit_id: str) -> dict[str, Any]:
        cached = self._cache.get(unit_id)
        if cached is not None and self._clock.monotonic() - cached[0] < UNIT_CACHE:
            return cached[1]
        found = (
            await RatingUnit.select(
                RatingUnit.unit_id,
                RatingUnit.owner,
                RatingUnit.name_zh,
                RatingUnit.name_en,
                RatingUnit.district,
            )
            .where(RatingUnit.unit_id == unit_id)
            .first()
            .run()
        )
        if found is None:
            raise NotFound(f"no unit {unit_id!r}", code="rating_unit_not_found", unit=unit_id)
        self._cache[unit_id] = (self._clock.monotonic(), found)
        return found

    async def all(self, owner: str | None = None) -> list[dict[str, Any]]:
        query = RatingUnit.select(
            RatingUnit.unit_id, RatingUnit.owner, RatingUnit.name_zh, RatingUnit.name_en, RatingUnit.district
        ).order_by(RatingUnit.unit_id)
        if owner is not None:
            query = query.where(RatingUnit.owner == owner)
        return list(await query.run())
