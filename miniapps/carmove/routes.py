"""扫码挪车's routes under /api/v1/apps/carmove: the owner's cars, stickers and requests (citizen token),
the sticker's public page and what a stranger does there (no login), and the operators' reports (the
app's backend credential)."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import segno
from litestar import Request, Response, delete, get, post, put
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, HeaderParameter, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from miniapps.carmove.rules import (
    ANSWERS,
    REASONS,
    REPORTS,
    note,
    plate,
    plate_masked,
    plate_shown,
    sticker_refusal,
)
from miniapps.carmove.services import Carmove
from miniapps.carmove.tables import Sticker
from miniapps.contract import (
    DEFAULT_LIMIT,
    AppCaller,
    InvalidInput,
    Limit,
    Offset,
    app_backend,
    citizen_caller,
    names,
    page,
)

STATIC = Path(__file__).parent / "static"
PREFIX = "/api/v1/apps/carmove"
# the public page loads nothing from elsewhere and runs no inline script
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'"
    " data: blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # the sticker's code stays out of other sites' logs
}
REFUSALS = {
    409: "The sticker takes no requests: its owner paused it (`sticker_paused`), or the operators"
    " suspended it after a report of misuse (`sticker_suspended`)",
    410: "The sticker is no longer valid: its owner replaced it (`sticker_replaced`)",
    429: "Too many requests from this sender, to this sticker, this hour (`carmove_rate_limited`);"
    " `Retry-After` says when to try again",
}
FORMATS = {"png": "image/png", "svg": "image/svg+xml", "pdf": "application/pdf"}
Code = Annotated[str, msgspec.Meta(min_length=8, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")]
Note = Annotated[str, msgspec.Meta(max_length=200)]
# the sender's request token travels in a header, never in the path: paths are written to access logs
Token = Annotated[
    str,
    HeaderParameter(
        name="X-Carmove-Token",
        min_length=16,
        max_length=64,
        description="the request_token the request was answered with",
    ),
]


class CarCreate(msgspec.Struct, forbid_unknown_fields=True):
    plate: Annotated[str, msgspec.Meta(min_length=5, max_length=16)]


class StickerChange(msgspec.Struct, forbid_unknown_fields=True):
    paused: bool


class RequestCreate(msgspec.Struct, forbid_unknown_fields=True):
    reason: Annotated[str, msgspec.Meta(max_length=16)]
    note: Note = ""


class AnswerCreate(msgspec.Struct, forbid_unknown_fields=True):
    answer: Annotated[str, msgspec.Meta(max_length=16)]
    note: Note = ""


class ReportCreate(msgspec.Struct, forbid_unknown_fields=True):
    kind: Annotated[str, msgspec.Meta(max_length=16)]
    note: Note = ""
    request_id: Annotated[str, msgspec.Meta(max_length=36)] = ""


Operator = Annotated[str, msgspec.Meta(max_length=64)]


class ReportClose(msgspec.Struct, forbid_unknown_fields=True):
    action: Literal["none", "pause"]
    by: Operator = ""  # the operator, as they name themselves (the credential is the app's, shared)


class SuspensionLift(msgspec.Struct, forbid_unknown_fields=True):
    by: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


def _text(value: str, field: str) -> str:
    try:
        return note(value)
    except ValueError as exc:
        raise InvalidInput(f"{field}: {exc}", code="invalid_note", field=field) from exc


def _pick(request: Request[Any, Any, Any], pair: tuple[str, str]) -> str:
    """A text in the request's language (Accept-Language, as the platform reads it)."""
    return names(pair[0], pair[1], "text")["text"]


def _sticker_url(request: Request[Any, Any, Any], code: str, base: str = "") -> str:
    """The page a sticker's QR opens: under ``sticker_base_url`` when set (the address the city prints,
    whatever host a request came through), else the address this request came to."""
    return f"{(base or str(request.base_url)).rstrip('/')}{PREFIX}/s/{code}"


