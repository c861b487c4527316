"""The rule that decides transit's contribution to the citizen code: good standing while unpaid fares
would not refuse an entrance, and the two moments it flips (a fare over the limit, a payment under it)
— the only ones at which the platform is told."""

from hypothesis import given, settings
from hypothesis import strategies as st

from miniapps.transit.rules import back_under, crosses_limit, in_good_standing, refused_for_unpaid

PROPERTY = settings(database=None, deadline=None, max_examples=500)
LIMIT = 2000  # the default unpaid_limit: ¥20
fen = st.integers(min_value=0, max_value=100_000)
limits = st.integers(min_value=0, max_value=50_000)


def test_good_standing_ends_at_the_limit():
    assert in_good_standing(0, LIMIT) and in_good_standing(1999, LIMIT)
    assert not in_good_standing(2000, LIMIT) and not in_good_standing(2600, LIMIT)


def test_a_fare_that_reaches_the_limit_flips_the_standing_and_no_other_does():
    assert crosses_limit(1800, 300, LIMIT)  # ¥18 owed, a ¥3 metro ride: ¥21, refused from now on
    assert crosses_limit(1700, 300, LIMIT)  # exactly ¥20: refused (the gate refuses at the limit)
    assert not crosses_limit(1500, 300, LIMIT)  # ¥18: still in good standing
    assert not crosses_limit(2100, 300, LIMIT)  # already out: nothing changes
    assert not crosses_limit(1999, 0, LIMIT)  # a capped ride (nothing charged)


def test_a_payment_that_brings_the_rider_under_the_limit_restores_it():
    assert back_under(0, 2400, LIMIT)  # everything paid
    assert back_under(1800, 300, LIMIT)  # ¥21 → ¥18
    assert not back_under(1500, 300, LIMIT)  # was in good standing before too
    assert not back_under(2100, 300, LIMIT)  # still over
    # several fares paid at once: each event sees the total after all of them
    assert not back_under(0, 1200, LIMIT) and back_under(0, 1200, LIMIT, flagged=True)
    assert not back_under(2100, 300, LIMIT, flagged=True)  # still over, flagged or not


@PROPERTY
@given(fen, limits)
def test_standing_is_exactly_what_the_gate_decides(owed, limit):
    assert in_good_standing(owed, limit) == (not refused_for_unpaid(owed, limit))


@PROPERTY
@given(fen, fen, limits)
def test_a_fare_crosses_exactly_when_the_standing_before_and_after_differ(before, owes, limit):
    flipped = in_good_standing(before, limit) != in_good_standing(before + owes, limit)
    assert crosses_limit(before, owes, limit) == flipped


@PROPERTY
@given(st.lists(fen, max_size=20), limits)
def test_a_day_of_fares_tells_the_platform_at_most_once(fares, limit):
    owed, told = 0, 0
    for fare in fares:
        told += crosses_limit(owed, fare, limit)
        owed += fare
    assert told == (0 if in_good_standing(owed, limit) == in_good_standing(0, limit) else 1)


@PROPERTY
@given(fen, fen, limits, st.booleans())
def test_a_payment_restores_only_a_rider_it_leaves_in_good_standing(after, paid, limit, flagged):
    restored = back_under(after, paid, limit, flagged=flagged)
    if restored:
        assert in_good_standing(after, limit)
    if in_good_standing(after, limit) and not in_good_standing(after + paid, limit):
        assert restored  # the payment that crossed the line back is never missed
