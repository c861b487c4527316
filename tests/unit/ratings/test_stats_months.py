"""The statistics ask for their months as a list (PostgreSQL plans it well when the statement is cached):
the list must hold exactly the months the range ``first <= month <= last`` holds."""

from __future__ import annotations

from ratings._stats import MONTHS_LISTED, _months


def _all_months(first_year: int, last_year: int) -> list[str]:
    return [f"{y:04d}-{m:02d}" for y in range(first_year, last_year + 1) for m in range(1, 13)]


def test_one_month_is_one_value() -> None:
    assert _months("2026-10", "2026-10") == ("month IN ({})", ["2026-10"])


def test_a_range_lists_every_month_across_years() -> None:
    where, months = _months("2025-11", "2026-02")
    assert where == "month IN ({}, {}, {}, {})"
    assert months == ["2025-11", "2025-12", "2026-01", "2026-02"]


def test_the_list_holds_what_the_range_holds() -> None:
    stored = _all_months(2014, 2027)
    for first, last in [("2016-01", "2016-12"), ("2015-07", "2025-06"), ("2020-02", "2020-03")]:
        where, months = _months(first, last)
        assert where.startswith("month IN")
        assert months == [m for m in stored if first <= m <= last]


def test_long_ranges_stay_ranges() -> None:
    assert len(_months("2016-01", "2025-12")[1]) == MONTHS_LISTED
    assert _months("2016-01", "2026-01") == ("month >= {} AND month <= {}", ["2016-01", "2026-01"])
    assert _months("0001-01", "9999-12") == ("month >= {} AND month <= {}", ["0001-01", "9999-12"])
