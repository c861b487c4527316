"""The case every bad rating opens with its unit (差评整改): verify, rectify or explain, feed back to the
rater, call back; or appeal, decided by an operator. Every transition is one conditional UPDATE (race-free
on PostgreSQL: two units' clerks, or a clerk and the overdue round, cannot both move a case) and a step
row in the same transaction.

States and who moves them:

- ``open`` (opened with the rating; deadline = 15 working days) → ``rectifying`` (the unit verified it:
  核实) → ``answered`` (the unit's answer, rectified or explained, sent to the rater: 反馈) → ``closed``
  (the rater's view of the fix: 回访; or no view within the call-back window).
- ``open`` | ``rectifying`` → ``appealed`` (the unit says the rating is mistaken, false or malicious:
  申诉) → ``void`` (an operator upheld it: the rating leaves the statistics) or back where it was
  (rejected; the deadline still runs).
- The round marks cases past their deadline as escalated (reported to operators, once), closes answered
  cases whose call-back window passed, and fixes provisional deadlines once the calendar knows the year.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from backend import audit, db
from backend.clock import Clock
from backend.errors import Conflict, InvalidInput, NotFound
from backend.i18n import pick
from messages.services import PLATFORM, MessageCentre, Outgoing
from ratings import calendar, rules
from ratings._catalogue import Declared, Units
from ratings.rules import LEVEL_NAMES, LEVEL_TEXT
from ratings.tables import Rating, RatingCase, RatingCaseStep

log = logging.getLogger("shengshitong.ratings.cases")
OPEN_STATES = ("open", "rectifying")


@dataclass(frozen=True)
class CaseSettings:
    rectify_days: int = 15  # working days a unit has to verify, rectify and answer
    callback_days: int = 7  # days the rater has to give their view of the fix


@dataclass(frozen=True)
class Actor:
    """Who acts on a case, and which cases they may see: one unit (its own credential), a mini-app's
    units (the mini-app's backend), or every unit (an operator: ``owner`` and ``unit`` both None)."""

    kind: str  # unit | miniapp | operator | citizen | platform
    id: str
    unit: str | None = None
    owner: str | None = None

    def scope(self) -> Any:
        if self.unit is not None:
            return RatingCase.unit_id == self.unit
        if self.owner is not None:
            return RatingCase.unit_id.like(f"{self.owner}/%")
        return None


PLATFORM_ACTOR = Actor(kind="platform", id="ratings")


class Cases:
    def __init__(
        self,
        clock: Clock,
        messages: MessageCentre,
        settings: CaseSettings,
        units: Units,
        declared: Declared,
    ) -> None:
        self._clock = clock
        self._messages = messages
        self.settings = settings
        self._unit = units.get
        self._service = declared.names

    async def open(
        self, rating_id: uuid.UUID, *, unit_id: str, service: str, district: str, month: str, citizen_id: str
    ) -> dict[str, Any]:
        """Inside the rating's transaction: the case, with its deadline in working days, and its first
        step; the case's row as written."""
        now = self._clock.now()
        deadline, exact = calendar.add_working_days(now, self.settings.rectify_days)
        case = {
            "id": uuid.uuid4(),
            "rating": rating_id,
            "unit_id": unit_id,
            "service": service,
            "district": district,
            "month": month,
            "citizen_id": citizen_id,
            "state": "open",
            "opened_at": now,
            "deadline": deadline,
            "deadline_exact": exact,
        }
        await db.bulk_insert(RatingCase, [case])
        await db.bulk_insert(
            RatingCaseStep,
            [
                {
                    "id": uuid.uuid4(),
                    "case": case["id"],
                    "seq": 1,
                    "at": now,
                    "action": "opened",
                    "from_state": "",
                    "to_state": "open",
                    "actor_kind": "citizen",
                    "actor_id": "",
                    "note": "",
                }
            ],
        )
        return case | {"outcome": "", "answer": "", "answered_at": None, "callback_level": None}

    # ---- reading ---------------------------------------------------------------------------------------
    async def of_ratings(self, rating_ids: list[uuid.UUID]) -> dict[uuid.UUID, dict[str, Any]]:
        if not rating_ids:
            return {}
        rows = await RatingCase.select().where(RatingCase.rating.is_in(rating_ids)).run()
        return {r["rating"]: r for r in rows}

    async def steps(self, case_id: uuid.UUID, *, for_citizen: bool) -> list[dict[str, Any]]:
        rows = (
            await RatingCaseStep.select()
            .where(RatingCaseStep.case == case_id)
            .order_by(RatingCaseStep.seq)
            .run()
        )
        out = []
        for r in rows:
            step = {"at": r["at"], "action": r["action"], "state": r["to_state"], "note": r["note"]}
            if not for_citizen:  # a citizen sees what happened, not which clerk or credential did it
                step |= {"actor_kind": r["actor_kind"], "actor_id": r["actor_id"]}
            elif r["action"] in ("appealed", "upheld", "rejected", "escalated"):
                step["note"] = ""  # an appeal's text is between the unit and the operators
            out.append(step)
        return out

    async def find(
        self,
        actor: Actor,
        *,
        state: str | None,
        overdue: bool,
        unit: str | None,
        limit: int,
        offset: int,
    ) -> list[dict[str, Any]]:
        query = RatingCase.select().order_by(RatingCase.deadline).limit(limit + 1).offset(offset)
        where = actor.scope()
        if state:
            where = _and(where, RatingCase.state == state)
        if unit:
            where = _and(where, RatingCase.unit_id == unit)
        if overdue:
            where = _and(
                where, RatingCase.state.is_in(list(OPEN_STATES)) & (RatingCase.deadline <= self._clock.now())
            )
        if where is not None:
            query = query.where(where)
        return [await self.view(r, steps=None) for r in await query.run()]

    async def get(self, actor: Actor, case_id: str, *, rater: Any) -> dict[str, Any]:
        row = await self._row(actor, case_id)
        rating = await Rating.select().where(Rating.id == row["rating"]).first().run()
        if rating is None:  # a case is opened with its rating, in one transaction, and neither is deleted
            raise NotFound("no such case at your units", code="rating_case_not_found")
        out = await self.view(row, steps=await self.steps(row["id"], for_citizen=False))
        out["rating"] = {
            "level": LEVEL_NAMES[rating["level"]],
            "level_text": pick(*LEVEL_TEXT[rating["level"]]),
            "indicators": {k: LEVEL_NAMES[v] for k, v in db.json_value(rating["indicators"]).items()},
            "comment": rating["comment"],
            "rated_at": rating["created_at"],
            "rater": rater(row["unit_id"], row["citizen_id"]) if row["citizen_id"] else "",
        }
        return out

    async def view(self, row: dict[str, Any], *, steps: list[dict[str, Any]] | None) -> dict[str, Any]:
        unit = await self._unit(row["unit_id"])
        now = self._clock.now()
        waiting = row["state"] in OPEN_STATES
        return {
            "id": str(row["id"]),
            "rating_id": str(row["rating"]),
            "unit": row["unit_id"],
            "unit_name": pick(unit["name_zh"], unit["name_en"]),
            "service": row["service"],
            "service_name": pick(*self._service(row["service"])),
            "district": row["district"],
            "state": row["state"],
            "opened_at": row["opened_at"],
            "deadline": row["deadline"],
            "deadline_exact": bool(row["deadline_exact"]),
            "working_days_left": calendar.working_days_left(now, row["deadline"]) if waiting else None,
            "overdue": waiting and now >= row["deadline"],
            "escalated_at": row["escalated_at"],
            "outcome": row["outcome"],
            "answer": row["answer"],
            "answered_at": row["answered_at"],
            "on_time": row["on_time"],
            "callback": LEVEL_NAMES.get(row["callback_level"]) if row["callback_level"] else None,
            "callback_comment": row["callback_comment"],
            "appeal_reason": row["appeal_reason"],
            "appeal_decision": row["appeal_decision"],
            "steps": steps,
        }

    async def _row(self, actor: Actor, case_id: str) -> dict[str, Any]:
        try:
            ident = uuid.UUID(case_id)
        except ValueError:
            raise NotFound("no such case", code="rating_case_not_found") from None
        where = RatingCase.id == ident
        if (scope := actor.scope()) is not None:
            where &= scope
        row = await RatingCase.select().where(where).first().run()
        if row is None:
            raise NotFound("no such case at your units", code="rating_case_not_found")
        return row

    # ---- transitions -----------------------------------------------------------------------------------
    async def _move(
        self,
        actor: Actor,
        case_id: str,
        *,
        from_states: tuple[str, ...],
        to_state: str | Callable[[dict[str, Any]], str],
        action: str,
        note: str,
        values: Callable[[dict[str, Any]], dict[Any, Any]] | None = None,
        check: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """One transition, with the case locked while it is made (a row lock on PostgreSQL, SQLite's one
        writer): only one concurrent caller finds it in ``from_states``, and what the move reads (the state
        it leaves for the step, where an appeal came from, the deadline) is what the case holds as it
        moves, not what it held before another clerk's move landed. ``to_state`` and ``values`` may be
        functions of that row."""
        ident = (await self._row(actor, case_id))["id"]
        async with db.transaction():
            [row] = await db.for_update(RatingCase.select().where(RatingCase.id == ident)).run()
            if row["state"] not in from_states:
                raise Conflict(
                    f"the case is {row['state']}: it cannot be {action} now",
                    code="case_state",
                    state=row["state"],
                )
            if check is not None:
                check(row)  # a rule of this move beyond the state (raises to refuse it)
            target = to_state(row) if callable(to_state) else to_state
            moved = (
                await RatingCase.update({RatingCase.state: target, **(values(row) if values else {})})
                .where(RatingCase.id == ident)
                .returning(*RatingCase.all_columns())
                .run()
            )
            await self._step(ident, action, row["state"], target, actor, note)
        return moved[0]

    async def verify(self, actor: Actor, case_id: str, note: str) -> dict[str, Any]:
        """核实: the unit looked into it and is rectifying."""
        note = case_text(note, required=False)
        now = self._clock.now()
        row = await self._move(
            actor,
            case_id,
            from_states=("open",),
            to_state="rectifying",
            action="verified",
            note=note,
            values=lambda _: {RatingCase.verified_at: now},
        )
        await audit.record("rating_case_verified", actor_kind=actor.kind, actor_id=actor.id, subject=case_id)
        return await self.view(row, steps=None)

    async def answer(self, actor: Actor, case_id: str, outcome: str, text: str) -> dict[str, Any]:
        """反馈: rectified, or explained; the rater gets it in their inbox and may call back."""
        text = case_text(text)
        now = self._clock.now()
        async with db.transaction():
            row = await self._move(
                actor,
                case_id,
                from_states=OPEN_STATES,
                to_state="answered",
                action="answered",
                note=text,
                values=lambda current: {
                    RatingCase.answered_at: now,
                    RatingCase.outcome: outcome,
                    RatingCase.answer: text,
                    RatingCase.on_time: now < current["deadline"],
                    RatingCase.verified_at: current["verified_at"] or now,
                },
            )
            if row["citizen_id"]:
                await self._feedback(row, text)
        await audit.record(
            "rating_case_answered", actor_kind=actor.kind, actor_id=actor.id, subject=case_id, outcome=outcome
        )
        return await self.view(row, steps=None)

    async def _feedback(self, row: dict[str, Any], text: str) -> None:
        """The unit's answer in the rater's inbox, on one line (a message's paragraph has no line breaks;
        the rater reads the answer as written in the app); skipped and logged (never failing the answer)
        while an operator has not approved the template."""
        unit = await self._unit(row["unit_id"])
        zh, en = self._service(row["service"])
        line = " ".join(text.split())
        try:
            await self._messages.send(
                PLATFORM,
                "rating_feedback",
                [
                    Outgoing(
                        citizen_id=row["citizen_id"],
                        key=f"rating-feedback:{row['id']}",
                        data={
                            "service": zh,
                            "service_en": en,
                            "unit": unit["name_zh"],
                            "unit_en": unit["name_en"],
                            "answer": line if len(line) <= 300 else line[:299] + "…",
                        },
                    )
                ],
            )
        except (Conflict, NotFound) as exc:
            log.warning("rating feedback not sent: %s", exc.code)

    async def appeal(self, actor: Actor, case_id: str, reason: str, text: str) -> dict[str, Any]:
        """申诉: the unit says the rating is mistaken, false, malicious or not about it; once per case (an
        appeal rejected is decided: the unit then rectifies or explains)."""
        text = case_text(text)

        def once(current: dict[str, Any]) -> None:
            if current["appeal_decision"]:
                raise Conflict(
                    "this case's appeal has been decided already: answer it",
                    code="already_appealed",
                    decision=current["appeal_decision"],
                )

        row = await self._move(
            actor,
            case_id,
            from_states=OPEN_STATES,
            to_state="appealed",
            action="appealed",
            note=text,
            values=lambda current: {
                RatingCase.appeal_reason: reason,
                RatingCase.appeal_text: text,
                RatingCase.appeal_from: current["state"],
                RatingCase.appeal_decision: "",
            },
            check=once,
        )
        await audit.record(
            "rating_case_appealed", actor_kind=actor.kind, actor_id=actor.id, subject=case_id, reason=reason
        )
        return await self.view(row, steps=None)

    async def decide_appeal(self, actor: Actor, case_id: str, uphold: bool, note: str) -> dict[str, Any]:
        """An operator's decision: upheld, the rating leaves the statistics and the case is void;
        rejected, the case goes back to where it was, its deadline unchanged."""
        note = case_text(note, required=False)
        now = self._clock.now()
        async with db.transaction():
            row = await self._move(
                actor,
                case_id,
                from_states=("appealed",),
                to_state=lambda current: "void" if uphold else (current["appeal_from"] or "open"),
                action="upheld" if uphold else "rejected",
                note=note,
                values=lambda _: {
                    RatingCase.appeal_decision: "upheld" if uphold else "rejected",
                    **({RatingCase.closed_at: now} if uphold else {}),
                },
            )
            if uphold:
                await Rating.update({Rating.counted: False}).where(Rating.id == row["rating"]).run()
        await audit.record(
            "rating_appeal_decided",
            actor_kind=actor.kind,
            actor_id=actor.id,
            subject=case_id,
            decision="upheld" if uphold else "rejected",
        )
        return await self.view(row, steps=None)

    async def called_back(self, rating_id: uuid.UUID, citizen_id: str, level: int, comment: str) -> None:
        """回访: the rater's view of the answer, once, while the case is answered."""
        case = await RatingCase.select(RatingCase.id).where(RatingCase.rating == rating_id).first().run()
        if case is None:
            raise Conflict("only a bad rating has a case to call back on", code="no_case")
        now = self._clock.now()
        await self._move(
            Actor("citizen", ""),
            str(case["id"]),
            from_states=("answered",),
            to_state="closed",
            action="called_back",
            note=comment,
            values=lambda _: {
                RatingCase.callback_level: level,
                RatingCase.callback_comment: comment,
                RatingCase.closed_at: now,
            },
        )

    async def forget(self, citizen_id: str) -> None:
        """An account deleted: its answered cases close with no call-back (no one is left to ask), and
        what the rater wrote in a call-back goes like the rating's comment (in the case and its step)."""
        now = self._clock.now()
        closed = (
            await RatingCase.update({RatingCase.state: "closed", RatingCase.closed_at: now})
            .where((RatingCase.citizen_id == citizen_id) & (RatingCase.state == "answered"))
            .returning(RatingCase.id)
            .run()
        )
        for row in closed:
            await self._step(row["id"], "closed", "answered", "closed", PLATFORM_ACTOR, "account deleted")
        called = (
            await RatingCase.update({RatingCase.callback_comment: ""})
            .where((RatingCase.citizen_id == citizen_id) & RatingCase.callback_level.is_not_null())
            .returning(RatingCase.id)
            .run()
        )
        if called:
            await (
                RatingCaseStep.update({RatingCaseStep.note: ""})
                .where(
                    RatingCaseStep.case.is_in([r["id"] for r in called])
                    & (RatingCaseStep.action == "called_back")
                )
                .run()
            )

    # ---- the round -------------------------------------------------------------------------------------
    async def tick(self) -> dict[str, int]:
        """Escalate cases past their deadline (once each), close answered cases nobody called back on in
        time, and fix provisional deadlines the calendar now knows. Safe on several workers at once:
        each change is a conditional UPDATE, and its step is written by the one that made it."""
        now = self._clock.now()
        done = {"escalated": 0, "closed": 0, "redated": 0}
        async with db.transaction():
            escalated = (
                await RatingCase.update({RatingCase.escalated_at: now})
                .where(
                    RatingCase.state.is_in(list(OPEN_STATES))
                    & (RatingCase.deadline <= now)
                    & RatingCase.escalated_at.is_null()
                )
                .returning(RatingCase.id, RatingCase.state, RatingCase.unit_id)
                .run()
            )
            for row in escalated:
                await self._step(row["id"], "escalated", row["state"], row["state"], PLATFORM_ACTOR, "")
                log.warning("rating case overdue", extra={"case": str(row["id"]), "unit": row["unit_id"]})
            done["escalated"] = len(escalated)
        async with db.transaction():
            lapsed = (
                await RatingCase.update({RatingCase.state: "closed", RatingCase.closed_at: now})
                .where(
                    (RatingCase.state == "answered")
                    & (RatingCase.answered_at <= now - timedelta(days=self.settings.callback_days))
                )
                .returning(RatingCase.id)
                .run()
            )
            for row in lapsed:
                await self._step(
                    row["id"], "closed", "answered", "closed", PLATFORM_ACTOR, "no call-back in time"
                )
            done["closed"] = len(lapsed)
        provisional = (
            await RatingCase.select(RatingCase.id, RatingCase.opened_at, RatingCase.deadline)
            .where(RatingCase.state.is_in(list(OPEN_STATES)) & (RatingCase.deadline_exact == False))  # noqa: E712
            .limit(500)
            .run()
        )
        for row in provisional:
            deadline, exact = calendar.add_working_days(row["opened_at"], self.settings.rectify_days)
            if exact:
                await (
                    RatingCase.update({RatingCase.deadline: deadline, RatingCase.deadline_exact: True})
                    .where(
                        (RatingCase.id == row["id"]) & (RatingCase.deadline_exact == False)  # noqa: E712
                    )
                    .run()
                )
                done["redated"] += 1
        return done

    async def _step(
        self, case_id: uuid.UUID, action: str, from_state: str, to_state: str, actor: Actor, note: str
    ) -> None:
        # the case row is locked by the UPDATE that made this step (or new): the count is this case's own
        seq = await RatingCaseStep.count().where(RatingCaseStep.case == case_id).run() + 1
        await RatingCaseStep.insert(
            RatingCaseStep(
                id=uuid.uuid4(),
                case=case_id,
                seq=seq,
                at=self._clock.now(),
                action=action,
                from_state=from_state,
                to_state=to_state,
                actor_kind=actor.kind,
                actor_id=actor.id,
                note=note[:1000],
            )
        ).run()


def _and(where: Any, more: Any) -> Any:
    return more if where is None else where & more


def case_text(text: str, *, required: bool = True) -> str:
    """A unit's or an operator's text on a case (a note, an answer, an appeal), stripped: line breaks
    are fine; control and direction-changing characters are not (the rater reads the answer and the
    notes), nor an answer or appeal of blanks only."""
    clean = rules.clean_text(text)
    if clean is None or (required and not clean):
        raise InvalidInput(
            "the text is empty or holds control or direction-changing characters", code="invalid_case_text"
        )
    return clean


def case_view(case: dict[str, Any], steps: list[dict[str, Any]] | None) -> dict[str, Any]:
    """A case as its rater sees it: where it stands, the deadline, the unit's answer, what happened."""
    return {
        "id": str(case["id"]),
        "state": case["state"],
        "deadline": case["deadline"],
        "outcome": case["outcome"],
        "answer": case["answer"],
        "answered_at": case["answered_at"],
        "callback": LEVEL_NAMES.get(case["callback_level"]) if case["callback_level"] else None,
        "steps": steps,
    }
