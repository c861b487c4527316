"""Announcements (信息发布): an approved announcement template sent to a segment of citizens.

The send walks the active citizens in id order, a batch at a time; each batch's messages (keyed by the
announcement and the citizen) and the announcement's cursor and counts are written in ONE transaction,
so a worker killed at any point leaves either the whole batch and its cursor or neither: the next
worker resumes after the cursor, with no duplicate and no gap. One worker at a time runs a given
announcement (a lease in the store, renewed every batch; a dead worker's lease runs out and another
takes over). Throttled to the announcement's rate; cancelling stops it before the next batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
import uuid
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from auth._profile import DISTRICTS
from auth.tables import Citizen, PairwiseSubject
from backend import audit, db
from backend.clock import Clock
from backend.errors import Conflict, InvalidInput, NotFound
from backend.store import Store
from codes.owners import holders
from messages.services import MessageCentre, Outgoing
from messages.tables import Announcement
from messages.templates import check_data

log = logging.getLogger("shengshitong.messages.announce")
LEASE = 30.0  # seconds a worker holds an announcement between batches
OWNED = ("medical", "social_security", "health")


class Segment(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Who an announcement reaches: everyone; holders of an entitlement (medical, social_security, a
    green health code); users of a mini-app (those it knows by a pairwise id); a district's residents."""

    kind: Literal["everyone", "entitlement", "miniapp", "district"]
    value: Annotated[str, Meta(max_length=32)] = ""


def _as_dict(value: Any) -> dict[str, Any]:
    return dict(db.json_value(value))


