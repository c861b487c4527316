"""Civic services' database work: drawing and calling queue numbers (each a conditional UPDATE, so one
number goes to one citizen and one waiting citizen to one window) and counting for the dashboard."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from miniapps.civic.rules import queue_label, service_day
from miniapps.civic.tables import Pass, QueueTicket, Service

ATTEMPTS = 5  # a concurrent start of the day's numbering makes a draw try again


async def draw(service: dict[str, Any], openid: str, at: datetime, record: str) -> dict[str, Any]:
    """A new queue number in ``service``'s line today (China time) for ``openid``: the line's counter
    moved by one conditional UPDATE (restarted at 1 on a new day), the ticket written with it."""
    today = service_day(at)
    number = None
    for _ in range(ATTEMPTS):
        moved = (
            await Service.update({Service.issued: Service.issued + 1})
            .where((Service.id == service["id"]) & (Service.queue_day == today))  # type: ignore[attr-defined]
            .returning(Service.issued)
            .run()
        )
        if not moved:  # the first number of the day, unless another scan has just started the day
            moved = (
                await Service.update({Service.issued: 1, Service.called: 0, Service.queue_day: today})
                .where((Service.id == service["id"]) & (Service.queue_day != today))  # type: ignore[attr-defined]
                .returning(Service.issued)
                .run()
            )
        if moved:
            number = moved[0]["issued"]
            break
    if number is None:
        raise RuntimeError("could not draw a queue number")  # the gate answers app_unavailable
    ticket = {
        "id": uuid.uuid4(),
        "service": service["id"],
        "openid": openid,
        "day": today,
        "number": number,
        "label": queue_label(service["letter"], number),
        "issued_at": at,
        "check_in_record": record,
    }
    await QueueTicket.insert(QueueTicket(**ticket)).run()
    return ticket


async def ahead_of(service_id: int, day: str, number: int) -> int:
    """Citizens still waiting in the line before ``number``."""
    return int(
        await QueueTicket.count()
        .where(
            (QueueTicket.service == service_id)
            & (QueueTicket.day == day)
            & (QueueTicket.state == "waiting")
            & (QueueTicket.number < number)
        )
        .run()
    )


async def call_next(service: dict[str, Any], window: int, at: datetime) -> dict[str, Any] | None:
    """The next waiting number of the line today, called to ``window`` (one conditional UPDATE: two
    windows calling at once get two citizens); None when nobody waits."""
    today = service_day(at)
    for _ in range(ATTEMPTS * 4):
        nxt = (
            await QueueTicket.select(QueueTicket.id)
            .where(
                (QueueTicket.service == service["id"])
                & (QueueTicket.day == today)
                & (QueueTicket.state == "waiting")
            )
            .order_by(QueueTicket.number)
            .first()
            .run()
        )
        if nxt is None:
            return None
        called = (
            await QueueTicket.update(
                {QueueTicket.state: "called", QueueTicket.window: window, QueueTicket.called_at: at}
            )
            .where((QueueTicket.id == nxt["id"]) & (QueueTicket.state == "waiting"))
            .returning(QueueTicket.id, QueueTicket.number, QueueTicket.label, QueueTicket.openid)
            .run()
        )
        if called:
            await (
                Service.update({Service.called: called[0]["number"]})
                .where((Service.id == service["id"]) & (Service.called < called[0]["number"]))  # type: ignore[attr-defined]
                .run()
            )
            return dict(called[0])
    return None


async def passes_today(day: str) -> dict[int, int]:
    """Passes logged today per check point id."""
    rows = await Pass.raw(
        "SELECT checkpoint, COUNT(*) AS n FROM civic_pass WHERE day = {} GROUP BY checkpoint", day
    ).run()
    return {r["checkpoint"]: int(r["n"]) for r in rows}


async def waiting_today(day: str) -> dict[int, int]:
    """Citizens waiting today per window category id."""
    rows = await QueueTicket.raw(
        "SELECT service, COUNT(*) AS n FROM civic_queue_ticket WHERE day = {} AND state = 'waiting' "
        "GROUP BY service",
        day,
    ).run()
    return {r["service"]: int(r["n"]) for r in rows}
