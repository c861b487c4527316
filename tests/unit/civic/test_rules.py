"""Civic services' rules: queue numbers per window category and China-time day, the wait estimate, the
kiosk's choice of category, and the health check point's green-only pass (docs/miniapps.md)."""

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from miniapps.civic.rules import (
    health_passes,
    next_number,
    pick_service,
    queue_label,
    service_day,
    wait_minutes,
)

PROPERTY = settings(database=None, deadline=None, max_examples=300)


def test_numbers_run_per_day_and_start_again_the_next():
    assert next_number("", 0, "2026-11-25") == 1  # a line that never issued
    assert next_number("2026-11-25", 11, "2026-11-25") == 12
    assert next_number("2026-11-24", 57, "2026-11-25") == 1  # yesterday's line
    assert (
        queue_label("A", 12) == "A012" and queue_label("D", 1) == "D001" and queue_label("B", 1000) == "B1000"
    )
    # the day turns at midnight in Shenyang, not in UTC
    assert service_day(datetime(2026, 11, 24, 16, 0, tzinfo=UTC)) == "2026-11-25"


def test_the_wait_is_shared_by_the_windows():
    assert wait_minutes(0, 3, 6) == 0
    assert wait_minutes(5, 2, 6) == 15  # 5 people, 2 windows, 6 minutes each
    assert wait_minutes(1, 3, 6) == 2  # rounded up to the minute
    assert wait_minutes(4, 0, 6) == 24  # a line with no window set counts as one


def test_the_kiosk_draws_for_the_chosen_category_or_the_first():
    letters = ["A", "B", "C", "D"]
    assert pick_service(letters, None) == "A" and pick_service(letters, "") == "A"
    assert pick_service(letters, "c") == "C" and pick_service(letters, " D ") == "D"
    assert pick_service(letters, "Z") is None and pick_service([], None) is None


def test_only_green_passes_a_health_check_point():
    assert health_passes("green")
    assert not any(health_passes(s) for s in ("yellow", "red", "", None, "GREEN"))


@PROPERTY
@given(st.integers(0, 10_000), st.integers(0, 50), st.integers(0, 120))
def test_the_wait_never_falls_as_the_line_grows_nor_rises_with_more_windows(ahead, windows, minutes):
    wait = wait_minutes(ahead, windows, minutes)
    assert 0 <= wait <= ahead * minutes
    assert wait_minutes(ahead + 1, windows, minutes) >= wait
    assert wait_minutes(ahead, windows + 1, minutes) <= wait


@PROPERTY
@given(st.lists(st.integers(0, 3 * 86400), max_size=40))
def test_a_day_s_numbers_are_one_two_three_without_a_gap_or_a_repeat(offsets):
    """Draws in time order, as the line's counter makes them: each day's numbers are 1..n."""
    start = datetime(2026, 11, 24, 10, tzinfo=UTC)
    day, issued, given_out = "", 0, {}
    for offset in sorted(offsets):
        today = service_day(start + timedelta(seconds=offset))
        issued, day = next_number(day, issued, today), today
        given_out.setdefault(today, []).append(issued)
    for numbers in given_out.values():
        assert numbers == list(range(1, len(numbers) + 1))


@PROPERTY
@given(st.integers(1, 99_999), st.sampled_from("ABCD"))
def test_labels_keep_the_order_of_their_numbers_within_a_line(number, letter):
    label = queue_label(letter, number)
    assert label.startswith(letter) and int(label[1:]) == number
    if number < 999:
        assert queue_label(letter, number) < queue_label(letter, number + 1)
