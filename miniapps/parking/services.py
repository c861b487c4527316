"""Reservations: a space held and given back by single conditional UPDATEs, each change in one
transaction with its reservation row (used by the app's scans and by its routes), and the reminder
before one lapses: scheduled with the reservation, withdrawn when it is used or cancelled."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from piccolo.columns.combination import WhereRaw

from miniapps.contract import Platform
from miniapps.parking.rules import lapse_reminder_at, reservation_expires
from miniapps.parking.tables import CarPark, Reservation


def reminder_key(reservation_id: str) -> str:
    """The idempotency key of a reservation's lapse reminder."""
    return f"reservation-{reservation_id}"


class Reservations:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    async def expire(self) -> int:
        """Lapse the reservations past their grace and give their spaces back; how many lapsed."""
        now = self.platform.now()
        async with self.platform.transaction():  # expired and their spaces given back together
            stale = (
                await Reservation.update({Reservation.state: "expired"})
                .where((Reservation.state == "active") & (Reservation.expires_at < now))
                .returning(Reservation.car_park)
                .run()
            )
            for row in stale:
                await (
                    CarPark.update({CarPark.reserved: CarPark.reserved - 1})
                    .where((CarPark.id == row["car_park"]) & (CarPark.reserved > 0))  # type: ignore[attr-defined]
                    .run()
                )
        return len(stale)

    async def reserve(self, openid: str, code: str, plate: str, starts_at: datetime) -> dict[str, Any]:
        await self.expire()
        park = (
            await CarPark.select(CarPark.id, CarPark.name, CarPark.name_en)  # type: ignore[attr-defined]
            .where(CarPark.code == code)
            .first()
            .run()
        )
        if park is None:
            return {"error": "unknown_car_park"}
        rid = uuid.uuid4()
        expires_at = reservation_expires(starts_at, self.platform.config["grace_minutes"])
        async with self.platform.transaction():  # the space held and the reservation, or neither
            held = (
                await CarPark.update({CarPark.reserved: CarPark.reserved + 1})
                .where((CarPark.id == park["id"]) & WhereRaw("occupied + reserved < capacity"))  # type: ignore[attr-defined]
                .returning(CarPark.id)  # type: ignore[attr-defined]
                .run()
            )
            if not held:
                return {"error": "car_park_full"}
            await Reservation.insert(
                Reservation(
                    id=rid,
                    car_park=park["id"],
                    openid=openid,
                    plate=plate,
                    starts_at=starts_at,
                    expires_at=expires_at,
                )
            ).run()
            remind_at = lapse_reminder_at(expires_at, self.platform.now())
            reminder = None
            if remind_at is not None:  # reaches the citizen only if subscribed (a reminder)
                notice = await self.platform.notify(
                    openid,
                    "reservation_lapsing",
                    {
                        "car_park": park["name"],
                        "car_park_en": (park["name_en"] or code)[:64],  # a text placeholder: 64 at most
                        "expires_at": expires_at.isoformat(),
                    },
                    key=reminder_key(str(rid)),
                    at=remind_at,
                )
                reminder = {"outcome": notice.outcome, "reason": notice.reason, "at": remind_at}
        return {
            "reservation_id": str(rid),
            "car_park": code,
            "plate": plate,
            "starts_at": starts_at,
            "expires_at": expires_at,
            "state": "active",
            # the lapse reminder: scheduled, or skipped and why (the app may offer to subscribe)
            "reminder": reminder,
        }

    async def cancel(self, openid: str, reservation_id: str) -> bool:
        async with self.platform.transaction():  # cancelled and its space given back, or neither
            rows = (
                await Reservation.update({Reservation.state: "cancelled"})
                .where(
                    (Reservation.id == uuid.UUID(reservation_id))
                    & (Reservation.openid == openid)
                    & (Reservation.state == "active")
                )
                .returning(Reservation.car_park)
                .run()
            )
            for row in rows:
                await (
                    CarPark.update({CarPark.reserved: CarPark.reserved - 1})
                    .where((CarPark.id == row["car_park"]) & (CarPark.reserved > 0))  # type: ignore[attr-defined]
                    .run()
                )
                await self.platform.cancel_notice(reminder_key(str(uuid.UUID(reservation_id))))
        return bool(rows)
