"""Daily reconciliation (对账): our ledger against a channel's statement for one day.

The statement is CSV with a header row: ``txn_id,order_id,type,amount_fen`` (``type`` is ``payment`` or
``refund``; amounts positive). The day is the channel's business day in China time (UTC+8), as
channels cut their statements: a ledger movement belongs to the day the channel says the money moved
(``ledger_entry.channel_time``: WeChat's success_time, Alipay's gmt_payment / gmt_refund), or, when the
channel told no time, the day we booked it. Rows are matched by (type, transaction), then what is left
on each side is paired by (type, order). Mismatches:

- ``missing_ours``: on the statement, not in our ledger;
- ``missing_theirs``: in our ledger, not on the statement;
- ``amount_differs``: one transaction, two amounts;
- ``txn_differs``: one order's payment (or refund) under one transaction id here and another there
  (``their_txn_id``), instead of a missing row on each side;
- ``duplicate_ours`` / ``duplicate_theirs``: one transaction booked ``count`` times (amounts summed).

A payment an order did not need (an overpayment, held for refund) is money the channel took: it is in
our ledger as a payment of its own transaction and matches its statement row.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Callable, Iterable
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from payments.channels.base import Statement
from payments.tables import LedgerEntry, ReconciliationRun

CHINA = timezone(timedelta(hours=8))
FIELDS = ("txn_id", "order_id", "type", "amount_fen")


class StatementError(ValueError):
    pass


def read_statement(text: str) -> list[dict[str, Any]]:
    reader = csv.DictReader(io.StringIO(text))
    try:
        fieldnames = reader.fieldnames
        records = list(enumerate(reader, start=2))
    except csv.Error as exc:  # a field past the csv module's limit, a NUL
        raise StatementError(f"the statement is not readable CSV ({exc})") from None
    if fieldnames is None or not set(FIELDS) <= set(fieldnames):
        raise StatementError(f"the statement's header must name {', '.join(FIELDS)}")
    rows = []
    for n, row in records:
        text_amount = row["amount_fen"] or ""
        # ASCII digits: int() alone takes full-width digits and underscores
        if not (text_amount.isascii() and text_amount.strip().lstrip("-").isdigit()):
            raise StatementError(f"line {n}: amount_fen is not a whole number")
        try:
            amount = int(text_amount)
        except (TypeError, ValueError):
            raise StatementError(f"line {n}: amount_fen is not a whole number") from None
        if row["type"] not in ("payment", "refund") or amount < 0:
            raise StatementError(f"line {n}: type must be payment or refund, amount not negative")
        rows.append(
            {"txn_id": row["txn_id"], "order_id": row["order_id"], "type": row["type"], "amount": amount}
        )
    return rows


def statement_rows(statement: Statement) -> list[dict[str, Any]]:
    """A channel's parsed statement as the rows :func:`compare` reads."""
    return [
        {"txn_id": r.txn_id, "order_id": r.order_id, "type": r.type, "amount": r.amount}
        for r in statement.rows
    ]


async def reconcile(
    statement: Statement, *, source: str, progress: Callable[[int], None] | None = None
) -> dict[str, Any]:
    """Compare the ledger with ``statement`` (its channel and day) and store the run: {run_id,
    statement_rows, ledger_rows, mismatches}."""
    theirs = statement_rows(statement)
    ours = await ledger_day(statement.channel, statement.day)
    mismatches = compare(ours, theirs, progress=progress)
    run_id = uuid.uuid4()
    await ReconciliationRun.insert(
        ReconciliationRun(
            id=run_id,
            day=statement.day.isoformat(),
            channel=statement.channel,
            statement_rows=len(theirs),
            ledger_rows=len(ours),
            mismatches=mismatches,
            source=source,
        )
    ).run()
    return {
        "run_id": str(run_id),
        "statement_rows": len(theirs),
        "ledger_rows": len(ours),
        "mismatches": mismatches,
    }


LEDGER_TYPES = {
    "payment": "payment",
    "overpayment": "payment",
    "refund": "refund",
    "overpay_refund": "refund",
}


