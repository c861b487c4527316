"""Hospital routes under /api/v1/apps/hospital."""

from __future__ import annotations

import uuid
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
from miniapps.hospital.services import InsuranceCards
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


def _insurance(number: str, kind: str) -> dict[str, str] | None:
    """The medical insurance card a bill settled against (None: no card linked, or it gave nothing)."""
    return {"number": number, "type": kind} if number else None


def _visit(v: dict[str, Any]) -> dict[str, Any]:
    keep = ("state", "total", "insured", "self_paid", "order_id", "billed_at", "started_at")
    return {
        "visit_id": str(v["id"]),
        "walk_in": v["walk_in"] == "y",
        "items": v["items"],
        **{k: v[k] for k in keep},
        "insurance": _insurance(v["insurance_number"], v["insurance_type"]),
    }


class CardView(msgspec.Struct):
    # pending | linked | refused | lapsed | withdrawn
    state: str
    reason: str  # the platform's code when not linked (consent_refused, consent_revoked, ...), else ""
    request_id: str  # the citizen answers it in the wallet (their licence requests)
    # what the card said when last read ("" until linked)
    name: str
    insurance_number: str
    insurance_type: str
    region: str
    asked_at: datetime
    linked_at: datetime | None


def _card(c: dict[str, Any]) -> CardView:
    return CardView(
        state=c["state"],
        reason=c["reason"],
        request_id=c["request"],
        name=c["name"],
        insurance_number=c["insurance_number"],
        insurance_type=c["insurance_type"],
        region=c["region"],
        asked_at=c["asked_at"],
        linked_at=c["linked_at"],
    )


def handlers(platform: Platform, cards: InsuranceCards) -> list[Any]:
    """The routes, answering with ``platform`` (the one the hospital's app was given) and the citizens'
    insurance cards through ``cards``."""

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
            # the citizen's linked insurance card, read for this bill with their standing consent (the
            # read is in their use log, and goes with the bill if the bill fails); the split is the same
            card = await cards.for_bill(visit["openid"]) or {}
            number = str(card.get("insurance_number", ""))[:64]
            kind = str(card.get("insurance_type", ""))[:64]
            billed = (
                await Visit.update(
                    {
                        Visit.items: items,
                        Visit.total: total,
                        Visit.insured: insured,
                        Visit.self_paid: self_paid,
                        Visit.billed_at: billed_at,
                        Visit.state: state_after_bill(self_paid),
                        Visit.insurance_number: number,
                        Visit.insurance_type: kind,
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
            "insurance": _insurance(number, kind),
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

    @post(
        "/insurance-card",
        guards=[citizen_caller],
        summary="Link my medical insurance card (医保电子凭证): I am asked, once and standing, to let the"
        " hospital read its name, number, type and region at each bill (201; 200 with the card as it"
        " stands when it is linked or asked for already)",
        responses={200: ResponseSpec(CardView, description="The card, linked or asked for already")},
    )
    async def link_card(caller: NamedDependency[AppCaller]) -> Response[CardView]:
        card, asked = await cards.link(caller.openid)
        return Response(_card(card), status_code=HTTP_201_CREATED if asked else HTTP_200_OK)

    @get(
        "/insurance-card",
        guards=[citizen_caller],
        summary="My linked medical insurance card, settled first once I have answered",
        opt={"problems": [404]},
    )
    async def my_card(caller: NamedDependency[AppCaller]) -> CardView:
        card = await cards.card(caller.openid)
        if card is None:
            raise NotFound("no insurance card linked or asked for", code="insurance_card_not_found")
        return _card(card)

    return [slots, book, appointments, cancel, bill, visits, link_card, my_card]
