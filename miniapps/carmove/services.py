"""扫码挪车's database work: cars and their proof, stickers, requests and their answers, reports, and the
abuse limits (counters in the platform's shared store)."""

from __future__ import annotations

import asyncio
import hashlib
import io
import secrets
import struct
import uuid
import zlib
from datetime import datetime, timedelta
from typing import Any

from PIL import Image, UnidentifiedImageError

from miniapps.carmove.rules import (
    ANSWERS,
    PLATE_FIELDS,
    REASONS,
    REPORTS,
    VEHICLE_LICENCE,
    over,
    photo_type,
    plate_checked,
    plate_purpose,
    request_state,
    sms_due,
    sms_fires,
    sticker_refusal,
    window,
)
from miniapps.carmove.tables import Car, MoveRequest, Photo, Report, Sticker
from miniapps.contract import (
    Conflict,
    Gone,
    InvalidInput,
    NotFound,
    Platform,
    RateLimited,
)

MAX_PIXELS = 4096 * 4096  # a bigger image is refused before it is decoded (a decompression bomb)


# what makes a photo upright from each EXIF orientation (1, or none, is upright already)
TURNS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def orientation(img: Image.Image) -> int:
    """The photo's EXIF orientation; 1 (upright) when it has none or its EXIF cannot be read (read
    only: Pillow's exif_transpose writes the EXIF again, and fails on some a sender can make)."""
    try:
        value = img.getexif().get(0x0112, 1)
    except Exception:  # a broken EXIF block says nothing about the pixels
        return 1
    return value if isinstance(value, int) else 1


def reencoded(body: bytes) -> bytes:
    """A JPEG of the photo's pixels alone (no EXIF, no location), at most 1600 px a side; InvalidInput
    when it has too many pixels (checked before it is decoded) or cannot be read."""
    try:
        with Image.open(io.BytesIO(body)) as img:
            if img.width * img.height > MAX_PIXELS:
                raise InvalidInput("the photo has too many pixels", code="photo_too_large", most=MAX_PIXELS)
            img.load()
            # a phone stores a portrait photo on its side with an EXIF orientation; as EXIF is not
            # kept, the pixels are turned here, or the owner would see the photo sideways
            turn = TURNS.get(orientation(img))
            upright = img.transpose(turn) if turn is not None else img
            clean = Image.new("RGB", upright.size)
            clean.paste(upright.convert("RGB"))
    except Image.DecompressionBombError as exc:  # Pillow's own limit, far above ours: said as ours
        raise InvalidInput("the photo has too many pixels", code="photo_too_large", most=MAX_PIXELS) from exc
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise InvalidInput("the photo could not be read", code="photo_not_image") from exc
    # what Pillow raises for an image broken past its header (a PNG chunk of no valid type is a
    # SyntaxError while the pixels are read): the sender's mistake, not the server's
    except (SyntaxError, EOFError, struct.error, zlib.error) as exc:
        raise InvalidInput("the photo could not be read", code="photo_not_image") from exc
    clean.thumbnail((1600, 1600))
    out = io.BytesIO()
    clean.save(out, format="JPEG", quality=80)  # no exif= given: none is written
    return out.getvalue()


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def suspended() -> Conflict:
    """What the owner (or a sender) is told of a sticker the operators suspended after a report."""
    return Conflict(
        "the operators suspended this sticker after a report of misuse; contact the service to have it"
        " lifted",
        code="sticker_suspended",
    )


def waiting_key(request_id: str) -> str:
    """The key of the urgent notice (and its SMS) due when a request stays unanswered."""
    return f"waiting-{request_id}"


class Settings:
    def __init__(self, config: dict[str, Any]) -> None:
        self.sms_after = float(config.get("sms_after_seconds", 60))
        self.per_sender_hour = int(config.get("per_sender_hour", 10))
        self.per_sticker_hour = int(config.get("per_sticker_hour", 6))
        # one sender to one sticker: below the sticker's own limit, so no one sender uses up its hour
        self.per_sender_sticker_hour = int(config.get("per_sender_sticker_hour", 3))
        self.per_report_hour = int(config.get("per_report_hour", 5))
        self.open_minutes = int(config.get("open_minutes", 120))
        self.photo_max_bytes = int(config.get("photo_max_bytes", 800_000))
        self.call_minutes = int(config.get("call_minutes", 5))
        self.sticker_base_url = str(config.get("sticker_base_url", ""))
        self.photo_days = int(config.get("photo_days", 7))


