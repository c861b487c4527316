"""Statistics of the evaluation centre: per service, unit, district or month, over a range of months
(China time), two grouped queries (ratings, cases) over the months listed (see :func:`_months`). Ratings
whose appeal was upheld are out (``counted`` false) and their cases void.

- satisfaction rate: good ratings (非常满意, 满意, 基本满意) / ratings; bad-rating rate: 不满意 and 非常不满意
  / ratings; average: the mean level (1-5);
- feedback rate: cases answered (rectified or explained) / cases; rectification rate: cases rectified /
  cases answered; on-time rate: cases answered by their deadline / cases answered; overdue: cases past
  their deadline with no answer yet; call-back satisfaction: good call-backs / call-backs.
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any, Literal

from auth._profile import DISTRICTS
from backend.clock import Clock
from backend.errors import InvalidInput
from backend.i18n import pick
from ratings._catalogue import Declared
from ratings.rules import rate
from ratings.tables import Rating, RatingCase, RatingUnit

By = Literal["unit", "service", "district", "month"]
_KEYS: dict[str, str] = {"unit": "unit_id", "service": "service", "district": "district", "month": "month"}
COLUMNS = (
    "key",
    "name",
    "rank",
    "ratings",
    "good",
    "bad",
    "average",
    "satisfaction_rate",
    "bad_rate",
    "cases",
    "answered",
    "rectified",
    "explained",
    "on_time",
    "overdue",
    "appeals_upheld",
    "feedback_rate",
    "rectification_rate",
    "on_time_rate",
    "callback_satisfaction",
)


# ASCII digits, the month with its zero: strptime also took "２０２６-11" (a 500 in the CSV's file name)
# and "2026-1" (compared as text with "2026-10", a range of the wrong months)
MONTH = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")
# a range of up to this many months is asked as ``month IN (…)``: see _months
MONTHS_LISTED = 120


def _months(first: str, last: str) -> tuple[str, list[Any]]:
    """The months from ``first`` to ``last`` (both checked: YYYY-MM) as a condition and its values:
    ``month IN ({}, …)``, one value a month. Not ``month >= {} AND month <= {}``: on PostgreSQL a
    statement run a few times on a pooled connection gets a generic plan, which guesses that a range of
    unknown bounds holds 0.5 % of the rows; for a month's ratings it then walks the (month, unit_id) index
    over every row of the month (3x the CPU of a sequential scan at 100,000 ratings). A list is guessed
    as that many months' share of the table, the same as a plan for the values. Ranges longer than
    MONTHS_LISTED stay ranges: the same rows either way."""
    year, month = int(first[:4]), int(first[5:7])
    months: list[Any] = []
    while len(months) <= MONTHS_LISTED:
        value = f"{year:04d}-{month:02d}"
        if value > last:
            return f"month IN ({', '.join('{}' for _ in months)})", months
        months.append(value)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return "month >= {} AND month <= {}", [first, last]


def check_month(value: str) -> str:
    if not MONTH.fullmatch(value):
        raise InvalidInput("a month is YYYY-MM", code="invalid_month")
    return value


class Stats:
    def __init__(self, clock: Clock, declared: Declared) -> None:
        self._clock = clock
        self._service = declared.names

    async def compute(
        self, by: By, *, month_from: str, month_to: str, owner: str | None = None
    ) -> list[dict[str, Any]]:
        """One row per ``by`` key with ratings or cases in the months, best satisfaction first (ranked
        when grouped by unit); ``owner``: only that mini-app's units."""
        key = _KEYS[by]
        if check_month(month_from) > check_month(month_to):
            raise InvalidInput("the first month comes after the last", code="invalid_month")
        where, args = _months(month_from, month_to)
        if owner is not None:
            where += " AND unit_id LIKE {}"
            args.append(f"{owner}/%")
        # the key is one of four column names above, never input; values are parameters
        ratings = await Rating.raw(
            f"SELECT {key} AS k, COUNT(*) AS total,"  # noqa: S608
            " SUM(CASE WHEN level >= 3 THEN 1 ELSE 0 END) AS good,"
            " SUM(CASE WHEN level <= 2 THEN 1 ELSE 0 END) AS bad,"
            " SUM(level) AS points"
            f" FROM rating WHERE counted = {{}} AND {where} GROUP BY {key}",
            True,
            *args,
        ).run()
        cases = await RatingCase.raw(
            f"SELECT {key} AS k,"  # noqa: S608
            " SUM(CASE WHEN state <> 'void' THEN 1 ELSE 0 END) AS cases,"
            " SUM(CASE WHEN state IN ('answered', 'closed') THEN 1 ELSE 0 END) AS answered,"
            " SUM(CASE WHEN state IN ('answered', 'closed') AND outcome = 'rectified' THEN 1 ELSE 0 END)"
            " AS rectified,"
            " SUM(CASE WHEN state IN ('answered', 'closed') AND on_time THEN 1 ELSE 0 END) AS on_time,"
            " SUM(CASE WHEN state IN ('open', 'rectifying') AND deadline <= {} THEN 1 ELSE 0 END)"
            " AS overdue,"
            " SUM(CASE WHEN state = 'void' THEN 1 ELSE 0 END) AS void,"
            " SUM(CASE WHEN state <> 'void' AND callback_level IS NOT NULL THEN 1 ELSE 0 END) AS callbacks,"
            " SUM(CASE WHEN state <> 'void' AND callback_level >= 3 THEN 1 ELSE 0 END) AS callbacks_good"
            f" FROM rating_case WHERE {where} GROUP BY {key}",
            self._clock.now(),
            *args,
        ).run()
        names = await self._names(by, {r["k"] for r in ratings} | {r["k"] for r in cases})
        by_case = {r["k"]: r for r in cases}
        by_rating = {r["k"]: r for r in ratings}
        empty = {"total": 0, "good": 0, "bad": 0, "points": 0}
        rows = []
        for k in sorted(set(by_rating) | set(by_case)):
            r = by_rating.get(k) or empty
            c = by_case.get(k) or {}
            total, good, bad = int(r["total"]), int(r["good"] or 0), int(r["bad"] or 0)
            n_cases, answered = int(c.get("cases") or 0), int(c.get("answered") or 0)
            rectified, on_time = int(c.get("rectified") or 0), int(c.get("on_time") or 0)
            callbacks = int(c.get("callbacks") or 0)
            rows.append(
                {
                    "key": k,
                    "name": names.get(k, k),
                    "rank": None,
                    "ratings": total,
                    "good": good,
                    "bad": bad,
                    "average": round(int(r["points"] or 0) / total, 2) if total else None,
                    "satisfaction_rate": rate(good, total),
                    "bad_rate": rate(bad, total),
                    "cases": n_cases,
                    "answered": answered,
                    "rectified": rectified,
                    "explained": answered - rectified,
                    "on_time": on_time,
                    "overdue": int(c.get("overdue") or 0),
                    "appeals_upheld": int(c.get("void") or 0),
                    "feedback_rate": rate(answered, n_cases),
                    "rectification_rate": rate(rectified, answered),
                    "on_time_rate": rate(on_time, answered),
                    "callback_satisfaction": rate(int(c.get("callbacks_good") or 0), callbacks),
                }
            )
        if by == "month":
            return rows
        rows.sort(key=lambda x: (-(x["satisfaction_rate"] or 0), -x["ratings"], x["key"]))
        if by == "unit":
            for place, row in enumerate(rows, start=1):
                row["rank"] = place
        return rows

    async def _names(self, by: str, keys: set[str]) -> dict[str, str]:
        if by == "unit" and keys:
            units = (
                await RatingUnit.select(RatingUnit.unit_id, RatingUnit.name_zh, RatingUnit.name_en)
                .where(RatingUnit.unit_id.is_in(sorted(keys)))
                .run()
            )
            return {u["unit_id"]: pick(u["name_zh"], u["name_en"]) for u in units}
        if by == "service":
            return {k: pick(*self._service(k)) for k in keys}
        if by == "district":
            return {k: pick(*DISTRICTS[k]) if k in DISTRICTS else pick("全市", "City-wide") for k in keys}
        return {k: k for k in keys}


def to_csv(rows: list[dict[str, Any]]) -> str:
    """The rows as CSV with a byte-order mark (Excel then reads the Chinese names), rates as percentages."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for row in rows:
        values = []
        for column in COLUMNS:
            value = row[column]
            if column.endswith(("_rate", "_satisfaction")) and value is not None:
                value = f"{value * 100:.2f}%"
            text = "" if value is None else str(value)
            if text[:1] in ("=", "+", "-", "@"):  # never a formula in a spreadsheet
                text = "'" + text
            values.append(text)
        writer.writerow(values)
    return out.getvalue()
