"""The non-tax fee centre: notices issued by departments, looked up and paid by citizens through the
payment centre's service API, recorded as paid from its order events, the day's statement for the
fiscal system and the reconciliation of the fiscal system's day file.

A notice is paid through a payment order the department owns (``department:<code>``), made without a
citizen (the first who pays it claims it, as a merchant's pay link is claimed): one open order per
notice at a time, chosen with the notice's row locked, so two citizens paying one notice at once reach
the same order and only one of them can pay it. An order that expires or whose amount no longer
matches (a late fee grew overnight) is replaced by the next (its reference ``<notice_no>-<n>``).
"""

from __future__ import annotations

import csv
import io
import logging
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

from auth.pii import (
    mask_id_number,
    mask_name,
    mask_phone,
    normalise_id_number,
    normalise_name,
    normalise_phone,
)
from auth.tables import Citizen
from backend import db
from backend.clock import Clock
from backend.crypto import Keyring
from backend.errors import Conflict, InvalidInput, NotFound, RateLimited
from backend.store import Store
from fees.numbers import new_number, well_formed
from fees.schemas import NoticeCreate
from fees.tables import FeeNotice, FeeReconciliation, FiscalDelivery
from messages.services import PLATFORM, MessageCentre, Outgoing
from payments.events import OrderEvent
from payments.services import PAID_STATES, PAYABLE_STATES, OrderService

log = logging.getLogger("shengshitong.fees")
CHINA = timezone(timedelta(hours=8))
APP_ID = "fees"  # the app id of the fee centre's payment orders


@dataclass(frozen=True)
class Department:
    code: str  # 执收单位编码
    name: str
    client_id: str


def owner_of(code: str) -> str:
    return f"department:{code}"


def china_day(at: datetime) -> date:
    return at.astimezone(CHINA).date()


