"""Parking's rules: the tariff of docs/miniapps.md (free first minutes, each started hour, each 24 hours
at most the daily maximum) and its invariants over any stay; free spaces and the reservation's grace."""

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from miniapps.parking.rules import (
    PLATE_STATES,
    free_spaces,
    parking_fee,
    plate,
    plate_checked,
    plate_purpose,
    plate_unshared,
    reservation_expires,
    yuan,
)

PROPERTY = settings(database=None, deadline=None, max_examples=300)
T0 = datetime(2026, 11, 25, 8, tzinfo=UTC)
# stays of any length, and stays ending about a day's end (where the daily maximum starts again)
seconds = st.one_of(
    st.integers(min_value=-3600, max_value=10 * 86400),
    st.builds(lambda d, s: d * 86400 + s, st.integers(0, 9), st.integers(-300, 300)),
)
tariffs = st.fixed_dictionaries(
    {
        "free_minutes": st.integers(min_value=0, max_value=180),
        "hourly_rate": st.integers(min_value=0, max_value=5000),
        "daily_max": st.integers(min_value=0, max_value=50_000),
    }
)


def fee(minutes, *, free_minutes=15, hourly_rate=1000, daily_max=8000):
    return parking_fee(
        T0,
        T0 + timedelta(minutes=minutes),
        free_minutes=free_minutes,
        hourly_rate=hourly_rate,
        daily_max=daily_max,
    )


def stay(secs, tariff):
    return parking_fee(T0, T0 + timedelta(seconds=secs), **tariff)


def test_the_tariff_of_the_docs():
    # free first 15 minutes, ¥10 per started hour, at most ¥80 a day
    assert fee(10) == fee(15) == 0
    assert fee(16) == 1000  # the 16th minute starts the first hour
    assert fee(60) == 1000 and fee(61) == 2000
    assert fee(9 * 60) == 8000  # nine hours would be ¥90: the daily maximum
    assert fee(24 * 60) == 8000
    assert fee(24 * 60 + 61) == 8000 + 2000
    assert fee(3 * 24 * 60) == 3 * 8000


def test_a_started_minute_counts_and_a_clock_going_back_costs_nothing():
    assert (
        parking_fee(
            T0, T0 + timedelta(minutes=15, seconds=1), free_minutes=15, hourly_rate=1000, daily_max=8000
        )
        == 1000
    )
    assert parking_fee(T0, T0 - timedelta(hours=2), free_minutes=0, hourly_rate=1000, daily_max=8000) == 0


def test_free_spaces_and_the_grace():
    assert free_spaces(2, 1, 1) == 0 and free_spaces(300, 12, 3) == 285
    assert free_spaces(2, 2, 1) == 0  # never below zero, even if the counts overshoot
    start = datetime(2026, 11, 25, 10, tzinfo=UTC)
    assert reservation_expires(start, 30) == start + timedelta(minutes=30)
    assert plate("辽a12345") == "辽A12345"
    assert yuan(8000) == "¥80.00"


@PROPERTY
@given(seconds, tariffs)
def test_a_fee_is_never_negative_and_nothing_within_the_free_minutes(secs, tariff):
    assert stay(secs, tariff) >= 0
    assert stay(min(secs, tariff["free_minutes"] * 60), tariff) == 0  # up to the last free second


@PROPERTY
@given(seconds, st.integers(min_value=0, max_value=2 * 86400), tariffs)
def test_a_longer_stay_never_costs_less(secs, more, tariff):
    assert stay(secs, tariff) <= stay(secs + more, tariff)


@PROPERTY
@given(st.integers(min_value=1, max_value=30 * 86400), tariffs)
def test_each_started_24_hours_cost_at_most_the_daily_maximum(secs, tariff):
    started_days = -(-secs // 86400)
    assert stay(secs, tariff) <= started_days * tariff["daily_max"]


@PROPERTY
@given(st.integers(min_value=0, max_value=20 * 86400), tariffs)
def test_one_more_whole_day_costs_exactly_the_daily_maximum(secs, tariff):
    if secs > tariff["free_minutes"] * 60:
        assert stay(secs + 86400, tariff) == stay(secs, tariff) + tariff["daily_max"]


@PROPERTY
@given(st.integers(0, 1000), st.integers(0, 1000), st.integers(0, 1000))
def test_free_spaces_stay_within_zero_and_the_capacity(capacity, occupied, reserved):
    assert 0 <= free_spaces(capacity, occupied, reserved) <= capacity


def test_a_plate_is_checked_against_the_licence_as_the_plate_rule_writes_both():
    assert plate_checked("辽A5B123", "辽a5b123") == "verified"
    assert plate_checked("辽A5B123", "辽A5B124") == "mismatch"
    assert plate_checked("辽A5B123", "") == "mismatch"  # a licence without a plate number verifies nothing
    assert [plate_unshared(r) for r in ("consent_refused", "consent_revoked")] == ["refused", "refused"]
    assert {plate_unshared(r) for r in ("consent_expired", "consent_used", "licence_revoked", "?")} == {
        "lapsed"
    }
    assert "辽A5B123" in plate_purpose("辽A5B123") and 2 <= len(plate_purpose("辽A5B123X1234567")) <= 200


plates = st.text(alphabet="辽京沪ABCDEFGHJKabcdefghjk0123456789", min_size=1, max_size=16)


@PROPERTY
@given(plates, plates)
def test_a_plate_is_verified_exactly_when_the_licence_names_it(registered, on_licence):
    state = plate_checked(plate(registered), on_licence)
    assert state in PLATE_STATES
    assert (state == "verified") == (plate(on_licence) == plate(registered))
    assert plate_checked(plate(registered), registered.lower()) == "verified"
