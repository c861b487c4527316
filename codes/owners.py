"""The systems that own entitlements, and what they said: the medical-insurance bureau, the
social-security bureau and the health authority push changes about people, addressed by ID number, with
the time each takes effect. Each is a machine principal (``shengshi sources add``) bound to one kind.

A change is kept as an append-only *fact* about the HMAC index of the ID number (the number itself is
never stored, and a fact about someone not registered yet waits for them). The same change sent twice
is one fact: a second upload of the same file changes nothing. What a person holds at a time is, per
kind, the newest fact in effect then (by effective time, then arrival) whose validity has not ended; an
ended one (a yellow health status valid for 7 days) uncovers the one before it.

Wire format of one change (a JSON object; a bulk upload is one per line, NDJSON)::

    {"record_id": "20261128-000001", "id_number": "210102199003071234",
     "effective_at": "2026-11-28T00:00:00+08:00", "valid_until": null,
     "value": {"insured": true, "region": "210102", "type": "employee"}}

``value`` by kind: see :data:`VALUE_TYPES` and docs/citizen-code.md ("Where entitlements come from").
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, NamedTuple

import msgspec
from msgspec import Meta
from piccolo.engine.postgres import PostgresEngine

from auth.pii import normalise_id_number
from auth.tables import Citizen
from backend import audit, db
from backend.clock import Clock
from backend.crypto import keyed_hash
from backend.edge import MAX_JSON_DEPTH, json_too_deep
from backend.errors import AppError, InvalidInput, NotFound
from backend.settings import Settings
from codes.tables import EntitlementFact, EntitlementUpload, EntitlementUploadReject

log = logging.getLogger("shengshitong.codes.owners")

Region = Annotated[str, Meta(pattern=r"^[0-9]{6}$")]  # ASCII digits only (\d would take any script's)
# text a citizen reads: no control characters, and no invisible or direction-changing ones (zero-width,
# bidi embeddings and isolates) that could make it read as something else
ShortText = Annotated[
    str,
    Meta(max_length=200, pattern=r"^[^\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]*$"),
]


class Medical(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """医保: insured or not; when insured, the insuring region and the scheme."""

    insured: bool
    region: Region | None = None  # 6-digit administrative code of the insuring region
    type: Literal["employee", "resident"] | None = None  # 城镇职工 / 城乡居民

    def check(self) -> str | None:
        if self.insured and self.region is None:
            return "an insured person needs a region"
        return None


class SocialSecurity(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """社保: insured or not, and the state of the social-security card (the code works even when the
    card is lost: it stands in for it)."""

    insured: bool
    card_status: Literal["active", "suspended", "reported_lost", "cancelled", "none"] = "none"

    def check(self) -> str | None:
        return None


class Health(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """健康码: the colour the health authority gives, and why (shown to the citizen only)."""

    status: Literal["green", "yellow", "red"]
    reason: ShortText = ""

    def check(self) -> str | None:
        return None


VALUE_TYPES: dict[str, type[Medical] | type[SocialSecurity] | type[Health]] = {
    "medical": Medical,
    "social_security": SocialSecurity,
    "health": Health,
}
KINDS = tuple(VALUE_TYPES)
OWNERS = {  # who owns each kind, as the wallet names them when no source name is known
    "medical": ("医疗保障局", "Medical Insurance Bureau"),
    "social_security": ("人力资源和社会保障局", "Human Resources and Social Security Bureau"),
    "health": ("卫生健康委员会", "Health Commission"),
}
MAX_LINE = 4096  # bytes of one record
BATCH = 5000  # records written per transaction in a bulk upload
STALE_AFTER = 60.0  # an upload not heard of for this long was interrupted (a crash, a dropped client)
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
FURTHEST = timedelta(days=400)  # how far ahead a change may take effect


class Change(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    record_id: Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$")]
    id_number: Annotated[str, Meta(min_length=1, max_length=32)]
    effective_at: datetime
    value: msgspec.Raw
    valid_until: datetime | None = None


class Rejected(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class Fact(NamedTuple):
    kind: str
    effective_at: datetime
    valid_until: datetime | None
    value: dict[str, Any]
    received_at: datetime
    source: str

    def grants(self) -> bool:
        """Whether the fact gives its holder the entitlement: insured, or a green health code."""
        if self.kind == "health":
            return self.value.get("status") == "green"
        return bool(self.value.get("insured"))


FACT_COLUMNS = (
    EntitlementFact.kind,
    EntitlementFact.effective_at,
    EntitlementFact.valid_until,
    EntitlementFact.value,
    EntitlementFact.received_at,
    EntitlementFact.source,
)


def current(rows: list[dict[str, Any]], at: datetime) -> tuple[dict[str, Fact], datetime | None]:
    """Of one person's facts (newest effective first), per kind the one in effect at ``at``, and the next
    time that may change by itself (a validity ending, a change taking effect later)."""
    held: dict[str, Fact] = {}
    upcoming: datetime | None = None
    for r in rows:
        effective, until = r["effective_at"], r["valid_until"]
        if effective > at:
            upcoming = effective if upcoming is None else min(upcoming, effective)
            continue
        if until is not None and until <= at:
            continue
        if r["kind"] in held:
            continue
        value = r["value"] if isinstance(r["value"], dict) else json.loads(r["value"])
        held[r["kind"]] = Fact(r["kind"], effective, until, value, r["received_at"], r["source"])
        if until is not None:
            upcoming = until if upcoming is None else min(upcoming, until)
    return held, upcoming


async def holders(subjects: list[str], kind: str, at: datetime) -> set[str]:
    """Of these people (HMAC indexes of ID numbers), those holding entitlement ``kind`` at ``at`` (one
    query for the lot: a segment of an announcement)."""
    if not subjects:
        return set()
    rows = (
        await EntitlementFact.select(EntitlementFact.subject, *FACT_COLUMNS)
        .where(EntitlementFact.subject.is_in(subjects) & (EntitlementFact.kind == kind))
        .order_by(EntitlementFact.effective_at, ascending=False)
        .order_by(EntitlementFact.received_at, ascending=False)
        .run()
    )
    by_subject: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_subject.setdefault(r["subject"], []).append(r)
    return {s for s, facts in by_subject.items() if (f := current(facts, at)[0].get(kind)) and f.grants()}


_CHANGE = msgspec.json.Decoder(Change)
_ENCODE = msgspec.json.Encoder().encode
_DECODERS = {kind: msgspec.json.Decoder(t) for kind, t in VALUE_TYPES.items()}
ChangedCallback = Callable[[list[str], str], Awaitable[None]]


def _plain(error: msgspec.MsgspecError) -> str:
    return str(error)[:200]


class Facts:
    """Receiving changes from the owners (single and bulk) and reading what a person holds."""

    def __init__(self, settings: Settings, clock: Clock, changed: ChangedCallback) -> None:
        self._key = settings.secret_bytes("secret_key")
        self._clock = clock
        self._changed = changed  # citizens whose entitlements changed now (the code's freshness)

    def subject(self, id_number: str) -> str:
        """The HMAC index of an ID number: the one the citizen table keeps (``id_number_index``)."""
        return keyed_hash(self._key, "id_number", id_number)

    # ---- one record -----------------------------------------------------------------------------
    def parse(
        self, kind: str, raw: bytes, *, source: str, upload: str = "", now: datetime | None = None
    ) -> dict[str, Any]:
        """A record's row, or :class:`Rejected` with the reason (``now``: the time it was received)."""
        if len(raw) > MAX_LINE:
            raise Rejected("too_long", f"a record is at most {MAX_LINE} bytes")
        if json_too_deep(raw):
            raise Rejected("bad_record", f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
        try:
            change = _CHANGE.decode(raw)
        except UnicodeDecodeError:
            raise Rejected("bad_record", "the record is not UTF-8") from None
        except (msgspec.DecodeError, RecursionError) as exc:
            raise Rejected(
                "bad_record", _plain(exc) if isinstance(exc, msgspec.DecodeError) else "too deep"
            ) from None
        try:
            value = _DECODERS[kind].decode(change.value)
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            raise Rejected(
                "bad_value", _plain(exc) if isinstance(exc, msgspec.DecodeError) else "not UTF-8"
            ) from None
        if problem := value.check():
            raise Rejected("bad_value", problem)
        try:
            number = normalise_id_number(change.id_number)
        except InvalidInput as exc:
            raise Rejected("bad_id_number", exc.detail) from None
        effective, until = change.effective_at, change.valid_until
        if effective.tzinfo is None or (until is not None and until.tzinfo is None):
            raise Rejected("bad_time", "times need a UTC offset, e.g. 2026-11-28T00:00:00+08:00")
        now = now or self._clock.now()
        if not EARLIEST <= effective <= now + FURTHEST:
            raise Rejected("bad_time", "effective_at is out of range (2000 to 400 days ahead)")
        if until is not None and until <= effective:
            raise Rejected("bad_time", "valid_until must be after effective_at")
        subject = self.subject(number)
        fields = msgspec.to_builtins(value)
        # fields come in the Struct's order, so the same change always encodes the same bytes
        digest = _ENCODE([kind, subject, effective.timestamp(), until.timestamp() if until else None, fields])
        return {
            "fact_key": hashlib.sha256(digest).hexdigest()[:32],
            "kind": kind,
            "subject": subject,
            "effective_at": effective.astimezone(UTC),
            "valid_until": until.astimezone(UTC) if until else None,
            "value": fields,
            "source": source,
            "upload": upload,
            "record_id": change.record_id,
            "received_at": now,
        }

    async def _write(self, rows: list[dict[str, Any]]) -> tuple[set[str], list[str]]:
        """Insert the facts (inside the caller's transaction); returns the keys written and the
        subjects they are about."""
        written = set(
            await db.bulk_insert(
                EntitlementFact, rows, on_conflict_do_nothing="fact_key", returning="fact_key", chunk=BATCH
            )
        )
        # a fact dated ahead changes the citizen's code too: the code in hand must not outlive its time
        subjects = sorted({r["subject"] for r in rows if r["fact_key"] in written})
        return written, subjects

    async def _citizens(self, subjects: list[str]) -> list[str]:
        """The verified citizens these subjects are."""
        out: list[str] = []
        if isinstance(Citizen._meta.db, PostgresEngine):  # one array parameter, whatever the number
            rows = await Citizen.raw(
                "SELECT id FROM citizen WHERE id_number_index = ANY({}::text[])"
                " AND real_name_verified_at IS NOT NULL",
                subjects,
            ).run()
            return [str(r["id"]) for r in rows]
        for start in range(0, len(subjects), 1000):
            part = subjects[start : start + 1000]
            rows = (
                await Citizen.select(Citizen.id)
                .where(Citizen.id_number_index.is_in(part) & Citizen.real_name_verified_at.is_not_null())
                .run()
            )
            out.extend(str(r["id"]) for r in rows)
        return out

    async def change(self, kind: str, raw: bytes, *, source: str) -> dict[str, Any]:
        """One change (the single-record API): applied, or unchanged when it was received before."""
        try:
            row = self.parse(kind, raw, source=source)
        except Rejected as exc:
            raise InvalidInput(exc.detail, code=exc.reason) from None
        async with db.transaction():
            written, subjects = await self._write([row])
            citizens = await self._citizens(subjects)
        outcome = "applied" if row["fact_key"] in written else "unchanged"
        if outcome == "applied":
            await audit.record(
                "entitlement_changed",
                actor_kind="source",
                actor_id=source,
                subject=f"{kind}:{row['record_id']}",
                fact=row["fact_key"],
            )
        if citizens:
            await self._changed(citizens, kind)
        return {
            "outcome": outcome,
            "record_id": row["record_id"],
            "kind": kind,
            "effective_at": row["effective_at"],
            "fact": row["fact_key"],
        }

    # ---- bulk -----------------------------------------------------------------------------------
    async def upload(self, kind: str, body: AsyncIterator[bytes], *, source: str) -> dict[str, Any]:
        """A streamed NDJSON upload: records are parsed and written a batch at a time (memory stays
        flat however long the file), each batch in one transaction with the upload's progress, so what
        the progress says is what the books hold. A record that cannot be applied is reported, with
        its line and reason, and the rest go on. Sending the same file again changes nothing."""
        upload_id = uuid.uuid4()
        now = self._clock.now()
        await EntitlementUpload.insert(
            EntitlementUpload(id=upload_id, source=source, kind=kind, started_at=now, updated_at=now)
        ).run()
        await audit.record(
            "entitlement_upload_started", actor_kind="source", actor_id=source, subject=str(upload_id)
        )
        counts = {"lines": 0, "applied": 0, "unchanged": 0, "rejected": 0}
        pending: asyncio.Task[None] | None = None
        try:
            rows: list[dict[str, Any]] = []
            rejects: list[dict[str, Any]] = []
            upload = str(upload_id)
            received = self._clock.now()
            async for line_no, line in _lines(body):
                counts["lines"] = line_no
                if not line.strip():
                    continue
                if line_no % BATCH == 0:
                    received = self._clock.now()
                try:
                    rows.append(self.parse(kind, line, source=source, upload=upload, now=received))
                except Rejected as exc:
                    rejects.append(
                        {
                            "upload": upload_id,
                            "line": line_no,
                            "record_id": _record_id(line),
                            "reason": exc.reason,
                            "detail": exc.detail,
                        }
                    )
                if len(rows) + len(rejects) >= BATCH:
                    # the database writes one batch while the next is parsed; one write at a time, in
                    # order, so the progress never runs ahead of the books
                    if pending is not None:
                        await pending
                    pending = asyncio.create_task(self._flush(upload_id, rows, rejects, counts, line_no))
                    rows, rejects = [], []
            if pending is not None:
                await pending
                pending = None
            await self._flush(upload_id, rows, rejects, counts, counts["lines"], done=True)
        except BaseException as exc:
            if pending is not None and not pending.done():
                pending.cancel()
            if pending is not None:
                with contextlib.suppress(BaseException):
                    await pending
            if isinstance(exc, _TooLong):
                await self._fail(upload_id, counts, f"line {exc.line} is longer than {MAX_LINE} bytes")
                raise InvalidInput(
                    f"line {exc.line} is longer than {MAX_LINE} bytes: is this NDJSON?",
                    code="line_too_long",
                    upload=str(upload_id),
                ) from None
            if isinstance(exc, AppError):  # the client's doing (disconnected, too slow, too large)
                await self._fail(upload_id, counts, exc.code)
            elif isinstance(exc, Exception):
                log.exception("upload %s failed", upload_id)
                await self._fail(upload_id, counts, "internal_error")
            raise
        await audit.record(
            "entitlement_upload_finished",
            actor_kind="source",
            actor_id=source,
            subject=str(upload_id),
            counts=dict(counts),
        )
        return await self.progress(str(upload_id), source=source)

    async def _flush(
        self,
        upload_id: uuid.UUID,
        rows: list[dict[str, Any]],
        rejects: list[dict[str, Any]],
        counts: dict[str, int],
        lines: int,
        *,
        done: bool = False,
    ) -> None:
        async with db.transaction():
            written, subjects = await self._write(rows) if rows else (set(), [])
            if rejects:
                await db.bulk_insert(EntitlementUploadReject, rejects, chunk=BATCH)
            counts["applied"] += len(written)
            counts["unchanged"] += len(rows) - len(written)
            counts["rejected"] += len(rejects)
            now = self._clock.now()
            values: dict[Any, Any] = {
                EntitlementUpload.lines: lines,
                EntitlementUpload.applied: counts["applied"],
                EntitlementUpload.unchanged: counts["unchanged"],
                EntitlementUpload.rejected: counts["rejected"],
                EntitlementUpload.updated_at: now,
            }
            if done:
                values[EntitlementUpload.status] = "done"
                values[EntitlementUpload.finished_at] = now
            await EntitlementUpload.update(values).where(EntitlementUpload.id == upload_id).run()
            citizens = await self._citizens(subjects) if subjects else []
        if citizens:
            await self._changed(citizens, "upload")

    async def _fail(self, upload_id: uuid.UUID, counts: dict[str, int], error: str) -> None:
        try:
            await (
                EntitlementUpload.update(
                    {
                        EntitlementUpload.status: "failed",
                        EntitlementUpload.error: error[:200],
                        EntitlementUpload.updated_at: self._clock.now(),
                        EntitlementUpload.finished_at: self._clock.now(),
                    }
                )
                .where(EntitlementUpload.id == upload_id)
                .run()
            )
        except Exception:
            log.warning("upload %s: could not record its failure", upload_id)

    async def _upload_row(self, upload_id: str, source: str) -> dict[str, Any]:
        try:
            uid = uuid.UUID(upload_id)
        except ValueError:
            raise NotFound("no such upload", code="upload_not_found") from None
        row = (
            await EntitlementUpload.select()
            .where((EntitlementUpload.id == uid) & (EntitlementUpload.source == source))
            .first()
            .run()
        )
        if row is None:
            raise NotFound("no such upload", code="upload_not_found")
        return dict(row)

    async def progress(self, upload_id: str, *, source: str) -> dict[str, Any]:
        row = await self._upload_row(upload_id, source)
        status = row["status"]
        if status == "running" and (self._clock.now() - row["updated_at"]).total_seconds() > STALE_AFTER:
            status = "interrupted"  # send the file again: what was applied is not applied twice
        return {
            "id": str(row["id"]),
            "kind": row["kind"],
            "status": status,
            "lines": row["lines"],
            "applied": row["applied"],
            "unchanged": row["unchanged"],
            "rejected": row["rejected"],
            "started_at": row["started_at"],
            "updated_at": row["updated_at"],
            "finished_at": row["finished_at"],
            "error": row["error"] or None,
        }

    async def report(self, upload_id: str, *, source: str) -> AsyncIterator[bytes]:
        """The upload's records that were not applied, one JSON object per line, in line order."""
        row = await self._upload_row(upload_id, source)
        uid = row["id"]

        async def lines() -> AsyncIterator[bytes]:
            after = 0
            while True:
                part = (
                    await EntitlementUploadReject.select(
                        EntitlementUploadReject.line,
                        EntitlementUploadReject.record_id,
                        EntitlementUploadReject.reason,
                        EntitlementUploadReject.detail,
                    )
                    .where((EntitlementUploadReject.upload == uid) & (EntitlementUploadReject.line > after))
                    .order_by(EntitlementUploadReject.line)
                    .limit(1000)
                    .run()
                )
                if not part:
                    return
                for r in part:
                    yield msgspec.json.encode({**r, "outcome": "rejected"}) + b"\n"
                after = part[-1]["line"]

        return lines()

    # ---- reading --------------------------------------------------------------------------------
    async def held(self, subject: str, at: datetime) -> tuple[dict[str, Fact], datetime | None]:
        """Per kind, the fact in effect at ``at``; and the next time that may change by itself."""
        rows = (
            await EntitlementFact.select(*FACT_COLUMNS)
            .where(EntitlementFact.subject == subject)
            .order_by(EntitlementFact.effective_at, ascending=False)
            .order_by(EntitlementFact.received_at, ascending=False)
            .limit(200)
            .run()
        )
        return current(rows, at)


class _TooLong(Exception):
    def __init__(self, line: int) -> None:
        self.line = line


async def _lines(body: AsyncIterator[bytes]) -> AsyncIterator[tuple[int, bytes]]:
    """Numbered lines of a streamed body, whatever its chunks; a line longer than a record may be is
    refused before it is buffered (the upload is not NDJSON)."""
    rest = b""
    number = 0
    async for chunk in body:
        parts = (rest + chunk).split(b"\n")
        rest = parts.pop()
        for part in parts:
            number += 1
            yield number, part.rstrip(b"\r")
        if len(rest) > MAX_LINE * 4:
            raise _TooLong(number + 1)
    if rest.strip():
        number += 1
        yield number, rest.rstrip(b"\r")


def _record_id(line: bytes) -> str:
    """The record id of a rejected line, when one can be read (for the report)."""
    try:
        found = json.loads(line).get("record_id")
    except (ValueError, AttributeError, RecursionError):
        return ""
    return found[:64] if isinstance(found, str) and found.isprintable() else ""
