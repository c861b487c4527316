"""What the evaluation centre keeps: units, rateable events, ratings, the cases bad ratings open and every
step of each case (the audit trail of the workflow)."""

from piccolo.columns import JSON, UUID, Boolean, Integer, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class RatingUnit(Table, tablename="rating_unit"):
    """A unit that serves and answers for its bad ratings: declared by a mini-app (a hospital, a car
    park's operator), or by operators (a department)."""

    unit_id = Varchar(length=72, unique=True)  # "<owner>/<code>"
    owner = Varchar(length=32, index=True)  # a mini-app id, or "platform"
    name_zh = Varchar(length=64)
    name_en = Varchar(length=64)
    district = Varchar(length=6, default="")
    created_at = Timestamptz(default=TimestamptzNow())


class RatingEvent(Table, tablename="rating_event"):
    """A service event the citizen who had it may rate once (一事一评 / 一次一评), within its window."""

    id = UUID(primary_key=True)
    idempotency = Varchar(length=200, unique=True)  # "<owner>/<key>": the same event recorded twice is one
    service = Varchar(length=96)  # "<owner>.<name>"
    unit_id = Varchar(length=72)
    district = Varchar(length=6, default="")  # the unit's, when the event happened
    channel = Varchar(length=8)  # online | onsite
    citizen_id = Varchar(length=36)  # indexed with closes_at by the migration (the pending list)
    occurred_at = Timestamptz()
    closes_at = Timestamptz()
    rated_at = Timestamptz(null=True, default=None)


class Rating(Table, tablename="rating"):
    """One rating of one event (``event`` is unique: the second one is refused by the database itself)."""

    id = UUID(primary_key=True)
    event = UUID(unique=True)
    service = Varchar(length=96)
    unit_id = Varchar(length=72)
    district = Varchar(length=6, default="")
    channel = Varchar(length=8)
    citizen_id = Varchar(length=36, index=True)
    level = Integer()  # 1 (非常不满意) … 5 (非常满意)
    indicators = JSON(default="{}")  # indicator -> level, "overall" included
    comment = Varchar(length=500, default="")
    month = Varchar(length=7)  # "2026-11", China time: the statistics' month (indexed with unit_id)
    counted = Boolean(default=True)  # False: an appeal was upheld, the rating is out of the statistics
    imported = Boolean(default=False)  # history moved from a mini-app's own rating
    created_at = Timestamptz(default=TimestamptzNow())


class RatingCase(Table, tablename="rating_case"):
    """The case a bad rating opens with its unit: verify, rectify or explain, feed back, call back; or an
    appeal an operator decides. States: open → rectifying → answered → closed; open|rectifying →
    appealed → void (upheld) or back (rejected)."""

    id = UUID(primary_key=True)
    rating = UUID(unique=True)
    unit_id = Varchar(length=72, index=True)
    service = Varchar(length=96)
    district = Varchar(length=6, default="")
    month = Varchar(length=7)
    citizen_id = Varchar(length=36)
    state = Varchar(length=12, default="open", index=True)
    opened_at = Timestamptz()
    deadline = Timestamptz()  # rectified and answered by then (15 working days by default)
    deadline_exact = Boolean(default=True)  # False: a year the holiday calendar did not know yet
    verified_at = Timestamptz(null=True, default=None)
    answered_at = Timestamptz(null=True, default=None)
    outcome = Varchar(length=12, default="")  # rectified | explained
    answer = Varchar(length=1000, default="")
    on_time = Boolean(null=True, default=None)  # answered by the deadline
    escalated_at = Timestamptz(null=True, default=None)  # overdue, reported to operators
    callback_level = Integer(null=True, default=None)  # the rater's view of the fix (回访)
    callback_comment = Varchar(length=500, default="")
    closed_at = Timestamptz(null=True, default=None)
    appeal_reason = Varchar(length=20, default="")
    appeal_text = Varchar(length=1000, default="")
    appeal_from = Varchar(length=12, default="")  # the state an appeal rejected returns to
    appeal_decision = Varchar(length=10, default="")  # upheld | rejected


class RatingCaseStep(Table, tablename="rating_case_step"):
    """Every transition of a case: who (citizen, unit, mini-app, operator, the platform), what, when."""

    id = UUID(primary_key=True)
    case = UUID(index=True)
    seq = Integer(default=1)  # 1, 2, … within the case (steps of one instant keep their order)
    at = Timestamptz()
    action = Varchar(length=20)  # opened | verified | answered | called_back | appealed | upheld | ...
    from_state = Varchar(length=12, default="")
    to_state = Varchar(length=12)
    actor_kind = Varchar(length=12)  # citizen | unit | miniapp | operator | platform
    actor_id = Varchar(length=72, default="")
    note = Varchar(length=1000, default="")


TABLES = [RatingUnit, RatingEvent, Rating, RatingCase, RatingCaseStep]
