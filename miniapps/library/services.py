"""The lending itself, shared by the desk's scans, the citizens' routes, the library's backend and the
SIP2 kiosks: borrow, return, renew, holds, standing and deposits.

One copy is on one loan at a time: a copy changes state only by a conditional UPDATE (from the state it
was read in), so two kiosks checking out one copy at once make one loan; a partial unique index on open
loans per copy (a migration) holds it too. A refusal is a :class:`Refused` with a machine code; each
caller answers it its own way (a scan's refusal, a 409, a SIP2 ``ok=0``)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from piccolo.query.functions.aggregate import Sum

from miniapps.contract import Platform
from miniapps.library.rules import (
    LoanRule,
    checkout_refusal,
    deposit_refundable,
    due_at,
    fine,
    hold_shelf_until,
    in_good_standing,
    reminder_at,
    renew_refusal,
    renewed_due,
)
from miniapps.library.tables import Branch, Copy, Hold, Library, Loan, Reader, Title

RULE_FIELDS = (
    "loan_days",
    "max_renewals",
    "max_loans",
    "fine_per_day",
    "fine_cap",
    "hold_days",
    "deposit",
    "remind_days",
)


class Refused(Exception):
    """A lending step refused, with its machine code (each has zh/en text in ``backend/i18n.py``)."""

    def __init__(self, code: str, **detail: Any) -> None:
        super().__init__(code)
        self.code = code
        self.detail = detail


def rule_of(library: dict[str, Any], prefix: str = "") -> LoanRule:
    return LoanRule(**{f: library[prefix + f] for f in RULE_FIELDS})


def reminder_key(loan_id: str, renewals: int) -> str:
    return f"library-due-{loan_id}-{renewals}"


def fine_reference(loan_id: str) -> str:
    return f"library-fine-{loan_id}"


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


class Lending:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    # ---- look-ups --------------------------------------------------------------------------------
    async def branch(self, code: str) -> dict[str, Any]:
        """A branch with its library's columns (``library.*``)."""
        row = (
            await Branch.select(
                Branch.all_columns(),  # type: ignore[arg-type]
                Branch.library.all_columns(),  # type: ignore[arg-type]
            )
            .where(Branch.code == code)
            .first()
            .run()
        )
        if row is None:
            raise Refused("unknown_branch")
        return row

    async def library(self, code: str) -> dict[str, Any]:
        row = await Library.select().where(Library.code == code).first().run()
        if row is None:
            raise Refused("unknown_library")
        return row

    async def copy(self, barcode: str) -> dict[str, Any]:
        if not barcode.isprintable() or len(barcode) > 32:  # a kiosk's misread: never a copy's barcode
            raise Refused("unknown_item")
        row = (
            await Copy.select(
                Copy.all_columns(),  # type: ignore[arg-type]
                Copy.title.id,
                Copy.title.isbn,
                Copy.title.title,
                Copy.title.author,
                Copy.title.library.all_columns(),  # type: ignore[arg-type,union-attr]
                Copy.branch.code,
                Copy.branch.name,
                Copy.branch.name_en,
            )
            .where(Copy.barcode == barcode)
            .first()
            .run()
        )
        if row is None:
            raise Refused("unknown_item")
        return row

    async def reader(self, library_id: int, openid: str) -> dict[str, Any]:
        """The reader's row at a library, made on first sight (one per reader and library)."""
        row = await self._reader(library_id, openid)
        if row is None:
            await (
                Reader.insert(Reader(id=uuid.uuid4(), library=library_id, openid=openid))
                .on_conflict(action="DO NOTHING")
                .run()
            )
            row = await self._reader(library_id, openid)
            assert row is not None
        return row

    async def locked_reader(self, library_id: int, openid: str) -> dict[str, Any]:
        """The reader's row, locked until the transaction commits (a no-op UPDATE: PostgreSQL's row lock;
        SQLite's writers are one at a time) and read again under the lock: what one request decides from
        it (a loan counted, a deposit asked for or refunded) the next one of the same reader sees."""
        reader = await self.reader(library_id, openid)
        await (
            Reader.update({Reader.deposit_amount: Reader.deposit_amount + 0})
            .where(Reader.id == reader["id"])  # type: ignore[attr-defined]
            .run()
        )
        row = await self._reader(library_id, openid)
        assert row is not None
        return row

    @staticmethod
    async def _reader(library_id: int, openid: str) -> dict[str, Any] | None:
        return (
            await Reader.select()
            .where((Reader.library == library_id) & (Reader.openid == openid))
            .first()
            .run()
        )

    @staticmethod
    async def unpaid_fines(library_id: int, openid: str) -> int:
        row = (
            await Loan.select(Sum(Loan.fine))
            .where(
                (Loan.library == library_id)
                & (Loan.openid == openid)
                & (Loan.fine > 0)  # type: ignore[operator]
                & (Loan.fine_paid == False)  # noqa: E712
            )
            .first()
            .run()
        )
        return int((row or {}).get("sum") or 0)

    async def settle(self, library_id: int, openid: str) -> None:
        """Catch up with the payment centre for one reader: a fine or deposit order paid (or closed) whose
        event has not reached the app yet is settled from the order itself (the event settles it too)."""
        fines = (
            await Loan.select(Loan.fine_order)
            .where(
                (Loan.library == library_id)
                & (Loan.openid == openid)
                & (Loan.fine_order != "")
                & (Loan.fine_paid == False)  # noqa: E712
            )
            .run()
        )
        for r in fines:
            if (await self.platform.payments.order(r["fine_order"]))["state"] == "paid":
                await self.fine_paid(r["fine_order"])
        reader = await self._reader(library_id, openid)
        if reader is not None and reader["deposit_state"] == "pending" and reader["deposit_order"]:
            state = (await self.platform.payments.order(reader["deposit_order"]))["state"]
            if state == "paid":
                await self.deposit_event(reader["deposit_order"], "order.paid")
            elif state in ("closed", "failed"):
                await self.deposit_event(reader["deposit_order"], "order.closed")

    @staticmethod
    async def open_loans(library_id: int, openid: str) -> int:
        return await Loan.count().where(
            (Loan.library == library_id) & (Loan.openid == openid) & Loan.returned_at.is_null()
        )

    async def standing(self, library: dict[str, Any], openid: str) -> dict[str, Any]:
        """What the reader's standing is at ``library``: loans, overdue, fines owed, holds, deposit."""
        now = self.platform.now()
        await self.settle(library["id"], openid)
        reader = await self.reader(library["id"], openid)
        loans = (
            await Loan.select(Loan.due_at)
            .where((Loan.library == library["id"]) & (Loan.openid == openid) & Loan.returned_at.is_null())
            .run()
        )
        unpaid = await self.unpaid_fines(library["id"], openid)
        holds = (
            await Hold.select(Hold.state)
            .where(
                (Hold.openid == openid)
                & (Hold.title.library == library["id"])
                & Hold.state.is_in(["waiting", "ready"])
            )
            .run()
        )
        rule = rule_of(library)
        return {
            "library": library["code"],
            "loans": len(loans),
            "max_loans": rule.max_loans,
            "overdue": sum(1 for r in loans if r["due_at"] < now),
            "unpaid_fines": unpaid,
            "holds": len(holds),
            "holds_ready": sum(1 for h in holds if h["state"] == "ready"),
            "blocked": reader["blocked"],
            "good_standing": in_good_standing(unpaid, reader["blocked"]),
            "deposit": {
                "state": reader["deposit_state"],
                "amount": reader["deposit_amount"] or rule.deposit,
                "order_id": reader["deposit_order"],
            },
        }

    # ---- holds on the shelf ----------------------------------------------------------------------
    async def expire_holds(self) -> int:
        """Copies whose hold was not collected in time go to the next hold, or back to the shelf."""
        now = self.platform.now()
        async with self.platform.transaction():  # the hold lapsed and its copy passed on, or neither
            stale = (
                await Hold.update({Hold.state: "expired"})
                .where((Hold.state == "ready") & (Hold.ready_until < now))  # type: ignore[operator]
                .returning(Hold.copy)
                .run()
            )
            for row in stale:
                await self._pass_on(row["copy"], now)
        return len(stale)

    async def _pass_on(self, barcode: str, now: datetime) -> str | None:
        """A copy free again: set aside for the first waiting hold of its title (told at once), else
        available. Returns the hold's id when it went to one."""
        copy = await self.copy(barcode)
        rule = rule_of(copy, "title.library.")
        waiting = (
            await Hold.select(Hold.id, Hold.openid)
            .where((Hold.title == copy["title.id"]) & (Hold.state == "waiting"))
            .order_by(Hold.placed_at)
            .order_by(Hold.id)
            .run()
        )
        for hold in waiting:
            until = hold_shelf_until(now, rule)
            taken = (
                await Hold.update({Hold.state: "ready", Hold.copy: barcode, Hold.ready_until: until})
                .where((Hold.id == hold["id"]) & (Hold.state == "waiting"))
                .returning(Hold.id)
                .run()
            )
            if not taken:
                continue
            await (
                Copy.update({Copy.state: "on_hold_shelf", Copy.held_for: str(hold["id"])})
                .where(Copy.id == copy["id"])  # type: ignore[attr-defined]
                .run()
            )
            await self.platform.notify(
                hold["openid"],
                "hold_ready",
                {
                    "title": copy["title.title"][:64],
                    "branch": copy["branch.name"],
                    "branch_en": copy["branch.name_en"] or copy["branch.code"],
                    "until": until.isoformat(),
                },
                key=f"library-hold-{hold['id']}",
            )
            return str(hold["id"])
        await (
            Copy.update({Copy.state: "available", Copy.held_for: ""})
            .where(Copy.id == copy["id"])  # type: ignore[attr-defined]
            .run()
        )
        return None

    # ---- the desk's and the kiosk's steps --------------------------------------------------------
    async def checkout(self, openid: str, barcode: str, branch_code: str, *, via: str) -> dict[str, Any]:
        now = self.platform.now()
        branch = await self.branch(branch_code)
        async with self.platform.transaction():
            await self.expire_holds()
            copy = await self.copy(barcode)
            if copy["title.library.id"] != branch["library"]:
                raise Refused("other_library")
            state = copy["state"]
            if state == "on_loan":
                mine = await Loan.exists().where(
                    (Loan.copy == copy["id"]) & (Loan.openid == openid) & Loan.returned_at.is_null()
                )
                raise Refused("already_yours" if mine else "on_loan")
            if state == "lost":
                raise Refused("item_unavailable")
            hold_id = ""
            if state == "on_hold_shelf":
                hold = await Hold.select(Hold.openid).where(Hold.id == _uuid(copy["held_for"])).first().run()
                if hold is None or hold["openid"] != openid:
                    raise Refused("held_for_another")
                hold_id = copy["held_for"]
            library = await self.library(copy["title.library.code"])
            rule = rule_of(library)
            await self.settle(library["id"], openid)
            # two checkouts of one reader at once are counted one after the other, never past the limit
            reader = await self.locked_reader(library["id"], openid)
            refusal = checkout_refusal(
                open_loans=await self.open_loans(library["id"], openid),
                rule=rule,
                unpaid_fines=await self.unpaid_fines(library["id"], openid),
                blocked=reader["blocked"],
                deposit_paid=reader["deposit_state"] == "paid",
            )
            if refusal:
                raise Refused(refusal)
            taken = (
                await Copy.update({Copy.state: "on_loan", Copy.held_for: ""})
                .where(
                    (Copy.id == copy["id"])  # type: ignore[attr-defined]
                    & (Copy.state == state)
                    & (Copy.held_for == copy["held_for"])
                )
                .returning(Copy.barcode)
                .run()
            )
            if not taken:  # another desk or kiosk lent it a moment ago
                raise Refused("on_loan")
            loan_id = uuid.uuid4()
            due = due_at(now, rule)
            await Loan.insert(
                Loan(
                    id=loan_id,
                    copy=copy["id"],
                    library=library["id"],
                    openid=openid,
                    branch=branch_code,
                    borrowed_at=now,
                    due_at=due,
                    via=via,
                )
            ).run()
            if hold_id:
                await Hold.update({Hold.state: "collected"}).where(Hold.id == _uuid(hold_id)).run()
            # a reader who waited for the title and found a copy on the shelf: their wait is over
            await (
                Hold.update({Hold.state: "collected"})
                .where((Hold.title == copy["title.id"]) & (Hold.openid == openid) & (Hold.state == "waiting"))
                .run()
            )
            await self._remind(openid, str(loan_id), 0, copy, due, now, rule)
        return {
            "loan_id": str(loan_id),
            "barcode": barcode,
            "isbn": copy["title.isbn"],
            "title": copy["title.title"],
            "due_at": due,
            "renewals": 0,
            "max_renewals": rule.max_renewals,
        }

    async def _remind(
        self,
        openid: str,
        loan_id: str,
        renewals: int,
        copy: dict[str, Any],
        due: datetime,
        now: datetime,
        rule: LoanRule,
    ) -> None:
        at = reminder_at(due, now, rule)
        if at is not None:
            await self.platform.notify(
                openid,
                "due_soon",
                {"title": copy["title.title"][:64], "due_at": due.isoformat()},
                key=reminder_key(loan_id, renewals),
                at=at,
            )

    async def checkin(self, barcode: str, *, branch_code: str | None = None) -> dict[str, Any]:
        """Return a copy; at a branch's desk or kiosk (``branch_code``) only a copy of that library: a
        book of another library left in this one's bin would be 'on the shelf' where it is not."""
        now = self.platform.now()
        branch = await self.branch(branch_code) if branch_code is not None else None
        async with self.platform.transaction():
            copy = await self.copy(barcode)
            if branch is not None and copy["title.library.id"] != branch["library"]:
                raise Refused("other_library")
            closed = (
                await Loan.update({Loan.returned_at: now})
                .where((Loan.copy == copy["id"]) & Loan.returned_at.is_null())
                .returning(Loan.id, Loan.openid, Loan.due_at, Loan.renewals)
                .run()
            )
            if not closed:
                raise Refused("not_on_loan")
            loan = closed[0]
            library = await self.library(copy["title.library.code"])
            rule = rule_of(library)
            owed = fine(loan["due_at"], now, rule)
            order_id = ""
            if owed > 0:  # a deferred order: returned first, paid after (it bars loans until paid)
                order = await self.platform.payments.create_order(
                    openid=loan["openid"],
                    reference=fine_reference(str(loan["id"])),
                    amount=owed,
                    deferred=True,
                    description=f"{library['name']} 逾期罚款",  # the merchant's own words, Chinese
                )
                order_id = order["order_id"]
                await (
                    Loan.update({Loan.fine: owed, Loan.fine_order: order_id})
                    .where(Loan.id == loan["id"])
                    .run()
                )
            await self.platform.cancel_notice(reminder_key(str(loan["id"]), loan["renewals"]))
            hold = await self._pass_on(barcode, now)
        return {
            "loan_id": str(loan["id"]),
            "openid": loan["openid"],
            "barcode": barcode,
            "title": copy["title.title"],
            "fine": owed,
            "fine_order": order_id,
            "to_hold": hold is not None,
            "branch": copy["branch.code"],
        }

    async def renew(self, openid: str, barcode: str) -> dict[str, Any]:
        now = self.platform.now()
        async with self.platform.transaction():
            await self.expire_holds()
            copy = await self.copy(barcode)
            loan = (
                await Loan.select()
                .where((Loan.copy == copy["id"]) & Loan.returned_at.is_null() & (Loan.openid == openid))
                .first()
                .run()
            )
            if loan is None:
                raise Refused("not_your_loan")
            library = await self.library(copy["title.library.code"])
            rule = rule_of(library)
            held = await Hold.exists().where(
                (Hold.title == copy["title.id"])
                & Hold.state.is_in(["waiting", "ready"])
                & (Hold.openid != openid)
            )
            refusal = renew_refusal(
                renewals=loan["renewals"], rule=rule, due=loan["due_at"], now=now, held_by_others=held
            )
            if refusal:
                raise Refused(refusal, due_at=loan["due_at"])
            due = renewed_due(loan["due_at"], now, rule)
            done = (
                await Loan.update({Loan.due_at: due, Loan.renewals: loan["renewals"] + 1})
                .where(
                    (Loan.id == loan["id"]) & (Loan.renewals == loan["renewals"]) & Loan.returned_at.is_null()
                )
                .returning(Loan.id)
                .run()
            )
            if not done:  # renewed or returned a moment ago
                raise Refused("not_your_loan")
            await self.platform.cancel_notice(reminder_key(str(loan["id"]), loan["renewals"]))
            await self._remind(openid, str(loan["id"]), loan["renewals"] + 1, copy, due, now, rule)
        return {
            "loan_id": str(loan["id"]),
            "barcode": barcode,
            "title": copy["title.title"],
            "due_at": due,
            "renewals": loan["renewals"] + 1,
            "max_renewals": rule.max_renewals,
        }

    async def place_hold(self, openid: str, library_code: str, isbn: str) -> dict[str, Any]:
        now = self.platform.now()
        library = await self.library(library_code)
        async with self.platform.transaction():
            await self.expire_holds()
            title = (
                await Title.select(Title.id, Title.title)
                .where((Title.library == library["id"]) & (Title.isbn == isbn))
                .first()
                .run()
            )
            if title is None:
                raise Refused("unknown_title")
            if await Copy.exists().where((Copy.title == title["id"]) & (Copy.state == "available")):
                raise Refused("copy_available")
            if await Loan.exists().where(
                (Loan.copy.title == title["id"]) & (Loan.openid == openid) & Loan.returned_at.is_null()
            ):
                raise Refused("already_yours")
            reader = await self.reader(library["id"], openid)
            if reader["blocked"]:
                raise Refused("reader_blocked")
            hold_id = uuid.uuid4()
            made = (
                await Hold.insert(Hold(id=hold_id, title=title["id"], openid=openid, placed_at=now))
                .on_conflict(action="DO NOTHING")
                .returning(Hold.id)
                .run()
            )
            if not made:
                raise Refused("already_held")
            ahead = await Hold.count().where(
                (Hold.title == title["id"]) & (Hold.state == "waiting") & (Hold.placed_at < now)  # type: ignore[operator]
            )
        return {
            "hold_id": str(hold_id),
            "isbn": isbn,
            "title": title["title"],
            "state": "waiting",
            "ahead": ahead,
        }

    async def cancel_hold(self, openid: str, hold_id: str) -> bool:
        hid = _uuid(hold_id)
        if hid is None:
            return False
        async with self.platform.transaction():
            gone = (
                await Hold.update({Hold.state: "cancelled"})
                .where((Hold.id == hid) & (Hold.openid == openid) & Hold.state.is_in(["waiting", "ready"]))
                .returning(Hold.copy)
                .run()
            )
            if gone and gone[0]["copy"]:  # it had a copy on the shelf: the next reader's now
                await self._pass_on(gone[0]["copy"], self.platform.now())
        return bool(gone)

    # ---- money -----------------------------------------------------------------------------------
    async def pay_fines(self, openid: str) -> dict[str, Any]:
        """Charge every unpaid fine of the reader against their payment agreement."""
        rows = (
            await Loan.select(Loan.fine_order)
            .where((Loan.openid == openid) & (Loan.fine_order != "") & (Loan.fine_paid == False))  # noqa: E712
            .run()
        )
        paid = 0
        for r in rows:
            order = await self.platform.payments.charge(r["fine_order"])
            if order["state"] == "paid":
                paid += 1
                await self.fine_paid(r["fine_order"])
        return {"orders": paid}

    @staticmethod
    async def fine_paid(order_id: str) -> None:
        await Loan.update({Loan.fine_paid: True}).where(Loan.fine_order == order_id).run()

    async def ask_deposit(self, openid: str, library_code: str) -> dict[str, Any]:
        """The deposit order for a reader who is not in good standing (信用免押 for the others)."""
        library = await self.library(library_code)
        async with self.platform.transaction():
            # one deposit order per reader: two asks at once (two taps, two workers) make one order, not a
            # second the citizen could pay and never get back
            reader = await self.locked_reader(library["id"], openid)
            await self.settle(library["id"], openid)
            reader = await self.reader(library["id"], openid)
            if reader["deposit_state"] in ("pending", "paid"):
                return await self.standing(library, openid)
            if reader["blocked"]:  # a deposit lends nothing to a reader the library has blocked
                raise Refused("reader_blocked")
            unpaid = await self.unpaid_fines(library["id"], openid)
            if in_good_standing(unpaid, reader["blocked"]):
                raise Refused("deposit_not_needed")
            amount = rule_of(library).deposit
            order = await self.platform.payments.create_order(
                openid=openid,
                reference=f"library-deposit-{reader['id']}-{uuid.uuid4().hex[:8]}",
                amount=amount,
                description=f"{library['name']} 借阅押金",
            )
            await (
                Reader.update(
                    {
                        Reader.deposit_state: "pending",
                        Reader.deposit_order: order["order_id"],
                        Reader.deposit_amount: amount,
                    }
                )
                .where((Reader.id == reader["id"]) & Reader.deposit_state.is_in(["none", "refunded"]))
                .run()
            )
        return await self.standing(library, openid)

    async def refund_deposit(self, openid: str, library_code: str) -> dict[str, Any]:
        """Give the deposit back to a reader who leaves with nothing borrowed and nothing owed."""
        library = await self.library(library_code)
        async with self.platform.transaction():
            # locked as a checkout locks it: a loan made at this moment is counted before the refund
            await self.locked_reader(library["id"], openid)
            await self.settle(library["id"], openid)
            reader = await self.reader(library["id"], openid)
            if reader["deposit_state"] != "paid":
                raise Refused("no_deposit")
            if not deposit_refundable(
                open_loans=await self.open_loans(library["id"], openid),
                unpaid_fines=await self.unpaid_fines(library["id"], openid),
            ):
                raise Refused("deposit_in_use")
            moved = (
                await Reader.update({Reader.deposit_state: "refunded"})
                .where((Reader.id == reader["id"]) & (Reader.deposit_state == "paid"))
                .returning(Reader.id)
                .run()
            )
            if moved:
                await self.platform.payments.refund(
                    reader["deposit_order"],
                    reference=f"refund-{reader['deposit_order']}",
                    amount=reader["deposit_amount"],
                    reason="借阅押金退还",
                )
        return await self.standing(library, openid)

    @staticmethod
    async def deposit_event(order_id: str, kind: str) -> None:
        if kind == "order.paid":
            await (
                Reader.update({Reader.deposit_state: "paid"})
                .where((Reader.deposit_order == order_id) & (Reader.deposit_state == "pending"))
                .run()
            )
        elif kind in ("order.closed", "order.failed"):
            await (
                Reader.update({Reader.deposit_state: "none", Reader.deposit_order: ""})
                .where((Reader.deposit_order == order_id) & (Reader.deposit_state == "pending"))
                .run()
            )
        elif kind == "order.refunded":
            await (
                Reader.update({Reader.deposit_state: "refunded"})
                .where(Reader.deposit_order == order_id)
                .run()
            )
