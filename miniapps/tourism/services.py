"""Tickets' state changes shared by the app's scans and payment events and by its routes, the news of
those that change what tourism contributes to the citizen code (the tickets entitlement), and the
reminder of a paid order's session."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from miniapps.contract import Platform
from miniapps.tourism.rules import service_day, session_reminder_at, window_opens
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
    """:func:`settle`, tell the platform whose codes may now carry the tickets entitlement, and schedule
    the session's reminder. Whether any ticket became valid."""
    async with platform.transaction():  # valid, and its reminder scheduled, together
        changed = await settle(order_id)
        if changed:
            await remind(platform, order_id, changed[0]["openid"], changed[0]["session"])
    if holders := await holders_today(changed, service_day(platform.now())):
        await platform.entitlement_changed(*holders)
    return bool(changed)


def reminder_key(order_id: str) -> str:
    """The idempotency key of an order's session reminder (one order: one session, one buyer)."""
    return f"session-{order_id}"


async def remind(platform: Platform, order_id: str, openid: str, session: Any) -> None:
    """The reminder an hour before the session of a paid order opens (to a buyer who subscribed)."""
    row = (
        await TicketSession.select(
            TicketSession.day,
            TicketSession.window,
            TicketSession.attraction.code,
            TicketSession.attraction.name,
            TicketSession.attraction.name_en,
        )
        .where(TicketSession.id == session)
        .first()
        .run()
    )
    if row is None:
        return
    at = session_reminder_at(row["day"], row["window"], platform.now())
    if at is None:
        return
    await platform.notify(
        openid,
        "session_reminder",
        {
            "attraction": row["attraction.name"],
            "attraction_en": (row["attraction.name_en"] or row["attraction.code"])[:64],
            "window": row["window"],
            "opens_at": window_opens(row["day"], row["window"]).isoformat(),
        },
        key=reminder_key(order_id),
        at=at,
    )


async def refunded(platform: Platform, order_id: str) -> None:
    """A ticket of ``order_id`` was refunded: with none of its tickets left to use, its reminder goes."""
    if not await Ticket.exists().where((Ticket.order_id == order_id) & (Ticket.state == "paid")).run():
        await platform.cancel_notice(reminder_key(order_id))
