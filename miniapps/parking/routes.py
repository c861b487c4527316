"""Parking's routes under /api/v1/apps/parking."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Request, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_204_NO_CONTENT

from miniapps.contract import (
    DEFAULT_LIMIT,
    AppCaller,
    Conflict,
    InvalidInput,
    Limit,
    NotFound,
    Offset,
    citizen_caller,
    names,
    page,
    window,
)
from miniapps.parking.rules import free_spaces, plate
from miniapps.parking.services import Reservations
from miniapps.parking.tables import CarPark, ParkingSession, Reservation


class ReservationCreate(msgspec.Struct, forbid_unknown_fields=True):
    car_park: Annotated[str, msgspec.Meta(max_length=16)]
    plate: Annotated[str, msgspec.Meta(min_length=5, max_length=16)]
    starts_at: datetime


def handlers(service: Reservations) -> list[Any]:
    """The routes, keeping reservations through ``service`` (the parking app's)."""

    @get(
        "/car-parks",
        summary="Car parks with live free spaces (by district, in either language; only those with space)",
    )
    async def car_parks(
        request: Request[Any, Any, Any],
        district: FromQuery[str | None] = None,
        available: FromQuery[bool] = False,
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        await service.expire()
        query = CarPark.select().order_by(CarPark.code)
        if district:
            query = query.where((CarPark.district == district) | (CarPark.district_en == district))
        rows = await query.run()
        items = [
            {
                "code": r["code"],
                **names(r["name"], r["name_en"]),
                **names(r["district"], r["district_en"], "district"),
                **{k: r[k] for k in ("capacity", "free_minutes", "hourly_rate", "daily_max")},
                "free": free_spaces(r["capacity"], r["occupied"], r["reserved"]),
            }
            for r in rows
        ]
        if available:
            items = [i for i in items if i["free"] > 0]
        return page(request, window(items, limit=limit, offset=offset), limit=limit, offset=offset)

    @post(
        "/reservations", guards=[citizen_caller], summary="Hold a space until the start time plus the grace"
    )
    async def reserve(
        data: JSONBody[ReservationCreate], caller: NamedDependency[AppCaller]
    ) -> dict[str, Any]:
        if data.starts_at.tzinfo is None:
            raise InvalidInput(
                "starts_at needs a time zone (RFC 3339)", code="time_zone_required", field="starts_at"
            )
        made = await service.reserve(caller.openid, data.car_park, plate(data.plate), data.starts_at)
        if made.get("error") == "unknown_car_park":
            raise NotFound("no such car park", code="unknown_car_park")
        if made.get("error") == "car_park_full":
            raise Conflict("no free space to reserve", code="car_park_full")
        return made

    @delete(
        "/reservations/{reservation_id:str}",
        status_code=HTTP_204_NO_CONTENT,
        guards=[citizen_caller],
        summary="Cancel a reservation (the space is free again at once)",
    )
    async def cancel(reservation_id: FromPath[str], caller: NamedDependency[AppCaller]) -> None:
        try:
            ok = await service.cancel(caller.openid, reservation_id)
        except ValueError:
            ok = False
        if not ok:
            raise NotFound("no active reservation with that id", code="reservation_not_found")

    @get("/reservations", guards=[citizen_caller], summary="The caller's reservations, newest first")
    async def reservations(
        request: Request[Any, Any, Any],
        caller: NamedDependency[AppCaller],
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        await service.expire()
        rows = (
            await Reservation.select(
                Reservation.all_columns(),  # type: ignore[arg-type]
                Reservation.car_park.code,
                Reservation.car_park.name,
                Reservation.car_park.name_en,
            )
            .where(Reservation.openid == caller.openid)
            .order_by(Reservation.created_at, ascending=False)
            .order_by(Reservation.id)
            .limit(limit + 1)
            .offset(offset)
            .run()
        )
        return page(
            request,
            [
                {
                    "reservation_id": str(r["id"]),
                    "car_park": r["car_park.code"],
                    **names(r["car_park.name"], r["car_park.name_en"]),
                    "plate": r["plate"],
                    "starts_at": r["starts_at"],
                    "expires_at": r["expires_at"],
                    "state": r["state"],
                }
                for r in rows
            ],
            limit=limit,
            offset=offset,
        )

    @get("/sessions", guards=[citizen_caller], summary="The caller's stays and fees, newest first")
    async def sessions(
        request: Request[Any, Any, Any],
        caller: NamedDependency[AppCaller],
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        rows = (
            await ParkingSession.select(
                ParkingSession.all_columns(),  # type: ignore[arg-type]
                ParkingSession.car_park.code,
                ParkingSession.car_park.name,
                ParkingSession.car_park.name_en,
            )
            .where(ParkingSession.openid == caller.openid)
            .order_by(ParkingSession.entry_at, ascending=False)
            .order_by(ParkingSession.id)
            .limit(limit + 1)
            .offset(offset)
            .run()
        )
        return page(
            request,
            [
                {
                    "car_park": r["car_park.code"],
                    **names(r["car_park.name"], r["car_park.name_en"]),
                    "plate": r["plate"],
                    "entry_at": r["entry_at"],
                    "exit_at": r["exit_at"],
                    "fee": r["fee"],
                    "order_id": r["order_id"],
                    "state": r["state"],
                }
                for r in rows
            ],
            limit=limit,
            offset=offset,
        )

    return [car_parks, reserve, cancel, reservations, sessions]
