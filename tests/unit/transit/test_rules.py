"""Transit's rules: the fare table of docs/miniapps.md, and the invariants over any ride or day of rides
(a fare is never negative, a transfer never makes it negative, a day never costs more than the cap)."""

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from miniapps.transit.rules import (
    ENTRY_CONTEXTS,
    exit_fare,
    metro_distance,
    metro_fare,
    other_mode,
    price,
    refused_for_unpaid,
    service_day,
    transfer_window,
    yuan,
)

PROPERTY = settings(database=None, deadline=None, max_examples=300)
MAX_FARE = 1000  # the default metro_max_fare: ¥10
meters = st.integers(min_value=0, max_value=500_000)
fen = st.integers(min_value=0, max_value=100_000)


def test_the_metro_fare_table():
    # ≤6 km ¥3, ≤12 ¥4, ≤22 ¥5, ≤32 ¥6, then ¥1 per further (started) 20 km, at most ¥10
    table = {
        0: 300,
        6000: 300,
        6001: 400,
        9400: 400,  # 十三号街 → 迎宾路 on line 1
        12000: 400,
        12001: 500,
        22000: 500,
        22001: 600,
        31500: 600,  # 十三号街 → 青年大街 → 全运路, through the interchange
        32000: 600,
        32001: 700,
        52000: 700,
        52001: 800,
        200_000: 1000,
    }
    assert {m: metro_fare(m, MAX_FARE) for m in table} == table
    assert metro_fare(100_000, 650) == 650  # a lower maximum fare caps every band


def test_odd_exits_cost_the_maximum_fare():
    assert exit_fare(None, MAX_FARE) == MAX_FARE  # no entry, or lines that do not meet
    assert exit_fare(9400, MAX_FARE) == 400


def test_distances_along_a_line_and_through_the_best_interchange():
    assert metro_distance(("M1", 0), ("M1", 9400), []) == 9400
    assert metro_distance(("M1", 9400), ("M1", 0), []) == 9400
    # 十三号街 (M1 0 m) to 全运路 (M2 21 600 m) through 青年大街 (M1 20 000 m, M2 10 100 m)
    assert metro_distance(("M1", 0), ("M2", 21600), [(20000, 10100)]) == 31500
    assert metro_distance(("M1", 0), ("M2", 21600), [(20000, 10100), (5000, 2000)]) == 5000 + 19600
    assert metro_distance(("M1", 0), ("M3", 100), []) is None


def test_a_day_of_bus_rides_reaches_the_cap():
    # the integration test's day: nine ¥2 rides, a ¥15 cap
    spent, charged = 0, []
    for _ in range(9):
        c = price(200, transfer=False, transfer_discount=100, spent_today=spent, daily_cap=1500)
        spent += c.charged
        charged.append((c.charged, c.capped))
    assert charged == [(200, 0)] * 7 + [(100, 100), (0, 200)]


def test_a_transfer_takes_the_discount_off_never_below_zero():
    assert price(400, transfer=True, transfer_discount=100, spent_today=0, daily_cap=1500) == (100, 0, 300)
    assert price(50, transfer=True, transfer_discount=100, spent_today=0, daily_cap=1500) == (50, 0, 0)
    assert price(400, transfer=False, transfer_discount=100, spent_today=0, daily_cap=1500) == (0, 0, 400)


def test_the_transfer_window_and_the_other_mode():
    start = datetime(2026, 11, 25, 1, 30, tzinfo=UTC)
    assert transfer_window(start, 90) == (start - timedelta(minutes=90), start)
    assert other_mode("bus") == "metro" and other_mode("metro") == "bus"


def test_unpaid_fares_refuse_entrances_from_the_limit_on():
    assert ENTRY_CONTEXTS == {"bus", "metro-entry"}  # never metro-exit: a citizen is always let out
    assert not refused_for_unpaid(1999, 2000)
    assert refused_for_unpaid(2000, 2000)


def test_the_day_is_china_time():
    assert service_day(datetime(2026, 11, 24, 15, 59, tzinfo=UTC)) == "2026-11-24"
    assert service_day(datetime(2026, 11, 24, 16, 0, tzinfo=UTC)) == "2026-11-25"  # midnight in Shenyang
    assert yuan(1500) == "¥15.00" and yuan(5) == "¥0.05"


@PROPERTY
@given(meters, st.integers(min_value=0, max_value=5000))
def test_a_metro_fare_is_never_negative_nor_above_the_maximum(m, max_fare):
    assert 0 <= metro_fare(m, max_fare) <= max_fare


@PROPERTY
@given(meters, meters, st.integers(min_value=300, max_value=5000))
def test_a_longer_ride_never_costs_less(a, b, max_fare):
    shorter, longer = sorted((a, b))
    assert metro_fare(shorter, max_fare) <= metro_fare(longer, max_fare)


