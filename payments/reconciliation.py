"""Daily reconciliation (对账): our ledger against a channel's statement for one day.

The statement is CSV with a header row: ``txn_id,order_id,type,amount_fen`` (``type`` is ``payment`` or
``refund``; amounts positive). The day is the channel's business day in China time (UTC+8), as
channels cut their statements. Mismatches: ``missing_ours`` (on the statement, not in our ledger),
``missing_theirs`` (in our ledger, not on the statement), ``amount_differs``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from payments.tables import LedgerEntry

CHINA = timezone(timedelta(hours=8))
FIELDS = ("txn_id", "order_id", "type", "amount_fen")


class StatementError(ValueError):
    pass


def read_statement(text: str) -> list[dict[str, Any]]:
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or not set(FIELDS) <= set(reader.fieldnames):
        raise StatementError(f"the statement's header must name {', '.join(FIELDS)}")
    rows = []
    for n, row in enumerate(reader, start=2):
        try:
            amount = int(row["amount_fen"])
        except (TypeError, ValueError):
            raise StatementError(f"line {n}: amount_fen is not a whole number") from None
        if row["type"] not in ("payment", "refund") or amount < 0:
            raise StatementError(f"line {n}: type must be payment or refund, amount not negative")
        rows.append(
            {"txn_id": row["txn_id"], "order_id": row["order_id"], "type": row["type"], "amount": amount}
        )
    return rows


async def ledger_day(channel: str, day: date) -> list[dict[str, Any]]:
    start = datetime.combine(day, time(0), CHINA)
    rows = (
        await LedgerEntry.select(
            LedgerEntry.order, LedgerEntry.amount, LedgerEntry.kind, LedgerEntry.channel_txn
        )
        .where(
            (LedgerEntry.account == f"channel:{channel}")
            & (LedgerEntry.created_at >= start)
            & (LedgerEntry.created_at < start + timedelta(days=1))
        )
        .run()
    )
    return [
        {
            "txn_id": r["channel_txn"],
            "order_id": str(r["order"]),
            "type": r["kind"],
            "amount": abs(r["amount"]),
        }
        for r in rows
    ]


def compare(
    ours: Iterable[dict[str, Any]],
    theirs: Iterable[dict[str, Any]],
    progress: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    mine = {(r["type"], r["txn_id"]): r for r in ours}
    mismatches = []
    seen = set()
    for r in theirs:
        key = (r["type"], r["txn_id"])
        seen.add(key)
        ours_row = mine.get(key)
        if ours_row is None:
            mismatches.append({"kind": "missing_ours", **_pair(None, r)})
        elif ours_row["amount"] != r["amount"]:
            mismatches.append({"kind": "amount_differs", **_pair(ours_row, r)})
        if progress:
            progress(1)
    for key, r in mine.items():
        if key not in seen:
            mismatches.append({"kind": "missing_theirs", **_pair(r, None)})
    return mismatches


def _pair(ours: dict[str, Any] | None, theirs: dict[str, Any] | None) -> dict[str, Any]:
    base = ours or theirs or {}
    return {
        "txn_id": base.get("txn_id", ""),
        "order_id": base.get("order_id", ""),
        "type": base.get("type", ""),
        "our_amount": None if ours is None else ours["amount"],
        "their_amount": None if theirs is None else theirs["amount"],
    }


def to_csv(mismatches: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(
        out, fieldnames=["kind", "txn_id", "order_id", "type", "our_amount", "their_amount"]
    )
    writer.writeheader()
    writer.writerows(mismatches)
    return out.getvalue()
