"""The national 好差评 rules as data and pure functions (no I/O): the five levels, the indicators of an
online and an on-site service, what a service declares to be rateable, a unit, and the rates statistics
report.

- Five levels: 非常满意 (5), 满意 (4), 基本满意 (3), 不满意 (2), 非常不满意 (1). The first three are good
  ratings (好评), the last two bad (差评); every bad rating opens a case with the unit that served.
- Indicators: online services (一事一评) are rated on overall satisfaction, efficiency, the accuracy of the
  guide, convenience and the platform's usability; on-site services (一次一评) on overall satisfaction,
  efficiency, the level of service and the attitude. ``overall`` is the rating's level.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from messages.templates import BAD_CHARS

LevelName = Literal["very_satisfied", "satisfied", "basically_satisfied", "dissatisfied", "very_dissatisfied"]
LEVELS: dict[str, int] = {
    "very_satisfied": 5,
    "satisfied": 4,
    "basically_satisfied": 3,
    "dissatisfied": 2,
    "very_dissatisfied": 1,
}
LEVEL_NAMES = {v: k for k, v in LEVELS.items()}
LEVEL_TEXT = {
    5: ("非常满意", "Very satisfied"),
    4: ("满意", "Satisfied"),
    3: ("基本满意", "Basically satisfied"),
    2: ("不满意", "Dissatisfied"),
    1: ("非常不满意", "Very dissatisfied"),
}
BAD = 2  # a level at or below this is a bad rating (差评) and opens a case

Channel = Literal["online", "onsite"]
INDICATORS: dict[str, dict[str, tuple[str, str]]] = {
    "online": {
        "overall": ("整体满意度", "Overall satisfaction"),
        "efficiency": ("办事效率", "Efficiency"),
        "guide_accuracy": ("办事指南精确度", "Accuracy of the guide"),
        "convenience": ("办事便捷度", "Convenience"),
        "usability": ("平台操作性", "Ease of use of the platform"),
    },
    "onsite": {
        "overall": ("整体满意度", "Overall satisfaction"),
        "efficiency": ("服务效率", "Efficiency of service"),
        "service_level": ("服务水平", "Level of service"),
        "attitude": ("服务态度", "Attitude"),
    },
}

# what a unit answers a case with: rectified (整改), or explained (no legal basis to change: 解释说明)
Outcome = Literal["rectified", "explained"]
# why a unit appeals a bad rating (申诉): given by mistake, false, malicious, or not about this unit
AppealReason = Literal["mistaken", "false", "malicious", "not_our_service"]
UNIT_CODE = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")


class Rateable(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A service (事项) that can be rated, as a mini-app's manifest or the platform declares it."""

    name_zh: Annotated[str, Meta(min_length=1, max_length=64)]
    name_en: Annotated[str, Meta(min_length=1, max_length=64)]
    channel: Channel = "onsite"  # online: 一事一评 (an order, an application); onsite: 一次一评 (a visit)
    window_days: Annotated[int, Meta(ge=1, le=90)] = 15  # how long after the event a rating is accepted
    invite: bool = True  # send the citizen an invitation (邀评) in the inbox when the event is recorded
    description: Annotated[str, Meta(max_length=200)] = ""

    def problems(self) -> list[str]:
        if any(BAD_CHARS.search(t) for t in (self.name_zh, self.name_en, self.description)):
            return ["names may not hold control or direction-changing characters"]
        return []


class Unit(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A unit that serves and answers for its service (a department, a hospital, a car park's operator):
    ``code`` within its owner (the mini-app or "platform"), unique there."""

    code: Annotated[str, Meta(pattern=UNIT_CODE.pattern)]
    name_zh: Annotated[str, Meta(min_length=1, max_length=64)]
    name_en: Annotated[str, Meta(min_length=1, max_length=64)]
    district: str = ""  # one of auth's DISTRICTS (the regional analysis), "" for city-wide

    def problems(self) -> list[str]:
        # the whole code: a pattern's "$" also matches before a final line break ("dept\n" was a unit)
        if not UNIT_CODE.fullmatch(self.code):
            return ["a unit's code is 1-32 lowercase letters, digits and hyphens"]
        if any(BAD_CHARS.search(t) for t in (self.name_zh, self.name_en)):
            return ["names may not hold control or direction-changing characters"]
        return []


def clean_text(text: str) -> str | None:
    """``text`` stripped, or None when it holds control or direction-changing characters."""
    if BAD_CHARS.search(text.replace("\n", " ")):
        return None
    return text.strip()


def is_bad(level: int) -> bool:
    return level <= BAD


def rate(part: int, whole: int) -> float | None:
    """``part / whole`` to four places, None for an empty whole (no ratings: no rate, not 0 % or 100 %)."""
    return round(part / whole, 4) if whole else None