@PROPERTY
@given(meters)
def test_each_further_20_km_costs_one_yuan_more_past_32_km(m):
    # without a maximum in the way, 20 km more past the last band is ¥1 more
    assert metro_fare(32_000 + m + 20_000, 10**9) == metro_fare(32_000 + m, 10**9) + 100


@PROPERTY
@given(
    st.tuples(st.sampled_from(["M1", "M2"]), meters),
    st.tuples(st.sampled_from(["M1", "M2"]), meters),
    st.lists(st.tuples(meters, meters), min_size=1, max_size=4),
)
def test_a_distance_is_never_negative_and_the_same_both_ways(entry, exit_, interchanges):
    there = metro_distance(entry, exit_, interchanges)
    back = metro_distance(exit_, entry, [(y, x) for x, y in interchanges])
    assert there is not None and there >= 0
    assert there == back


@PROPERTY
@given(fare=fen, transfer=st.booleans(), discount=st.integers(-500, 5000), spent=fen, cap=fen)
def test_a_priced_trip_adds_up_and_no_part_is_negative(fare, transfer, discount, spent, cap):
    c = price(fare, transfer=transfer, transfer_discount=discount, spent_today=spent, daily_cap=cap)
    assert c.discount >= 0 and c.capped >= 0 and c.charged >= 0  # a transfer never makes a fare negative
    assert c.discount + c.capped + c.charged == fare
    assert c.discount == (min(max(0, discount), fare) if transfer else 0)


@PROPERTY
@given(
    rides=st.lists(
        st.tuples(st.integers(min_value=0, max_value=MAX_FARE), st.booleans()), min_size=1, max_size=40
    ),
    cap=st.integers(min_value=0, max_value=5000),
    discount=st.integers(min_value=0, max_value=300),
)
def test_a_day_never_costs_more_than_the_cap_and_only_the_excess_is_waived(rides, cap, discount):
    spent = 0
    due = 0
    for fare, transfer in rides:
        c = price(fare, transfer=transfer, transfer_discount=discount, spent_today=spent, daily_cap=cap)
        spent += c.charged
        due += fare - c.discount
        assert spent <= cap  # after every ride, not only at the end of the day
    assert spent == min(cap, due)  # the cap waives what is above it, nothing below it


# ---- the rider's state, what a gate decides from ----------------------------------------------
from miniapps.transit.rules import OpenTrip, RiderState, priced_trip  # noqa: E402

CFG = {"transfer_minutes": 90, "transfer_discount": 100, "daily_cap": 1500}
NOON = datetime(2026, 11, 28, 4, 0, tzinfo=UTC).timestamp()  # 12:00 China time


def test_a_transfer_is_a_trip_of_the_other_mode_ended_within_the_window():
    s = RiderState().finished("bus", ended=NOON, day="2026-11-28", charged=200)
    assert s.transfer("metro", NOON + 90 * 60, 90) and s.transfer("metro", NOON, 90)
    assert not s.transfer("metro", NOON + 90 * 60 + 1, 90)  # too late
    assert not s.transfer("metro", NOON - 1, 90)  # boarded before the bus trip ended
    assert not s.transfer("bus", NOON + 60, 90)  # the same mode is no transfer


def test_the_state_keeps_two_days_of_spend_and_a_day_of_trip_ends():
    s = RiderState()
    for day in range(5):
        s = s.finished("bus", ended=NOON + day * 86400, day=f"2026-11-{28 + day}", charged=200)
    assert list(s.spent) == ["2026-11-31", "2026-11-32"]
    assert [e for _, e in s.ends] == [NOON + 3 * 86400, NOON + 4 * 86400]
    opened = s.entered(OpenTrip("t1", "M1", "M1-01", NOON, "gate/1"))
    assert opened.open is not None and opened.spent == s.spent and opened.entered(None).open is None


@settings(database=None, deadline=None, max_examples=200)
@given(
    rides=st.lists(
        st.tuples(st.sampled_from(["bus", "metro"]), st.integers(0, 1000), st.integers(1, 200)), max_size=30
    )
)
def test_deciding_from_the_state_prices_a_day_like_the_trips_themselves(rides):
    """Prices from the rider's state equal prices from the whole list of the day's trips (what the
    books hold): the transfer against every earlier trip's end, the cap against the day's sum."""
    state, trips, t = RiderState(), [], NOON
    for kind, fare, minutes in rides:
        t += minutes * 60
        charge = priced_trip(state, kind, fare, started=t, cfg=CFG)
        earlier = [(k, end) for k, end, _ in trips]
        transfer = any(k != kind and t - 90 * 60 <= end <= t for k, end in earlier)
        day = service_day(datetime.fromtimestamp(t, UTC))
        spent = sum(c for _, end, c in trips if service_day(datetime.fromtimestamp(end, UTC)) == day)
        assert charge == price(
            fare, transfer=transfer, transfer_discount=100, spent_today=spent, daily_cap=1500
        )
        state = state.finished(kind, ended=t, day=day, charged=charge.charged)
        trips.append((kind, t, charge.charged))
