"""The hospital's rules as pure functions: no database, no clock (times are passed in), no I/O.

- The bill: insurance pays ``local_bp`` (70 %) of each covered item for citizens insured in the
  hospital's province and ``other_bp`` (50 %) for others, in whole fen rounded down per item (never more
  than the item); the citizen pays the rest (self-pay). A citizen without insurance pays it all.
- 先看病后付费: a bill unpaid for more than ``credit_days`` refuses check-in until it is paid.
- Check-in finds an appointment of today, China time.
- A citizen who subscribed is reminded of an appointment at 18:00 China time the day before (at once
  when booked later than that); the bill's message asks for the self-pay before it falls overdue.
- A citizen may link their 医保电子凭证 (medical insurance card) once, standing: the hospital reads its
  name, insurance number, type and region with that consent when it links it and at each bill, and the
  bill says which card it settled against. A consent that gives nothing leaves the card ``refused``,
  ``withdrawn`` (the citizen took it back) or ``lapsed`` (it ran out, or the card was revoked); a card
  suspended for now stays linked and a bill meanwhile names none. The split is the same with or without
  a card.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, time, timedelta, timezone
from typing import Any

CHINA = timezone(timedelta(hours=8))
WHOLE_BP = 10_000  # basis points in 100 %
# an order in one of these states was paid (a refund afterwards does not make the bill unpaid)
PAID_STATES = frozenset({"paid", "partially_refunded", "refunded"})
REMIND_AT = time(18)  # China time, the day before the appointment
REMIND_WITHIN = timedelta(days=30)  # an appointment further ahead is not reminded of


def same_province(insured_region: str, hospital_region: str) -> bool:
    """Whether a citizen insured in ``insured_region`` (a region code, ``210102``) is insured in the
    province of a hospital in ``hospital_region`` (the codes' first two digits)."""
    return bool(insured_region) and insured_region[:2] == hospital_region[:2]


def split_bill(
    items: Iterable[Mapping[str, Any]],
    *,
    insured_region: str,
    hospital_region: str,
    local_bp: int,
    other_bp: int,
) -> tuple[int, int, int]:
    """``(total, insured, self_paid)`` in fen of bill items ``{amount, covered}``: the insurer pays whole
    fen (rounded down per item), the citizen the rest, so ``insured + self_paid == total``. A rate is
    kept within 0-100 % (a setting outside it cannot make a share negative)."""
    rate = local_bp if same_province(insured_region, hospital_region) else other_bp
    rate = min(max(rate, 0), WHOLE_BP)
    total = insured = 0
    for item in items:
        total += item["amount"]
        if item.get("covered") and insured_region:
            insured += item["amount"] * rate // WHOLE_BP
    return total, insured, total - insured


def state_after_bill(self_paid: int) -> str:
    """A billed visit's state: ``billed`` while the citizen owes something, else ``paid`` at once."""
    return "billed" if self_paid > 0 else "paid"


def credit_cutoff(now: datetime, credit_days: int) -> datetime:
    """Bills issued before this are overdue (pay later, within ``credit_days``)."""
    return now - timedelta(days=credit_days)


def order_paid(state: str) -> bool:
    """Whether a bill's order in ``state`` counts as paid."""
    return state in PAID_STATES


def china_day(at: datetime) -> tuple[datetime, datetime]:
    """The China-time day around ``at``: its start (included) and the next day's start (excluded)."""
    start = at.astimezone(CHINA).replace(hour=0, minute=0, second=0, microsecond=0)
    return start, start + timedelta(days=1)


def clock_time(at: datetime) -> str:
    """``"09:30"``: a time as the hospital's clock shows it (China time)."""
    return at.astimezone(CHINA).strftime("%H:%M")


def appointment_reminder_at(starts_at: datetime, now: datetime) -> datetime | None:
    """When to remind the citizen of an appointment at ``starts_at``: 18:00 China time the day before
    (``now`` when booked later than that); None when it has begun or is too far ahead to schedule for."""
    if starts_at <= now or starts_at - now > REMIND_WITHIN:
        return None
    eve = datetime.combine(starts_at.astimezone(CHINA).date() - timedelta(days=1), REMIND_AT, CHINA)
    return max(eve, now)


def pay_by(billed_at: datetime, credit_days: int) -> datetime:
    """Until when a bill issued at ``billed_at`` may be paid before check-in is refused."""
    return billed_at + timedelta(days=credit_days)


# the old ratings (good / average / bad) on the national five levels, when they moved to the centre:
# good → 满意 (4), average → 基本满意 (3), bad → 不满意 (2); no old rating said more than "good" or "bad"
OLD_RATINGS = {"good": 4, "average": 3, "bad": 2}


def unit_code(hospital_code: str) -> str:
    """A hospital's unit in the evaluation centre (it answers for its visits' ratings): its code in
    lower case, "H-SHENGJING" → "h-shengjing"."""
    return hospital_code.lower()[:32]


INSURANCE_CARD = "medical_insurance_card"  # the licence type the hospital asks for
CARD_FIELDS = ("name", "insurance_number", "insurance_type", "region")
CARD_PURPOSE = (
    "好就医结算就诊账单：读取您的医保编号、参保类型和参保地，在每次就诊账单上注明按哪张医保凭证结算"
)
CARD_STATES = ("pending", "linked", "refused", "lapsed", "withdrawn")
CARD_ASK_AGAIN = ("refused", "lapsed", "withdrawn")  # a card in one of these may be linked anew
# a consent that gives no fields, by the platform's reason: what became of the card (None: nothing,
# the consent stands and the card may be valid again)
_UNSHARED: dict[str, str | None] = {
    "consent_refused": "refused",
    "consent_revoked": "withdrawn",
    "consent_expired": "lapsed",
    "consent_used": "lapsed",
    "licence_revoked": "lapsed",
    "licence_suspended": None,
    "consent_pending": None,
}


def card_unshared(reason: str) -> str | None:
    """The state of a card whose consent gave no fields (``reason``: the platform's code, such as
    ``consent_revoked``), or None when it stays as it is (not answered yet; the card suspended for now)."""
    return _UNSHARED.get(reason, "lapsed")