class Announcements:
    def __init__(
        self,
        clock: Clock,
        store: Store,
        centre: MessageCentre,
        *,
        apps: set[str] | None = None,
        batch: int = 1000,
        lease: float = LEASE,
    ) -> None:
        self._clock = clock
        self._store = store
        self._centre = centre
        self.apps = apps if apps is not None else set()  # enabled mini-apps (filled as they register)
        self.batch = batch
        self.lease = lease
        self._running: dict[str, asyncio.Task[None]] = {}
        self._token = secrets.token_hex(8)  # this worker, in the lease
        self._loop_task: asyncio.Task[None] | None = None

    # ---- operators ---------------------------------------------------------------------------------
    def check_segment(self, segment: Segment) -> None:
        ok = {
            "everyone": segment.value == "",
            "entitlement": segment.value in OWNED,
            "miniapp": segment.value in self.apps,
            "district": segment.value in DISTRICTS,
        }[segment.kind]
        if not ok:
            raise InvalidInput(
                "segment: everyone (no value); entitlement with one of "
                f"{list(OWNED)}; miniapp with an enabled mini-app's id; district with a Shenyang"
                " district code",
                code="invalid_segment",
            )

    async def create(
        self, template_id: str, data: dict[str, Any], segment: Segment, *, rate: int, operator: str
    ) -> dict[str, Any]:
        template = await self._centre.templates.usable(template_id)
        if template.category != "announcement":
            raise InvalidInput(
                f"{template_id} is a {template.category} template; announcements use announcement ones",
                code="not_an_announcement",
            )
        self.check_segment(segment)
        check_data(template, data)
        if not 1 <= rate <= 100_000:
            raise InvalidInput("rate: 1 to 100000 messages a second", code="invalid_rate")
        now = self._clock.now()
        ident = uuid.uuid4()
        async with db.transaction():
            await Announcement.insert(
                Announcement(
                    id=ident,
                    template_id=template_id,
                    data=data,
                    segment=msgspec.to_builtins(segment),
                    rate=rate,
                    created_by=operator[:64],
                    created_at=now,
                    updated_at=now,
                )
            ).run()
            await audit.record(
                "announcement_created",
                actor_kind="operator",
                actor_id=operator,
                subject=str(ident),
                detail={"template": template_id, "segment": msgspec.to_builtins(segment), "rate": rate},
            )
        return await self.get(str(ident))

    async def cancel(self, announcement_id: str, *, operator: str) -> dict[str, Any]:
        ident = self._id(announcement_id)
        async with db.transaction():
            rows = (
                await Announcement.update(
                    {Announcement.state: "cancelled", Announcement.updated_at: self._clock.now()}
                )
                .where((Announcement.id == ident) & (Announcement.state == "sending"))
                .returning(Announcement.id)
                .run()
            )
            if not rows:
                view = await self.get(announcement_id)
                raise Conflict(
                    f"the announcement is {view['state']}, not sending", code="announcement_not_sending"
                )
            await audit.record(
                "announcement_cancelled", actor_kind="operator", actor_id=operator, subject=announcement_id
            )
        return await self.get(announcement_id)

    @staticmethod
    def _id(announcement_id: str) -> uuid.UUID:
        try:
            return uuid.UUID(announcement_id)
        except ValueError:
            raise NotFound("no such announcement", code="announcement_not_found") from None

    async def get(self, announcement_id: str) -> dict[str, Any]:
        row = await Announcement.select().where(Announcement.id == self._id(announcement_id)).first().run()
        if row is None:
            raise NotFound("no such announcement", code="announcement_not_found")
        return self._view(row)

    async def recent(self, limit: int, offset: int) -> list[dict[str, Any]]:
        rows = (
            await Announcement.select()
            .order_by(Announcement.created_at, ascending=False)
            .limit(limit + 1)
            .offset(offset)
            .run()
        )
        return [self._view(r) for r in rows]

    @staticmethod
    def _view(row: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": str(row["id"]),
            "template_id": row["template_id"],
            "segment": _as_dict(row["segment"]),
            "state": row["state"],
            "rate": row["rate"],
            "scanned": row["scanned"],
            "sent": row["sent"],
            "skipped": row["skipped"],
            "created_by": row["created_by"],
            "created_at": row["created_at"],
            "updated_at": row["updated_at"],
            "finished_at": row["finished_at"],
            "error": row["error"],
        }

    # ---- the send ----------------------------------------------------------------------------------
    async def start(self, interval: float = 1.0) -> None:
        if interval > 0:
            self._loop_task = asyncio.create_task(self._loop(interval), name="announcements")

    async def stop(self) -> None:
        tasks = [t for t in (self._loop_task, *self._running.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._running.clear()
        self._loop_task = None

    async def _loop(self, interval: float) -> None:
        while True:
            try:
                await self.tick()
            except Exception:
                log.exception("announcements round failed; retrying")
            await asyncio.sleep(interval)

    async def tick(self) -> None:
        """Take up every announcement being sent that no live worker holds."""
        for row in await Announcement.select(Announcement.id).where(Announcement.state == "sending").run():
            ident = str(row["id"])
            task = self._running.get(ident)
            if task is not None and not task.done():
                continue
            if await self._store.set_if_absent(f"announce:{ident}", self._token, self.lease):
                self._running[ident] = asyncio.create_task(self._run(ident), name=f"announce-{ident[:8]}")

    async def _run(self, ident: str) -> None:
        key = f"announce:{ident}"
        try:
            while await self._store.expire_if_equal(key, self._token, self.lease):
                started = time.monotonic()
                row = await Announcement.select().where(Announcement.id == uuid.UUID(ident)).first().run()
                if row is None or row["state"] != "sending":
                    return
                written = await self.step(row)
                if written is None:
                    return
                # throttle: a batch of n messages takes at least n / rate seconds
                wait = written / max(row["rate"], 1) - (time.monotonic() - started)
                if wait > 0:
                    # held through the pause too: a slow announcement's lease must not lapse meanwhile
                    if not await self._store.expire_if_equal(key, self._token, wait + self.lease):
                        return
                    await asyncio.sleep(wait)
        except Exception as exc:
            log.exception("announcement %s failed", ident)
            await (
                Announcement.update({Announcement.error: f"{type(exc).__name__}"[:256]})
                .where(Announcement.id == uuid.UUID(ident))
                .run()
            )
        finally:
            await self._store.delete_if_equal(key, self._token)

    async def step(self, row: dict[str, Any]) -> int | None:
        """One batch: its messages and the cursor in one transaction. The messages written, or None when
        the announcement is done."""
        segment = msgspec.convert(_as_dict(row["segment"]), Segment)
        template_id = row["template_id"]
        owner, _, name = template_id.partition(".")
        data = _as_dict(row["data"])
        now = self._clock.now()
        cursor = row["cursor"]
        query = Citizen.select(Citizen.id, Citizen.id_number_index, Citizen.district).where(
            Citizen.status == "active"
        )
        if cursor:
            query = query.where(Citizen.id > uuid.UUID(cursor))
        citizens = await query.order_by(Citizen.id).limit(self.batch).run()
        if not citizens:
            await (
                Announcement.update(
                    {Announcement.state: "done", Announcement.finished_at: now, Announcement.updated_at: now}
                )
                .where((Announcement.id == row["id"]) & (Announcement.state == "sending"))
                .run()
            )
            return None
        chosen = await self._members(segment, citizens, now)
        items = [Outgoing(citizen_id=c, key=f"announcement:{row['id']}:{c}", data=data) for c in chosen]
        async with db.transaction():
            # the state is read again under the lock: a cancel that came meanwhile wins; and so does
            # another worker that wrote this batch meanwhile (its lease lapsed here, say): its cursor
            # moved, this batch is not counted twice, and the caller reads the row again
            fresh = (
                await db.for_update(
                    Announcement.select(Announcement.state, Announcement.cursor).where(
                        Announcement.id == row["id"]
                    )
                )
                .first()
                .run()
            )
            if fresh is None or fresh["state"] != "sending":
                return None
            if fresh["cursor"] != cursor:
                return 0
            notices = (
                await self._centre.send(owner, name, items, announcement=str(row["id"])) if items else []
            )
            sent = sum(1 for n in notices if n.outcome in ("sent", "duplicate"))
            await (
                Announcement.update(
                    {
                        Announcement.cursor: str(citizens[-1]["id"]),
                        Announcement.scanned: Announcement.scanned + len(citizens),
                        Announcement.sent: Announcement.sent + sent,
                        Announcement.skipped: Announcement.skipped + (len(notices) - sent),
                        Announcement.updated_at: now,
                    }
                )
                .where(Announcement.id == row["id"])
                .run()
            )
        return len(items)

    async def _members(self, segment: Segment, citizens: list[dict[str, Any]], now: Any) -> list[str]:
        ids = [str(c["id"]) for c in citizens]
        if segment.kind == "everyone":
            return ids
        if segment.kind == "district":
            return [str(c["id"]) for c in citizens if c["district"] == segment.value]
        if segment.kind == "entitlement":
            subjects = {c["id_number_index"]: str(c["id"]) for c in citizens if c["id_number_index"]}
            held = await holders(sorted(subjects), segment.value, now)
            return [subjects[s] for s in sorted(held)]
        rows = (
            await PairwiseSubject.select(PairwiseSubject.citizen_id)
            .where(
                PairwiseSubject.citizen_id.is_in(ids) & PairwiseSubject.app_openid.like(f"{segment.value}/%")
            )
            .run()
        )
        return sorted({r["citizen_id"] for r in rows})
