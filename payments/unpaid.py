"""What each citizen owes on deferred orders, counted in the shared store for the gates.

A gate that refuses riders over an unpaid limit needs the total at every boarding; summing the orders
in the database each time costs a query per scan. The count is kept in the store instead: computed from
the database when it is missing (and kept for :data:`TTL`), raised in the same atomic step that commits
a fast decision creating a deferred order (``Fast.owes``: before the order itself is written behind),
and forgotten whenever one of the citizen's deferred orders is paid, closed or charged (the next scan
counts again from the database).

What it may miss, and for how long: a count computed from the database in the few milliseconds between
a fast decision and the write of its order lacks that order until the count expires (at most
:data:`TTL`). The unpaid limit is a soft one (ride first, pay after): that costs at most one ride over
the limit.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from backend.store import Store
from payments.services import OrderService
from payments.tables import PaymentOrder

TTL = 3600.0
TEMPLATE = "pay:unpaid:{c}"  # {c}: the citizen id (the gate's store lookup fills it in)


def key(citizen_id: str) -> str:
    return TEMPLATE.replace("{c}", citizen_id)


class UnpaidCounts:
    def __init__(self, store: Store, orders: OrderService) -> None:
        self.store = store
        self.orders = orders

    async def total(self, citizen_id: str, cached: bytes | None = None) -> int:
        """The citizen's unpaid deferred total: ``cached`` (the count read with the scan), else from the
        database, counted into the store again."""
        if cached is not None:
            return int(cached)
        total = await self.orders.unpaid_total(citizen_id)
        await self.store.set(key(citizen_id), str(total), ttl=TTL)
        return total

    async def forget(self, citizen_ids: Iterable[str]) -> None:
        keys = [key(c) for c in set(citizen_ids) if c]
        if keys:
            await self.store.delete(*keys)

    async def changed(self, events: list[dict[str, Any]]) -> None:
        """The payment centre's order events (after their commit): forget the counts of the citizens
        whose deferred orders changed."""
        ids = [uuid.UUID(e["order_id"]) for e in events if e.get("deferred")]
        if not ids:
            return
        rows = await PaymentOrder.select(PaymentOrder.citizen_id).where(PaymentOrder.id.is_in(ids)).run()
        await self.forget(str(r["citizen_id"]) for r in rows if r["citizen_id"])