def late_fee(row: Mapping[str, Any], today: date) -> int:
    """滞纳金 for paying on ``today``: the notice's daily rate for each day past the due date, never more
    than the amount itself (a late fee may not exceed the sum it is added to)."""
    days = (today - date.fromisoformat(row["due_date"])).days
    if days <= 0 or row["late_fee_bp"] <= 0:
        return 0
    return int(min(row["amount"], row["amount"] * row["late_fee_bp"] * days // 10_000))


def bad_number() -> InvalidInput:
    return InvalidInput(
        "a payment notice number is 20 digits starting 2101, the last a check digit: check it",
        code="invalid_notice_no",
    )


def not_found() -> NotFound:
    return NotFound("no such payment notice", code="notice_not_found")


class FeeCentre:
    def __init__(
        self,
        clock: Clock,
        store: Store,
        pii: Keyring,
        orders: OrderService,
        messages: MessageCentre,
        *,
        id_number_index: Callable[[str], str],
        phone_index: Callable[[str], str],
        lookups_per_minute: int = 20,
    ) -> None:
        self.clock = clock
        self._store = store
        self._pii = pii
        self.orders = orders
        self._messages = messages
        self._id_index = id_number_index
        self._phone_index = phone_index
        self.lookups_per_minute = lookups_per_minute

    # ---- views -----------------------------------------------------------------------------------
    def _today(self) -> date:
        return china_day(self.clock.now())

    def _due_now(self, row: Mapping[str, Any]) -> tuple[int, int]:
        """(late fee, amount due): what was paid for a paid notice, what paying today costs otherwise."""
        if row["state"] == "paid":
            return row["late_fee"], row["paid_amount"]
        fee = late_fee(row, self._today())
        return fee, row["amount"] + fee

    def view(self, row: Mapping[str, Any]) -> dict[str, Any]:
        fee, due = self._due_now(row)
        return {
            "notice_no": row["notice_no"],
            "reference": row["reference"],
            "department": row["department"],
            "department_name": row["department_name"],
            "item_code": row["item_code"],
            "item_name": row["item_name"],
            "amount": row["amount"],
            "late_fee_bp": row["late_fee_bp"],
            "due_date": row["due_date"],
            "description": row["description"],
            "payer_name": row["payer_name_masked"],
            "payer": row["payer_masked"],
            "payer_known": row["payer_citizen_id"] is not None,
            "state": row["state"],
            "late_fee": fee,
            "amount_due": due,
            "order_id": row["order_id"],
            "channel": row["channel"],
            "paid_at": row["paid_at"],
            "receipt_no": row["receipt_no"],
            "created_at": row["created_at"],
            "cancelled_at": row["cancelled_at"],
        }

    def public_view(self, row: Mapping[str, Any]) -> dict[str, Any]:
        fee, due = self._due_now(row)
        return {
            "notice_no": row["notice_no"],
            "department_name": row["department_name"],
            "item_code": row["item_code"],
            "item_name": row["item_name"],
            "amount": row["amount"],
            "late_fee": fee,
            "amount_due": due,
            "payer_name": row["payer_name_masked"],
            "due_date": row["due_date"],
            "description": row["description"],
            "state": row["state"],
            "paid_at": row["paid_at"],
            "receipt_no": row["receipt_no"],
        }

    # ---- departments: issuing --------------------------------------------------------------------
    def _payer(self, data: NoticeCreate) -> tuple[str, str, str, str]:
        """(kind, normalised value, index, masked) of the payer's ID number or phone."""
        if (data.payer_id_number is None) == (data.payer_phone is None):
            raise InvalidInput(
                "name the payer by payer_id_number or by payer_phone (one of them)",
                code="notice_payer_required",
            )
        if data.payer_id_number is not None:
            number = normalise_id_number(data.payer_id_number)
            return "id_number", number, self._id_index(number), mask_id_number(number)
        phone = normalise_phone(data.payer_phone or "")
        return "phone", phone, self._phone_index(phone), mask_phone(phone)

    async def _citizen_by(self, kind: str, index: str) -> str | None:
        """The citizen the payer is: by phone, or by an ID number a provider verified (实名)."""
        where: Any
        if kind == "phone":
            where = Citizen.phone_index == index
        else:
            where = (Citizen.id_number_index == index) & Citizen.real_name_verified_at.is_not_null()
        row = await Citizen.select(Citizen.id).where(where & (Citizen.status == "active")).first().run()
        return None if row is None else str(row["id"])

    async def issue(self, department: Department, data: NoticeCreate) -> tuple[dict[str, Any], bool]:
        """(notice, created): the same reference again is the same notice; with other content it is a
        conflict. A payer who is a citizen here is told in the inbox."""
        name = normalise_name(data.payer_name)
        kind, value, index, masked = self._payer(data)
        now = self.clock.now()
        if data.due_date < china_day(now):
            raise InvalidInput("the due date has passed", code="due_date_passed")
        key = f"{department.code}/{data.reference}"
        existing = await FeeNotice.select().where(FeeNotice.department_reference == key).first().run()
        created = False
        if existing is None:
            citizen_id = await self._citizen_by(kind, index)
            for _ in range(5):  # a number drawn twice (1 in 10^11 a draw) is drawn again
                notice_id = uuid.uuid4()
                number = new_number(china_day(now).year)
                try:
                    inserted = await (
                        FeeNotice.insert(
                            FeeNotice(
                                id=notice_id,
                                notice_no=number,
                                department=department.code,
                                department_name=department.name,
                                client_id=department.client_id,
                                reference=data.reference,
                                department_reference=key,
                                item_code=data.item_code,
                                item_name=data.item_name,
                                amount=data.amount,
                                late_fee_bp=data.late_fee_bp,
                                due_date=data.due_date.isoformat(),
                                description=data.description,
                                payer_name_sealed=self._pii.encrypt(name, f"fee:{notice_id}:name"),
                                payer_name_masked=mask_name(name),
                                payer_kind=kind,
                                payer_index=index,
                                payer_sealed=self._pii.encrypt(value, f"fee:{notice_id}:payer"),
                                payer_masked=masked,
                                payer_citizen_id=citizen_id,
                                created_at=now,
                                updated_at=now,
                            )
                        )
                        .on_conflict(target=FeeNotice.department_reference, action="DO NOTHING")
                        .returning(FeeNotice.id)
                        .run()
                    )
                except Exception as exc:
                    if db.unique_violation(exc):
                        continue
                    raise
                created = bool(inserted)
                break
            existing = await FeeNotice.select().where(FeeNotice.department_reference == key).first().run()
            assert existing is not None
            if created:
                log.info("fee notice issued", extra={"notice_no": number, "department": department.code})
                if citizen_id is not None:
                    await self._tell(existing, citizen_id)
                return self.view(existing), True
        same = (
            existing["amount"] == data.amount
            and existing["item_code"] == data.item_code
            and existing["payer_index"] == index
            and existing["due_date"] == data.due_date.isoformat()
        )
        if not same:
            raise Conflict(
                "this reference was used for a different notice",
                code="notice_reference_reused",
                notice_no=existing["notice_no"],
            )
        return self.view(existing), False

    async def _tell(self, row: Mapping[str, Any], citizen_id: str) -> None:
        """The payer's inbox: a notice to pay, with its number (the wallet's fee page pays it). Like the
        platform's other messages, one whose template an operator has not approved is logged, not sent:
        the notice stands, and the citizen finds it under their fees."""
        try:
            await self._messages.send(
                PLATFORM,
                "fee_notice",
                [
                    Outgoing(
                        citizen_id=citizen_id,
                        key=f"fee-notice:{row['notice_no']}",
                        data={
                            "department": row["department_name"][:64] or row["department"],
                            "item": row["item_name"],
                            "amount": row["amount"],
                            "notice_no": row["notice_no"],
                            "due": row["due_date"],
                        },
                    )
                ],
            )
        except (Conflict, NotFound) as exc:
            log.warning("fee notice message not sent: %s", exc.code, extra={"notice_no": row["notice_no"]})

    async def _of(self, department: str, notice_no: str) -> dict[str, Any]:
        if not well_formed(notice_no):
            raise bad_number()
        row = (
            await FeeNotice.select()
            .where((FeeNotice.notice_no == notice_no) & (FeeNotice.department == department))
            .first()
            .run()
        )
        if row is None:
            raise not_found()
        return row

    async def get(self, department: str, notice_no: str) -> dict[str, Any]:
        return self.view(await self._of(department, notice_no))

    async def notices(
        self, department: str, *, state: str | None, limit: int, offset: int
    ) -> list[dict[str, Any]]:
        where: Any = FeeNotice.department == department
        if state is not None:
            where &= FeeNotice.state == state
        rows = (
            await FeeNotice.select()
            .where(where)
            .order_by(FeeNotice.created_at, ascending=False)
            .order_by(FeeNotice.notice_no)
            .limit(limit)
            .offset(offset)
            .run()
        )
        return [self.view(r) for r in rows]

    async def cancel(self, department: str, notice_no: str) -> dict[str, Any]:
        """An unpaid notice is withdrawn; one a citizen is paying right now waits for that to end."""
        found = await self._of(department, notice_no)
        async with db.transaction():
            row = await db.for_update(FeeNotice.select().where(FeeNotice.id == found["id"])).first().run()
            assert row is not None
            if row["state"] == "paid":
                raise Conflict("the notice is paid: it cannot be cancelled", code="notice_paid")
            if row["state"] == "cancelled":
                return self.view(row)
            if row["order_id"] is not None:
                # its open order is closed with it (under the order's lock), so nobody pays a withdrawn
                # notice through the order it holds
                state = await self.orders.close_unpaid(row["order_id"])
                if state == "paying" or state in PAID_STATES:  # paid: its event is on its way
                    raise Conflict(
                        "a citizen is paying this notice now; try again when the payment has ended",
                        code="notice_being_paid",
                    )
            now = self.clock.now()
            await (
                FeeNotice.update(
                    {FeeNotice.state: "cancelled", FeeNotice.cancelled_at: now, FeeNotice.updated_at: now}
                )
                .where(FeeNotice.id == row["id"])
                .run()
            )
        log.info("fee notice cancelled", extra={"notice_no": notice_no, "department": department})
        return self.view(await self._of(department, notice_no))

    # ---- citizens --------------------------------------------------------------------------------
    async def _limit(self, citizen_id: str, ip: str) -> None:
        """Lookups by number a minute, per citizen and per network address: numbers are not to be
        found by trying them."""
        minute = int(self.clock.time() // 60)
        for key in (f"fees:lookup:c:{citizen_id}:{minute}", f"fees:lookup:ip:{ip}:{minute}"):
            if await self._store.incr(key, ttl=120) > self.lookups_per_minute:
                raise RateLimited(
                    "too many payment notice lookups; try again in a minute",
                    retry_after=60 - int(self.clock.time()) % 60,
                )

    async def _by_number(self, notice_no: str) -> dict[str, Any]:
        if not well_formed(notice_no):
            raise bad_number()
        row = await FeeNotice.select().where(FeeNotice.notice_no == notice_no).first().run()
        if row is None:
            raise not_found()
        return row

    async def lookup(self, notice_no: str, citizen_id: str, ip: str) -> dict[str, Any]:
        await self._limit(citizen_id, ip)
        return self.public_view(await self._by_number(notice_no))

    async def mine(self, citizen_id: str, *, limit: int, offset: int) -> list[dict[str, Any]]:
        """The notices addressed to this citizen: to their phone, or to their ID number once verified."""
        me = (
            await Citizen.select(Citizen.phone_index, Citizen.id_number_index, Citizen.real_name_verified_at)
            .where(Citizen.id == uuid.UUID(citizen_id))
            .first()
            .run()
        )
        indexes = [] if me is None else [me["phone_index"]]
        if me is not None and me["real_name_verified_at"] is not None:
            indexes.append(me["id_number_index"])
        indexes = [i for i in indexes if i]
        if not indexes:
            return []
        rows = (
            await FeeNotice.select()
            .where(FeeNotice.payer_index.is_in(indexes) & (FeeNotice.state != "cancelled"))
            .order_by(FeeNotice.created_at, ascending=False)
            .limit(limit)
            .offset(offset)
            .run()
        )
        return [self.public_view(r) for r in rows]

    async def pay(
        self,
        notice_no: str,
        citizen_id: str,
        channel: str,
        *,
        method: str | None = None,
        payer: str | None = None,
        ip: str,
    ) -> dict[str, Any]:
        """What the app needs to pay the notice in ``channel`` (as ``POST /orders/{id}/pay`` answers).
        Counted against the lookups by number (:meth:`_limit`): its answer (404, or the notice's order)
        tells whether a number was issued as a lookup does."""
        await self._limit(citizen_id, ip)
        found = await self._by_number(notice_no)
        if channel not in self.orders.channels:  # refused before an order is made for it
            available = sorted(self.orders.channels)
            raise InvalidInput(
                f"unknown channel {channel!r} (available: {available})",
                code="unknown_channel",
                channel=channel,
                available=available,
            )
        async with db.transaction():
            row = await db.for_update(FeeNotice.select().where(FeeNotice.id == found["id"])).first().run()
            assert row is not None
            if row["state"] == "paid":
                raise Conflict("the notice is paid", code="notice_paid")
            if row["state"] == "cancelled":
                raise Conflict("the department cancelled this notice", code="notice_cancelled")
            fee, due = self._due_now(row)
            order_id = row["order_id"]
            if order_id is not None:
                order = await self.orders.get(order_id)
                if order["state"] == "paid":  # its event is on its way
                    raise Conflict("the notice is paid", code="notice_paid")
                now = self.clock.now()
                reusable = (
                    order["state"] in PAYABLE_STATES
                    and order["amount"] == due
                    and (order["expires_at"] is None or order["expires_at"] > now)
                )
                if not reusable:
                    order_id = None
            if order_id is None:
                seq = row["order_seq"] + 1
                order, _ = await self.orders.create(
                    owner=owner_of(row["department"]),
                    app_id=APP_ID,
                    reference=f"{notice_no}-{seq}",
                    amount=due,
                    citizen_id=None,
                    description=f"{row['item_name']}（缴款码 {notice_no}）"[:128],
                    deferred=False,
                )
                order_id = order["order_id"]
                await (
                    FeeNotice.update(
                        {
                            FeeNotice.order_id: order_id,
                            FeeNotice.order_seq: seq,
                            FeeNotice.updated_at: self.clock.now(),
                        }
                    )
                    .where(FeeNotice.id == row["id"])
                    .run()
                )
        paying = await self.orders.pay(order_id, citizen_id, channel, method=method, payer=payer)
        return {
            "notice_no": notice_no,
            "order_id": paying["order_id"],
            "channel": paying["channel"],
            "amount": paying["amount"],
            "late_fee": fee,
            "pay": paying["pay"],
        }

    # ---- the payment centre's events -------------------------------------------------------------
    async def on_order_event(self, code: str, event: OrderEvent) -> None:
        """``order.paid`` of a department's order: the notice is paid, and the fiscal system is to be told
        (its delivery written in the same transaction). Delivered at least once: a repeat changes nothing."""
        if event.type != "order.paid":
            return
        notice_no = event.reference.rpartition("-")[0]
        async with db.transaction():
            row = (
                await db.for_update(
                    FeeNotice.select().where(
                        (FeeNotice.notice_no == notice_no) & (FeeNotice.department == code)
                    )
                )
                .first()
                .run()
            )
            if row is None:
                log.warning("paid order of no notice", extra={"order_id": event.order_id, "department": code})
                return
            if row["state"] == "paid":
                if row["order_id"] != event.order_id:  # a second payment: the department refunds it
                    log.error(
                        "a paid notice was paid again",
                        extra={"notice_no": notice_no, "order_id": event.order_id},
                    )
                return
            if row["state"] == "cancelled":  # paid through an order opened before the cancellation
                log.warning("a cancelled notice was paid", extra={"notice_no": notice_no})
            paid_at = event.at
            values: dict[Any, Any] = {
                FeeNotice.state: "paid",
                FeeNotice.order_id: event.order_id,
                FeeNotice.paid_amount: event.amount,
                FeeNotice.late_fee: max(0, event.amount - row["amount"]),
                FeeNotice.channel: str(event.data.get("channel") or ""),
                FeeNotice.paid_at: paid_at,
                FeeNotice.paid_day: china_day(paid_at).isoformat(),
                FeeNotice.updated_at: self.clock.now(),
            }
            await FeeNotice.update(values).where(FeeNotice.id == row["id"]).run()
            payload = {
                "notice_no": notice_no,
                "department": row["department"],
                "department_name": row["department_name"],
                "reference": row["reference"],
                "item_code": row["item_code"],
                "item_name": row["item_name"],
                "amount": event.amount,
                "principal": row["amount"],
                "late_fee": max(0, event.amount - row["amount"]),
                "payer_name": row["payer_name_masked"],
                "paid_at": paid_at.astimezone(CHINA).isoformat(),
                "channel": str(event.data.get("channel") or ""),
                "order_id": event.order_id,
            }
            await (
                FiscalDelivery.insert(
                    FiscalDelivery(
                        notice=row["id"],
                        notice_no=notice_no,
                        payload=payload,
                        next_attempt_at=self.clock.now(),
                        created_at=self.clock.now(),
                    )
                )
                .on_conflict(target=FiscalDelivery.notice_no, action="DO NOTHING")
                .run()
            )
        log.info("fee notice paid", extra={"notice_no": notice_no, "amount": event.amount})

    # ---- the day's statement and reconciliation --------------------------------------------------
    async def statement(self, day: date, department: str | None = None) -> list[dict[str, Any]]:
        """The notices paid on ``day`` (China time), by notice number."""
        where: Any = (FeeNotice.paid_day == day.isoformat()) & (FeeNotice.state == "paid")
        if department is not None:
            where &= FeeNotice.department == department
        rows = await FeeNotice.select().where(where).order_by(FeeNotice.notice_no).run()
        return [
            {
                "notice_no": r["notice_no"],
                "department": r["department"],
                "item_code": r["item_code"],
                "item_name": r["item_name"],
                "amount": r["paid_amount"],
                "principal": r["amount"],
                "late_fee": r["late_fee"],
                "paid_at": r["paid_at"].astimezone(CHINA).isoformat(),
                "channel": r["channel"],
                "order_id": r["order_id"],
                "receipt_no": r["receipt_no"],
            }
            for r in rows
        ]

    async def reconcile(self, day: date, text: str, *, actor: str) -> dict[str, Any]:
        """The fiscal system's day file against the notices we recorded paid that day: every notice
        missing on either side and every amount that differs; the run is kept."""
        theirs = parse_fiscal_file(text)
        ours = {r["notice_no"]: r for r in await self.statement(day)}
        differences: list[dict[str, Any]] = []
        for no, row in sorted(theirs.items()):
            mine = ours.get(no)
            if mine is None:
                other = (
                    await FeeNotice.select(FeeNotice.state, FeeNotice.paid_day)
                    .where(FeeNotice.notice_no == no)
                    .first()
                    .run()
                )
                differences.append(
                    {
                        "notice_no": no,
                        "kind": "missing_ours",
                        "ours": None,
                        "theirs": row["amount"],
                        # what we know of it: unknown, open, cancelled, or paid on another day
                        "note": "unknown"
                        if other is None
                        else (f"paid {other['paid_day']}" if other["state"] == "paid" else other["state"]),
                    }
                )
            elif mine["amount"] != row["amount"]:
                differences.append(
                    {
                        "notice_no": no,
                        "kind": "amount_differs",
                        "ours": mine["amount"],
                        "theirs": row["amount"],
                        "note": "",
                    }
                )
        for no, mine in sorted(ours.items()):
            if no not in theirs:
                differences.append(
                    {
                        "notice_no": no,
                        "kind": "missing_theirs",
                        "ours": mine["amount"],
                        "theirs": None,
                        "note": "",
                    }
                )
        now = self.clock.now()
        await FeeReconciliation.insert(
            FeeReconciliation(
                day=day.isoformat(),
                fiscal_rows=len(theirs),
                our_rows=len(ours),
                differences=differences,
                actor=actor[:64],
                created_at=now,
            )
        ).run()
        return {
            "date": day.isoformat(),
            "fiscal_rows": len(theirs),
            "our_rows": len(ours),
            "matched": len(ours) - sum(1 for d in differences if d["kind"] != "missing_ours"),
            "differences": differences,
            "created_at": now,
        }


STATEMENT_FIELDS = [
    "notice_no",
    "department",
    "item_code",
    "item_name",
    "amount",
    "principal",
    "late_fee",
    "paid_at",
    "channel",
    "order_id",
    "receipt_no",
]
DIFFERENCE_FIELDS = ["notice_no", "kind", "ours", "theirs", "note"]


def to_csv(rows: list[dict[str, Any]], fields: list[str]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


_FEN = re.compile(r"([0-9]{1,12})(?:\.([0-9]{1,2}))?")


def _fen(raw: str) -> int:
    """Fen from the file: integer fen, or yuan with a decimal point (12.30). ASCII digits only
    (``str.isdigit`` would take full-width digits and superscripts)."""
    text = raw.strip()
    m = _FEN.fullmatch(text)
    if m is None:
        raise ValueError(text)
    if m.group(2) is None:
        return int(m.group(1))
    return int(m.group(1)) * 100 + int(m.group(2).ljust(2, "0"))


def parse_fiscal_file(text: str) -> dict[str, dict[str, Any]]:
    """The fiscal system's day file: CSV with a header naming at least ``notice_no`` and ``amount`` (fen,
    or yuan with a decimal point); ``paid_at`` and ``receipt_no`` are read when present."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    try:
        fields = {f.strip() for f in reader.fieldnames or []}
        records = list(enumerate(reader, start=2))
    except csv.Error as exc:  # a field past the csv module's limit, a NUL: no fiscal file
        raise InvalidInput(
            f"the fiscal file is not readable CSV ({exc})", code="invalid_fiscal_file"
        ) from None
    if not {"notice_no", "amount"} <= fields:
        raise InvalidInput(
            "the fiscal file is CSV with a header naming notice_no and amount", code="invalid_fiscal_file"
        )
    rows: dict[str, dict[str, Any]] = {}
    for line, raw in records:
        record = {(k or "").strip(): (v or "").strip() for k, v in raw.items()}
        no = record.get("notice_no", "")
        try:
            amount = _fen(record.get("amount", ""))
        except ValueError:
            raise InvalidInput(
                f"line {line}: amount is fen, or yuan with a decimal point", code="invalid_fiscal_file"
            ) from None
        if not well_formed(no):
            raise InvalidInput(f"line {line}: not a payment notice number", code="invalid_fiscal_file")
        if no in rows:
            raise InvalidInput(f"line {line}: {no} is listed twice", code="invalid_fiscal_file")
        rows[no] = {
            "amount": amount,
            "paid_at": record.get("paid_at", ""),
            "receipt_no": record.get("receipt_no", ""),
        }
    return rows


__all__ = ["CHINA", "Department", "FeeCentre", "china_day", "late_fee", "owner_of", "to_csv"]
