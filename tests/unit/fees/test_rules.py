"""Notice numbers (Luhn check digit) and the late fee's rule."""

from datetime import date

from fees.numbers import luhn_digit, new_number, well_formed
from fees.services import late_fee


def test_numbers_carry_a_luhn_check_digit_that_catches_a_typo():
    assert luhn_digit("7992739871") == "3"  # the textbook example
    for _ in range(50):
        n = new_number(2026)
        assert len(n) == 20 and n.startswith("21012026") and well_formed(n)
        for i in range(19):
            wrong = n[:i] + str((int(n[i]) + 1) % 10) + n[i + 1 :]
            assert not well_formed(wrong)
    assert not well_formed("1101202600000000000" + luhn_digit("1101202600000000000"))  # another region
    assert not well_formed("2101abc")


def test_the_late_fee_counts_days_past_due_and_never_exceeds_the_amount():
    row = {"amount": 10000, "late_fee_bp": 30, "due_date": "2026-11-25"}
    assert late_fee(row, date(2026, 11, 25)) == 0  # on the due date: on time
    assert late_fee(row, date(2026, 11, 26)) == 30
    assert late_fee(row, date(2026, 12, 5)) == 300
    assert late_fee(row, date(2028, 1, 1)) == 10000  # capped at the amount
    assert late_fee({**row, "late_fee_bp": 0}, date(2027, 1, 1)) == 0
