"""Tourism's rules: timed sessions close at their window's end (China time) and stay closed, the gate's
refusals, the party's order and the refund deadline of docs/miniapps.md."""

from datetime import UTC, date, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from miniapps.tourism.rules import (
    china_date,
    gate_refusal,
    order_paid,
    party_amount,
    refundable,
    service_day,
    session_over,
    window_closes,
)

PROPERTY = settings(database=None, deadline=None, max_examples=300)
CN = timedelta(hours=8)
windows = (
    st.tuples(st.integers(0, 22), st.integers(1, 23))
    .filter(lambda w: w[0] < w[1])
    .map(lambda w: f"{w[0]:02d}:00-{w[1]:02d}:00")
)
days = st.dates(min_value=date(2024, 1, 1), max_value=date(2030, 12, 31))
states = st.lists(st.sampled_from(["pending", "paid", "used", "refunded"]), max_size=6)


def test_a_session_closes_at_the_end_of_its_window_china_time():
    assert window_closes("2026-11-25", "09:00-12:00") == datetime(2026, 11, 25, 4, tzinfo=UTC)
    assert not session_over("2026-11-25", "09:00-12:00", datetime(2026, 11, 25, 3, 59, 59, tzinfo=UTC))
    assert session_over("2026-11-25", "09:00-12:00", datetime(2026, 11, 25, 4, tzinfo=UTC))  # 12:00 sharp


def test_the_gate_refuses_for_the_stated_reasons():
    assert gate_refusal(["used", "used"], []) == "already_used"  # the party has gone in
    assert gate_refusal([], ["paid"]) == "session_over"  # only a ticket of a closed window
    assert gate_refusal(["used"], ["paid"]) == "already_used"
    assert gate_refusal(["pending"], []) == "no_ticket"  # not paid yet
    assert gate_refusal([], ["used", "refunded"]) == "no_ticket"
    assert gate_refusal([], []) == "no_ticket"


def test_refunds_close_the_day_before_the_visit():
    assert refundable(date(2026, 11, 24), "2026-11-25", 1)
    assert not refundable(date(2026, 11, 25), "2026-11-25", 1)
    assert refundable(date(2026, 11, 25), "2026-11-25", 0)  # an attraction that refunds on the day


def test_a_party_pays_one_order_and_days_are_china_time():
    assert party_amount(5000, 3) == 15000
    assert service_day(datetime(2026, 11, 24, 16, tzinfo=UTC)) == "2026-11-25"
    assert china_date(datetime(2026, 11, 24, 15, 59, tzinfo=UTC)) == date(2026, 11, 24)
    assert order_paid("partially_refunded") and not order_paid("pending")


@PROPERTY
@given(days, windows, st.integers(-2 * 86400, 2 * 86400), st.integers(min_value=0, max_value=30 * 86400))
def test_a_closed_session_stays_closed(day, window, around, later):
    now = window_closes(day.isoformat(), window) + timedelta(seconds=around)  # near its end, either side
    if session_over(day.isoformat(), window, now):
        assert session_over(day.isoformat(), window, now + timedelta(seconds=later))


@PROPERTY
@given(days, windows)
def test_a_session_is_open_until_its_window_ends_in_china_time(day, window):
    closes = window_closes(day.isoformat(), window)
    assert closes.utcoffset() == CN  # Shenyang's clock
    assert closes.date() == day and f"{closes.hour:02d}:{closes.minute:02d}" == window[-5:]
    assert not session_over(day.isoformat(), window, closes - timedelta(microseconds=1))
    assert session_over(day.isoformat(), window, closes)


@PROPERTY
@given(days, days, st.integers(min_value=0, max_value=30))
def test_a_refund_allowed_on_a_day_is_allowed_on_every_earlier_day(today, visit, refund_days):
    if refundable(today, visit.isoformat(), refund_days):
        assert refundable(today - timedelta(days=1), visit.isoformat(), refund_days)
        assert today < visit or (refund_days == 0 and today == visit)  # never after the visit day


@PROPERTY
@given(states, states)
def test_the_gate_refuses_session_over_only_with_nothing_used_and_a_paid_closed_ticket(open_, closed):
    reason = gate_refusal(open_, closed)
    assert reason in ("already_used", "session_over", "no_ticket")
    assert (reason == "already_used") == ("used" in open_)
    assert (reason == "session_over") == ("used" not in open_ and "paid" in closed)
