"""Hospital routes under /api/v1/apps/hospital."""

from __future__ import annotations

import uuid
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
    Limit,
    NotFound,
    Offset,
    Platform,
    app_backend,
    citizen_caller,
    names,
    page,
)
from miniapps.hospital.rules import (
    appointment_reminder_at,
    pay_by,
    split_bill,
    state_after_bill,
    unit_code,
)
from miniapps.hospital.tables import Appointment, Slot, Visit


class BookRequest(msgspec.Struct, forbid_unknown_fields=True):
    slot_id: str


class BillItem(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    amount: Annotated[int, msgspec.Meta(gt=0, le=10_000_000)]
    covered: bool = True


class BillRequest(msgspec.Struct, forbid_unknown_fields=True):
    items: Annotated[list[BillItem], msgspec.Meta(min_length=1, max_length=200)]


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound("not found") from None


def reminder_key(appointment_id: uuid.UUID) -> str:
    """The idempotency key of an appointment's reminder."""
    return f"appointment-{appointment_id}"


def _visit(v: dict[str, Any]) -> dict[str, Any]:
    keep = ("state", "total", "insured", "self_paid", "order_id", "billed_at", "started_at")
    return {
        "visit_id": str(v["id"]),
        "walk_in": v["walk_in"] == "y",
        "items": v["items"],
        **{k: v[k] for k in keep},
    }


def handlers(platform: Platform) -> list[Any]:
    """The routes, answering with ``platform`` (the one the hospital's app was given)."""

    @get(
        "/slots",
        summary="Free slots from now on, soonest first (by hospital, department or doctor); "
        "names in the request's language",
    )
    async def slots(
        request: Request[Any, Any, Any],
        hospital: FromQuery[str | None] = None,
        department: FromQuery[str | None] = None,
        doctor: FromQuery[str | None] = None,
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        query = Slot.select(
            Slot.id,
            Slot.starts_at,
            Slot.capacity,
            Slot.booked,
            Slot.doctor.code,
            Slot.doctor.name,
            Slot.doctor.department.code,  # type: ignore[union-attr]
            Slot.doctor.department.name,  # type: ignore[union-attr]
            Slot.doctor.department.name_en,  # type: ignore[union-attr]
            Slot.doctor.department.hospital.code,  # type: ignore[union-attr]
        ).where((Slot.starts_at >= platform.now()) & (Slot.booked < Slot.capacity))
        if hospital:
            query = query.where(Slot.doctor.department.hospital.code == hospital)  # type: ignore[union-attr]
        if department:
            query = query.where(Slot.doctor.department.code == department)  # type: ignore[union-attr]
        if doctor:
            query = query.where(Slot.doctor.code == doctor)
        rows = await query.order_by(Slot.starts_at).order_by(Slot.id).limit(limit + 1).offset(offset).run()
        return page(
            request,
            [
                {
                    "slot_id": str(r["id"]),
                    "starts_at": r["starts_at"],
                    "doctor": r["doctor.name"],  # a person's name, the same in every language
                    "doctor_code": r["doctor.code"],
                    **names(r["doctor.department.name"], r["doctor.department.name_en"], "department"),
                    "department_code": r["doctor.department.code"],
                    "hospital": r["doctor.department.hospital.code"],
                    "free": r["capacity"] - r["booked"],
                }
                for r in rows
            ],
            limit=limit,
            offset=offset,
        )

    @post(
        "/appointments", guards=[citizen_caller], summary="Book a slot (the last place goes to one citizen)"
    )
    async def book(data: JSONBody[BookRequest], caller: NamedDependency[AppCaller]) -> dict[str, Any]:
        slot_id = _uuid(data.slot_id)
        appointment_id = uuid.uuid4()
        async with platform.transaction():  # the place and the appointment, or neither
            taken = (
                await Slot.update({Slot.booked: Slot.booked + 1})
                .where((Slot.id == slot_id) & (Slot.booked < Slot.capacity))
                .returning(Slot.id)
                .run()
            )
            if not taken:
                if not await Slot.exists().where(Slot.id == slot_id).run():
                    raise NotFound("no such slot", code="slot_not_found")
                raise Conflict("this slot is fully booked", code="slot_full")
            await Appointment.insert(Appointment(id=appointment_id, slot=slot_id, openid=caller.openid)).run()
            reminder = await _remind(caller.openid, appointment_id, slot_id)
        return {
            "appointment_id": str(appointment_id),
            "slot_id": data.slot_id,
            "state": "booked",
            # the reminder the evening before: scheduled, or skipped and why (the app may offer to
            # subscribe); None when the appointment is too near or too far for one
            "reminder": reminder,
        }

    async def _remind(openid: str, appointment_id: uuid.UUID, slot_id: uuid.UUID) -> dict[str, Any] | None:
        slot = (
            await Slot.select(
                Slot.starts_at,
                Slot.doctor.name,
                Slot.doctor.department.name,  # type: ignore[union-attr]
                Slot.doctor.department.name_en,  # type: ignore[union-attr]
                Slot.doctor.department.hospital.code,  # type: ignore[union-attr]
                Slot.doctor.department.hospital.name,  # type: ignore[union-attr]
                Slot.doctor.department.hospital.name_en,  # type: ignore[union-attr]
            )
            .where(Slot.id == slot_id)
            .first()
            .run()
        )
        assert slot is not None  # just booked, in this transaction
        at = appointment_reminder_at(slot["starts_at"], platform.now())
        if at is None:
            return None
        department = slot["doctor.department.name"]
        notice = await platform.notify(
            openid,
            "appointment_reminder",
            {
                "hospital": slot["doctor.department.hospital.name"],
                "hospital_en": (
                    slot["doctor.department.hospital.name_en"] or slot["doctor.department.hospital.code"]
                )[:64],
                "department": department,
                "department_en": (slot["doctor.department.name_en"] or department)[:64],
                "doctor": slot["doctor.name"],
                "starts_at": slot["starts_at"].isoformat(),
            },
            key=reminder_key(appointment_id),
            at=at,
        )
        return {"outcome": notice.outcome, "reason": notice.reason, "at": at}

    @get("/appointments", guards=[citizen_caller], summary="The caller's appointments, soonest first")
    async def appointments(
        request: Request[Any, Any, Any],
        caller: NamedDependency[AppCaller],
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        rows = (
            await Appointment.select(
                Appointment.id,
                Appointment.state,
                Appointment.slot.starts_at,
                Appointment.slot.doctor.name,  # type: ignore[union-attr]
                Appointment.slot.doctor.department.code,  # type: ignore[union-attr]
                Appointment.slot.doctor.department.name,  # type: ignore[union-attr]
                Appointment.slot.doctor.department.name_en,  # type: ignore[union-attr]
            )
            .where(Appointment.openid == caller.openid)
            .order_by(Appointment.slot.starts_at)
            .order_by(Appointment.id)
            .limit(limit + 1)
            .offset(offset)
            .run()
        )
        return page(
            request,
            [
                {
                    "appointment_id": str(r["id"]),
                    "state": r["state"],
                    "starts_at": r["slot.starts_at"],
                    "doctor": r["slot.doctor.name"],
                    **names(
                        r["slot.doctor.department.name"], r["slot.doctor.department.name_en"], "department"
                    ),
                    "department_code": r["slot.doctor.department.code"],
                }
                for r in rows
            ],
            limit=limit,
            offset=offset,
        )

    @delete(
        "/appointments/{appointment_id:str}",
        status_code=HTTP_204_NO_CONTENT,
        guards=[citizen_caller],
        summary="Cancel an appointment; the slot is free again",
    )
    async def cancel(appointment_id: FromPath[str], caller: NamedDependency[AppCaller]) -> None:
        appointment = _uuid(appointment_id)
        # cancelled, its place given back and its reminder withdrawn, or none of them
        async with platform.transaction():
            rows = (
                await Appointment.update({Appointment.state: "cancelled"})
                .where(
                    (Appointment.id == appointment)
                    & (Appointment.openid == caller.openid)
                    & (Appointment.state == "booked")
                )
                .returning(Appointment.slot)
                .run()
            )
            if not rows:
                raise NotFound("no booked appointment with that id", code="appointment_not_found")
            await (
                Slot.update({Slot.booked: Slot.booked - 1})
                .where((Slot.id == rows[0]["slot"]) & (Slot.booked > 0))
                .run()
            )
            await platform.cancel_notice(reminder_key(appointment))

    @post("/visits/{visit_id:str}/bill", guards=[app_backend], summary="The hospital posts a visit's bill")
    async def bill(visit_id: FromPath[str], data: JSONBody[BillRequest]) -> dict[str, Any]:
        visit = (
            await Visit.select(
                Visit.all_columns(),  # type: ignore[arg-type]
                Visit.hospital.code,
                Visit.hospital.region,
                Visit.hospital.name,
                Visit.hospital.name_en,
            )
            .where(Visit.id == _uuid(visit_id))
            .first()
            .run()
        )
        if visit is None:
            raise NotFound("no such visit", code="visit_not_found")
        if visit["state"] != "open":
            raise Conflict("this visit has been billed already", code="already_billed")
        items = [msgspec.to_builtins(i) for i in data.items]
        cfg = platform.config
        total, insured, self_paid = split_bill(
            items,
            insured_region=visit["insured_region"],
            hospital_region=visit["hospital.region"],
            local_bp=cfg["local_rate_bp"],
            other_bp=cfg["other_rate_bp"],
        )
        # the visit billed once (a concurrent second bill finds it billed), with its order, or not at all
        billed_at = platform.now()
        async with platform.transaction():
            billed = (
                await Visit.update(
                    {
                        Visit.items: items,
                        Visit.total: total,
                        Visit.insured: insured,
                        Visit.self_paid: self_paid,
                        Visit.billed_at: billed_at,
                        Visit.state: state_after_bill(self_paid),
                    }
                )
                .where((Visit.id == visit["id"]) & (Visit.state == "open"))
                .returning(Visit.id)
                .run()
            )
            if not billed:
                raise Conflict("this visit has been billed already", code="already_billed")
            # the visit is over: the citizen may rate it (好差评), answered for by this hospital
            await platform.rateable(
                visit["openid"], "visit", key=f"visit:{visit['id']}", unit=unit_code(visit["hospital.code"])
            )
            order_id = ""
            if self_paid > 0:
                order = await platform.payments.create_order(
                    openid=visit["openid"],
                    reference=f"visit-{visit['id']}",
                    amount=self_paid,
                    deferred=True,
                    description=f"{visit['hospital.name']} 就诊费用（自付）",  # the merchant's own words
                )
                order_id = order["order_id"]
                await Visit.update({Visit.order_id: order_id}).where(Visit.id == visit["id"]).run()
                await platform.notify(  # the bill, with the order: one message however often it is sent
                    visit["openid"],
                    "bill_ready",
                    {
                        "hospital": visit["hospital.name"],
                        "hospital_en": (visit["hospital.name_en"] or visit["hospital.code"])[:64],
                        "total": total,
                        "insured": insured,
                        "self_paid": self_paid,
                        "pay_by": pay_by(billed_at, cfg["credit_days"]).isoformat(),
                    },
                    key=f"bill-{visit['id']}",
                )
        return {
            "visit_id": visit_id,
            "total": total,
            "insured": insured,
            "self_paid": self_paid,
            "order_id": order_id,
        }

    @get("/visits", guards=[citizen_caller], summary="The caller's visits and bills, newest first")
    async def visits(
        request: Request[Any, Any, Any],
        caller: NamedDependency[AppCaller],
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        rows = (
            await Visit.select()
            .where(Visit.openid == caller.openid)
            .order_by(Visit.started_at, ascending=False)
            .order_by(Visit.id)
            .limit(limit + 1)
            .offset(offset)
            .output(load_json=True)  # the bill's items as a list, not the JSON text they are stored as
            .run()
        )
        return page(request, [_visit(v) for v in rows], limit=limit, offset=offset)

    return [slots, book, appointments, cancel, bill, visits]
