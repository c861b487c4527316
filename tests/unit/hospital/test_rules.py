"""The hospital's rules: the bill split of docs/miniapps.md (70 % of covered items in the hospital's
province, 50 % elsewhere, whole fen per item rounded down), which sums exactly to the bill in fen with
no negative part for any bill; the credit days, China-time days."""

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from miniapps.hospital.rules import (
    CARD_ASK_AGAIN,
    CARD_PURPOSE,
    CARD_STATES,
    card_unshared,
    china_day,
    clock_time,
    credit_cutoff,
    order_paid,
    same_province,
    split_bill,
    state_after_bill,
)

PROPERTY = settings(database=None, deadline=None, max_examples=300)
SHENYANG = "210100"  # the demo hospital's region (沈阳市, 辽宁省)
items = st.lists(
    st.fixed_dictionaries(
        {"amount": st.integers(min_value=1, max_value=10_000_000), "covered": st.booleans()}
    ),
    min_size=1,
    max_size=30,
)
regions = st.sampled_from(["", "210102", "211000", "440300", "110101"])
rates = st.integers(min_value=-5000, max_value=15_000)  # settings outside 0-100 % too


def split(bill, region, local_bp=7000, other_bp=5000):
    return split_bill(
        bill, insured_region=region, hospital_region=SHENYANG, local_bp=local_bp, other_bp=other_bp
    )


def test_the_split_of_the_docs():
    bill = [
        {"amount": 1000, "covered": True},
        {"amount": 333, "covered": True},
        {"amount": 500, "covered": False},
    ]
    # insured in Liaoning (21xxxx): 70 % of 1000 and of 333 (233.1 → 233); the uncovered 500 is self-paid
    assert split(bill, "210102") == (1833, 700 + 233, 1833 - 933)
    # insured in Guangdong: 50 % (166.5 → 166)
    assert split(bill, "440000") == (1833, 500 + 166, 1833 - 666)
    assert split(bill, "") == (1833, 0, 1833)  # not insured: all self-paid
    assert same_province("210102", SHENYANG) and not same_province("440000", SHENYANG)
    assert not same_province("", SHENYANG)


def test_a_bill_fully_covered_is_paid_at_once():
    assert split([{"amount": 1000, "covered": True}], "210102", local_bp=10_000) == (1000, 1000, 0)
    assert state_after_bill(0) == "paid" and state_after_bill(1) == "billed"


def test_credit_days_china_days_and_paid_orders():
    now = datetime(2026, 11, 25, 0, 30, tzinfo=UTC)  # 08:30 in Shenyang
    assert credit_cutoff(now, 7) == now - timedelta(days=7)
    start, end = china_day(now)
    assert start == datetime(2026, 11, 24, 16, 0, tzinfo=UTC) and end - start == timedelta(days=1)
    assert clock_time(datetime(2026, 11, 25, 1, 30, tzinfo=UTC)) == "09:30"
    assert order_paid("paid") and order_paid("refunded") and not order_paid("pending")


@PROPERTY
@given(items, regions, rates, rates)
def test_a_split_sums_exactly_to_the_bill_with_no_negative_part(bill, region, local_bp, other_bp):
    total, insured, self_paid = split(bill, region, local_bp, other_bp)
    assert total == sum(i["amount"] for i in bill)
    assert insured + self_paid == total
    assert insured >= 0 and self_paid >= 0


@PROPERTY
@given(items, regions, st.integers(0, 10_000), st.integers(0, 10_000))
def test_insurance_pays_only_covered_items_and_never_more_than_its_rate(bill, region, local_bp, other_bp):
    _, insured, _ = split(bill, region, local_bp, other_bp)
    rate = (local_bp if same_province(region, SHENYANG) else other_bp) if region else 0  # not insured: 0
    covered = sum(i["amount"] for i in bill if i["covered"])
    assert insured <= covered * rate // 10_000  # rounding per item is in the insurer's favour
    assert insured >= covered * rate // 10_000 - len(bill)  # by less than a fen per item


@PROPERTY
@given(items)
def test_insured_locally_never_pays_more_than_insured_elsewhere(bill):
    assert split(bill, "210102")[2] <= split(bill, "440300")[2]


@PROPERTY
@given(st.integers(min_value=0, max_value=4_000_000_000))
def test_a_china_day_holds_its_time_and_is_one_day_long(seconds):
    at = datetime(2000, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)
    start, end = china_day(at)
    assert start <= at < end and end - start == timedelta(days=1)
    assert start.utcoffset() == timedelta(hours=8) and (start.hour, start.minute) == (0, 0)


def test_what_becomes_of_a_card_whose_consent_gives_nothing():
    assert card_unshared("consent_refused") == "refused"
    assert card_unshared("consent_revoked") == "withdrawn"
    assert {card_unshared(r) for r in ("consent_expired", "consent_used", "licence_revoked")} == {"lapsed"}
    assert card_unshared("licence_suspended") is None  # may be valid again: the card stays linked
    assert card_unshared("consent_pending") is None
    assert card_unshared("request_not_found") == "lapsed"
    # every end is a state, and a card that ended may be linked again; a linked or pending one is not
    ends = {card_unshared(r) for r in ("consent_refused", "consent_revoked", "consent_expired")}
    assert ends == set(CARD_ASK_AGAIN) and ends < set(CARD_STATES)
    assert 2 <= len(CARD_PURPOSE) <= 200
