"""一码借阅's rules: ISBN-13 check digits, due dates at a China-time day's end, fines per started overdue
day with a cap, renewals refused when held, the loan limit and 信用免押, the reminder before the due date;
with hypothesis, their invariants over any times and rules."""

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from miniapps.library.rules import (
    CHINA,
    REFUSALS,
    LoanRule,
    checkout_refusal,
    deposit_refundable,
    due_at,
    fine,
    hold_shelf_until,
    in_good_standing,
    isbn13,
    isbn13_check_digit,
    overdue_days,
    reminder_at,
    renew_refusal,
    renewed_due,
)

PROPERTY = settings(database=None, deadline=None, max_examples=300)
T0 = datetime(2026, 11, 25, 10, tzinfo=UTC)  # 18:00 in Shenyang
RULE = LoanRule(loan_days=30, max_renewals=2, max_loans=3, fine_per_day=10, fine_cap=500)
rules = st.builds(
    LoanRule,
    loan_days=st.integers(1, 120),
    max_renewals=st.integers(0, 5),
    max_loans=st.integers(1, 20),
    fine_per_day=st.integers(0, 500),
    fine_cap=st.integers(0, 10_000),
    hold_days=st.integers(1, 14),
    remind_days=st.integers(0, 10),
)
moments = st.integers(min_value=-400 * 86400, max_value=400 * 86400).map(lambda s: T0 + timedelta(seconds=s))


def test_isbn13_examples():
    assert isbn13("978-7-5366-9293-0") == "9787536692930"  # 三体
    assert isbn13("9787536692931") is None  # a wrong check digit
    assert isbn13("1234567890123") is None  # not 978/979
    assert isbn13("978753669293") is None and isbn13("97875366929３0") is None  # short; a full-width digit
    assert isbn13_check_digit("978702000220") == "7"


@PROPERTY
@given(st.text(alphabet="0123456789", min_size=9, max_size=9), st.sampled_from(["978", "979"]))
def test_exactly_one_check_digit_makes_an_isbn(body, prefix):
    valid = [d for d in "0123456789" if isbn13(prefix + body + d)]
    assert valid == [isbn13_check_digit(prefix + body)]


def test_due_dates_and_fines_of_the_docs():
    due = due_at(T0, RULE)
    assert due == datetime(2026, 12, 25, 23, 59, 59, tzinfo=CHINA)  # 30 days on, at the day's end
    assert fine(due, due, RULE) == 0
    assert fine(due, due + timedelta(seconds=1), RULE) == 10  # a started day
    assert fine(due, due + timedelta(days=3), RULE) == 30
    assert fine(due, due + timedelta(days=365), RULE) == 500  # the cap


@PROPERTY
@given(moments, rules)
def test_a_due_date_ends_a_china_day_at_least_the_loan_period_on(borrowed, rule):
    due = due_at(borrowed, rule)
    local = due.astimezone(CHINA)
    assert (local.hour, local.minute, local.second) == (23, 59, 59)
    assert timedelta(days=rule.loan_days) <= due - borrowed < timedelta(days=rule.loan_days + 1)


@PROPERTY
@given(moments, moments, moments, rules)
def test_a_fine_is_never_negative_never_over_the_cap_and_never_falls_with_lateness(due, a, b, rule):
    early, late = sorted((a, b))
    assert 0 <= fine(due, early, rule) <= fine(due, late, rule) <= rule.fine_cap
    assert (fine(due, early, rule) == 0) or early > due
    assert overdue_days(due, early) <= overdue_days(due, late)


def test_renewal_refusals():
    due = due_at(T0, RULE)
    assert renew_refusal(renewals=0, rule=RULE, due=due, now=T0, held_by_others=False) is None
    assert renew_refusal(renewals=0, rule=RULE, due=due, now=T0, held_by_others=True) == "held"
    assert renew_refusal(renewals=2, rule=RULE, due=due, now=T0, held_by_others=False) == "renewal_limit"
    late = due + timedelta(hours=1)
    assert renew_refusal(renewals=0, rule=RULE, due=due, now=late, held_by_others=False) == "overdue"


@PROPERTY
@given(st.integers(0, 10), rules, moments, moments, st.booleans())
def test_a_renewal_is_refused_whenever_another_reader_holds_the_title(renewals, rule, due, now, held):
    refusal = renew_refusal(renewals=renewals, rule=rule, due=due, now=now, held_by_others=held)
    if held:
        assert refusal == "held"
    if refusal is None:
        assert not held and renewals < rule.max_renewals and now <= due
        assert renewed_due(due, now, rule) >= due  # a renewal never shortens a loan


def test_checkout_refusals_and_good_standing():
    ok = {"open_loans": 0, "rule": RULE, "unpaid_fines": 0, "blocked": False, "deposit_paid": False}
    assert checkout_refusal(**ok) is None  # 信用免押: no deposit asked
    assert checkout_refusal(**{**ok, "unpaid_fines": 30}) == "deposit_required"
    assert checkout_refusal(**{**ok, "unpaid_fines": 30, "deposit_paid": True}) is None
    assert checkout_refusal(**{**ok, "blocked": True, "deposit_paid": True}) == "reader_blocked"
    assert checkout_refusal(**{**ok, "open_loans": 3}) == "loan_limit"


@PROPERTY
@given(st.integers(0, 30), rules, st.integers(0, 5000), st.booleans(), st.booleans())
def test_a_loan_is_allowed_exactly_within_the_limit_in_good_standing_or_with_a_deposit(
    loans, rule, unpaid, blocked, deposit
):
    refusal = checkout_refusal(
        open_loans=loans, rule=rule, unpaid_fines=unpaid, blocked=blocked, deposit_paid=deposit
    )
    allowed = not blocked and (in_good_standing(unpaid, blocked) or deposit) and loans < rule.max_loans
    assert (refusal is None) == allowed
    assert refusal is None or refusal in REFUSALS


def test_reminders_and_the_hold_shelf():
    due = due_at(T0, RULE)
    assert reminder_at(due, T0, RULE) == datetime(2026, 12, 22, 9, tzinfo=CHINA)  # 3 days before, 09:00
    assert reminder_at(due, due, RULE) is None  # too late for one
    assert hold_shelf_until(T0, LoanRule(hold_days=7)) == datetime(2026, 12, 2, 23, 59, 59, tzinfo=CHINA)
    assert deposit_refundable(open_loans=0, unpaid_fines=0)
    assert not deposit_refundable(open_loans=1, unpaid_fines=0)
    assert not deposit_refundable(open_loans=0, unpaid_fines=10)


@PROPERTY
@given(moments, moments, rules)
def test_a_reminder_comes_before_the_due_date_and_after_now(due, now, rule):
    at = reminder_at(due, now, rule)
    assert at is None or now < at <= due


def test_every_refusal_reads_the_same_at_the_gate_the_kiosk_and_the_api():
    from backend.i18n import PROBLEMS

    for code, texts in REFUSALS.items():
        assert PROBLEMS.get(code) == texts, code
