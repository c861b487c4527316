"""Tickets' state changes shared by the app's scans and payment events and by its routes, and the news
of those that change what tourism contributes to the citizen code (the tickets entitlement)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from miniapps.contract import Platform
from miniapps.tourism.rules import service_day
from miniapps.tourism.tables import Ticket, TicketSession


async def settle(order_id: str) -> list[dict[str, Any]]:
    """Tickets of a paid order become valid (idempotent): those that did now, ``{openid, session}``."""
    return list(
        await Ticket.update({Ticket.state: "paid"})
        .where((Ticket.order_id == order_id) & (Ticket.state == "pending"))
        .returning(Ticket.openid, Ticket.session)
        .run()
    )


async def holders_today(changed: Iterable[dict[str, Any]], today: str) -> set[str]:
    """Of tickets whose state just changed (``{openid, session}``), the holders of those for ``today``:
    the citizens whose tickets entitlement may have flipped (a ticket of another day changes nothing
    now, and the code is not kept past midnight anyway)."""
    changed = list(changed)
    sessions = list({r["session"] for r in changed})
    if not sessions:
        return set()
    todays = {
        r["id"]
        for r in await TicketSession.select(TicketSession.id)
        .where(TicketSession.id.is_in(sessions) & (TicketSession.day == today))
        .run()
    }
    return {r["openid"] for r in changed if r["session"] in todays}


async def settled(platform: Platform, order_id: str) -> bool:
    """:func:`settle`, and tell the platform whose codes may now carry the tickets entitlement. Whether
    any ticket became valid."""
    changed = await settle(order_id)
    if holders := await holders_today(changed, service_day(platform.now())):
        await platform.entitlement_changed(*holders)
    return bool(changed)