async def ledger_day(channel: str, day: date) -> list[dict[str, Any]]:
    """Our side of ``day`` (China time) for ``channel``: the movements the channel made that day by its
    own time (``channel_time``), or, when it told none, the ones we booked that day."""
    start = datetime.combine(day, time(0), CHINA)
    end = start + timedelta(days=1)
    rows = (
        await LedgerEntry.select(
            LedgerEntry.order, LedgerEntry.amount, LedgerEntry.kind, LedgerEntry.channel_txn
        )
        .where(
            (LedgerEntry.account == f"channel:{channel}")
            & (
                ((LedgerEntry.channel_time >= start) & (LedgerEntry.channel_time < end))
                | (
                    LedgerEntry.channel_time.is_null()
                    & (LedgerEntry.created_at >= start)
                    & (LedgerEntry.created_at < end)
                )
            )
        )
        .run()
    )
    return [
        {
            "txn_id": r["channel_txn"],
            "order_id": str(r["order"]),
            "type": LEDGER_TYPES.get(r["kind"], r["kind"]),
            "amount": abs(r["amount"]),
        }
        for r in rows
    ]


def _by(rows: Iterable[dict[str, Any]], *fields: str) -> dict[tuple[Any, ...], list[dict[str, Any]]]:
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(tuple(r[f] for f in fields), []).append(r)
    return groups


def compare(
    ours: Iterable[dict[str, Any]],
    theirs: Iterable[dict[str, Any]],
    progress: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    mine = _by(ours, "type", "txn_id")
    statement = _by(theirs, "type", "txn_id")
    mismatches: list[dict[str, Any]] = []
    lone_ours: list[dict[str, Any]] = []
    lone_theirs: list[dict[str, Any]] = []
    for key in [*statement, *(k for k in mine if k not in statement)]:
        here, there = mine.get(key, []), statement.get(key, [])
        if len(here) > 1:
            mismatches.append(_row("duplicate_ours", here, there))
        if len(there) > 1:
            mismatches.append(_row("duplicate_theirs", here, there))
        if not here:
            lone_theirs.append(there[0])
        elif not there:
            lone_ours.append(here[0])
        elif len(here) == len(there) == 1 and here[0]["amount"] != there[0]["amount"]:
            mismatches.append(_row("amount_differs", here, there))
        if progress and there:
            progress(len(there))
    # what is left on both sides for one order: the same movement under two transaction ids
    left = _by(lone_theirs, "type", "order_id")
    for key, ours_left in _by(lone_ours, "type", "order_id").items():
        theirs_left = left.get(key, [])
        for mine_row in list(ours_left):
            match = next((t for t in theirs_left if t["amount"] == mine_row["amount"]), None)
            match = match or (theirs_left[0] if theirs_left else None)
            if match is not None:
                theirs_left.remove(match)
                ours_left.remove(mine_row)
                mismatches.append(_row("txn_differs", [mine_row], [match]))
        mismatches.extend(_row("missing_theirs", [r], []) for r in ours_left)
    for theirs_left in left.values():
        mismatches.extend(_row("missing_ours", [], [r]) for r in theirs_left)
    return mismatches


def _row(kind: str, ours: list[dict[str, Any]], theirs: list[dict[str, Any]]) -> dict[str, Any]:
    base = (ours or theirs)[0]
    return {
        "kind": kind,
        "txn_id": base["txn_id"],
        "their_txn_id": theirs[0]["txn_id"] if kind == "txn_differs" else "",
        "order_id": base["order_id"],
        "type": base["type"],
        "our_amount": sum(r["amount"] for r in ours) if ours else None,
        "their_amount": sum(r["amount"] for r in theirs) if theirs else None,
        "count": len(ours) if kind == "duplicate_ours" else len(theirs) if kind == "duplicate_theirs" else 1,
    }


def summary(statement_rows: int, ledger_rows: int, mismatches: int) -> str:
    """``"3 statement rows, 1 ledger row, 1 mismatch"``."""

    def n(count: int, word: str) -> str:
        return f"{count} {word}{'' if count == 1 else 'es' if word.endswith('ch') else 's'}"

    return (
        f"{n(statement_rows, 'statement row')}, {n(ledger_rows, 'ledger row')}, {n(mismatches, 'mismatch')}"
    )


CSV_FIELDS = ["kind", "txn_id", "their_txn_id", "order_id", "type", "our_amount", "their_amount", "count"]


def to_csv(mismatches: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(mismatches)
    return out.getvalue()
