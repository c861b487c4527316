"""What a mini-app sees of the payment centre (``platform.payments``): orders for the citizens it knows
by openid, and their unpaid deferred totals. The mini-app platform's side of the seam: it uses the payment
centre's services; the payment centre knows nothing of mini-apps but the owner names of their orders."""

from __future__ import annotations

from typing import Any

from auth.pairwise import Pairwise
from backend.errors import InvalidInput
from payments.services import OrderService
from payments.unpaid import UnpaidCounts


class MiniAppPayments:
    def __init__(
        self, app_id: str, orders: OrderService, pairwise: Pairwise, unpaid: UnpaidCounts | None = None
    ) -> None:
        self.app_id = app_id
        self._orders = orders
        self._pairwise = pairwise
        self._unpaid = unpaid

    async def _citizen(self, openid: str) -> str:
        citizen = await self._pairwise.citizen(self.app_id, openid)
        if citizen is None:
            raise InvalidInput("unknown openid for this mini-app", code="unknown_openid")
        return citizen

    async def create_order(
        self, *, openid: str, reference: str, amount: int, description: str = "", deferred: bool = False
    ) -> dict[str, Any]:
        """An order of this mini-app for the citizen (idempotent on ``reference``). ``deferred`` orders are
        charged later (ride first, leave first, see the doctor first) and count as unpaid until then."""
        order, _ = await self._orders.create(
            owner=f"miniapp:{self.app_id}",
            app_id=self.app_id,
            reference=reference,
            amount=amount,
            citizen_id=await self._citizen(openid),
            description=description,
            deferred=deferred,
        )
        return order

    async def create_deferred_orders(self, orders: list[dict[str, Any]]) -> dict[str, str]:
        """Deferred orders in bulk, each ``{"openid", "reference", "amount", "description"}`` (idempotent on
        the reference): {reference: order id}. For effects written behind a gate (:meth:`MiniApp.apply`)."""
        citizens = await self._pairwise.citizens(self.app_id, [o["openid"] for o in orders])
        if missing := {o["openid"] for o in orders} - citizens.keys():
            raise InvalidInput(f"unknown openids for this mini-app: {len(missing)}", code="unknown_openid")
        return await self._orders.create_deferred(
            owner=f"miniapp:{self.app_id}",
            app_id=self.app_id,
            orders=[
                (o["reference"], o["amount"], citizens[o["openid"]], o.get("description", "")) for o in orders
            ],
        )

    async def unpaid_total(self, openid: str) -> int:
        """Fen the citizen owes on deferred orders of every mini-app (a gate may refuse over a limit)."""
        return await self._orders.unpaid_total(await self._citizen(openid))

    async def order(self, order_id: str) -> dict[str, Any]:
        """One of this mini-app's orders: state, amounts, refunds."""
        return await self._orders.get_for(order_id, owner=f"miniapp:{self.app_id}")

    async def refund(self, order_id: str, *, reference: str, amount: int, reason: str = "") -> dict[str, Any]:
        """Refund (part of) one of this mini-app's paid orders; idempotent on ``reference``."""
        result, _ = await self._orders.refund(
            order_id, owner=f"miniapp:{self.app_id}", reference=reference, amount=amount, reason=reason
        )
        return result

    async def charge(self, order_id: str) -> dict[str, Any]:
        """Charge a deferred order against the citizen's payment agreement."""
        order = await self._orders.charge_deferred(order_id, owner=f"miniapp:{self.app_id}")
        if self._unpaid is not None:  # the gate's count of what the citizen owes is counted again
            row = await self._orders.citizen_of(order_id)
            if row:
                await self._unpaid.forget([row])
        return order
