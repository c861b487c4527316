"""The evaluation centre's request and response bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from msgspec import Meta

from ratings.rules import AppealReason, LevelName, Outcome

Comment = Annotated[str, Meta(max_length=500)]
Answer = Annotated[str, Meta(min_length=1, max_length=1000)]
Note = Annotated[str, Meta(max_length=1000)]
Month = Annotated[str, Meta(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$")]


class Strict(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


# ---- citizens ------------------------------------------------------------------------------------------
class Indicator(msgspec.Struct):
    name: str
    label: str  # in the request's language


class EventView(msgspec.Struct):
    id: str
    service: str
    service_name: str
    unit: str
    unit_name: str
    channel: str  # online | onsite: which indicators it is rated on
    occurred_at: datetime
    closes_at: datetime
    state: str  # open | rated | closed
    indicators: list[Indicator]


class EventPage(msgspec.Struct):
    items: list[EventView]
    next_offset: int | None
    next: str | None


class RatingCreate(Strict):
    event_id: Annotated[str, Meta(max_length=64)]
    level: LevelName  # the overall satisfaction (整体满意度)
    indicators: dict[Annotated[str, Meta(max_length=32)], LevelName] = msgspec.field(default_factory=dict)
    comment: Comment = ""


class CallbackCreate(Strict):
    level: LevelName  # the rater's view of the unit's answer (回访)
    comment: Comment = ""


class StepView(msgspec.Struct, omit_defaults=True):
    at: datetime
    action: str
    state: str
    note: str
    actor_kind: str | None = None  # operators and units only
    actor_id: str | None = None


class CitizenCase(msgspec.Struct):
    id: str
    state: str
    deadline: datetime
    outcome: str
    answer: str
    answered_at: datetime | None
    callback: str | None
    steps: list[StepView] | None


class RatingView(msgspec.Struct):
    id: str
    event_id: str
    service: str
    service_name: str
    unit_name: str
    level: str
    level_text: str
    indicators: dict[str, str]
    comment: str
    counted: bool  # False: an operator upheld the unit's appeal; the rating is out of the statistics
    created_at: datetime
    case: CitizenCase | None


class RatingPage(msgspec.Struct):
    items: list[RatingView]
    next_offset: int | None
    next: str | None


# ---- units and operators -------------------------------------------------------------------------------
class VerifyBody(Strict):
    note: Note = ""


class AnswerBody(Strict):
    outcome: Outcome
    text: Answer


class AppealBody(Strict):
    reason: AppealReason
    text: Answer


class AppealDecision(Strict):
    uphold: bool
    note: Note = ""


class RatedView(msgspec.Struct):
    level: str
    level_text: str
    indicators: dict[str, str]
    comment: str
    rated_at: datetime
    rater: str  # the unit's own handle of the rater: never the citizen's id, name or phone


class CaseView(msgspec.Struct):
    id: str
    rating_id: str
    unit: str
    unit_name: str
    service: str
    service_name: str
    district: str
    state: str  # open | rectifying | answered | closed | appealed | void
    opened_at: datetime
    deadline: datetime
    deadline_exact: bool  # False: the holiday calendar did not know the year yet (recomputed when it does)
    working_days_left: int | None
    overdue: bool
    escalated_at: datetime | None
    outcome: str
    answer: str
    answered_at: datetime | None
    on_time: bool | None
    callback: str | None
    callback_comment: str
    appeal_reason: str
    appeal_decision: str
    steps: list[StepView] | None
    rating: RatedView | None = None


class CasePage(msgspec.Struct):
    items: list[CaseView]
    next_offset: int | None
    next: str | None


class UnitView(msgspec.Struct):
    unit_id: str
    owner: str
    name_zh: str
    name_en: str
    district: str


class UnitCreate(Strict):
    code: Annotated[str, Meta(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")]
    name_zh: Annotated[str, Meta(min_length=1, max_length=64)]
    name_en: Annotated[str, Meta(min_length=1, max_length=64)]
    district: Annotated[str, Meta(max_length=6)] = ""


class StatsRow(msgspec.Struct):
    key: str
    name: str
    rank: int | None
    ratings: int
    good: int
    bad: int
    average: float | None
    satisfaction_rate: float | None
    bad_rate: float | None
    cases: int
    answered: int
    rectified: int
    explained: int
    on_time: int
    overdue: int
    appeals_upheld: int
    feedback_rate: float | None
    rectification_rate: float | None
    on_time_rate: float | None
    callback_satisfaction: float | None


class StatsView(msgspec.Struct):
    by: str
    month_from: str
    month_to: str
    rows: list[StatsRow]
