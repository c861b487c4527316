"""Payment statistics (对账统计) from the ledger, and the reconciliation runs operators look through.

Statistics count what moved through the channels: a payment (an overpayment too: money the channel
took) debits ``channel:<name>``, a refund credits it. A movement belongs to the day (China time) the
channel says the money moved, or, when it told none, the day we booked it: the same day reconciliation
puts it under. Grouped per channel, per merchant (the order's owner: ``merchant:<client id>`` or
``miniapp:<app id>``) or per day.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, time, timedelta
from typing import Any, Literal

from backend.errors import InvalidInput
from payments.reconciliation import CHINA
from payments.tables import LedgerEntry, ReconciliationRun

Group = Literal["channel", "merchant", "day"]
PAYMENT_KINDS = ("payment", "overpayment")
MAX_DAYS = 366
STAT_FIELDS = ["key", "payments", "payment_total", "refunds", "refund_total", "net"]


def _range(start: date, end: date) -> tuple[datetime, datetime]:
    if start > end or (end - start).days >= MAX_DAYS:
        raise InvalidInput(
            f"from ({start}) must not be after to ({end}), {MAX_DAYS} days at most", code="invalid_statistics"
        )
    return datetime.combine(start, time(0), CHINA), datetime.combine(end + timedelta(days=1), time(0), CHINA)


async def statistics(start: date, end: date, group: Group) -> dict[str, Any]:
    """Counts and totals (fen) of payments, refunds and the net per ``group`` from ``start`` to ``end``
    (days, China time, both included), and over all."""
    lo, hi = _range(start, end)
    rows = (
        await LedgerEntry.select(
            LedgerEntry.amount,
            LedgerEntry.kind,
            LedgerEntry.channel,
            LedgerEntry.channel_time,
            LedgerEntry.created_at,
            LedgerEntry.order.owner.as_alias("owner"),
        )
        .where(
            LedgerEntry.account.like("channel:%")
            & (
                ((LedgerEntry.channel_time >= lo) & (LedgerEntry.channel_time < hi))
                | (
                    LedgerEntry.channel_time.is_null()
                    & (LedgerEntry.created_at >= lo)
                    & (LedgerEntry.created_at < hi)
                )
            )
        )
        .run()
    )
    groups: dict[str, dict[str, Any]] = {}
    total = _zero("")
    for r in rows:
        when = r["channel_time"] or r["created_at"]
        key = {
            "channel": r["channel"],
            "merchant": r["owner"],
            "day": when.astimezone(CHINA).date().isoformat(),
        }[group]
        for bucket in (groups.setdefault(key, _zero(key)), total):
            if r["kind"] in PAYMENT_KINDS:
                bucket["payments"] += 1
                bucket["payment_total"] += r["amount"]
            else:
                bucket["refunds"] += 1
                bucket["refund_total"] += -r["amount"]
            bucket["net"] = bucket["payment_total"] - bucket["refund_total"]
    total.pop("key")
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "group": group,
        "rows": [groups[k] for k in sorted(groups)],
        "totals": total,
    }


def _zero(key: str) -> dict[str, Any]:
    return {"key": key, "payments": 0, "payment_total": 0, "refunds": 0, "refund_total": 0, "net": 0}


def statistics_csv(stats: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=STAT_FIELDS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(stats["rows"])
    writer.writerow({"key": "total", **stats["totals"]})
    return out.getvalue()


async def runs(start: date, end: date, channel: str | None = None) -> list[dict[str, Any]]:
    """Reconciliation runs of the days from ``start`` to ``end`` (newest day first, the latest run of a
    day and channel first), each with its mismatches."""
    _range(start, end)
    where: Any = (ReconciliationRun.day >= start.isoformat()) & (ReconciliationRun.day <= end.isoformat())
    if channel:
        where &= ReconciliationRun.channel == channel
    rows = (
        await ReconciliationRun.select()
        .where(where)
        .order_by(ReconciliationRun.day, ascending=False)
        .order_by(ReconciliationRun.channel)
        .order_by(ReconciliationRun.created_at, ascending=False)
        .run()
    )
    out = []
    for r in rows:
        mismatches = r["mismatches"] if isinstance(r["mismatches"], list) else json.loads(r["mismatches"])
        out.append(
            {
                "run_id": str(r["id"]),
                "day": r["day"],
                "channel": r["channel"],
                "source": r["source"],
                "statement_rows": r["statement_rows"],
                "ledger_rows": r["ledger_rows"],
                "created_at": r["created_at"].isoformat(),
                "mismatches": mismatches,
            }
        )
    return out
