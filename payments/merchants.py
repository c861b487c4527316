"""What a partner merchant reads and manages: its orders, its settlement per day, its orders' QR codes
and its tills (the scanners that take citizen codes as pay codes)."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any

import segno

from auth._machines import MachineCredentials
from auth.tables import MachineClient
from backend.clock import Clock
from backend.errors import Conflict, InvalidInput, NotFound
from backend.live import Live
from codes.services import ScanService
from payments._books import PAYABLE_STATES, order_uuid
from payments.paycode import PAY_CONTEXT, PayCodeService
from payments.services import OrderService
from payments.tables import LedgerEntry, PaymentOrder

CHINA = timezone(timedelta(hours=8))
MAX_DAYS = 92  # a settlement report covers at most a quarter
ORDER_STATES = ("created", "paying", "paid", "partially_refunded", "refunded", "closed")
CSV_COLUMNS = ("day", "channel", "paid_count", "paid_amount", "refunded_amount", "net")


def day_start(day: date) -> datetime:
    """The first instant of a business day in China time, in UTC."""
    return datetime.combine(day, time(0), CHINA).astimezone(UTC)


def pay_link_qr(url: str, kind: str, scale: int = 6) -> bytes:
    """A pay link as a QR code (error correction M, the quiet zone of 4 modules a phone's camera needs);
    byte mode, as a URL with lower-case letters needs."""
    buf = io.BytesIO()
    code = segno.make_qr(url, error="m", boost_error=False)
    if kind == "svg":
        code.save(buf, kind="svg", scale=scale, border=4, title="pay", svgclass="qr", lineclass=None)
    else:
        code.save(buf, kind="png", scale=scale, border=4)
    return buf.getvalue()


def _totals() -> dict[str, int]:
    return {"paid_count": 0, "paid_amount": 0, "refunded_amount": 0, "net": 0}


def settlements_csv(days: list[dict[str, Any]]) -> str:
    """One row per day and channel, then the day's total under channel ``all``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for d in days:
        for channel, t in sorted(d["by_channel"].items()):
            writer.writerow([d["day"], channel, *(t[c] for c in CSV_COLUMNS[2:])])
        writer.writerow([d["day"], "all", *(d[c] for c in CSV_COLUMNS[2:])])
    return out.getvalue()


class MerchantService:
    def __init__(self, clock: Clock, orders: OrderService, machines: MachineCredentials) -> None:
        self.clock = clock
        self.orders = orders
        self.machines = machines

    # ---- orders ----------------------------------------------------------------------------------
    async def list_orders(
        self, owner: str, *, state: str | None, day: date | None, limit: int, offset: int
    ) -> list[dict[str, Any]]:
        """The owner's orders, newest first; ``day`` is a business day in China time."""
        where: Any = PaymentOrder.owner == owner
        if state is not None:
            if state not in ORDER_STATES:
                raise InvalidInput(
                    f"state is one of {', '.join(ORDER_STATES)}",
                    code="unknown_state",
                    states=list(ORDER_STATES),
                )
            where &= PaymentOrder.state == state
        if day is not None:
            if not in_range(day):
                raise InvalidInput("day is a day of the years 2000 to 2100", code="invalid_date")
            where &= (PaymentOrder.created_at >= day_start(day)) & (
                PaymentOrder.created_at < day_start(day + timedelta(days=1))
            )
        rows = (
            await PaymentOrder.select()
            .where(where)
            .order_by(PaymentOrder.created_at, ascending=False)
            .order_by(PaymentOrder.id)
            .limit(limit)
            .offset(offset)
            .run()
        )
        return [self.orders._view(r) for r in rows]

    async def qr(self, order_id: str, owner: str, kind: str) -> bytes:
        """The order's pay link as a QR code for the till's screen or printer (while someone may still
        take it: not claimed, not paid, not closed)."""
        row = await self.orders.get_for(order_id, owner=owner)
        if row["pay_link"] is None:
            raise Conflict(
                f"the order has no pay link any more (it is {row['state']}"
                + (", taken by a citizen)" if row["state"] in PAYABLE_STATES else ")"),
                code="no_pay_link",
                state=row["state"],
            )
        return pay_link_qr(row["pay_link"]["url"], kind)

    # ---- settlement --------------------------------------------------------------------------------
    async def settlements(self, owner: str, start: date, end: date) -> list[dict[str, Any]]:
        """Per business day (China time) from ``start`` to ``end`` inclusive: the payments to the owner
        (count, amount), its refunds, the net, and the same by channel, all read from the ledger's
        ``payable:<owner>`` account. A movement belongs to the day the channel says the money moved
        (``channel_time``), or the day it was booked when the channel told none, as in reconciliation."""
        if end < start:
            raise InvalidInput("'to' is before 'from'", code="bad_period")
        if (end - start).days + 1 > MAX_DAYS:
            raise InvalidInput(f"at most {MAX_DAYS} days at once", code="bad_period", max_days=MAX_DAYS)
        lo, hi = day_start(start), day_start(end + timedelta(days=1))
        rows = (
            await LedgerEntry.select(
                LedgerEntry.amount,
                LedgerEntry.kind,
                LedgerEntry.channel,
                LedgerEntry.created_at,
                LedgerEntry.channel_time,
            )
            .where(
                (LedgerEntry.account == f"payable:{owner}")
                # a channel's time is at most a day off our booking (a notice that came late)
                & (LedgerEntry.created_at >= lo - timedelta(days=1))
                & (LedgerEntry.created_at < hi + timedelta(days=1))
            )
            .run()
        )
        days: dict[date, dict[str, Any]] = {}
        day = start
        while day <= end:
            days[day] = {"day": day.isoformat(), **_totals(), "by_channel": defaultdict(_totals)}
            day += timedelta(days=1)
        for r in rows:
            at = r["channel_time"] or r["created_at"]
            if not lo <= at < hi:
                continue
            d = days[at.astimezone(CHINA).date()]
            by = d["by_channel"][r["channel"]]
            # the owner's account is credited (-) by a payment and debited (+) by a refund
            if r["kind"] == "payment":
                for t in (d, by):
                    t["paid_count"] += 1
                    t["paid_amount"] += -r["amount"]
                    t["net"] += -r["amount"]
            elif r["kind"] == "refund":
                for t in (d, by):
                    t["refunded_amount"] += r["amount"]
                    t["net"] -= r["amount"]
        return [{**d, "by_channel": dict(d["by_channel"])} for d in days.values()]

    # ---- tills -----------------------------------------------------------------------------------
    async def add_till(self, merchant_client_id: str, *, place: str, name: str) -> dict[str, Any]:
        """A till's credential (shown once): a scanner of the merchant's in the ``pay`` context."""
        return await self.machines.create(
            "till",
            name=name or place,
            app_id=merchant_client_id,
            place=place,
            context=PAY_CONTEXT,
            actor=f"merchant:{merchant_client_id}",
        )

    async def tills(self, merchant_client_id: str) -> list[dict[str, Any]]:
        """The merchant's tills, oldest first (revoked ones too, with ``revoked_at``)."""
        rows: list[dict[str, Any]] = (
            await MachineClient.select(
                MachineClient.client_id,
                MachineClient.name,
                MachineClient.place,
                MachineClient.context,
                MachineClient.created_at,
                MachineClient.last_seen_at,
                MachineClient.revoked_at,
            )
            .where((MachineClient.kind == "till") & (MachineClient.app_id == merchant_client_id))
            .order_by(MachineClient.created_at)
            .run()
        )
        return rows

    async def revoke_till(self, merchant_client_id: str, client_id: str) -> None:
        if not any(t["client_id"] == client_id for t in await self.tills(merchant_client_id)):
            raise NotFound(f"no till {client_id}", code="credential_not_found")
        await self.machines.revoke(client_id, kind="till", actor=f"merchant:{merchant_client_id}")


def parse_day(value: str, name: str) -> date:
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{name} is a day, YYYY-MM-DD", code="bad_period") from None
    if not in_range(day):
        raise InvalidInput(f"{name} is a day of the years 2000 to 2100", code="bad_period")
    return day


def in_range(day: date) -> bool:
    """A business day this service can have moved money on (and compute the bounds of)."""
    return 2000 <= day.year <= 2100


@dataclass(frozen=True)
class MerchantServices:
    merchants: MerchantService
    paycode: PayCodeService


def build_merchant_services(
    clock: Clock,
    orders: OrderService,
    machines: MachineCredentials,
    scans: ScanService,
    live: Live | None = None,
) -> MerchantServices:
    return MerchantServices(
        merchants=MerchantService(clock, orders, machines),
        paycode=PayCodeService(clock, orders, scans, live=live, merchants_active=machines.active),
    )


__all__ = ["MerchantService", "MerchantServices", "build_merchant_services", "order_uuid", "parse_day"]
