"""The citizen code as a pay code (付款码): a merchant's till scans the citizen's code, the payment centre
charges what the citizen chose to pay with.

A till is a machine credential of its own kind (``till``), owned by a merchant (its ``app_id`` is the
merchant's client id) in the ``pay`` context. Its scans come here, to the payment centre, never to the
gate: the gate routes a scan to the mini-app owning the scanner, and a till is owned by no mini-app, so
the mini-app contract does not change. The code is verified and its single use claimed by the codes
package exactly as at a gate (:meth:`codes.services.ScanService.check`, in the ``pay`` context: a code
pays once at any till), and the payment row keeps the code's id under a unique key as well.

What a scan does (:meth:`PayCodeService.pay`):

1. the merchant's reference is the idempotency key: a reference already used answers what the payment
   is now (a till's retry never charges twice, and needs no fresh code);
2. the code is checked and claimed; then the citizen's choice (:class:`PayCodeSetting`): off, ``credit``
   (a deferred order, charged later, allowed under the unpaid limit) or a channel with
   ``deferred_charge`` and a signed :class:`PaymentAgreement`;
3. the order and the payment row are written in one transaction (unique on the reference, on the
   code); a refusal before it gives the code's single use back;
4. up to the citizen's per-payment limit the order is charged at once (``charge_agreement``, applied
   exactly once by the notification service); above it the payment waits for the citizen's
   confirmation in the app (:meth:`PayCodeService.decide`), a conditional update that only one
   confirmation wins.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any

from auth.principals import MachinePrincipal
from backend import db
from backend.clock import Clock
from backend.errors import AppError, Conflict, Forbidden, InvalidInput, NotFound
from backend.live import Live
from codes.services import ScanService
from payments._books import ALL_ORDER_COLUMNS, PAID_STATES, PAYABLE_STATES, locked_order, outbox
from payments.channels.base import Capability, Channel
from payments.merchant_tables import PayCodePayment, PayCodeSetting, PaymentAgreement
from payments.services import OrderService
from payments.tables import PaymentOrder

log = logging.getLogger("shengshitong.payments.paycode")

PAY_CONTEXT = "pay"
REFERENCE = re.compile(r"[A-Za-z0-9._:/-]{1,64}")  # a till's reference, as the order's (payments/schemas.py)
CREDIT = "credit"
DEFAULT_LIMIT = 20000  # fen per payment without a confirmation (¥200); the citizen may lower it
CREDIT_LIMIT = 50000  # fen a citizen may owe on credit (unpaid deferred orders), this payment included
CONFIRM_SECONDS = 300  # how long a payment waits for the citizen's confirmation
# a charge whose outcome is unknown (the channel did not answer) is asked again by a till's retry or poll
# after this long (the same order: the channel charges one agreement transaction per order)
CHARGE_AGAIN_AFTER = 30

# what the till shows for a code the codes package refused, by the verifier's reason
_CODE_REFUSALS = {
    "expired": ("paycode_code_expired", "the code has expired; the citizen refreshes it"),
    "not_yet_valid": ("paycode_code_expired", "the code is not valid yet; the phone's clock is off"),
    "bad_scan_time": ("paycode_code_expired", "the scan time is out of range"),
    "replayed": ("paycode_code_replayed", "this code has been used already; the citizen refreshes it"),
}


def code_refused(reason: str) -> AppError:
    code, detail = _CODE_REFUSALS.get(reason, ("paycode_code_invalid", "this is not a valid citizen code"))
    if code == "paycode_code_replayed":
        return Conflict(detail, code=code)
    return InvalidInput(detail, code=code, reason=reason)


def payment_view(row: Mapping[str, Any], order: Mapping[str, Any], now: Any) -> dict[str, Any]:
    """The payment as the till (and the merchant) reads it: ``result`` is what the till shows."""
    state = row["state"]
    if state == "confirm" and row["confirm_by"] is not None and row["confirm_by"] <= now:
        state = "expired"
    if state == "charging" and order["state"] in PAID_STATES:  # its notification came after the answer
        state = "paid"
    result = {"confirm": "confirm_required", "charging": "pending"}.get(state, state)
    return {
        "result": result,  # paid | deferred | confirm_required | pending | declined | expired | failed
        "order_id": str(order["id"]),
        "reference": order["reference"],
        "amount": order["amount"],
        "method": row["method"],
        "order_state": order["state"],
        "confirmation_id": str(row["id"]) if state == "confirm" else None,
        "confirm_by": row["confirm_by"] if state == "confirm" else None,
        "reason": row["reason"],
    }


class PayCodeService:
    def __init__(
        self,
        clock: Clock,
        orders: OrderService,
        scans: ScanService,
        *,
        credit_limit: int = CREDIT_LIMIT,
        confirm_seconds: int = CONFIRM_SECONDS,
        live: Live | None = None,
        merchants_active: Callable[[str], Awaitable[Any]] | None = None,
    ) -> None:
        self.live = live
        # the merchant's credential, if it is not revoked (a revoked merchant's tills take nothing)
        self.merchants_active = merchants_active
        self.clock = clock
        self.orders = orders
        self.scans = scans
        self.credit_limit = credit_limit
        self.confirm_seconds = confirm_seconds

    # ---- the citizen's choice --------------------------------------------------------------------
    @property
    def channels(self) -> dict[str, Channel]:
        return {n: c for n, c in self.orders.channels.items() if Capability.DEFERRED_CHARGE in c.capabilities}

    async def _agreement(self, citizen_id: str, channel: str) -> dict[str, Any] | None:
        row = (
            await PaymentAgreement.select()
            .where(
                (PaymentAgreement.citizen_channel == f"{citizen_id}/{channel}")
                & (PaymentAgreement.state == "signed")
            )
            .first()
            .run()
        )
        return row

    async def settings(self, citizen_id: str) -> dict[str, Any]:
        row = await PayCodeSetting.select().where(PayCodeSetting.citizen_id == citizen_id).first().run()
        agreements = (
            await PaymentAgreement.select(
                PaymentAgreement.channel, PaymentAgreement.state, PaymentAgreement.signed_at
            )
            .where(PaymentAgreement.citizen_id == citizen_id)
            .order_by(PaymentAgreement.signed_at)
            .run()
        )
        return {
            "enabled": bool(row and row["enabled"]),
            "method": row["method"] if row else "",
            "limit": row["limit"] if row else DEFAULT_LIMIT,
            "max_limit": DEFAULT_LIMIT,
            "methods": [CREDIT, *self.channels],
            "agreements": [
                {"channel": a["channel"], "state": a["state"], "signed_at": a["signed_at"]}
                for a in agreements
            ],
            "unpaid_total": await self.orders.unpaid_total(citizen_id),
            "credit_limit": self.credit_limit,
        }

    async def update(
        self, citizen_id: str, *, enabled: bool, method: str, limit: int | None
    ) -> dict[str, Any]:
        """Set what the code pays with. A channel needs the citizen's agreement with it: the sandbox's
        (a channel that moves no real money) is signed at once; a real channel's is recorded when the
        channel's sign notice comes (or by an operator, :meth:`record_agreement`)."""
        limit = DEFAULT_LIMIT if limit is None else limit
        if not 1 <= limit <= DEFAULT_LIMIT:
            raise InvalidInput(
                f"the per-payment limit is 1 to {DEFAULT_LIMIT} fen",
                code="paycode_bad_limit",
                max=DEFAULT_LIMIT,
            )
        if enabled or method:
            if method != CREDIT and method not in self.channels:
                raise InvalidInput(
                    f"a pay code pays by {', '.join([CREDIT, *self.channels])}, not {method!r}",
                    code="paycode_bad_method",
                    available=[CREDIT, *self.channels],
                )
            if method != CREDIT and await self._agreement(citizen_id, method) is None:
                channel = self.channels[method]
                if channel.for_production:
                    raise InvalidInput(
                        f"no payment agreement with {method}: sign it in the channel first",
                        code="paycode_no_agreement",
                        channel=method,
                    )
                await self.record_agreement(citizen_id, method, agreement_no="", signed_by=method)
        now = self.clock.now()
        await (
            PayCodeSetting.insert(
                PayCodeSetting(
                    citizen_id=citizen_id, enabled=enabled, method=method, limit=limit, updated_at=now
                )
            )
            .on_conflict(
                target=PayCodeSetting.citizen_id,
                action="DO UPDATE",
                values=[
                    PayCodeSetting.enabled,
                    PayCodeSetting.method,
                    PayCodeSetting.limit,
                    PayCodeSetting.updated_at,
                ],
            )
            .run()
        )
        return await self.settings(citizen_id)

    async def record_agreement(
        self, citizen_id: str, channel: str, *, agreement_no: str, signed_by: str
    ) -> dict[str, Any]:
        """A signed agreement (a channel's sign notice, an operator, or the sandbox at once); signing
        again replaces the agreement number."""
        now = self.clock.now()
        await (
            PaymentAgreement.insert(
                PaymentAgreement(
                    id=uuid.uuid4(),
                    citizen_channel=f"{citizen_id}/{channel}",
                    citizen_id=citizen_id,
                    channel=channel,
                    agreement_no=agreement_no,
                    state="signed",
                    signed_by=signed_by,
                    signed_at=now,
                )
            )
            .on_conflict(
                target=PaymentAgreement.citizen_channel,
                action="DO UPDATE",
                values=[
                    PaymentAgreement.agreement_no,
                    PaymentAgreement.state,
                    PaymentAgreement.signed_by,
                    PaymentAgreement.signed_at,
                ],
            )
            .run()
        )
        return {"citizen_id": citizen_id, "channel": channel, "state": "signed", "signed_by": signed_by}

    async def end_agreement(self, citizen_id: str, channel: str) -> dict[str, Any]:
        """The agreement ended (cancelled at the channel): the code no longer pays through it."""
        ended = (
            await PaymentAgreement.update(
                {PaymentAgreement.state: "ended", PaymentAgreement.ended_at: self.clock.now()}
            )
            .where(
                (PaymentAgreement.citizen_channel == f"{citizen_id}/{channel}")
                & (PaymentAgreement.state == "signed")
            )
            .returning(PaymentAgreement.id)
            .run()
        )
        return {"citizen_id": citizen_id, "channel": channel, "state": "ended", "changed": bool(ended)}

    # ---- at the till -----------------------------------------------------------------------------
    async def _existing(self, owner: str, reference: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
        order = (
            await PaymentOrder.select()
            .where(PaymentOrder.owner_reference == f"{owner}/{reference}")
            .first()
            .run()
        )
        if order is None:
            return None
        row = await PayCodePayment.select().where(PayCodePayment.order == order["id"]).first().run()
        if row is None:  # the merchant used this reference for an order of another kind
            raise Conflict(
                "this reference was used for an order that is not a pay-code payment",
                code="reference_reused",
                order_id=str(order["id"]),
            )
        return row, order

    async def _merchant_of(self, till: MachinePrincipal) -> str:
        if self.merchants_active is not None:
            merchant = await self.merchants_active(till.app_id)
            if merchant is None or merchant.kind != "merchant":
                raise Forbidden("this till's merchant is no longer registered", code="merchant_revoked")
        return f"merchant:{till.app_id}"

    async def status(self, till: MachinePrincipal, reference: str) -> dict[str, Any]:
        """What a payment is now, by the merchant's reference: what a till polls while the citizen
        confirms."""
        found = None
        if REFERENCE.fullmatch(reference):  # anything else was never a reference (nor sent to the database)
            found = await self._existing(await self._merchant_of(till), reference)
        if found is None:
            raise NotFound("no pay-code payment with this reference", code="order_not_found")
        return payment_view(*await self._current(*found), self.clock.now())

    async def _current(
        self, row: dict[str, Any], order: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The payment, its charge asked again if its outcome has been unknown for a while (the
        channel did not answer): one asker at a time, by a conditional update of ``decided_at``."""
        if row["state"] != "charging" or order["state"] not in PAYABLE_STATES:
            return row, order
        now = self.clock.now()
        cutoff = now - timedelta(seconds=CHARGE_AGAIN_AFTER)
        taken = (
            await PayCodePayment.update({PayCodePayment.decided_at: now})
            .where(
                (PayCodePayment.id == row["id"])
                & (PayCodePayment.state == "charging")
                & (
                    (PayCodePayment.decided_at.is_null() & (PayCodePayment.created_at <= cutoff))
                    | (PayCodePayment.decided_at <= cutoff)
                )
            )
            .returning(*PayCodePayment.all_columns())
            .run()
        )
        return await self._charge(dict(taken[0]), order) if taken else (row, order)

    async def pay(
        self, till: MachinePrincipal, *, token: str, amount: int, reference: str, description: str
    ) -> dict[str, Any]:
        if amount <= 0:
            raise InvalidInput("amount must be a positive number of fen", code="invalid_amount")
        owner = await self._merchant_of(till)
        found = await self._existing(owner, reference)
        if found is not None:  # a till's retry: the answer as it stands, no second charge
            return await self._again(found, amount)
        checked = await self.scans.check(
            till, token, at=self.clock.time(), record_id=reference, offline=False, requirement=None
        )
        if checked.reason is not None or checked.holder is None:
            raise code_refused(checked.reason or "unknown_code")
        try:
            row, order = await self._write(
                till, owner, checked.holder.citizen_id, checked.code_id, amount, reference, description
            )
        except AppError:
            if checked.claim is not None:
                await self.scans.release(checked.claim)  # nothing was charged: the code is not used up
            raise
        if row is None:  # the same reference written at once by the till's retry: its answer
            if checked.claim is not None:
                # this scan paid nothing: its code is not used up (a code that did pay is held by the
                # payment row's unique code key all the same)
                await self.scans.release(checked.claim)
            found = await self._existing(owner, reference)
            assert found is not None
            return await self._again(found, amount)
        if row["state"] == "charging":
            row, order = await self._charge(row, order)
        elif row["state"] == "confirm" and self.live is not None:  # the citizen's open app asks at once
            await self.live.publish(
                [
                    (
                        f"citizen:{row['citizen_id']}",
                        "paycode_confirmation",
                        {"confirmation_id": str(row["id"]), "amount": amount},
                    )
                ]
            )
        return payment_view(row, order, self.clock.now())

    async def _again(self, found: tuple[dict[str, Any], dict[str, Any]], amount: int) -> dict[str, Any]:
        row, order = found
        if order["amount"] != amount:
            raise Conflict(
                "this reference was used for a different amount",
                code="reference_reused",
                order_id=str(order["id"]),
            )
        return payment_view(*await self._current(row, order), self.clock.now())

    async def _write(
        self,
        till: MachinePrincipal,
        owner: str,
        citizen_id: str,
        code_id: str,
        amount: int,
        reference: str,
        description: str,
    ) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        """Check the citizen's choice and write the order and the payment, in one transaction that
        holds the citizen's pay-code row: two payments of one citizen (two phones at two tills) are
        checked against the credit limit one after the other."""
        async with db.transaction():
            return await self._write_held(till, owner, citizen_id, code_id, amount, reference, description)

    @staticmethod
    async def _held_setting(citizen_id: str) -> dict[str, Any] | None:
        found: dict[str, Any] | None = await db.for_update(
            PayCodeSetting.select().where(PayCodeSetting.citizen_id == citizen_id)
        ).first()
        return found

    async def _over_credit(self, citizen_id: str, amount: int) -> AppError | None:
        unpaid = await self.orders.unpaid_total(citizen_id)
        if unpaid + amount <= self.credit_limit:
            return None
        return InvalidInput(
            f"over the credit limit: {unpaid} fen unpaid, at most {self.credit_limit} on credit",
            code="paycode_credit_limit",
            unpaid=unpaid,
            limit=self.credit_limit,
        )

    async def _write_held(
        self,
        till: MachinePrincipal,
        owner: str,
        citizen_id: str,
        code_id: str,
        amount: int,
        reference: str,
        description: str,
    ) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        setting = await self._held_setting(citizen_id)
        if setting is None or not setting["enabled"] or not setting["method"]:
            raise InvalidInput("the citizen has not turned on paying by code", code="paycode_off")
        method = setting["method"]
        if method == CREDIT:
            if (over := await self._over_credit(citizen_id, amount)) is not None:
                raise over
        elif method not in self.channels:
            raise InvalidInput(
                f"{method} cannot charge a payment agreement here",
                code="paycode_no_agreement",
                channel=method,
            )
        elif await self._agreement(citizen_id, method) is None:
            raise InvalidInput(
                f"the citizen has no payment agreement with {method}",
                code="paycode_no_agreement",
                channel=method,
            )
        now = self.clock.now()
        confirm = amount > setting["limit"]
        confirm_by = now + timedelta(seconds=self.confirm_seconds) if confirm else None
        deferred = method == CREDIT and not confirm
        async with db.transaction():
            inserted = (
                await PaymentOrder.insert(
                    PaymentOrder(
                        id=uuid.uuid4(),
                        owner=owner,
                        app_id=till.app_id,
                        reference=reference,
                        owner_reference=f"{owner}/{reference}",
                        citizen_id=citizen_id,
                        description=description,
                        amount=amount,
                        deferred=deferred,
                        created_at=now,
                        updated_at=now,
                        # a payment waiting for the citizen closes with its confirmation window
                        expires_at=confirm_by,
                    )
                )
                .on_conflict(target=PaymentOrder.owner_reference, action="DO NOTHING")
                .returning(*ALL_ORDER_COLUMNS)
                .run()
            )
            if not inserted:
                return None, {}
            order = inserted[0]
            written = (
                await PayCodePayment.insert(
                    PayCodePayment(
                        id=uuid.uuid4(),
                        order=order["id"],
                        merchant=owner,
                        till=till.client_id,
                        citizen_id=citizen_id,
                        code_key=f"{PAY_CONTEXT}/{code_id}",
                        method=method,
                        state="confirm" if confirm else ("deferred" if deferred else "charging"),
                        created_at=now,
                        confirm_by=confirm_by,
                        decided_at=None if confirm or not deferred else now,
                    )
                )
                .on_conflict(target=PayCodePayment.code_key, action="DO NOTHING")
                .returning(*PayCodePayment.all_columns())
                .run()
            )
            if not written:  # the code paid another payment already: nothing of this one stays
                raise code_refused("replayed")
        return written[0], order

    async def _charge(
        self, row: dict[str, Any], order: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Charge a payment the citizen's limit (or confirmation) lets through: on credit the order is a
        deferred one from now on; through a channel, one agreement charge (exactly once per order)."""
        now = self.clock.now()
        if row["method"] == CREDIT:
            async with db.transaction():
                await self._held_setting(row["citizen_id"])
                # approved later: what the citizen owes may have grown meanwhile
                over = (
                    None if order["deferred"] else await self._over_credit(row["citizen_id"], order["amount"])
                )
                locked = await locked_order(order["id"])
                if over is not None:  # refused now: the till shows why, the order closes
                    return await self._settle(row, "failed", over.code), await self._close(locked)
                updated = (
                    await PaymentOrder.update(
                        {
                            PaymentOrder.deferred: True,
                            PaymentOrder.expires_at: None,
                            PaymentOrder.updated_at: now,
                        }
                    )
                    .where((PaymentOrder.id == locked["id"]) & PaymentOrder.state.is_in(list(PAYABLE_STATES)))
                    .returning(*ALL_ORDER_COLUMNS)
                    .run()
                )
                state, reason = ("deferred", "") if updated else ("failed", f"order_{locked['state']}")
                row = await self._settle(row, state, reason)
            return row, updated[0] if updated else locked
        channel = self.orders.channels[row["method"]]
        agreement = await self._agreement(row["citizen_id"], row["method"])
        try:
            answer = await channel.charge_agreement(
                {
                    "order_ref": str(order["id"]),
                    "amount": order["amount"],
                    "description": order["description"],
                    "agreement_no": agreement["agreement_no"] if agreement else "",
                }
            )
            await self.orders.callbacks.take(channel.name, answer)
        except AppError as exc:
            if exc.code == "channel_unavailable":  # no usable answer: unknown, asked again later
                log.warning(
                    "agreement charge at %s unanswered; asked again on the till's retry", channel.name
                )
                await self.orders.charging(order["id"], channel)  # and the channel asked about it
                return row, order
            # the channel refused: the merchant is not paid, the till says why
            log.warning("agreement charge refused by %s: %s", channel.name, exc.code)
            return await self._settle(row, "failed", exc.code), await self._close(order)
        except Exception:  # the outcome is unknown (the contract: any other exception)
            log.exception("agreement charge at %s failed; asked again on the till's retry", channel.name)
            await self.orders.charging(order["id"], channel)
            return row, order
        # still charging (the buyer confirms at the channel): its notification completes it, or the
        # payment centre's query when the notification is lost
        await self.orders.charging(order["id"], channel)
        fresh = await PaymentOrder.select().where(PaymentOrder.id == order["id"]).first().run()
        assert fresh is not None
        if fresh["state"] in ("paid", "partially_refunded", "refunded"):
            row = await self._settle(row, "paid", "")
        return row, fresh

    async def _settle(self, row: Mapping[str, Any], state: str, reason: str) -> dict[str, Any]:
        updated = (
            await PayCodePayment.update(
                {
                    PayCodePayment.state: state,
                    PayCodePayment.reason: reason,
                    PayCodePayment.decided_at: self.clock.now(),
                }
            )
            .where(PayCodePayment.id == row["id"])
            .returning(*PayCodePayment.all_columns())
            .run()
        )
        return dict(updated[0])

    async def _close(self, order: Mapping[str, Any]) -> dict[str, Any]:
        """Close an unpaid order (declined or refused): one transaction under the order's lock, with its
        ``order.closed`` event for the merchant."""
        now = self.clock.now()
        async with db.transaction():
            locked = await locked_order(order["id"])
            closed = (
                await PaymentOrder.update(
                    {PaymentOrder.state: "closed", PaymentOrder.closed_at: now, PaymentOrder.updated_at: now}
                )
                .where((PaymentOrder.id == locked["id"]) & PaymentOrder.state.is_in(list(PAYABLE_STATES)))
                .returning(*ALL_ORDER_COLUMNS)
                .run()
            )
            if closed:
                await outbox(closed[0], "order.closed", now)
                return dict(closed[0])
        return dict(locked)

    # ---- charging what was taken on credit -------------------------------------------------------
    async def charge_credit(self, order_id: str, *, owner: str) -> dict[str, Any]:
        """Charge an order taken on the citizen's credit against the citizen's payment agreement: the
        first enabled agreement channel the citizen has signed with (its agreement number named), or
        one that needs no signing (the sandbox). One agreement transaction per order, so charging
        twice, even at once, charges once."""
        row = await self.orders.get_for(order_id, owner=owner)
        if not row["deferred"]:
            raise Conflict("only an order taken on credit is charged this way", code="not_deferred")
        if row["state"] in PAID_STATES:
            return row
        if row["state"] not in PAYABLE_STATES:
            raise Conflict(f"the order is {row['state']}", code="order_not_payable", state=row["state"])
        citizen = await self.orders.citizen_of(order_id)
        chosen: tuple[Channel, str] | None = None
        for name, channel in self.channels.items():
            agreement = await self._agreement(citizen, name) if citizen else None
            if agreement is not None:
                chosen = channel, agreement["agreement_no"]
                break
            if chosen is None and not channel.for_production:
                chosen = channel, ""
        if chosen is None:
            raise InvalidInput(
                "the citizen has no payment agreement to charge; the citizen pays the order in the app",
                code="paycode_no_agreement",
                channel=", ".join(self.channels) or "-",
            )
        channel, agreement_no = chosen
        answer = await channel.charge_agreement(
            {
                "order_ref": row["order_id"],
                "amount": row["amount"],
                "description": row["description"],
                "agreement_no": agreement_no,
            }
        )
        await self.orders.callbacks.take(channel.name, answer)
        await self.orders.charging(order_id, channel)  # still processing: asked about until it ends
        return await self.orders.get(order_id)

    # ---- the citizen confirms --------------------------------------------------------------------
    async def pending(self, citizen_id: str) -> list[dict[str, Any]]:
        """Payments waiting for this citizen's confirmation, newest first."""
        now = self.clock.now()
        rows = (
            await PayCodePayment.select(
                PayCodePayment.id,
                PayCodePayment.created_at,
                PayCodePayment.confirm_by,
                PayCodePayment.method,
                PayCodePayment.merchant,
                PayCodePayment.order.amount,
                PayCodePayment.order.description,
            )
            .where(
                (PayCodePayment.citizen_id == citizen_id)
                & (PayCodePayment.state == "confirm")
                & (PayCodePayment.confirm_by > now)
            )
            .order_by(PayCodePayment.created_at, ascending=False)
            .run()
        )
        return [
            {
                "confirmation_id": str(r["id"]),
                "amount": r["order.amount"],
                "description": r["order.description"],
                "merchant_name": await self.orders._merchant_name(r["merchant"]),
                "method": r["method"],
                "created_at": r["created_at"],
                "confirm_by": r["confirm_by"],
            }
            for r in rows
        ]

    async def decide(self, citizen_id: str, confirmation_id: str, *, approve: bool) -> dict[str, Any]:
        """Approve or decline a payment waiting for this citizen. Only one decision is taken (a
        conditional update): two approvals at once charge once; the same decision again answers the
        payment as it is."""
        try:
            pid = uuid.UUID(confirmation_id)
        except ValueError:
            raise NotFound("no such confirmation", code="confirmation_not_found") from None
        now = self.clock.now()
        taken = (
            await PayCodePayment.update(
                {PayCodePayment.state: "charging" if approve else "declined", PayCodePayment.decided_at: now}
            )
            .where(
                (PayCodePayment.id == pid)
                & (PayCodePayment.citizen_id == citizen_id)
                & (PayCodePayment.state == "confirm")
                & (PayCodePayment.confirm_by > now)
            )
            .returning(*PayCodePayment.all_columns())
            .run()
        )
        if not taken:
            row = await PayCodePayment.select().where(PayCodePayment.id == pid).first().run()
            if row is None or row["citizen_id"] != citizen_id:
                raise NotFound("no such confirmation", code="confirmation_not_found")
            order = await PaymentOrder.select().where(PaymentOrder.id == row["order"]).first().run()
            assert order is not None  # the payment's order (a foreign key that restricts deletes)
            view = payment_view(row, order, now)
            if view["result"] == "expired":
                raise Conflict("the confirmation window has passed", code="confirmation_expired")
            if approve != (view["result"] in ("paid", "deferred", "pending")):
                raise Conflict(
                    f"this payment was decided already: {view['result']}",
                    code="confirmation_decided",
                    result=view["result"],
                )
            return view
        row = dict(taken[0])
        order = await PaymentOrder.select().where(PaymentOrder.id == row["order"]).first().run()
        assert order is not None
        if approve:
            if row["method"] != CREDIT:  # the charge gets the usual payment window from now, not the
                # confirmation's, so a slow channel's notice never finds the order closed
                reopened = (
                    await PaymentOrder.update(
                        {PaymentOrder.expires_at: now + timedelta(seconds=self.orders.order_ttl)}
                    )
                    .where((PaymentOrder.id == order["id"]) & PaymentOrder.state.is_in(list(PAYABLE_STATES)))
                    .returning(*ALL_ORDER_COLUMNS)
                    .run()
                )
                order = reopened[0] if reopened else order
            row, order = await self._charge(row, order)
        else:
            order = await self._close(order)
        return payment_view(row, order, now)
