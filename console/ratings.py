"""The console's 好差评 desk (evaluation centre) and the dashboard's ratings panel, over the centre's own
services (built once in the composition root and passed in), so the console and the operators' API
(``/api/v1/admin/ratings``) share their checks and audit events.

- :class:`RatingsDesk`: what the console's ratings page reads (statistics over a range of months, grouped
  by unit, service, district or month, as a table and as CSV; cases, overdue ones on their own; units)
  and what an admin operator does there: decide a unit's appeal, verify or answer a case for a department
  unit (the platform's own units, which have no case-handling system of their own), add a department.
- :class:`RatingsPanel`: this month's figures for the live dashboard, computed at most every
  :data:`PANEL_EVERY` seconds per worker, whatever the number of frames and viewers.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from backend.clock import Clock
from backend.errors import NotFound
from messages.services import PLATFORM
from ratings._cases import OPEN_STATES, Actor
from ratings._stats import By, to_csv
from ratings.rules import Unit, rate
from ratings.setup import RatingServices
from ratings.tables import RatingCase

log = logging.getLogger("shengshitong.console.ratings")

PANEL_EVERY = 30.0  # seconds between two computations of the dashboard's ratings panel (per worker)
PANEL_UNITS = 3  # the best and the worst units shown


class RatingsDesk:
    def __init__(self, ratings: RatingServices) -> None:
        self._ratings = ratings

    @staticmethod
    def _operator(username: str, *, departments: bool = False) -> Actor:
        """An operator in the console: every unit's cases, or (acting for a unit) the departments' only."""
        return Actor("operator", username, owner=PLATFORM if departments else None)

    def months(self, first: str | None, last: str | None) -> tuple[str, str]:
        """The range asked for; a missing end is the other end, and both missing this month (China time)."""
        this = self._ratings.centre.this_month()
        return first or last or this, last or first or this

    async def stats(self, by: By, month_from: str | None, month_to: str | None) -> dict[str, Any]:
        first, last = self.months(month_from, month_to)
        rows = await self._ratings.stats.compute(by, month_from=first, month_to=last)
        return {"by": by, "month_from": first, "month_to": last, "rows": rows}

    async def stats_csv(self, by: By, month_from: str | None, month_to: str | None) -> tuple[str, str]:
        """(the file's name, the CSV): the same rows as :meth:`stats`, as the operators' API sends them."""
        stats = await self.stats(by, month_from, month_to)
        name = f"ratings-{by}-{stats['month_from']}-{stats['month_to']}.csv"
        return name, to_csv(stats["rows"])

    async def cases(
        self, *, state: str | None, overdue: bool, unit: str | None, limit: int, offset: int
    ) -> list[dict[str, Any]]:
        """Every unit's cases, the nearest deadline first (``limit + 1`` rows); ``overdue``: past the
        deadline with no answer yet."""
        return await self._ratings.cases.find(
            self._operator(""), state=state, overdue=overdue, unit=unit, limit=limit, offset=offset
        )

    async def case(self, case_id: str) -> dict[str, Any]:
        """One case with its rating (the rater as the unit's handle) and every step."""
        return await self._ratings.cases.get(self._operator(""), case_id, rater=self._ratings.centre.rater)

    async def decide(self, operator: str, case_id: str, *, uphold: bool, note: str) -> dict[str, Any]:
        """A unit's appeal decided: upheld, the rating leaves the statistics; rejected, the case goes back."""
        return await self._ratings.cases.decide_appeal(self._operator(operator), case_id, uphold, note)

    async def verify(self, operator: str, case_id: str, note: str) -> dict[str, Any]:
        """核实, for a department unit (another unit's case is not found here: it answers for itself)."""
        return await self._ratings.cases.verify(self._operator(operator, departments=True), case_id, note)

    async def answer(self, operator: str, case_id: str, *, outcome: str, text: str) -> dict[str, Any]:
        """反馈 (rectified or explained), for a department unit; the rater gets it and may call back."""
        actor = self._operator(operator, departments=True)
        return await self._ratings.cases.answer(actor, case_id, outcome, text)

    async def units(self) -> list[dict[str, Any]]:
        return await self._ratings.centre.units.all()

    async def add_department(self, operator: str, unit: Unit) -> dict[str, Any]:
        """A department's unit (``platform/<code>``), added or renamed (audited by the centre)."""
        return await self._ratings.centre.add_department(unit, operator=operator)


class RatingsPanel:
    """The dashboard's 好差评 figures of this month (China time): the satisfaction rate, ratings and bad
    ratings, open and overdue cases (of any month: the work still to do), and the best and worst units by
    satisfaction. Two grouped queries and two counts, at most once every ``every`` seconds per worker;
    every frame in between reuses them (a frame is built once a second per worker)."""

    def __init__(self, ratings: RatingServices, clock: Clock, *, every: float = PANEL_EVERY) -> None:
        self._ratings = ratings
        self._clock = clock
        self.every = every
        self._figures: tuple[float, dict[str, Any] | None] | None = None
        self._lock = asyncio.Lock()
        self.computed = 0  # how many times the figures were computed (tests read it)

    async def figures(self) -> dict[str, Any] | None:
        """The figures as last computed (None until they could be), computed again when older than
        ``every`` seconds. A failure (the database busy) keeps the last figures until the next try."""
        async with self._lock:
            now = self._clock.monotonic()
            if self._figures is None or now - self._figures[0] >= self.every:
                figures: dict[str, Any] | None = self._figures[1] if self._figures else None
                try:
                    figures = await self._compute()
                except Exception:
                    log.warning("dashboard ratings panel not computed", exc_info=True)  # the last ones
                self._figures = (now, figures)
            return self._figures[1]

    async def _compute(self) -> dict[str, Any]:
        self.computed += 1
        centre = self._ratings.centre
        month = centre.this_month()
        rows = [
            r
            for r in await self._ratings.stats.compute("unit", month_from=month, month_to=month)
            if r["ratings"]
        ]
        total = sum(r["ratings"] for r in rows)
        good = sum(r["good"] for r in rows)
        waiting = RatingCase.state.is_in(list(OPEN_STATES))
        open_cases = await RatingCase.count().where(waiting).run()
        overdue = await RatingCase.count().where(waiting & (RatingCase.deadline <= self._clock.now())).run()
        top = rows[:PANEL_UNITS]
        bottom = [r for r in reversed(rows[-PANEL_UNITS:]) if r not in top]  # the worst first

        async def unit(row: dict[str, Any]) -> dict[str, Any]:
            try:  # both names: the page switches its language itself
                found = await centre.units.get(row["key"])
            except NotFound:
                found = {"name_zh": row["key"], "name_en": row["key"]}
            return {
                "unit": row["key"],
                "name_zh": found["name_zh"],
                "name_en": found["name_en"],
                "rank": row["rank"],
                "ratings": row["ratings"],
                "satisfaction_rate": row["satisfaction_rate"],
            }

        return {
            "month": month,
            "at": int(self._clock.time()),
            "ratings": total,
            "good": good,
            "bad": sum(r["bad"] for r in rows),
            "satisfaction_rate": rate(good, total),
            "open_cases": open_cases,
            "overdue_cases": overdue,
            "top": [await unit(r) for r in top],
            "bottom": [await unit(r) for r in bottom],
        }