class Carmove:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.settings = Settings(platform.config)
        self._decoding = asyncio.Semaphore(2)  # photos decoded at once by this worker

    # ---- cars and their proof ---------------------------------------------------------------------------
    async def add_car(self, openid: str, registered: str) -> tuple[dict[str, Any], bool]:
        """The car registered with its sticker and the citizen asked for their vehicle licence
        (``True``), or the car they have already (``False``: a retry, or two adds at once, make one)."""
        car_id = uuid.uuid4()
        async with self.platform.transaction():
            made = (
                await Car.insert(
                    Car(id=car_id, openid=openid, plate=registered, created_at=self.platform.now())
                )
                .on_conflict(action="DO NOTHING")
                .returning(Car.id)
                .run()
            )
            if made:
                try:
                    ask = await self.platform.ask_licence(
                        openid,
                        VEHICLE_LICENCE,
                        list(PLATE_FIELDS),
                        plate_purpose(registered),
                        key=f"car:{car_id.hex}",
                    )
                except Conflict as exc:
                    if exc.code != "requests_pending":
                        raise
                    # the platform's words are for the relying party ("this citizen has N of your
                    # requests unanswered"); the citizen is told what to do
                    raise Conflict(
                        "answer your earlier requests to share a vehicle licence first",
                        code="licence_requests_pending",
                        most=exc.extra.get("most", 0),
                    ) from exc
                if ask is None:
                    raise NotFound("no such citizen", code="citizen_not_found")
                await Car.update({Car.request: ask.id}).where(Car.id == car_id).run()
                await self._new_sticker(car_id, openid)
        row = await Car.select().where((Car.openid == openid) & (Car.plate == registered)).first().run()
        assert row is not None
        return row, bool(made)

    async def _new_sticker(self, car_id: Any, openid: str) -> str:
        code = secrets.token_urlsafe(16)  # 128 bits: not guessable, not a plate, not a phone
        await Sticker.insert(
            Sticker(id=uuid.uuid4(), car=car_id, code=code, openid=openid, created_at=self.platform.now())
        ).run()
        return code

    async def settle(self, openid: str) -> None:
        """Settle the citizen's unproven cars whose licence request was answered (or ran out)."""
        pending = (
            await Car.select(Car.id, Car.plate, Car.request)
            .where((Car.openid == openid) & Car.settled_at.is_null())
            .run()
        )
        for row in pending:
            await self._settle(row)

    async def _settle(self, row: dict[str, Any]) -> None:
        # the read and the car's proof in one transaction: a one-time consent is spent only with it
        async with self.platform.transaction():
            proof, reason, vehicle_type = "unproven", "", ""
            try:
                ask = await self.platform.licence_request(row["request"])
                if ask.state == "pending":
                    return
                if ask.state == "approved":
                    shared = await self.platform.licence_fields(ask.id)
                    proof = plate_checked(row["plate"], str(shared.fields.get("plate_number", "")))
                    if proof == "proven":
                        vehicle_type = str(shared.fields.get("vehicle_type", ""))[:64]
                    else:
                        proof, reason = "unproven", "mismatch"
                else:
                    reason = f"consent_{ask.state}"
            except Conflict as exc:
                if exc.code == "consent_pending":
                    return
                reason = exc.code
            except NotFound as exc:
                reason = exc.code
            await (
                Car.update(
                    {
                        Car.proof: proof,
                        Car.reason: reason[:32],
                        Car.vehicle_type: vehicle_type,
                        Car.settled_at: self.platform.now(),
                    }
                )
                .where((Car.id == row["id"]) & Car.settled_at.is_null())
                .run()
            )

    async def cars(self, openid: str, *, limit: int, offset: int) -> list[dict[str, Any]]:
        await self.settle(openid)
        cars = list(
            await Car.select()
            .where(Car.openid == openid)
            .order_by(Car.created_at, ascending=False)
            .order_by(Car.id)
            .limit(limit)
            .offset(offset)
            .run()
        )
        stickers = {}
        if cars:
            for s in (
                await Sticker.select()
                .where(Sticker.car.is_in([c["id"] for c in cars]) & (Sticker.state != "replaced"))
                .run()
            ):
                stickers[s["car"]] = s
        for c in cars:
            c["sticker"] = stickers.get(c["id"])
        return cars

    async def car(self, openid: str, car_id: str) -> dict[str, Any]:
        try:
            key = uuid.UUID(car_id)
        except ValueError:
            key = None
        row = (
            None
            if key is None
            else await Car.select().where((Car.id == key) & (Car.openid == openid)).first().run()
        )
        if row is None:
            raise NotFound("no such car of yours", code="car_not_found")
        return row

    async def remove_car(self, openid: str, car_id: str) -> None:
        """The car gone with its stickers and requests; the reminders (and their SMS) still due for its
        unanswered requests are withdrawn with it: no "still waiting" text about a car the citizen no
        longer has."""
        car = await self.car(openid, car_id)
        async with self.platform.transaction():
            await self._lock_car(car)
            # a sticker the operators suspended stays with its car: removing the car would escape it
            if await self._suspended(car["id"]):
                raise suspended()
            # its stickers' rows locked next: a request being sent at this moment is either in before
            # (and found below) or refused after, the sticker gone (see ``send``)
            await (
                Sticker.update({Sticker.replaced_at: self.platform.now()})
                .where(Sticker.car == car["id"])
                .run()
            )
            waiting = (
                await MoveRequest.select(MoveRequest.id)
                .where(
                    MoveRequest.sticker.is_in(
                        Sticker.select(Sticker.id).where(Sticker.car == car["id"])  # type: ignore[arg-type]
                    )
                    & (MoveRequest.state == "waiting")
                )
                .run()
            )
            for r in waiting:
                await self.platform.cancel_notice(waiting_key(str(r["id"])))
            await Car.delete().where(Car.id == car["id"]).run()

    async def _suspended(self, car_id: Any) -> bool:
        """Whether the operators suspended the car's sticker (a request made through an older code of
        the car is held by it too)."""
        return bool(
            await Sticker.exists().where((Sticker.car == car_id) & (Sticker.state == "suspended")).run()
        )

    async def _lock_car(self, car: dict[str, Any]) -> None:
        """The car's row locked until the transaction's end (a write of what it holds already:
        PostgreSQL's row lock; SQLite's writers are one at a time). Whatever changes which sticker a car
        has, or whether it is suspended (removing the car, regenerating, suspending, lifting), takes it
        first: one at a time per car, so a suspension never misses a sticker made at the same moment."""
        await Car.update({Car.plate: car["plate"]}).where(Car.id == car["id"]).run()

    async def sticker_of(self, car_id: Any) -> dict[str, Any] | None:
        return (
            await Sticker.select()
            .where((Sticker.car == car_id) & (Sticker.state != "replaced"))
            .first()
            .run()
        )

    async def current_sticker(self, openid: str, car_id: str) -> dict[str, Any]:
        car = await self.car(openid, car_id)
        row = (
            await Sticker.select()
            .where((Sticker.car == car["id"]) & (Sticker.state != "replaced"))
            .first()
            .run()
        )
        assert row is not None  # a car always has one
        return row

    async def set_paused(self, openid: str, car_id: str, paused: bool) -> dict[str, Any]:
        """The owner pauses or resumes their sticker: a conditional UPDATE from the other state, so it
        never touches a sticker the operators suspended (suspended meanwhile: it stays so, and the owner
        is told)."""
        sticker = await self.current_sticker(openid, car_id)
        if sticker["state"] == "suspended":
            raise suspended()
        new, old = ("paused", "active") if paused else ("active", "paused")
        await (
            Sticker.update({Sticker.state: new})
            .where((Sticker.id == sticker["id"]) & (Sticker.state == old))
            .run()
        )
        now = await self.current_sticker(openid, car_id)
        if now["state"] == "suspended":
            raise suspended()
        return now

    async def regenerate(self, openid: str, car_id: str) -> dict[str, Any]:
        """A new code for the car: the old sticker says it is no longer valid (one replaced at a time: a
        conditional UPDATE, so two regenerations at once make one new sticker each in turn)."""
        async with self.platform.transaction():
            await self._lock_car(await self.car(openid, car_id))
            sticker = await self.current_sticker(openid, car_id)
            if sticker["state"] == "suspended":  # a new code would escape the operators' suspension
                raise suspended()
            gone = (
                await Sticker.update({Sticker.state: "replaced", Sticker.replaced_at: self.platform.now()})
                .where((Sticker.id == sticker["id"]) & Sticker.state.is_in(["active", "paused"]))
                .returning(Sticker.id)
                .run()
            )
            if gone:
                await self._new_sticker(sticker["car"], openid)
        return await self.current_sticker(openid, car_id)

    # ---- the sticker as a stranger sees it -------------------------------------------------------------
    async def sticker(self, code: str) -> dict[str, Any]:
        row = (
            await Sticker.select(
                Sticker.all_columns(),  # type: ignore[arg-type]
                Sticker.car.plate,
                Sticker.car.proof,
            )
            .where(Sticker.code == code)
            .first()
            .run()
        )
        if row is None:
            raise NotFound("no such car sticker", code="sticker_not_found")
        return row

    async def _usable(self, code: str) -> dict[str, Any]:
        row = await self.sticker(code)
        refusal = sticker_refusal(row["state"])
        if refusal == "sticker_suspended":
            raise suspended()
        if refusal == "sticker_paused":
            raise Conflict("the owner has paused this sticker", code=refusal)
        if refusal:
            raise Gone("this sticker is no longer valid: the owner replaced it", code=refusal)
        return row

    # ---- abuse limits -------------------------------------------------------------------------------
    async def limit(self, keys: list[tuple[str, int]]) -> None:
        """Count this attempt under each (key, limit per hour), shared across workers; 429 with
        Retry-After (the end of the hour's window) when any is over."""
        index, retry = window(self.platform.now().timestamp(), 3600)
        for key, most in keys:
            count = await self.platform.kv_incr(f"{key}:{index}", 3600 + 60)
            if over(count, most):
                raise RateLimited(
                    "too many car-moving requests; try again later",
                    code="carmove_rate_limited",
                    retry_after=retry,
                )

    # ---- requests -----------------------------------------------------------------------------------
    async def send(
        self,
        code: str,
        reason: str,
        note: str,
        *,
        sender_keys: list[str],
        sender: str = "",
    ) -> tuple[dict[str, Any], str]:
        """A request to the sticker's owner, who is told at once (and by SMS if it stays unanswered);
        returns the request and the sender's token (only its hash is kept)."""
        if reason not in REASONS:
            raise InvalidInput(f"reason is one of {', '.join(REASONS)}", code="unknown_reason")
        sticker = await self._usable(code)
        s = self.settings
        who = [f"sender:{k}" for k in sender_keys] + ([f"citizen:{sender}"] if sender else [])
        to = sticker["id"].hex
        # the sender's own limits first, then theirs to this sticker: a sender over either spends none
        # of the sticker's, and one sender alone never reaches the sticker's limit (a harasser would
        # otherwise text the owner six times an hour and shut out everyone with a real need)
        await self.limit(
            [(k, s.per_sender_hour) for k in who]
            + [(f"{k}:to:{to}", s.per_sender_sticker_hour) for k in who]
            + [(f"sticker:{to}", s.per_sticker_hour)]
        )
        token = secrets.token_urlsafe(24)
        request_id = uuid.uuid4()
        now = self.platform.now()
        data = {"plate": sticker["car.plate"], "reason": REASONS[reason][0]}
        async with self.platform.transaction():
            # the sticker's row locked until the commit, and still taking requests: removing the car,
            # pausing or regenerating the sticker at this moment comes either before (this request is
            # refused) or after (and sees this request: a removal withdraws its reminder)
            held = (
                await Sticker.update({Sticker.state: "active"})
                .where((Sticker.id == sticker["id"]) & (Sticker.state == "active"))
                .returning(Sticker.id)
                .run()
            )
            if not held:
                await self._usable(code)  # says why: paused, suspended, replaced, or gone with its car
                raise NotFound("no such car sticker", code="sticker_not_found")
            await MoveRequest.insert(
                MoveRequest(
                    id=request_id,
                    sticker=sticker["id"],
                    openid=sticker["openid"],
                    token_hash=token_hash(token),
                    sender=sender,
                    reason=reason,
                    note=note,
                    created_at=now,
                )
            ).run()
            await self.platform.notify(sticker["openid"], "move_request", data, key=f"request-{request_id}")
            await self.platform.notify_urgent(
                sticker["openid"],
                "move_waiting",
                data,
                key=waiting_key(str(request_id)),
                at=sms_due(now, s.sms_after),
                sms_after=0,
            )
            row = await MoveRequest.select().where(MoveRequest.id == request_id).first().run()
            assert row is not None  # written above, in this transaction
        await self.forget_photos(now)
        return row, token

    async def forget_photos(self, now: datetime, most: int = 100) -> int:
        """Photos are kept ``photo_days``: each new request deletes up to ``most`` older ones (the
        request stays, saying it has no photo now). Cheap, and as often as photos can come."""
        old = (
            await MoveRequest.select(MoveRequest.id)
            .where(
                (MoveRequest.photo_type != "")
                & (MoveRequest.created_at < now - timedelta(days=self.settings.photo_days))
            )
            .limit(most)
            .run()
        )
        if not old:
            return 0
        ids = [r["id"] for r in old]
        async with self.platform.transaction():
            await Photo.delete().where(Photo.request.is_in(ids)).run()
            await MoveRequest.update({MoveRequest.photo_type: ""}).where(MoveRequest.id.is_in(ids)).run()
        return len(ids)

    async def by_token(self, token: str) -> dict[str, Any]:
        row = (
            await MoveRequest.select(
                MoveRequest.all_columns(),  # type: ignore[arg-type]
                MoveRequest.sticker.code,
                MoveRequest.sticker.state,
                MoveRequest.sticker.car,
            )
            .where(MoveRequest.token_hash == token_hash(token))
            .first()
            .run()
        )
        if row is None:
            raise NotFound("no such car-moving request", code="move_request_not_found")
        row["state"] = request_state(
            row["state"], row["created_at"], self.platform.now(), self.settings.open_minutes
        )
        return row

    async def attach_photo(self, token: str, body: bytes, declared: str) -> str:
        """The sender's photo, once, while the request waits: checked by its bytes (JPEG or PNG, whatever
        was declared), size and pixel count, then re-encoded as JPEG from its pixels alone, so no EXIF or
        location survives."""
        row = await self.by_token(token)
        if await self._suspended(row["sticker.car"]):
            raise suspended()
        if row["state"] != "waiting":
            raise Conflict("the request is no longer waiting", code="move_request_closed")
        if row["photo_type"]:  # before any decoding: a retry costs the server nothing
            raise Conflict("this request has a photo already", code="photo_exists")
        if len(body) > self.settings.photo_max_bytes:
            raise InvalidInput(
                f"a photo is at most {self.settings.photo_max_bytes} bytes",
                code="photo_too_large",
                most=self.settings.photo_max_bytes,
            )
        kind = photo_type(body[:16])
        if not kind or declared.split(";")[0].strip().lower() != kind:
            raise InvalidInput("a photo is a JPEG or PNG image, sent as such", code="photo_not_image")
        # decoding a 4096 × 4096 image takes a third of a second and 100 MB: in a thread, not on the
        # worker's loop that all its other requests wait on, and two at a time per worker
        async with self._decoding:
            clean = await asyncio.to_thread(reencoded, body)
        async with self.platform.transaction():
            made = (
                await Photo.insert(Photo(request=row["id"], content_type="image/jpeg", data=clean))
                .on_conflict(action="DO NOTHING")
                .returning(Photo.request)
                .run()
            )
            if not made:
                raise Conflict("this request has a photo already", code="photo_exists")
            await (
                MoveRequest.update({MoveRequest.photo_type: "image/jpeg"})
                .where(MoveRequest.id == row["id"])
                .run()
            )
        return "image/jpeg"

    async def photo(self, openid: str, request_id: str) -> bytes:
        row = await self.received(openid, request_id)
        photo = await Photo.select(Photo.data).where(Photo.request == row["id"]).first().run()
        if photo is None:
            raise NotFound("this request has no photo", code="photo_not_found")
        return bytes(photo["data"])

    async def received(self, openid: str, request_id: str) -> dict[str, Any]:
        try:
            key = uuid.UUID(request_id)
        except ValueError:
            key = None
        row = (
            None
            if key is None
            else await MoveRequest.select(
                MoveRequest.all_columns(),  # type: ignore[arg-type]
                MoveRequest.sticker._.car._.plate,
            )
            .where((MoveRequest.id == key) & (MoveRequest.openid == openid))
            .first()
            .run()
        )
        if row is None:
            raise NotFound("no such request to you", code="move_request_not_found")
        return self._as_now(row, self.platform.now())

    def _as_now(self, row: dict[str, Any], now: datetime) -> dict[str, Any]:
        """The request as it stands at ``now``: expired when it waited too long, and whether its SMS
        fallback was due (the message centre sends it then, unless it was withdrawn by an answer)."""
        row["sms_fallback"] = sms_fires(
            sms_due(row["created_at"], self.settings.sms_after), row["answered_at"], now
        )
        row["state"] = request_state(row["state"], row["created_at"], now, self.settings.open_minutes)
        return row

    async def inbox(self, openid: str, *, limit: int, offset: int) -> list[dict[str, Any]]:
        rows = list(
            await MoveRequest.select(
                MoveRequest.all_columns(),  # type: ignore[arg-type]
                MoveRequest.sticker._.car._.plate,
            )
            .where(MoveRequest.openid == openid)
            .order_by(MoveRequest.created_at, ascending=False)
            .order_by(MoveRequest.id)
            .limit(limit)
            .offset(offset)
            .run()
        )
        now = self.platform.now()
        return [self._as_now(r, now) for r in rows]

    async def answer(self, openid: str, request_id: str, answer: str, note: str) -> dict[str, Any]:
        """The owner's one answer: a conditional UPDATE (two answers at once: one wins, the other is told
        ``already_answered``); the unanswered-notice and its SMS are withdrawn."""
        if answer not in ANSWERS:
            raise InvalidInput(f"answer is one of {', '.join(ANSWERS)}", code="unknown_answer")
        row = await self.received(openid, request_id)
        if row["state"] == "expired":
            raise Conflict("the request is no longer waiting", code="move_request_closed")
        now = self.platform.now()
        done = (
            await MoveRequest.update(
                {
                    MoveRequest.state: "answered",
                    MoveRequest.answer: answer,
                    MoveRequest.answer_note: note,
                    MoveRequest.answered_at: now,
                }
            )
            .where((MoveRequest.id == row["id"]) & (MoveRequest.state == "waiting"))
            .returning(MoveRequest.id)
            .run()
        )
        if not done:
            raise Conflict("this request has been answered already", code="already_answered")
        await self.platform.cancel_notice(waiting_key(str(row["id"])))
        return await self.received(openid, request_id)

    async def call(self, token: str) -> dict[str, Any]:
        """A privacy number bound to the owner for a few minutes, while the request waits (the same one
        again while it lasts)."""
        row = await self.by_token(token)
        if await self._suspended(row["sticker.car"]):  # no call to an owner the operators shielded
            raise suspended()
        if row["state"] != "waiting":
            raise Conflict("the request is no longer waiting", code="move_request_closed")
        async with self.platform.transaction():
            # the request's row locked until the commit (a write: PostgreSQL's row lock; SQLite's writers
            # are one at a time): of calls at once, from any worker, one binds a number and the others
            # read it, instead of each binding (and paying for) one of its own
            still = (
                await MoveRequest.update({MoveRequest.state: "waiting"})
                .where((MoveRequest.id == row["id"]) & (MoveRequest.state == "waiting"))
                .returning(MoveRequest.id)
                .run()
            )
            if not still:  # answered meanwhile
                raise Conflict("the request is no longer waiting", code="move_request_closed")
            held = (
                await MoveRequest.select(MoveRequest.call_number, MoveRequest.call_until)
                .where(MoveRequest.id == row["id"])
                .first()
                .run()
            )
            assert held is not None  # locked above
            if held["call_number"] and held["call_until"] and held["call_until"] > self.platform.now():
                return {"number": held["call_number"], "expires_at": held["call_until"]}
            bound = await self.platform.privacy_number(row["openid"], minutes=self.settings.call_minutes)
            if bound is None:
                raise Conflict("the owner cannot be called", code="owner_unreachable")
            await (
                MoveRequest.update(
                    {MoveRequest.call_number: bound.number, MoveRequest.call_until: bound.expires_at}
                )
                .where(MoveRequest.id == row["id"])
                .run()
            )
        return {"number": bound.number, "expires_at": bound.expires_at}

    # ---- reports to the operators -------------------------------------------------------------------
    async def report(
        self, code: str, kind: str, note: str, *, sender_keys: list[str], owner: str = "", request: str = ""
    ) -> dict[str, Any]:
        if kind not in REPORTS:
            raise InvalidInput(f"kind is one of {', '.join(REPORTS)}", code="unknown_report_kind")
        sticker = await self.sticker(code)
        await self.limit([(f"report:{k}", self.settings.per_report_hour) for k in sender_keys])
        report_id = uuid.uuid4()
        await Report.insert(
            Report(
                id=report_id,
                sticker=sticker["id"],
                kind=kind,
                note=note,
                by_owner=bool(owner) and owner == sticker["openid"],
                request=request,
                created_at=self.platform.now(),
            )
        ).run()
        row = await Report.select().where(Report.id == report_id).first().run()
        assert row is not None
        return row

    async def reports(self, state: str | None, *, limit: int, offset: int) -> list[dict[str, Any]]:
        query = Report.select(
            Report.all_columns(),  # type: ignore[arg-type]
            Report.sticker.code,
            Report.sticker.state,
            Report.sticker._.car._.plate,
        )
        if state:
            query = query.where(Report.state == state)
        return list(
            await query.order_by(Report.created_at, ascending=False)
            .order_by(Report.id)
            .limit(limit)
            .offset(offset)
            .run()
        )

    async def _report_of(self, report_id: str) -> tuple[Any, dict[str, Any]]:
        try:
            key = uuid.UUID(report_id)
        except ValueError:
            key = None
        row = (
            None
            if key is None
            else await Report.select(
                Report.all_columns(),  # type: ignore[arg-type]
                Report.sticker._.car,
                Report.sticker._.car._.plate,
            )
            .where(Report.id == key)
            .first()
            .run()
        )
        if row is None:
            raise NotFound("no such report", code="report_not_found")
        return key, row

    async def close_report(self, report_id: str, action: str, by: str = "") -> dict[str, Any]:
        """An operator closes a report; ``pause`` suspends the car's current sticker (whichever code it
        has now: one regenerated since the report is suspended too), which its owner cannot lift."""
        key, row = await self._report_of(report_id)
        car = {"id": row["sticker.car"], "plate": row["sticker.car.plate"]}
        async with self.platform.transaction():
            await self._lock_car(car)  # first, as removing the car or regenerating its sticker do
            done = (
                await Report.update(
                    {
                        Report.state: "closed",
                        Report.action: action,
                        Report.closed_at: self.platform.now(),
                        Report.closed_by: by,
                    }
                )
                .where((Report.id == key) & (Report.state == "open"))
                .returning(Report.id)
                .run()
            )
            if not done:
                if not await Report.exists().where(Report.id == key).run():  # gone with its car meanwhile
                    raise NotFound("no such report", code="report_not_found")
                raise Conflict("this report is closed already", code="report_closed")
            if action == "pause":
                await (
                    Sticker.update({Sticker.state: "suspended"})
                    .where((Sticker.car == car["id"]) & Sticker.state.is_in(["active", "paused"]))
                    .run()
                )
        closed = await Report.select().where(Report.id == key).first().run()
        assert closed is not None
        return closed

    async def lift(self, report_id: str, by: str) -> dict[str, Any]:
        """An operator lifts the suspension a report made: the car's sticker takes requests again, and
        the report records who lifted it and when."""
        key, row = await self._report_of(report_id)
        if row["action"] != "pause":
            raise Conflict("this report did not suspend a sticker", code="report_not_suspending")
        car = {"id": row["sticker.car"], "plate": row["sticker.car.plate"]}
        async with self.platform.transaction():
            await self._lock_car(car)
            done = (
                await Sticker.update({Sticker.state: "active"})
                .where((Sticker.car == car["id"]) & (Sticker.state == "suspended"))
                .returning(Sticker.id)
                .run()
            )
            if not done:
                raise Conflict("this sticker is not suspended", code="sticker_not_suspended")
            await (
                Report.update({Report.lifted_at: self.platform.now(), Report.lifted_by: by})
                .where(Report.id == key)
                .run()
            )
        lifted = await Report.select().where(Report.id == key).first().run()
        assert lifted is not None
        return lifted
