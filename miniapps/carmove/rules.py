"""扫码挪车's decisions as pure functions: no database, no clock (times are passed in), the standard
library only. Tested in ``tests/unit/carmove/test_rules.py`` by examples and hypothesis invariants."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime, timedelta

# the provinces' one-character names a plate starts with (省、自治区、直辖市的简称)
PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
# the plate as the traffic police write it, without the separator dot: 辽A12345, 辽AD12345 (new energy)
_PLATE = re.compile(rf"^[{PROVINCES}][A-Z][A-Z0-9]{{5,6}}$")
# what a sender or an owner may type: no control characters, nothing invisible or direction-changing
# (the message centre's rule for texts a citizen reads)
BAD_CHARS = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u2069\ufeff]"
)
NOTE_MAX = 60

VEHICLE_LICENCE = "vehicle_licence"
PLATE_FIELDS = ("plate_number", "vehicle_type")

# why a sender asks (code -> Chinese, English), in the order the page offers them
REASONS: dict[str, tuple[str, str]] = {
    "blocking_exit": ("挡住了出口", "blocking an exit"),
    "blocking_car": ("挡住了我的车", "blocking my car"),
    "my_space": ("占用了我的车位", "parked in my space"),
    "fire_lane": ("占用消防通道", "in a fire lane"),
    "lights_on": ("车灯未关", "lights left on"),
    "window_open": ("车窗未关", "a window left open"),
    "alarm": ("车辆警报在响", "the alarm is sounding"),
    "other": ("其他原因", "another reason"),
}
# how an owner answers (code -> Chinese, English)
ANSWERS: dict[str, tuple[str, str]] = {
    "coming_5": ("马上到，5 分钟内挪车", "coming, moving it within 5 minutes"),
    "coming_15": ("15 分钟内到", "there within 15 minutes"),
    "moved": ("已挪走", "moved already"),
    "not_my_car": ("这不是我的车", "this is not my car"),
    "cannot_come": ("暂时无法挪车，请谅解", "cannot come now, sorry"),
}
# what anyone may report to the operators about a sticker or a request
REPORTS: dict[str, tuple[str, str]] = {
    "harassment": ("骚扰或恶意请求", "harassment or malicious requests"),
    "fake_sticker": ("车贴被冒用或伪造", "the sticker is misused or forged"),
    "wrong_car": ("车贴贴错车辆", "the sticker is on the wrong car"),
    "other": ("其他", "other"),
}


def plate(raw: str) -> str:
    """The plate as stored: full-width letters and digits as ASCII (what a Chinese keyboard types:
    辽Ａ１２３４５), separators and spaces dropped, letters in upper case (辽a·12345 → 辽A12345).
    ValueError when it is not a plate: a province's name first, then ASCII letters and digits only (no
    letter that upper-casing turns into one, as ı becomes I)."""
    folded = unicodedata.normalize("NFKC", raw)
    out = "".join(c.upper() if "a" <= c <= "z" else c for c in re.sub(r"[\s·.\-_•]", "", folded))
    if not _PLATE.match(out):
        raise ValueError("not a plate: a province's name, a letter, then 5 or 6 letters or digits")
    return out


def plate_shown(registered: str) -> str:
    """辽A12345 → 辽A·12345, as the plate itself reads."""
    return f"{registered[:2]}·{registered[2:]}"


def plate_masked(registered: str) -> str:
    """What a stranger sees: the province and the last two characters (辽A·***45), enough to check that
    the sticker is on the car in front of them, not enough to name it."""
    return f"{registered[:2]}·***{registered[-2:]}"


def plate_checked(registered: str, licence_plate: str) -> str:
    """``proven`` when the vehicle licence's plate number is this plate (written either way), else
    ``mismatch``."""
    try:
        return "proven" if plate(licence_plate) == registered else "mismatch"
    except ValueError:
        return "mismatch"


def plate_purpose(registered: str) -> str:
    return f"核验车辆 {plate_shown(registered)} 为您本人所有，以便他人扫码挪车时联系您（不公开车牌和手机号）"


def note(text: str) -> str:
    """A short free text (a sender's note, an owner's answer): trimmed, at most ``NOTE_MAX`` characters,
    nothing invisible. ValueError otherwise."""
    out = text.strip()
    if len(out) > NOTE_MAX:
        raise ValueError(f"at most {NOTE_MAX} characters")
    if BAD_CHARS.search(out):
        raise ValueError("control or direction-changing characters are not allowed")
    return out


def window(now: float, seconds: int) -> tuple[int, int]:
    """The fixed window holding the instant ``now`` (seconds since the epoch), for a rate limit: its
    number, and the seconds until it ends (1 to ``seconds``: what ``Retry-After`` says)."""
    index = int(now // seconds)
    return index, max(1, (index + 1) * seconds - int(now))


def over(count: int, limit: int) -> bool:
    """A counter that reached ``count`` after this attempt is over a ``limit`` per window."""
    return count > limit


def sms_due(created_at: datetime, after_seconds: float) -> datetime:
    return created_at + timedelta(seconds=after_seconds)


def sms_fires(due: datetime, answered_at: datetime | None, now: datetime) -> bool:
    """Whether the SMS fallback goes out at ``now``: it is due, and the owner had not answered by then."""
    return now >= due and (answered_at is None or answered_at > due)


def request_state(state: str, created_at: datetime, now: datetime, open_minutes: int) -> str:
    """A waiting request closes by itself ``open_minutes`` after it was sent (``expired``): the car has
    long moved or the sender left. An answered one stays answered."""
    if state == "waiting" and now >= created_at + timedelta(minutes=open_minutes):
        return "expired"
    return state


def sticker_refusal(state: str) -> str:
    """Why a sticker takes no request: "" (it does), ``sticker_paused`` (by its owner),
    ``sticker_suspended`` (by the operators, after a report) or ``sticker_replaced``."""
    return {"active": "", "paused": "sticker_paused", "suspended": "sticker_suspended"}.get(
        state, "sticker_replaced"
    )


def photo_type(head: bytes) -> str:
    """The image type its first bytes say (JPEG or PNG, the two a phone's camera or screenshot makes), or
    "" for anything else, whatever the upload's Content-Type claimed."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    return ""
