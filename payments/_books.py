"""What every money change of the payment centre shares: the order's row lock, the ledger's double
entry, the outbox event, and the order as the API shows it.

Every change of an order's money state (a payment, a refund, a refund request, a close, a deferred
charge) runs in one transaction that first reads the order with :func:`locked_order`, then decides from
what it read, changes the order, writes its ledger rows (:func:`ledger`) and its outbox event
(:func:`outbox`). Two changes of one order therefore queue behind each other on PostgreSQL (SQLite's
IMMEDIATE write transactions serialise every writer anyway).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from backend import db
from backend.errors import NotFound
from payments.tables import LedgerEntry, OutboxEvent, PaymentOrder

PAYABLE_STATES = ("created", "paying")
PAID_STATES = ("paid", "partially_refunded", "refunded")
SUSPENSE = "suspense:overpaid"  # money held for citizens: payments an order did not need, until refunded
REFUND_KINDS = ("refund", "overpay_refund")


def order_view(
    row: Mapping[str, Any],
    refunds: Sequence[Mapping[str, Any]] | None = None,
    overpayments: Sequence[Mapping[str, Any]] | None = None,
    *,
    pay_link: dict[str, str] | None = None,
    merchant_name: str | None = None,
) -> dict[str, Any]:
    return {
        "order_id": str(row["id"]),
        "reference": row["reference"],
        "app_id": row["app_id"],
        "owner": row["owner"],
        "amount": row["amount"],
        "currency": row["currency"],
        "state": row["state"],
        "deferred": row["deferred"],
        "channel": row["channel"],
        "refunded": row["refunded"],
        "description": row["description"],
        "created_at": row["created_at"],
        "paid_at": row["paid_at"],
        "closed_at": row["closed_at"],
        "expires_at": row["expires_at"],
        "refunds": [
            {
                "refund_id": str(r["id"]),
                "amount": r["amount"],
                "state": r["state"],
                "reason": r["reason"],
                "failure": r["failure"],
                "created_at": r["created_at"],
                "succeeded_at": r["succeeded_at"],
                "failed_at": r["failed_at"],
            }
            for r in refunds or []
        ],
        "overpayments": [
            {
                "overpayment_id": str(o["id"]),
                "channel": o["channel"],
                "amount": o["amount"],
                "refunded": o["refunded"],
                "reason": o["reason"],
                "state": o["state"],
                "created_at": o["created_at"],
                "refunded_at": o["refunded_at"],
            }
            for o in overpayments or []
        ],
        "pay_link": pay_link,
        "merchant_name": merchant_name,
    }


def order_uuid(order_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(order_id)
    except ValueError:
        raise NotFound("no such order", code="order_not_found") from None


def locked_order(oid: uuid.UUID) -> Any:
    """The order, locked until the surrounding transaction ends (see the module's docstring)."""
    return db.for_update(PaymentOrder.select().where(PaymentOrder.id == oid)).first()


ALL_ORDER_COLUMNS = PaymentOrder.all_columns()


async def outbox(order: Mapping[str, Any], type_: str, now: datetime, **extra: Any) -> None:
    """The event for a state change, from the order row as the change left it (no second read)."""
    payload = {
        k: (v.isoformat() if isinstance(v, datetime) else v)
        for k, v in order_view(order).items()
        if k not in ("refunds", "overpayments", "pay_link", "merchant_name")
    }
    payload.update(extra)
    await OutboxEvent.insert(
        OutboxEvent(order=order["id"], type=type_, payload=payload, created_at=now)
    ).run()


async def ledger(
    order: Mapping[str, Any],
    kind: str,
    debit: str,
    credit: str,
    amount: int,
    *,
    channel: str,
    channel_txn: str,
    now: datetime,
    channel_time: datetime | None = None,
    refund: Any = None,
) -> None:
    """One movement: ``amount`` debited to ``debit`` and credited to ``credit`` (two rows summing to 0),
    booked ``now``, moved at the channel at ``channel_time`` (if it told)."""
    await LedgerEntry.insert(
        *(
            LedgerEntry(
                order=order["id"],
                refund=refund,
                account=account,
                amount=signed,
                kind=kind,
                channel=channel,
                channel_txn=channel_txn,
                created_at=now,
                channel_time=channel_time,
            )
            for account, signed in ((debit, amount), (credit, -amount))
        )
    ).run()
