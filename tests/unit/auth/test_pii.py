import pytest

from auth.pii import (
    id_check_digit,
    mask_id_number,
    mask_name,
    mask_phone,
    normalise_id_number,
    normalise_phone,
)
from backend.crypto import DecryptionError, Keyring
from backend.errors import InvalidInput


@pytest.mark.parametrize(
    "raw", ["13812345678", "+8613812345678", "008613812345678", "86 138-1234-5678", " 138 1234 5678 "]
)
def test_phone_forms_normalise_to_e164(raw):
    assert normalise_phone(raw) == "+8613812345678"


@pytest.mark.parametrize("raw", ["", "12812345678", "1381234567", "138123456789", "+1 212 555 0100", "abc"])
def test_bad_phones(raw):
    with pytest.raises(InvalidInput):
        normalise_phone(raw)


def test_id_number_check_digit_and_masks():
    assert id_check_digit("21010219491231018") == "X"
    assert normalise_id_number("21010219491231018x") == "21010219491231018X"
    assert mask_id_number("21010219491231018X") == "2101**********018X"
    assert mask_phone("+8613812345678") == "138****5678"
    assert mask_name("欧阳修") == "欧**" and mask_name("Li") == "L*"


@pytest.mark.parametrize(
    "raw", ["210102194912310181", "210102194902300180", "210102209912310181", "2101021949"]
)
def test_bad_id_numbers(raw):
    with pytest.raises(InvalidInput):
        normalise_id_number(raw)


def test_keyring_rotates_and_binds_context():
    old = Keyring([("k1", b"\x01" * 32)])
    sealed = old.encrypt("21010219491231018X", "citizen:1:id_number")
    rotated = Keyring([("k2", b"\x02" * 32), ("k1", b"\x01" * 32)])
    assert rotated.decrypt(sealed, "citizen:1:id_number") == "21010219491231018X"
    assert rotated.needs_rotation(sealed)
    assert rotated.encrypt("x", "c").startswith("k2.")
    with pytest.raises(DecryptionError):
        rotated.decrypt(sealed, "citizen:2:id_number")  # sealed to another citizen: refused
    with pytest.raises(DecryptionError):
        Keyring([("k2", b"\x02" * 32)]).decrypt(sealed, "citizen:1:id_number")
