"""Structured (JSON) logs with the request id on every line and personal data masked.

Masking here is the last line of defence: code masks phone and ID numbers itself before logging, and
this filter rewrites anything that still looks like a mainland mobile number, an 18-character resident
ID number or a bearer token before a line leaves the process. Numbers are caught as people write them
too: a mobile number grouped 3-4-4 with spaces or dashes, behind +86 / 0086 / 86; an ID number grouped
6-8-4 or 6-4-4-4. Digits that run on into more digits (a timestamp, a longer id) are not masked.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

from backend.context import request_id_var

_SEP = r"[ \-]?"  # how people group digits: nothing, a space or a dash
# 18 characters, optionally grouped 6-8-4 or 6-4-4-4: the first four and the last four stay readable
_ID_NUMBER = re.compile(
    rf"(?<![0-9A-Za-z])(\d{{4}})\d{{2}}{_SEP}\d{{4}}{_SEP}\d{{4}}{_SEP}(\d{{3}}[\dXx])(?![0-9A-Za-z])"
)
# 11 digits from 13x-19x, optionally grouped 3-4-4 and behind a country code (+86, 0086, 86)
_PHONE = re.compile(rf"(?<!\d)((?:(?:\+|00)?86{_SEP})?1[3-9]\d){_SEP}\d{{4}}{_SEP}(\d{{4}})(?!\d)")
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}")
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}")

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def mask_text(text: str) -> str:
    text = _ID_NUMBER.sub(lambda m: m.group(1) + "*" * 10 + m.group(2), text)
    text = _PHONE.sub(lambda m: m.group(1) + "****" + m.group(2), text)
    text = _BEARER.sub(r"\1[redacted]", text)
    return _JWT.sub("[redacted-jwt]", text)


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = getattr(record, "request_id", None)
        if rid:
            entry["request_id"] = rid
        for key, value in vars(record).items():
            if key not in _STANDARD and key != "request_id" and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return mask_text(json.dumps(entry, ensure_ascii=False, default=str))


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        rid = getattr(record, "request_id", None)
        prefix = f"[{rid}] " if rid else ""
        return mask_text(f"{record.levelname:<7} {record.name}: {prefix}{super().format(record)}")


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = request_id_var.get()
        return True


def configure_logging(level: str = "INFO", json_lines: bool = True) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter() if json_lines else TextFormatter("%(message)s"))
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_shengshitong", False):
            root.removeHandler(old)
    handler._shengshitong = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    logging.getLogger("shengshitong").setLevel(level)
    if root.level == logging.NOTSET or root.level > logging.getLevelName(level):
        root.setLevel(level)
