"""Tickets' state changes shared by the app's scans and payment events and by its routes."""

from __future__ import annotations

from miniapps.tourism.tables import Ticket


async def settle(order_id: str) -> None:
    """Tickets of a paid order become valid (idempotent)."""
    await (
        Ticket.update({Ticket.state: "paid"})
        .where((Ticket.order_id == order_id) & (Ticket.state == "pending"))
        .run()
    )
