"""Personal data: validation, normalisation and masking of phone numbers, ID numbers and names."""

from __future__ import annotations

import re
from datetime import date
from operator import mul

from backend.errors import InvalidInput

_PHONE = re.compile(r"^1[3-9]\d{9}$")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def normalise_phone(raw: str) -> str:
    """A mainland mobile number in E.164 (``+8613812345678``), or InvalidInput."""
    digits = re.sub(r"[\s\-()]", "", raw or "")
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    if not _PHONE.match(digits):
        raise InvalidInput("phone must be a mainland mobile number, e.g. 13812345678", code="invalid_phone")
    return "+86" + digits


def mask_phone(e164: str) -> str:
    local = e164.removeprefix("+86")
    return f"{local[:3]}****{local[-4:]}"


def id_check_digit(first17: str) -> str:
    if len(first17) != 17:
        raise ValueError("the check digit is of 17 digits")
    return _ID_CHECK[sum(map(mul, map(int, first17), _ID_WEIGHTS)) % 11]


def normalise_id_number(raw: str) -> str:
    """An 18-character resident ID number with a valid birth date and check digit (GB 11643)."""
    value = (raw or "").strip().upper()
    if not re.fullmatch(r"\d{17}[\dX]", value):
        raise InvalidInput(
            "id_number must be 18 characters: 17 digits and a check digit", code="invalid_id_number"
        )
    try:
        born = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        raise InvalidInput("id_number has an impossible birth date", code="invalid_id_number") from None
    if born.year < 1900 or born > date.today():
        raise InvalidInput("id_number has an impossible birth date", code="invalid_id_number")
    if id_check_digit(value[:17]) != value[17]:
        raise InvalidInput("id_number check digit does not match", code="invalid_id_number")
    return value


def mask_id_number(value: str) -> str:
    return value[:4] + "*" * 10 + value[-4:]


def normalise_name(raw: str) -> str:
    name = " ".join((raw or "").split())
    if not 1 <= len(name) <= 64 or any(c.isdigit() or c in "<>{}[]\\/@#$%^&*=+|;" for c in name):
        raise InvalidInput("real_name must be 1-64 letters", code="invalid_name")
    return name


def mask_name(name: str) -> str:
    return name[0] + "*" * (len(name) - 1) if len(name) > 1 else "*"
