"""Reservations: a space held and given back by single conditional UPDATEs, each change in one
transaction with its reservation row (used by the app's scans and by its routes), and the reminder
before one lapses: scheduled with the reservation, withdrawn when it is used or cancelled.

Plates: a citizen's plates, each checked against their vehicle licence (机动车行驶证) through the
platform's consent sharing (:meth:`Platform.ask_licence`), and settled when the citizen looks."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from piccolo.columns.combination import WhereRaw

from miniapps.contract import Conflict, NotFound, Platform
from miniapps.parking.rules import (
    PLATE_FIELDS,
    VEHICLE_LICENCE,
    lapse_reminder_at,
    plate_checked,
    plate_purpose,
    plate_unshared,
    reservation_expires,
)
from miniapps.parking.tables import CarPark, Plate, Reservation


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


class Plates:
    """A citizen's plates, each asked for once against their vehicle licence: the plate number and the
    vehicle type, nothing about the owner. A plate stays ``pending`` until the citizen has answered and
    parking has read what they shared (:meth:`settle`, when the citizen lists their plates)."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    async def add(self, openid: str, registered: str) -> tuple[dict[str, Any], bool]:
        """The plate registered and the citizen asked (``True``), or the row the citizen already has for
        it as it stands (``False``: a retry, or two adds at once, makes one row and one request)."""
        row_id = uuid.uuid4()
        async with self.platform.transaction():  # the row and the request to the citizen, or neither
            new = Plate(id=row_id, openid=openid, plate=registered, created_at=self.platform.now())
            made = await Plate.insert(new).on_conflict(action="DO NOTHING").returning(Plate.id).run()
            if made:
                # the key is the row's: a plate deleted and added again is asked for again (the old
                # request may be spent), while a retry of one add finds the row and asks nothing
                ask = await self.platform.ask_licence(
                    openid,
                    VEHICLE_LICENCE,
                    list(PLATE_FIELDS),
                    plate_purpose(registered),
                    key=f"plate:{row_id.hex}",
                )
                if ask is None:  # not a citizen of this app (a citizen's route never gets here)
                    raise NotFound("no such citizen", code="citizen_not_found")
                await Plate.update({Plate.request: ask.id}).where(Plate.id == row_id).run()
        row = await self._one(openid, registered)
        assert row is not None  # made here, or there already
        return row, bool(made)

    async def _one(self, openid: str, registered: str) -> dict[str, Any] | None:
        return (
            await Plate.select().where((Plate.openid == openid) & (Plate.plate == registered)).first().run()
        )

    async def remove(self, openid: str, registered: str) -> bool:
        rows = (
            await Plate.delete()
            .where((Plate.openid == openid) & (Plate.plate == registered))
            .returning(Plate.id)
            .run()
        )
        return bool(rows)

    async def settle(self, openid: str) -> None:
        """Settle the citizen's pending plates whose request the citizen has answered (or which ran
        out): an approved one is read (the platform logs the use) and checked."""
        pending = (
            await Plate.select(Plate.id, Plate.plate, Plate.request)
            .where((Plate.openid == openid) & (Plate.state == "pending"))
            .run()
        )
        for row in pending:
            await self._settle(row)

    async def _settle(self, row: dict[str, Any]) -> None:
        # the read and the plate's new state in one transaction: a one-time consent is spent only with
        # the plate settled by it. Two settling at once: the platform's row lock lets one read, the
        # other is told ``consent_used`` and finds the plate settled (the conditional UPDATE below)
        async with self.platform.transaction():
            vehicle_type = ""
            try:
                ask = await self.platform.licence_request(row["request"])
                if ask.state == "pending":
                    return
                if ask.state == "approved":
                    shared = await self.platform.licence_fields(ask.id)
                    state = plate_checked(row["plate"], str(shared.fields.get("plate_number", "")))
                    reason = ""
                    if state == "verified":  # another car's type is not this plate's
                        vehicle_type = str(shared.fields.get("vehicle_type", ""))[:64]
                else:
                    reason = f"consent_{ask.state}"
                    state = plate_unshared(reason)
            except Conflict as exc:
                if exc.code == "consent_pending":
                    return
                reason, state = exc.code, plate_unshared(exc.code)
            except NotFound as exc:  # the request is gone (the citizen's account was deleted)
                reason, state = exc.code, "lapsed"
            await (
                Plate.update(
                    {
                        Plate.state: state,
                        Plate.reason: reason[:32],
                        Plate.vehicle_type: vehicle_type,
                        Plate.settled_at: self.platform.now(),
                    }
                )
                .where((Plate.id == row["id"]) & (Plate.state == "pending"))
                .run()
            )

    async def page(self, openid: str, *, limit: int, offset: int) -> list[dict[str, Any]]:
        """The citizen's plates, newest first (pending ones settled first)."""
        await self.settle(openid)
        return list(
            await Plate.select()
            .where(Plate.openid == openid)
            .order_by(Plate.created_at, ascending=False)
            .order_by(Plate.id)
            .limit(limit)
            .offset(offset)
            .run()
        )

    async def verified(self, openid: str) -> set[str]:
        """The citizen's verified plates."""
        rows = (
            await Plate.select(Plate.plate)
            .where((Plate.openid == openid) & (Plate.state == "verified"))
            .run()
        )
        return {r["plate"] for r in rows}

    async def is_verified(self, openid: str, registered: str) -> bool:
        """Whether this plate is one of the citizen's verified plates (one indexed read)."""
        return bool(
            await Plate.exists()
            .where((Plate.openid == openid) & (Plate.plate == registered) & (Plate.state == "verified"))
            .run()
        )