def _sticker(request: Request[Any, Any, Any], s: dict[str, Any] | None, base: str) -> dict[str, Any] | None:
    if s is None:
        return None
    return {
        "code": s["code"],
        "state": s["state"],
        "url": _sticker_url(request, s["code"], base),
        "created_at": s["created_at"],
    }


def _car(request: Request[Any, Any, Any], c: dict[str, Any], base: str) -> dict[str, Any]:
    return {
        "car_id": str(c["id"]),
        "plate": c["plate"],
        "plate_shown": plate_shown(c["plate"]),
        "proof": c["proof"],  # unproven | proven
        "reason": c["reason"],
        "licence_request": c["request"],
        "vehicle_type": c["vehicle_type"],
        "created_at": c["created_at"],
        "sticker": _sticker(request, c.get("sticker"), base),
    }


def _received(request: Request[Any, Any, Any], r: dict[str, Any]) -> dict[str, Any]:
    return {
        "request_id": str(r["id"]),
        "plate": r["sticker.car.plate"],
        "reason": r["reason"],
        "reason_text": _pick(request, REASONS[r["reason"]]),
        "note": r["note"],
        "photo": bool(r["photo_type"]),
        "state": r["state"],  # waiting | answered | expired
        "answer": r["answer"],
        "answer_text": _pick(request, ANSWERS[r["answer"]]) if r["answer"] else "",
        "answer_note": r["answer_note"],
        "created_at": r["created_at"],
        "answered_at": r["answered_at"],
        "sms_fallback": r["sms_fallback"],  # the owner was texted: unanswered a minute after it was sent
    }


def _for_sender(request: Request[Any, Any, Any], r: dict[str, Any]) -> dict[str, Any]:
    """What the sender sees of their request: its state and the owner's answer, nothing of the owner."""
    return {
        "state": r["state"],
        "reason": r["reason"],
        "reason_text": _pick(request, REASONS[r["reason"]]),
        "photo": bool(r["photo_type"]),
        "answer": r["answer"],
        "answer_text": _pick(request, ANSWERS[r["answer"]]) if r["answer"] else "",
        "answer_note": r["answer_note"],
        "created_at": r["created_at"],
        "answered_at": r["answered_at"],
    }


def _sender_keys(request: Request[Any, Any, Any]) -> list[str]:
    """Who sends, for the limits: the network address, and the page's device id when it gives one (both
    hashed: the store never holds an address)."""
    keys = [request.client.host if request.client else "unknown"]
    device = request.headers.get("x-carmove-device", "")
    if 8 <= len(device) <= 64 and device.isascii() and device.replace("-", "").isalnum():
        keys.append("device:" + device)
    return [hashlib.sha256(k.encode()).hexdigest()[:32] for k in keys]


