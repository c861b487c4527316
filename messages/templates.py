"""Message templates: what a sender declares (text in two languages with typed placeholders, a category),
how data is checked against the placeholders, and how a message is rendered (no I/O here).

A template is declared in a mini-app's manifest (``Manifest.templates``) or by the platform, and is used
only once an operator approved that exact text (``messages.services.Templates``). Its id is
``<owner>.<name>``: ``transit.fare_deferred``, ``platform.payment_paid``.
"""

from __future__ import annotations

import hashlib
import re
import string
from datetime import UTC, datetime, timedelta, timezone
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from backend.errors import InvalidInput

CHINA = timezone(timedelta(hours=8))
Category = Literal["transactional", "reminder", "announcement"]
CATEGORIES: tuple[Category, ...] = ("transactional", "reminder", "announcement")
# a placeholder's type says what data it takes and how it reads:
# text (≤ 64 characters a person reads), paragraph (≤ 300, an announcement's), amount (integer fen,
# read as yuan), number (an integer), datetime / date (ISO 8601, read in China time), plate (a licence
# plate; masked outside the inbox)
PlaceholderType = Literal["text", "paragraph", "amount", "number", "datetime", "date", "plate"]
TemplateName = Annotated[str, Meta(pattern=r"^[a-z][a-z0-9_]{1,47}$")]
TemplateId = Annotated[str, Meta(pattern=r"^[a-z][a-z0-9-]{1,31}\.[a-z][a-z0-9_]{1,47}$")]
# no control characters, and nothing invisible or direction-changing that could make a text read as
# something else (the owners' reasons shown to citizens follow the same rule): besides the C0/C1 controls
# and the bidi embeddings, overrides and isolates, the Arabic letter mark (U+061C, a bidi mark too), the
# Mongolian vowel separator, the line and paragraph separators (a line break a single-line title may not
# hold), the word joiner and the invisible operators, and the byte-order mark
BAD_CHARS = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u2069\ufeff]"
)
_PLATE = re.compile(r"^[\u4e00-\u9fff][A-Z][A-Z0-9]{5,6}$")
LINK = r"^(/(?!/)[A-Za-z0-9/_\-.?=&%#]*)?$"
TextLine = Annotated[str, Meta(min_length=1, max_length=120)]
BodyText = Annotated[str, Meta(min_length=1, max_length=400)]


