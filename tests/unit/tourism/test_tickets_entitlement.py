"""What tourism contributes to the citizen code: a ticket held for today, China time, until the next
midnight in Shenyang."""

from datetime import UTC, date, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from miniapps.tourism.rules import CHINA, held_today, next_midnight, service_day

PROPERTY = settings(database=None, deadline=None, max_examples=300)
moments = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)
)


def test_a_ticket_for_today_is_held_until_midnight_in_shenyang():
    at = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)  # 09:00 in Shenyang
    assert held_today(["2026-11-25"], at)
    assert not held_today(["2026-11-26", "2026-11-24"], at)  # tomorrow's and yesterday's count not today
    assert not held_today([], at)
    assert next_midnight(at) == datetime(2026, 11, 25, 16, 0, tzinfo=UTC)  # 00:00 on the 26th, China time
    # 23:59:59 on the 24th in UTC is already the 25th in Shenyang
    late = datetime(2026, 11, 24, 16, 0, tzinfo=UTC)
    assert held_today(["2026-11-25"], late) and next_midnight(late) == datetime(2026, 11, 25, 16, tzinfo=UTC)


@PROPERTY
@given(moments)
def test_the_next_midnight_ends_the_day_it_is_held_on(at):
    midnight = next_midnight(at)
    assert at < midnight <= at + timedelta(days=1)
    assert midnight.astimezone(CHINA).time().isoformat() == "00:00:00"
    assert service_day(midnight - timedelta(microseconds=1)) == service_day(at)  # the same day up to it
    assert date.fromisoformat(service_day(midnight)) == date.fromisoformat(service_day(at)) + timedelta(
        days=1
    )
    assert held_today([service_day(at)], at) and not held_today([service_day(midnight)], at)