def handlers(service: Carmove) -> list[Any]:
    base = service.settings.sticker_base_url

    # ---- the owner ----------------------------------------------------------------------------------
    @post(
        "/cars",
        guards=[citizen_caller],
        summary="Register a car: it gets a sticker at once and is unproven until the citizen shares the"
        " plate number of their vehicle licence (201; 200 with the car as it stands when registered"
        " already)",
        responses={200: ResponseSpec(dict, description="The car, registered already")},
    )
    async def add_car(
        request: Request[Any, Any, Any], data: JSONBody[CarCreate], caller: NamedDependency[AppCaller]
    ) -> Response[dict[str, Any]]:
        try:
            registered = plate(data.plate)
        except ValueError as exc:
            raise InvalidInput(str(exc), code="invalid_plate", field="plate") from exc
        row, created = await service.add_car(caller.openid, registered)
        row["sticker"] = await service.sticker_of(row["id"])
        return Response(_car(request, row, base), status_code=HTTP_201_CREATED if created else HTTP_200_OK)

    @get("/cars", guards=[citizen_caller], summary="The caller's cars with their stickers, newest first")
    async def my_cars(
        request: Request[Any, Any, Any],
        caller: NamedDependency[AppCaller],
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        rows = await service.cars(caller.openid, limit=limit + 1, offset=offset)
        return page(request, [_car(request, c, base) for c in rows], limit=limit, offset=offset)

    @delete(
        "/cars/{car_id:str}",
        status_code=HTTP_204_NO_CONTENT,
        guards=[citizen_caller],
        summary="Remove a car (its stickers stop working: they answer 404)",
    )
    async def remove_car(car_id: FromPath[str], caller: NamedDependency[AppCaller]) -> None:
        await service.remove_car(caller.openid, car_id)

    def sticker_image(kind: Literal["png", "svg", "pdf"]) -> Any:
        @get(
            f"/cars/{{car_id:str}}/sticker.{kind}",
            guards=[citizen_caller],
            summary=f"The car's sticker to print, as {kind.upper()}: a QR code of its public page's address"
            " (a random code: no plate, no phone)",
            media_type=FORMATS[kind],
            name=f"carmove-sticker-{kind}",
        )
        async def image(
            request: Request[Any, Any, Any], car_id: FromPath[str], caller: NamedDependency[AppCaller]
        ) -> Response[bytes]:
            s = await service.current_sticker(caller.openid, car_id)
            qr = segno.make(_sticker_url(request, s["code"], base), error="m")
            out = io.BytesIO()
            if kind == "svg":
                qr.save(out, kind="svg", scale=12, border=4, title="扫码挪车 / Scan to reach the owner")
            else:
                qr.save(out, kind=kind, scale=12, border=4)
            return Response(
                out.getvalue(),
                media_type=FORMATS[kind],
                headers={
                    "Content-Disposition": f'attachment; filename="carmove-sticker.{kind}"',
                    "Cache-Control": "no-store",
                },
            )

        return image

    @put(
        "/cars/{car_id:str}/sticker",
        guards=[citizen_caller],
        summary="Pause the car's sticker (strangers are told so) or resume it",
        status_code=HTTP_200_OK,
    )
    async def pause_sticker(
        request: Request[Any, Any, Any],
        car_id: FromPath[str],
        data: JSONBody[StickerChange],
        caller: NamedDependency[AppCaller],
    ) -> dict[str, Any]:
        return _sticker(request, await service.set_paused(caller.openid, car_id, data.paused), base) or {}

    @post(
        "/cars/{car_id:str}/sticker/regenerate",
        guards=[citizen_caller],
        summary="A new sticker for the car: the old one says it is no longer valid",
        status_code=HTTP_201_CREATED,
    )
    async def regenerate(
        request: Request[Any, Any, Any], car_id: FromPath[str], caller: NamedDependency[AppCaller]
    ) -> dict[str, Any]:
        return _sticker(request, await service.regenerate(caller.openid, car_id), base) or {}

    @get("/requests", guards=[citizen_caller], summary="Requests to move the caller's cars, newest first")
    async def inbox(
        request: Request[Any, Any, Any],
        caller: NamedDependency[AppCaller],
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        rows = await service.inbox(caller.openid, limit=limit + 1, offset=offset)
        return page(request, [_received(request, r) for r in rows], limit=limit, offset=offset)

    @post(
        "/requests/{request_id:str}/answer",
        guards=[citizen_caller],
        summary="Answer a request once (the sender sees it; the SMS reminder is withdrawn)",
        status_code=HTTP_200_OK,
    )
    async def answer(
        request: Request[Any, Any, Any],
        request_id: FromPath[str],
        data: JSONBody[AnswerCreate],
        caller: NamedDependency[AppCaller],
    ) -> dict[str, Any]:
        row = await service.answer(caller.openid, request_id, data.answer, _text(data.note, "note"))
        return _received(request, row)

    @get(
        "/requests/{request_id:str}/photo",
        guards=[citizen_caller],
        summary="The sender's photo of a request to the caller (re-encoded: no EXIF, no location)",
        media_type="image/jpeg",
    )
    async def request_photo(request_id: FromPath[str], caller: NamedDependency[AppCaller]) -> Response[bytes]:
        data = await service.photo(caller.openid, request_id)
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, no-store"})

    @post(
        "/requests/{request_id:str}/report",
        guards=[citizen_caller],
        summary="The owner reports a request as misuse to the operators",
        status_code=HTTP_201_CREATED,
    )
    async def owner_report(
        request: Request[Any, Any, Any],
        request_id: FromPath[str],
        data: JSONBody[ReportCreate],
        caller: NamedDependency[AppCaller],
    ) -> dict[str, Any]:
        row = await service.received(caller.openid, request_id)
        sticker = await _sticker_code(row["sticker"])
        made = await service.report(
            sticker,
            data.kind,
            _text(data.note, "note"),
            sender_keys=_sender_keys(request),
            owner=caller.openid,
            request=str(row["id"]),
        )
        return _report(made)

    async def _sticker_code(sticker_id: Any) -> str:
        s = await Sticker.select(Sticker.code).where(Sticker.id == sticker_id).first().run()
        return str(s["code"]) if s else ""

    # ---- a stranger at the car (no login) ----------------------------------------------------------------
    @get(
        "/s/{code:str}",
        summary="The sticker's public page (what a phone camera opens)",
        include_in_schema=False,
    )
    async def public_page(code: FromPath[str]) -> Response[bytes]:
        html = (STATIC / "page.html").read_bytes()
        return Response(html, media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)

    @get("/page.js", summary="The public page's script", include_in_schema=False)
    async def page_js() -> Response[bytes]:
        return Response(
            (STATIC / "page.js").read_bytes(),
            media_type="text/javascript; charset=utf-8",
            headers={"Cache-Control": "max-age=300", "X-Content-Type-Options": "nosniff"},
        )

    @get(
        "/stickers/{code:str}",
        summary="What a stranger sees of a sticker: whether it takes requests, the plate masked, the"
        " reasons to choose from (no owner, no phone)",
    )
    async def sticker_info(request: Request[Any, Any, Any], code: FromPath[Code]) -> dict[str, Any]:
        s = await service.sticker(code)
        return {
            "state": s["state"],
            "refusal": sticker_refusal(s["state"]),
            "plate": plate_masked(s["car.plate"]),
            "owner_verified": s["car.proof"] == "proven",
            "reasons": [{"code": k, "text": _pick(request, v)} for k, v in REASONS.items()],
            "reports": [{"code": k, "text": _pick(request, v)} for k, v in REPORTS.items()],
        }

    @post(
        "/stickers/{code:str}/requests",
        summary="Ask the car's owner to move it (no login). Answers the request token: keep it to see the"
        " answer, attach a photo or call. Limited per sender, per sticker and per hour (429)",
        opt={"problems": REFUSALS},
        status_code=HTTP_201_CREATED,
    )
    async def send(
        request: Request[Any, Any, Any], code: FromPath[Code], data: JSONBody[RequestCreate]
    ) -> dict[str, Any]:
        row, token = await service.send(
            code, data.reason, _text(data.note, "note"), sender_keys=_sender_keys(request)
        )
        return {"request_token": token, **_for_sender(request, row)}

    @post(
        "/stickers/{code:str}/requests/signed-in",
        guards=[citizen_caller],
        summary="The same from the citizen app: also limited per citizen",
        opt={"problems": REFUSALS},
        status_code=HTTP_201_CREATED,
    )
    async def send_signed_in(
        request: Request[Any, Any, Any],
        code: FromPath[Code],
        data: JSONBody[RequestCreate],
        caller: NamedDependency[AppCaller],
    ) -> dict[str, Any]:
        row, token = await service.send(
            code,
            data.reason,
            _text(data.note, "note"),
            sender_keys=_sender_keys(request),
            sender=caller.openid,
        )
        return {"request_token": token, **_for_sender(request, row)}

    @get(
        "/sent",
        summary="The sender's view of their request (its token in X-Carmove-Token): its state and the"
        " owner's answer (poll it)",
        opt={"problems": [404]},
    )
    async def sent(request: Request[Any, Any, Any], token: Token) -> dict[str, Any]:
        return _for_sender(request, await service.by_token(token))

    @put(
        "/sent/photo",
        summary="Attach one photo to the request while it waits: the body is the JPEG or PNG image itself,"
        " its Content-Type saying so; re-encoded without EXIF or location",
        status_code=HTTP_201_CREATED,
        opt={"problems": [404]},
    )
    async def photo(request: Request[Any, Any, Any], token: Token) -> dict[str, Any]:
        body = await request.body()
        kind = await service.attach_photo(token, body, request.headers.get("content-type", ""))
        return {"photo": True, "content_type": kind}

    @post(
        "/sent/call",
        summary="A privacy number (隐私号) that reaches the owner for a few minutes: neither side sees the"
        " other's number",
        opt={
            "problems": {
                404: "No such request (`move_request_not_found`)",
                503: "No privacy-number provider (`privacy_number_unavailable`)",
            }
        },
        status_code=HTTP_200_OK,
    )
    async def call(token: Token) -> dict[str, Any]:
        return await service.call(token)

    @post(
        "/stickers/{code:str}/reports",
        summary="Report misuse of a sticker to the operators (anyone; limited per sender and hour)",
        opt={"problems": [429]},
        status_code=HTTP_201_CREATED,
    )
    async def report(
        request: Request[Any, Any, Any], code: FromPath[Code], data: JSONBody[ReportCreate]
    ) -> dict[str, Any]:
        made = await service.report(
            code, data.kind, _text(data.note, "note"), sender_keys=_sender_keys(request)
        )
        return _report(made)

    # ---- the operators (the app's own backend credential) ------------------------------------------------
    @get("/reports", guards=[app_backend], summary="Reports of misuse, newest first (open ones: ?state=open)")
    async def reports(
        request: Request[Any, Any, Any],
        wanted: Annotated[Literal["open", "closed"] | None, QueryParameter(name="state")] = None,
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        rows = await service.reports(wanted, limit=limit + 1, offset=offset)
        return page(
            request,
            [
                {
                    **_report(r),
                    "sticker": r["sticker.code"],
                    "sticker_state": r["sticker.state"],
                    "plate": plate_masked(r["sticker.car.plate"]),
                }
                for r in rows
            ],
            limit=limit,
            offset=offset,
        )

    @post(
        "/reports/{report_id:str}/close",
        guards=[app_backend],
        summary="Close a report, suspending the car's sticker (action pause: its owner cannot resume,"
        " regenerate it or remove the car until an operator lifts it) or not (none)",
        status_code=HTTP_200_OK,
    )
    async def close_report(report_id: FromPath[str], data: JSONBody[ReportClose]) -> dict[str, Any]:
        return _report(await service.close_report(report_id, data.action, _text(data.by, "by")))

    @post(
        "/reports/{report_id:str}/lift",
        guards=[app_backend],
        summary="Lift the suspension a report closed with pause made: the car's sticker takes requests"
        " again; the report records who lifted it and when",
        status_code=HTTP_200_OK,
    )
    async def lift(report_id: FromPath[str], data: JSONBody[SuspensionLift]) -> dict[str, Any]:
        by = _text(data.by, "by")
        if not by:
            raise InvalidInput("by: the operator's name", code="invalid_note", field="by")
        return _report(await service.lift(report_id, by))

    return [
        add_car,
        my_cars,
        remove_car,
        sticker_image("png"),
        sticker_image("svg"),
        sticker_image("pdf"),
        pause_sticker,
        regenerate,
        inbox,
        answer,
        request_photo,
        owner_report,
        public_page,
        page_js,
        sticker_info,
        send,
        send_signed_in,
        sent,
        photo,
        call,
        report,
        reports,
        close_report,
        lift,
    ]


def _report(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "report_id": str(r["id"]),
        "kind": r["kind"],
        "note": r["note"],
        "by_owner": bool(r["by_owner"]),
        "request_id": r["request"],
        "state": r["state"],
        "action": r["action"],
        "created_at": r["created_at"],
        "closed_at": r["closed_at"],
        "closed_by": r["closed_by"],
        "lifted_at": r["lifted_at"],  # the suspension it made was lifted (action pause)
        "lifted_by": r["lifted_by"],
    }