class Template(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A message a sender may send, as declared (an operator approves exactly this)."""

    category: Category
    title_zh: TextLine
    title_en: TextLine
    body_zh: BodyText
    body_en: BodyText
    # placeholder name -> type; every {name} in the texts is one of these, and every one is used
    placeholders: dict[str, PlaceholderType] = msgspec.field(default_factory=dict)
    # urgent: not held by quiet hours, and sent by SMS when not read within the configured time
    urgent: bool = False
    # where the app opens it (a path of the web wallet or the mini-app, with a query or a #fragment; no
    # scheme and no "//host": never a foreign site)
    link: Annotated[str, Meta(max_length=200, pattern=LINK)] = ""
    description: Annotated[str, Meta(max_length=200)] = ""  # for the operator who approves it

    def problems(self) -> list[str]:
        out = []
        used: set[str] = set()
        for text in (self.title_zh, self.title_en, self.body_zh, self.body_en):
            if BAD_CHARS.search(text):
                out.append("texts may not hold control or direction-changing characters")
            try:
                used |= {f for _, f, _, _ in string.Formatter().parse(text) if f is not None}
            except ValueError as exc:
                out.append(f"bad placeholder syntax: {exc}")
        if bad := {f for f in used if not re.fullmatch(r"[a-z][a-z0-9_]{0,31}", f)}:
            out.append(f"placeholders are plain names: {sorted(bad)}")
        if unknown := used - set(self.placeholders):
            out.append(f"texts use undeclared placeholders {sorted(unknown)}")
        if unused := set(self.placeholders) - used:
            out.append(f"declared placeholders never used {sorted(unused)}")
        if not re.match(LINK, self.link):  # checked here too for templates made in code, not decoded
            out.append("a link is a path of this site (/wallet#orders), never another site's address")
        if self.urgent and self.category != "transactional":
            out.append("only transactional messages may be urgent")
        return out

    def digest(self) -> str:
        """What an approval is of: a changed text needs approving again."""
        return hashlib.sha256(msgspec.json.encode(self)).hexdigest()


def check_data(template: Template, data: Any) -> dict[str, Any]:
    """The data for ``template``'s placeholders, checked and normalised; InvalidInput names every problem."""
    if not isinstance(data, dict):
        raise InvalidInput(
            "data must be an object of the template's placeholders",
            code="invalid_message_data",
            problems="data must be an object",
        )
    problems = []
    if unknown := set(data) - set(template.placeholders):
        problems.append(f"unknown placeholders {sorted(map(str, unknown))[:5]}")
    out: dict[str, Any] = {}
    for name, kind in template.placeholders.items():
        if name not in data:
            problems.append(f"{name}: missing")
            continue
        try:
            out[name] = _check(kind, data[name])
        except ValueError as exc:
            problems.append(f"{name}: {exc}")
    if problems:
        raise InvalidInput(
            "the data does not fit the template: " + "; ".join(problems),
            code="invalid_message_data",
            problems="; ".join(problems),
        )
    return out


def _check(kind: PlaceholderType, value: Any) -> Any:
    if kind in ("amount", "number"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("an integer" + (" (fen)" if kind == "amount" else ""))
        if kind == "amount" and not 0 <= value <= 10**12:
            raise ValueError("an amount in fen, 0 or more")
        return value
    if not isinstance(value, str):
        raise ValueError("a string")
    if kind in ("text", "paragraph"):
        most = 64 if kind == "text" else 300
        if not 1 <= len(value) <= most or BAD_CHARS.search(value):
            raise ValueError(f"1-{most} characters with no control or direction-changing ones")
        return value
    if kind == "plate":
        if not _PLATE.match(value):
            raise ValueError("a plate like 辽A12345")
        return value
    if kind == "date":
        try:
            return datetime.strptime(value, "%Y-%m-%d").date().isoformat()
        except ValueError:
            raise ValueError("a date YYYY-MM-DD") from None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("an ISO 8601 time with its offset") from None
    if when.tzinfo is None:
        raise ValueError("an ISO 8601 time with its offset")
    try:  # year 1 at +14:00 is before UTC's year 1, and year 9999 in the evening after China's
        when.astimezone(CHINA)
        return when.astimezone(UTC).isoformat()
    except OverflowError:
        raise ValueError("an ISO 8601 time with its offset, within the calendar") from None


def _read(kind: PlaceholderType, value: Any, locale: str, masked: bool) -> str:
    if kind == "amount":
        yuan = f"{value // 100}.{value % 100:02d}"
        return f"¥{yuan}" if locale == "en" else f"{yuan} 元"
    if kind == "number":
        return str(value)
    if kind == "plate":
        return value[:2] + "***" + value[-1] if masked else value
    if kind == "date":
        day = datetime.fromisoformat(value)
        return day.strftime("%d %b %Y") if locale == "en" else f"{day.year}年{day.month}月{day.day}日"
    if kind == "datetime":
        at = datetime.fromisoformat(value).astimezone(CHINA)
        return at.strftime("%d %b %H:%M") if locale == "en" else f"{at.month}月{at.day}日 {at:%H:%M}"
    return str(value)


def render(template: Template, data: dict[str, Any], locale: str, *, masked: bool = False) -> tuple[str, str]:
    """(title, body) in ``locale`` ("zh-CN" or "en"); ``masked`` hides what a lock screen or an SMS
    should not show (a plate)."""
    values = {name: _read(kind, data[name], locale, masked) for name, kind in template.placeholders.items()}
    if locale == "en":
        return template.title_en.format_map(values), template.body_en.format_map(values)
    return template.title_zh.format_map(values), template.body_zh.format_map(values)


def content(template: Template, data: dict[str, Any]) -> dict[str, Any]:
    """What a message keeps: its text in both languages as sent (a later template change leaves it), and
    the masked Chinese text an SMS or a lock screen shows."""
    zh_title, zh_body = render(template, data, "zh-CN")
    en_title, en_body = render(template, data, "en")
    masked_title, masked_body = render(template, data, "zh-CN", masked=True)
    masked_en_title, masked_en_body = render(template, data, "en", masked=True)
    return {
        "zh-CN": {"title": zh_title, "body": zh_body},
        "en": {"title": en_title, "body": en_body},
        "masked": {
            "zh-CN": {"title": masked_title, "body": masked_body},
            "en": {"title": masked_en_title, "body": masked_en_body},
        },
    }
