"""Civic services' routes under /api/v1/apps/civic."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from litestar import Request, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_204_NO_CONTENT

from miniapps.civic.rules import hall_unit, service_day, wait_minutes
from miniapps.civic.services import ahead_of, call_next, passes_today, waiting_today
from miniapps.civic.tables import Checkpoint, Hall, Pass, QueueTicket, Service
from miniapps.contract import (
    DEFAULT_LIMIT,
    AppCaller,
    Limit,
    NotFound,
    Offset,
    Platform,
    app_backend,
    citizen_caller,
    names,
    page,
)


class CallRequest(msgspec.Struct, forbid_unknown_fields=True):
    window: Annotated[int, msgspec.Meta(ge=1, le=99)]  # the window that calls


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound("no such queue number", code="queue_number_not_found") from None


def handlers(platform: Platform) -> list[Any]:
    """The routes, answering with ``platform`` (the one the civic app was given)."""

    def minutes() -> int:
        return int(platform.config["minutes_per_person"])

    @get(
        "/halls",
        summary="Social-security service halls, their window categories and who waits in each today; "
        "names in the request's language",
    )
    async def halls(
        request: Request[Any, Any, Any], limit: Limit = DEFAULT_LIMIT, offset: Offset = 0
    ) -> dict[str, Any]:
        rows = await Hall.select().order_by(Hall.code).limit(limit + 1).offset(offset).run()
        services = (
            await Service.select()
            .where(Service.hall.is_in([r["id"] for r in rows]))
            .order_by(Service.position)
            .order_by(Service.letter)
            .run()
            if rows
            else []
        )
        waiting = await waiting_today(service_day(platform.now()))
        return page(
            request,
            [
                {
                    "hall": h["code"],
                    **names(h["name"], h["name_en"]),
                    "address": h["address"],
                    "services": [
                        {
                            "service": s["letter"],
                            **names(s["name"], s["name_en"]),
                            "windows": s["windows"],
                            "waiting": waiting.get(s["id"], 0),
                            "wait_minutes": wait_minutes(waiting.get(s["id"], 0), s["windows"], minutes()),
                        }
                        for s in services
                        if s["hall"] == h["id"]
                    ],
                }
                for h in rows
            ],
            limit=limit,
            offset=offset,
        )

    @get(
        "/queue",
        guards=[citizen_caller],
        summary="The caller's queue numbers, today's first: place in the line and the estimated wait",
    )
    async def queue(
        request: Request[Any, Any, Any],
        caller: NamedDependency[AppCaller],
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        rows = (
            await QueueTicket.select(
                QueueTicket.all_columns(),  # type: ignore[arg-type]
                QueueTicket.service.letter,
                QueueTicket.service.name,
                QueueTicket.service.name_en,
                QueueTicket.service.windows,
                QueueTicket.service.hall.code,  # type: ignore[union-attr]
                QueueTicket.service.hall.name,  # type: ignore[union-attr]
                QueueTicket.service.hall.name_en,  # type: ignore[union-attr]
            )
            .where(QueueTicket.openid == caller.openid)
            .order_by(QueueTicket.issued_at, ascending=False)
            .order_by(QueueTicket.id)
            .limit(limit + 1)
            .offset(offset)
            .run()
        )
        today = service_day(platform.now())
        items = []
        for r in rows:
            waiting = r["state"] == "waiting" and r["day"] == today
            ahead = await ahead_of(r["service"], r["day"], r["number"]) if waiting else 0
            items.append(
                {
                    "ticket_id": str(r["id"]),
                    "number": r["label"],
                    "state": r["state"] if r["state"] != "waiting" or waiting else "expired",
                    "day": r["day"],
                    "hall": r["service.hall.code"],
                    **names(r["service.hall.name"], r["service.hall.name_en"], "hall_name"),
                    "service": r["service.letter"],
                    **names(r["service.name"], r["service.name_en"], "service_name"),
                    "ahead": ahead if waiting else None,
                    "wait_minutes": wait_minutes(ahead, r["service.windows"], minutes()) if waiting else None,
                    "window": r["window"] or None,
                    "issued_at": r["issued_at"],
                    "called_at": r["called_at"],
                }
            )
        return page(request, items, limit=limit, offset=offset)

    @delete(
        "/queue/{ticket_id:str}",
        status_code=HTTP_204_NO_CONTENT,
        guards=[citizen_caller],
        summary="Give up a queue number still waiting",
    )
    async def leave(ticket_id: FromPath[str], caller: NamedDependency[AppCaller]) -> None:
        left = (
            await QueueTicket.update({QueueTicket.state: "cancelled"})
            .where(
                (QueueTicket.id == _uuid(ticket_id))
                & (QueueTicket.openid == caller.openid)
                & (QueueTicket.state == "waiting")
            )
            .returning(QueueTicket.id)
            .run()
        )
        if not left:
            raise NotFound("no waiting queue number with that id", code="queue_number_not_found")

    @post(
        "/halls/{hall:str}/services/{service:str}/call",
        status_code=200,
        guards=[app_backend],
        summary="The hall's queue system calls the next waiting number of a window category to a window",
    )
    async def call(
        hall: FromPath[str], service: FromPath[str], data: JSONBody[CallRequest]
    ) -> dict[str, Any]:
        row = (
            await Service.select()
            .where((Service.hall.code == hall) & (Service.letter == service.upper()))
            .first()
            .run()
        )
        if row is None:
            raise NotFound("no such service at this hall", code="service_not_found")
        async with platform.transaction():
            called = await call_next(row, data.window, platform.now())
            if called is None:
                raise NotFound("nobody is waiting in this line", code="queue_empty")
            # served at a window: the citizen may rate it (好差评), the hall answering for it
            await platform.rateable(
                called["openid"], "hall", key=f"ticket:{called['id']}", unit=hall_unit(hall)
            )
        return {
            "ticket_id": str(called["id"]),
            "number": called["label"],
            "window": data.window,
            "openid": called["openid"],
        }

    @get(
        "/checkpoints",
        summary="Health check points and their passes today; names in the request's language",
    )
    async def checkpoints(
        request: Request[Any, Any, Any], limit: Limit = DEFAULT_LIMIT, offset: Offset = 0
    ) -> dict[str, Any]:
        rows = await Checkpoint.select().order_by(Checkpoint.code).limit(limit + 1).offset(offset).run()
        passes = await passes_today(service_day(platform.now()))
        return page(
            request,
            [
                {
                    "checkpoint": r["code"],
                    **names(r["name"], r["name_en"]),
                    "kind": r["kind"],
                    "passes_today": passes.get(r["id"], 0),
                }
                for r in rows
            ],
            limit=limit,
            offset=offset,
        )

    @get("/passes", guards=[citizen_caller], summary="The caller's passes through health check points")
    async def my_passes(
        request: Request[Any, Any, Any],
        caller: NamedDependency[AppCaller],
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        rows = (
            await Pass.select(
                Pass.id, Pass.passed_at, Pass.checkpoint.code, Pass.checkpoint.name, Pass.checkpoint.name_en
            )
            .where(Pass.openid == caller.openid)
            .order_by(Pass.passed_at, ascending=False)
            .order_by(Pass.id)
            .limit(limit + 1)
            .offset(offset)
            .run()
        )
        return page(
            request,
            [
                {
                    "pass_id": str(r["id"]),
                    "checkpoint": r["checkpoint.code"],
                    **names(r["checkpoint.name"], r["checkpoint.name_en"]),
                    "passed_at": r["passed_at"],
                }
                for r in rows
            ],
            limit=limit,
            offset=offset,
        )

    return [halls, queue, leave, call, checkpoints, my_passes]
