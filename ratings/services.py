"""The evaluation centre's services: rateable services and units as declared, events recorded for the
citizens who had them (with an invitation in their inbox), and ratings, each accepted once, from that
citizen, within the event's window. A bad rating opens its case in the same transaction
(:mod:`ratings._cases`); statistics are :mod:`ratings._stats`.

Who sees what: the citizen sees their own events and ratings, and their cases' answers; a unit sees the
ratings of its services with the rater as a handle of its own (:meth:`RatingCentre.rater`), never the
citizen's id, name or phone; operators see everything, the rater masked the same way.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from backend import audit, db
from backend.clock import Clock
from backend.crypto import keyed_hash
from backend.errors import Conflict, Forbidden, Gone, InvalidInput, NotFound
from backend.i18n import pick
from messages.services import PLATFORM, MessageCentre, Outgoing
from messages.templates import CHINA
from ratings import rules
from ratings._cases import Cases, CaseSettings, case_view
from ratings._catalogue import Declared, Units
from ratings.rules import INDICATORS, LEVEL_NAMES, LEVELS, Rateable, Unit
from ratings.tables import Rating, RatingCase, RatingEvent

log = logging.getLogger("shengshitong.ratings")
__all__ = ["CaseSettings", "Cases", "Declared", "RatingCentre", "Units"]


def month_of(at: datetime) -> str:
    return at.astimezone(CHINA).strftime("%Y-%m")


class RatingCentre:
    def __init__(
        self,
        clock: Clock,
        messages: MessageCentre,
        declared: Declared,
        units: Units,
        cases: Cases,
        *,
        key: bytes,
    ) -> None:
        self._clock = clock
        self._messages = messages
        self.declared = declared
        self.units = units
        self.cases = cases
        self._key = key

    def rater(self, unit_id: str, citizen_id: str) -> str:
        """The rater as a unit sees them: the same handle for the same citizen at this unit (so a unit sees
        a repeat rater), a different one at every other unit, and nothing that leads back to the person."""
        return "r_" + keyed_hash(self._key, "rating-rater", f"{unit_id}/{citizen_id}")[:20]

    def this_month(self) -> str:
        return month_of(self._clock.now())

    async def add_department(self, unit: Unit, *, operator: str) -> dict[str, Any]:
        """An operator adds (or renames) a department's unit, answered for by its own credential or in
        the console (audited)."""
        await self.units.save(PLATFORM, [unit])
        await audit.record("rating_unit_saved", actor_kind="operator", actor_id=operator, subject=unit.code)
        return await self.units.get(f"{PLATFORM}/{unit.code}")

    # ---- events ----------------------------------------------------------------------------------------
    async def record(
        self,
        owner: str,
        name: str,
        citizen_id: str,
        key: str,
        *,
        unit: str = "",
        at: datetime | None = None,
    ) -> tuple[str, bool]:
        """Record that the citizen had service ``<owner>.<name>`` (at ``unit``, one of the owner's; "" for
        its own), so they may rate it once within its window, and invite them when the service says so.
        Idempotent by ``key``: (the event's id, False) the second time. Inside the caller's transaction
        (a scan's, a check-in's) the event and its invitation commit with the caller's writes."""
        service_id = f"{owner}.{name}"
        service = self.declared.service(service_id)
        if not key or len(key) > 160:
            raise InvalidInput("an event's key is 1 to 160 characters", code="invalid_event_key")
        unit_row = await self._unit_or_own(owner, unit)
        now = self._clock.now()
        occurred = at or now
        if occurred > now + timedelta(minutes=5):
            raise InvalidInput("a service event cannot be in the future", code="invalid_event_time")
        closes = occurred + timedelta(days=service.window_days)
        event_id = uuid.uuid4()
        async with db.transaction():
            inserted = await db.bulk_insert(
                RatingEvent,
                [
                    {
                        "id": event_id,
                        "idempotency": f"{owner}/{key}",
                        "service": service_id,
                        "unit_id": unit_row["unit_id"],
                        "district": unit_row["district"],
                        "channel": service.channel,
                        "citizen_id": citizen_id,
                        "occurred_at": occurred,
                        "closes_at": closes,
                    }
                ],
                on_conflict_do_nothing="idempotency",
                returning="id",
            )
            if not inserted:
                row = (
                    await RatingEvent.select(RatingEvent.id)
                    .where(RatingEvent.idempotency == f"{owner}/{key}")
                    .first()
                    .run()
                )
                if row is None:  # the conflicting event went in the meantime (its account deleted)
                    raise Conflict("the service event could not be recorded; retry", code="event_conflict")
                return str(row["id"]), False
            if service.invite and closes > now:
                await self._invite(event_id, citizen_id, service, unit_row, closes)
        return str(event_id), True

    async def _invite(
        self, event_id: uuid.UUID, citizen_id: str, service: Rateable, unit: dict[str, Any], closes: datetime
    ) -> None:
        """The invitation (邀评) in the citizen's inbox. Like a mini-app's messages, an invitation whose
        template an operator has not approved (yet) is skipped and logged: it never fails the service."""
        try:
            await self._messages.send(
                PLATFORM,
                "rating_invite",
                [
                    Outgoing(
                        citizen_id=citizen_id,
                        key=f"rating-invite:{event_id}",
                        data={
                            "service": service.name_zh,
                            "service_en": service.name_en,
                            "unit": unit["name_zh"],
                            "unit_en": unit["name_en"],
                            "closes": closes.isoformat(),
                        },
                    )
                ],
            )
        except (Conflict, NotFound) as exc:
            log.warning("rating invitation not sent: %s", exc.code)

    async def _unit_or_own(self, owner: str, unit: str) -> dict[str, Any]:
        """The owner's unit ``unit``; one it never saved is answered for by the owner itself (logged),
        so a service is never refused its rating for a unit a mini-app forgot to declare."""
        try:
            return await self.units.get(f"{owner}/{unit or owner}")
        except NotFound:
            if not unit:
                raise
            log.warning("unit %s/%s not declared: its ratings go to %s itself", owner, unit, owner)
            return await self.units.get(f"{owner}/{owner}")

    async def pending(self, citizen_id: str, *, limit: int, offset: int) -> list[dict[str, Any]]:
        """The citizen's events still open for a rating, newest first (``limit + 1`` rows)."""
        rows = (
            await RatingEvent.select()
            .where(
                (RatingEvent.citizen_id == citizen_id)
                & (RatingEvent.closes_at > self._clock.now())
                & RatingEvent.rated_at.is_null()
            )
            .order_by(RatingEvent.closes_at, ascending=False)
            .limit(limit + 1)
            .offset(offset)
            .run()
        )
        return [await self.event_view(r) for r in rows]

    async def event(self, citizen_id: str, event_id: str) -> dict[str, Any]:
        row = await RatingEvent.select().where(RatingEvent.id == _uuid(event_id)).first().run()
        if row is None:
            raise NotFound("no such service event", code="rating_event_not_found")
        if row["citizen_id"] != citizen_id:
            raise Forbidden("only the citizen who had this service may rate it", code="not_your_event")
        return await self.event_view(row)

    async def event_view(self, row: dict[str, Any]) -> dict[str, Any]:
        service = self.declared.services.get(row["service"])
        unit = await self.units.get(row["unit_id"])
        now = self._clock.now()
        state = "rated" if row["rated_at"] else ("open" if row["closes_at"] > now else "closed")
        return {
            "id": str(row["id"]),
            "service": row["service"],
            "service_name": pick(service.name_zh, service.name_en) if service else row["service"],
            "unit": row["unit_id"],
            "unit_name": pick(unit["name_zh"], unit["name_en"]),
            "channel": row["channel"],
            "occurred_at": row["occurred_at"],
            "closes_at": row["closes_at"],
            "state": state,
            "indicators": [{"name": k, "label": pick(*v)} for k, v in INDICATORS[row["channel"]].items()],
        }

    # ---- ratings ---------------------------------------------------------------------------------------
    async def rate(
        self,
        citizen_id: str,
        event_id: str,
        level: str,
        indicators: Mapping[str, str],
        comment: str,
    ) -> dict[str, Any]:
        """Rate an event once: only its citizen, only while its window is open. A bad rating (不满意,
        非常不满意) opens a case with the unit, with its deadline, in the same transaction."""
        overall = LEVELS[level]
        text = rules.clean_text(comment)
        if text is None:
            raise InvalidInput("the comment holds control characters", code="invalid_rating_text")
        now = self._clock.now()
        ident = _uuid(event_id)
        async with db.transaction():
            claimed = (
                await RatingEvent.update({RatingEvent.rated_at: now})
                .where(
                    (RatingEvent.id == ident)
                    & (RatingEvent.citizen_id == citizen_id)
                    & RatingEvent.rated_at.is_null()
                    & (RatingEvent.closes_at > now)
                )
                .returning(
                    RatingEvent.service, RatingEvent.unit_id, RatingEvent.district, RatingEvent.channel
                )
                .run()
            )
            if not claimed:
                await self._why_not(citizen_id, ident, now)
            event = claimed[0]
            allowed = INDICATORS[event["channel"]]
            if unknown := set(indicators) - set(allowed):
                raise InvalidInput(
                    f"a {event['channel']} service is rated on {sorted(allowed)}; not {sorted(unknown)}",
                    code="unknown_indicator",
                    allowed=sorted(allowed),
                )
            scores = {k: LEVELS[v] for k, v in indicators.items()} | {"overall": overall}
            month = month_of(now)
            row = {
                "id": uuid.uuid4(),
                "event": ident,
                "service": event["service"],
                "unit_id": event["unit_id"],
                "district": event["district"],
                "channel": event["channel"],
                "citizen_id": citizen_id,
                "level": overall,
                "indicators": scores,
                "comment": text,
                "month": month,
                "counted": True,
                "imported": False,
                "created_at": now,
            }
            # one statement each, answered from what was written (no second read of the same rows)
            await db.bulk_insert(Rating, [row])
            case = None
            if rules.is_bad(overall):
                case = await self.cases.open(
                    row["id"],
                    unit_id=event["unit_id"],
                    service=event["service"],
                    district=event["district"],
                    month=month,
                    citizen_id=citizen_id,
                )
        steps = [{"at": now, "action": "opened", "state": "open", "note": ""}] if case else None
        return await self._rating_view(row, case, steps=steps)

    async def _why_not(self, citizen_id: str, ident: uuid.UUID, now: datetime) -> None:
        row = (
            await RatingEvent.select(RatingEvent.citizen_id, RatingEvent.rated_at, RatingEvent.closes_at)
            .where(RatingEvent.id == ident)
            .first()
            .run()
        )
        if row is None:
            raise NotFound("no such service event", code="rating_event_not_found")
        if row["citizen_id"] != citizen_id:
            raise Forbidden("only the citizen who had this service may rate it", code="not_your_event")
        if row["rated_at"] is not None:
            raise Conflict(
                "this service has been rated already (one rating per service)", code="already_rated"
            )
        raise Gone(
            "the time to rate this service has passed",
            code="rating_window_closed",
            closed_at=row["closes_at"].isoformat(),
        )

    async def mine(self, citizen_id: str, *, limit: int, offset: int) -> list[dict[str, Any]]:
        rows = (
            await Rating.select()
            .where(Rating.citizen_id == citizen_id)
            .order_by(Rating.created_at, ascending=False)
            .limit(limit + 1)
            .offset(offset)
            .run()
        )
        cases = await self.cases.of_ratings([r["id"] for r in rows])
        return [await self._rating_view(r, cases.get(r["id"]), steps=None) for r in rows]

    async def my_rating(self, citizen_id: str, rating_id: str) -> dict[str, Any]:
        row = (
            await Rating.select()
            .where((Rating.id == _uuid(rating_id, "rating_not_found")) & (Rating.citizen_id == citizen_id))
            .first()
            .run()
        )
        if row is None:
            raise NotFound("no such rating of yours", code="rating_not_found")
        case = (await self.cases.of_ratings([row["id"]])).get(row["id"])
        steps = await self.cases.steps(case["id"], for_citizen=True) if case else None
        return await self._rating_view(row, case, steps=steps)

    async def _rating_view(
        self, row: dict[str, Any], case: dict[str, Any] | None, *, steps: list[dict[str, Any]] | None
    ) -> dict[str, Any]:
        service = self.declared.services.get(row["service"])
        unit = await self.units.get(row["unit_id"])
        view: dict[str, Any] = {
            "id": str(row["id"]),
            "event_id": str(row["event"]),
            "service": row["service"],
            "service_name": pick(service.name_zh, service.name_en) if service else row["service"],
            "unit_name": pick(unit["name_zh"], unit["name_en"]),
            "level": LEVEL_NAMES[row["level"]],
            "level_text": pick(*rules.LEVEL_TEXT[row["level"]]),
            "indicators": {k: LEVEL_NAMES[v] for k, v in db.json_value(row["indicators"]).items()},
            "comment": row["comment"],
            "counted": bool(row["counted"]),
            "created_at": row["created_at"],
            "case": case_view(case, steps) if case else None,
        }
        return view

    async def callback(self, citizen_id: str, rating_id: str, level: str, comment: str) -> dict[str, Any]:
        """The rater's view of the fix (回访), once, after the unit answered."""
        text = rules.clean_text(comment)
        if text is None:
            raise InvalidInput("the comment holds control characters", code="invalid_rating_text")
        row = (
            await Rating.select(Rating.id)
            .where((Rating.id == _uuid(rating_id, "rating_not_found")) & (Rating.citizen_id == citizen_id))
            .first()
            .run()
        )
        if row is None:
            raise NotFound("no such rating of yours", code="rating_not_found")
        await self.cases.called_back(row["id"], citizen_id, LEVELS[level], text)
        return await self.my_rating(citizen_id, rating_id)

    # ---- history ---------------------------------------------------------------------------------------
    async def import_history(self, owner: str, name: str, items: list[dict[str, Any]]) -> int:
        """Ratings a mini-app kept itself before the centre, moved here once: each item ``{citizen_id,
        key, unit, occurred_at, level (1-5), comment, rated_at}`` becomes an event rated by its citizen
        (idempotent by key). History opens no case: its unit was never asked, and the window is long shut.
        Returns how many were new."""
        service_id = f"{owner}.{name}"
        service = self.declared.service(service_id)
        moved = 0
        async with db.transaction():
            for item in items:
                unit_row = await self._unit_or_own(owner, item.get("unit") or "")
                event_id = uuid.uuid4()
                rated = item["rated_at"]
                inserted = await db.bulk_insert(
                    RatingEvent,
                    [
                        {
                            "id": event_id,
                            "idempotency": f"{owner}/{item['key']}",
                            "service": service_id,
                            "unit_id": unit_row["unit_id"],
                            "district": unit_row["district"],
                            "channel": service.channel,
                            "citizen_id": item["citizen_id"],
                            "occurred_at": item["occurred_at"],
                            "closes_at": item["occurred_at"] + timedelta(days=service.window_days),
                            "rated_at": rated,
                        }
                    ],
                    on_conflict_do_nothing="idempotency",
                    returning="id",
                )
                if not inserted:
                    continue
                await Rating.insert(
                    Rating(
                        id=uuid.uuid4(),
                        event=event_id,
                        service=service_id,
                        unit_id=unit_row["unit_id"],
                        district=unit_row["district"],
                        channel=service.channel,
                        citizen_id=item["citizen_id"],
                        level=int(item["level"]),
                        indicators={"overall": int(item["level"])},
                        comment=(rules.clean_text(str(item.get("comment") or "")) or "")[:500],
                        month=month_of(rated),
                        imported=True,
                        created_at=rated,
                    )
                ).run()
                moved += 1
        return moved

    async def forget(self, citizen_id: str) -> None:
        """An account deleted: its open events go; its ratings stay in the statistics with no one behind
        them (the unit's handle already led to no one; nor does the event a rating was of), and its open
        cases are closed without a call-back."""
        async with db.transaction():
            await (
                RatingEvent.delete()
                .where((RatingEvent.citizen_id == citizen_id) & RatingEvent.rated_at.is_null())
                .run()
            )
            await (
                RatingEvent.update({RatingEvent.citizen_id: ""})
                .where(RatingEvent.citizen_id == citizen_id)
                .run()
            )
            await self.cases.forget(citizen_id)
            await (
                Rating.update({Rating.citizen_id: "", Rating.comment: ""})
                .where(Rating.citizen_id == citizen_id)
                .run()
            )
            await (
                RatingCase.update({RatingCase.citizen_id: ""})
                .where(RatingCase.citizen_id == citizen_id)
                .run()
            )


def _uuid(value: str, code: str = "rating_event_not_found") -> uuid.UUID:
    """An id from a path or a body; one that is no id is not found (as an event, or ``code``)."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound("no such item", code=code) from None
