"""Payment notice numbers (缴款码).

Twenty digits: ``2101`` (Shenyang's region code) + the year of issue (four digits, China time) + eleven
random digits + one Luhn check digit over the first nineteen. The random part is drawn from the
operating system's generator (``secrets``), so of the 10^11 numbers of a year only the issued ones
exist: guessing one takes on the order of 10^11 / (notices issued) tries, and lookups are rate-limited.
The check digit catches every single mistyped digit and most swapped neighbours before any lookup.
"""

from __future__ import annotations

import re
import secrets

REGION = "2101"
LENGTH = 20
_FORMAT = re.compile(r"^2101[0-9]{16}\Z")


def luhn_digit(digits: str) -> str:
    """The Luhn check digit for ``digits`` (the digit that makes ``digits + it`` pass Luhn)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:  # doubled: the rightmost digit of the payload sits next to the check digit
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def new_number(year: int) -> str:
    body = f"{REGION}{year:04d}{secrets.randbelow(10**11):011d}"
    return body + luhn_digit(body)


def well_formed(number: str) -> bool:
    """Twenty digits starting 2101 whose last digit is the Luhn check digit of the rest."""
    return bool(_FORMAT.match(number)) and luhn_digit(number[:-1]) == number[-1]
