"""Parking's routes under /api/v1/apps/parking."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

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
from miniapps.parking.services import Plates, Reservations
from miniapps.parking.tables import CarPark, ParkingSession, Reservation


class ReservationCreate(msgspec.Struct, forbid_unknown_fields=True):
    car_park: Annotated[str, msgspec.Meta(max_length=16)]
    plate: Annotated[str, msgspec.Meta(min_length=5, max_length=16)]
    starts_at: datetime


class PlateCreate(msgspec.Struct, forbid_unknown_fields=True):
    plate: Annotated[str, msgspec.Meta(min_length=5, max_length=16)]


class PlateView(msgspec.Struct):
    plate: str
    # pending | verified | mismatch | refused | lapsed
    state: str
    reason: str  # the platform's code when not verified (consent_refused, consent_expired, ...), else ""
    vehicle_type: str  # 车辆类型 from the licence, once verified
    request_id: str  # the citizen answers it in the wallet (their licence requests)
    created_at: datetime
    settled_at: datetime | None


def _plate(r: dict[str, Any]) -> PlateView:
    return PlateView(
        plate=r["plate"],
        state=r["state"],
        reason=r["reason"],
        vehicle_type=r["vehicle_type"],
        request_id=r["request"],
        created_at=r["created_at"],
        settled_at=r["settled_at"],
    )


def handlers(service: Reservations, plates: Plates) -> list[Any]:
    """The routes, keeping reservations through ``service`` and plates through ``plates`` (the parking
    app's)."""

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
        # shown, not required: a plate checked against the citizen's vehicle licence
        return {**made, "plate_verified": await plates.is_verified(caller.openid, made["plate"])}

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
        verified = await plates.verified(caller.openid)
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
                    "plate_verified": r["plate"] in verified,
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
        verified = await plates.verified(caller.openid)
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
                    "plate": r["plate"],  # as the barrier's camera read it
                    "plate_verified": plate(r["plate"]) in verified,
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

    @post(
        "/plates",
        guards=[citizen_caller],
        summary="Register a plate: the citizen is asked to share the plate number and vehicle type of their"
        " vehicle licence (201; 200 with the plate as it stands when it is registered already)",
        responses={200: ResponseSpec(PlateView, description="The plate, registered already")},
    )
    async def add_plate(
        data: JSONBody[PlateCreate], caller: NamedDependency[AppCaller]
    ) -> Response[PlateView]:
        row, made = await plates.add(caller.openid, plate(data.plate))
        return Response(_plate(row), status_code=HTTP_201_CREATED if made else HTTP_200_OK)

    @get(
        "/plates",
        guards=[citizen_caller],
        summary="The caller's plates, newest first; those the citizen has answered for are settled first"
        " (verified, mismatch, refused or lapsed)",
    )
    async def my_plates(
        request: Request[Any, Any, Any],
        caller: NamedDependency[AppCaller],
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        rows = await plates.page(caller.openid, limit=limit + 1, offset=offset)
        return page(request, [_plate(r) for r in rows], limit=limit, offset=offset)

    @delete(
        "/plates/{registered:str}",
        status_code=HTTP_204_NO_CONTENT,
        guards=[citizen_caller],
        summary="Remove a plate (added again, it is asked for again)",
    )
    async def remove_plate(registered: FromPath[str], caller: NamedDependency[AppCaller]) -> None:
        if not await plates.remove(caller.openid, plate(registered)):
            raise NotFound("no such plate of yours", code="plate_not_found")

    return [car_parks, reserve, cancel, reservations, sessions, add_plate, my_plates, remove_plate]
