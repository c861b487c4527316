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


def test_the_fiscal_signature_verifies_as_the_docs_tell_and_not_when_tampered():
    """What docs/fees.md tells the fiscal system's integrators, checked by the double's own verifier (a
    key generated here; the platform's is made by its key store)."""
    from backend.keystore import generate_private_key, public_jwk
    from fees.fiscal import sign
    from tests.doubles.fiscal import public_key, verify

    key = generate_private_key("ES256")
    keys = {"k1": public_key(public_jwk(key.public_key(), "k1", "ES256"))}
    body = b'{"notice_no":"21012026437904815101","amount":10090}'
    header = sign(key, "k1", body, 1_800_000_000)
    assert verify(header, body, keys, now=1_800_000_060)
    assert not verify(header, body.replace(b"10090", b"10091"), keys, now=1_800_000_060)  # another body
    assert not verify(header, body, keys, now=1_800_000_000 + 301)  # too old
    assert not verify(header.replace("kid=k1", "kid=k2"), body, keys, now=1_800_000_000)  # unknown key
    assert not verify(header.replace("t=1800000000", "t=1800000001"), body, keys, now=1_800_000_000)


def test_a_number_or_a_receipt_with_a_trailing_newline_or_other_digits_is_not_well_formed():
    """``$`` also matches before a final newline, and ``\\d`` takes any script's digits: neither is a
    notice number, nor a receipt number we record."""
    from fees.fiscal import _receipt_ok

    n = new_number(2026)
    assert well_formed(n) and not well_formed(n + "\n")
    wide = n.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    assert not well_formed(wide)
    assert _receipt_ok("R-2026/0001") and not _receipt_ok("R-2026/0001\n")
