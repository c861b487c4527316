"""The message centre: templates and their approval, consent and preferences, sending (one message or a
batch, idempotent by key), and the citizen's inbox. Delivery on the channels that need work (Web Push,
SMS) is ``messages._delivery``; announcements to segments ``messages._announce``.

Who may receive what (docs/messages.md):

- transactional (a payment, a refund, a fare left unpaid): always, no consent needed;
- reminder (a reservation about to lapse, an appointment tomorrow): only with the citizen's subscription
  to that template, standing or one-time (each one-time acceptance is good for one message);
- announcement (信息发布): to the segment an operator chose, unless the citizen turned announcements off.

Reminders and announcements count against a daily cap per citizen, and a sender's reminders against its
rate limit. Quiet hours (China time) hold non-urgent Web Push until they end; the inbox is silent and
shows everything at once.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import msgspec
from piccolo.engine.postgres import PostgresEngine

from auth.pairwise import Pairwise
from backend import audit, db
from backend.clock import Clock
from backend.errors import Conflict, InvalidInput, NotFound, RateLimited
from backend.live import Live
from backend.store import Store
from messages.tables import (
    Message,
    MessageConsent,
    MessageDelivery,
    MessagePreference,
    MessageTemplate,
    PushSubscription,
)
from messages.templates import CATEGORIES, CHINA, Template, check_data, content

log = logging.getLogger("shengshitong.messages")
PLATFORM = "platform"
CHANNELS = ("inbox", "webpush", "sms")
DEFAULT_CHANNELS: dict[str, dict[str, bool]] = {
    "transactional": {"inbox": True, "webpush": True, "sms": True},
    "reminder": {"inbox": True, "webpush": True, "sms": True},
    "announcement": {"inbox": True, "webpush": True, "sms": False},
}
APPROVED_CACHE = 10.0  # seconds a worker trusts an approval it read (a suspension reaches all within it)


class Notice(msgspec.Struct, frozen=True):
    """What a sender is told of one message."""

    outcome: Literal["sent", "scheduled", "duplicate", "skipped"]
    message_id: str | None = None
    # why it was skipped: not_subscribed | opted_out | daily_cap | unknown_citizen
    reason: str = ""


@dataclass(frozen=True)
class Outgoing:
    """One message to send: to a citizen (the platform's id), the sender's key, when it shows."""

    citizen_id: str
    key: str
    data: dict[str, Any]
    at: datetime | None = None


@dataclass(frozen=True)
class Limits:
    daily_cap: int = 20  # reminders and announcements per citizen per day (China time)
    app_per_minute: int = 6000  # reminders a sender may send a minute
    sms_after: float = 600.0  # seconds an urgent message may stay unread before an SMS goes out
    max_schedule_days: int = 60  # how far ahead a message may be scheduled


def day_start(at: datetime) -> datetime:
    local = at.astimezone(CHINA)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def _hm(value: str) -> tuple[int, int]:
    h, _, m = value.partition(":")
    return int(h), int(m)


def after_quiet(at: datetime, pref: Prefs) -> datetime:
    """``at``, or the end of the citizen's quiet hours when ``at`` falls inside them."""
    if not pref.quiet:
        return at
    local = at.astimezone(CHINA)
    minutes = local.hour * 60 + local.minute
    sh, sm = _hm(pref.quiet_start)
    eh, em = _hm(pref.quiet_end)
    start, end = sh * 60 + sm, eh * 60 + em
    if start == end:
        return at
    inside = start <= minutes < end if start < end else (minutes >= start or minutes < end)
    if not inside:
        return at
    ends = local.replace(hour=eh, minute=em, second=0, microsecond=0)
    if ends <= local:
        ends += timedelta(days=1)
    return ends


class Prefs(msgspec.Struct, frozen=True):
    channels: dict[str, dict[str, bool]]
    quiet: bool = True
    quiet_start: str = "22:00"
    quiet_end: str = "08:00"

    def allows(self, category: str, channel: str) -> bool:
        if category == "transactional" and channel == "inbox":
            return True
        return self.channels.get(category, {}).get(channel, DEFAULT_CHANNELS[category][channel])


DEFAULT_PREFS = Prefs(channels=DEFAULT_CHANNELS)


_ENCODE = msgspec.json.Encoder().encode


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


# ---- templates ---------------------------------------------------------------------------------------
class Templates:
    """Templates as declared (by the platform and each enabled mini-app), and operators' approvals."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self.declared: dict[str, Template] = {}
        self._approved: dict[str, tuple[float, Template]] = {}

    def declare(self, owner: str, templates: dict[str, Template]) -> None:
        for name, template in templates.items():
            template_id = f"{owner}.{name}"
            if problems := template.problems():
                raise ValueError(f"message template {template_id}: {'; '.join(problems)}")
            self.declared[template_id] = template

    async def sync(self) -> None:
        """Record the declared templates: a new one, or one whose text changed, waits for an operator."""
        rows = {r["template_id"]: r for r in await MessageTemplate.select().run()}
        now = self._clock.now()
        for template_id, template in self.declared.items():
            digest = template.digest()
            row = rows.get(template_id)
            declared = msgspec.to_builtins(template)
            if row is None:
                await (
                    MessageTemplate.insert(
                        MessageTemplate(
                            template_id=template_id,
                            owner=template_id.partition(".")[0],
                            category=template.category,
                            declared=declared,
                            digest=digest,
                            declared_at=now,
                        )
                    )
                    .on_conflict(target=MessageTemplate.template_id, action="DO NOTHING")
                    .run()
                )
            elif row["digest"] != digest:
                status = row["status"] if row["status"] in ("rejected", "suspended") else "pending"
                if row["approved_digest"] == digest:  # back to a text that was approved
                    status = "approved"
                await (
                    MessageTemplate.update(
                        {
                            MessageTemplate.declared: declared,
                            MessageTemplate.digest: digest,
                            MessageTemplate.category: template.category,
                            MessageTemplate.status: status,
                            MessageTemplate.declared_at: now,
                        }
                    )
                    .where(MessageTemplate.template_id == template_id)
                    .run()
                )

    async def all(self, status: str | None = None) -> list[dict[str, Any]]:
        query = MessageTemplate.select().order_by(MessageTemplate.template_id)
        if status:
            query = query.where(MessageTemplate.status == status)
        return [self._view(r) for r in await query.run()]

    def _view(self, row: dict[str, Any]) -> dict[str, Any]:
        declared = _json(row["declared"])
        return {
            "template_id": row["template_id"],
            "owner": row["owner"],
            "category": row["category"],
            "status": row["status"],
            "usable": row["status"] == "approved" and row["approved_digest"] == row["digest"],
            "declared": declared,
            "in_use": row["template_id"] in self.declared,
            "decided_by": row["decided_by"],
            "decided_at": row["decided_at"],
            "note": row["note"],
        }

    async def decide(
        self, template_id: str, decision: Literal["approve", "reject", "suspend"], *, operator: str, note: str
    ) -> dict[str, Any]:
        """An operator's decision on the template's current text (audited)."""
        now = self._clock.now()
        async with db.transaction():
            row = (
                await db.for_update(
                    MessageTemplate.select().where(MessageTemplate.template_id == template_id)
                )
                .first()
                .run()
            )
            if row is None:
                raise NotFound("no such message template", code="template_not_found", template=template_id)
            values: dict[Any, Any] = {
                MessageTemplate.status: {"approve": "approved", "reject": "rejected", "suspend": "suspended"}[
                    decision
                ],
                MessageTemplate.decided_by: operator[:64],
                MessageTemplate.decided_at: now,
                MessageTemplate.note: note[:256],
            }
            if decision == "approve":
                values[MessageTemplate.approved_digest] = row["digest"]
            await MessageTemplate.update(values).where(MessageTemplate.template_id == template_id).run()
            await audit.record(
                f"message_template_{decision}d" if decision != "suspend" else "message_template_suspended",
                actor_kind="operator",
                actor_id=operator,
                subject=template_id,
                detail={"digest": row["digest"], "note": note[:256]},
            )
        self._approved.pop(template_id, None)
        got = await MessageTemplate.select().where(MessageTemplate.template_id == template_id).first().run()
        assert got is not None  # templates are never deleted
        return self._view(got)

    async def usable(self, template_id: str) -> Template:
        """The template if an operator approved its current text; Conflict (or NotFound) otherwise."""
        cached = self._approved.get(template_id)
        if cached is not None and time.monotonic() - cached[0] < APPROVED_CACHE:
            return cached[1]
        template = self.declared.get(template_id)
        if template is None:
            raise NotFound(
                f"no message template {template_id!r}", code="template_not_found", template=template_id
            )
        row = (
            await MessageTemplate.select(MessageTemplate.status, MessageTemplate.approved_digest)
            .where(MessageTemplate.template_id == template_id)
            .first()
            .run()
        )
        if row is None or row["status"] != "approved" or row["approved_digest"] != template.digest():
            self._approved.pop(template_id, None)
            raise Conflict(
                f"message template {template_id} is not approved for use (an operator approves it"
                " in the console)",
                code="template_not_approved",
                template=template_id,
            )
        self._approved[template_id] = (time.monotonic(), template)
        return template


# ---- the citizen's choices -----------------------------------------------------------------------------
class Preferences:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    async def of(self, citizen_ids: Sequence[str]) -> dict[str, Prefs]:
        """Each citizen's preferences (the defaults for one who never chose), one query."""
        out = dict.fromkeys(citizen_ids, DEFAULT_PREFS)
        if not citizen_ids:
            return out
        wanted = list(set(citizen_ids))
        if _postgres():
            found = await MessagePreference.raw(
                "SELECT * FROM message_preference WHERE citizen_id = ANY({}::text[])", wanted
            ).run()
        else:
            found = await MessagePreference.select().where(MessagePreference.citizen_id.is_in(wanted)).run()
        for row in found:
            out[row["citizen_id"]] = Prefs(
                channels=_json(row["channels"]),
                quiet=row["quiet"],
                quiet_start=row["quiet_start"],
                quiet_end=row["quiet_end"],
            )
        return out

    async def get(self, citizen_id: str) -> Prefs:
        return (await self.of([citizen_id]))[citizen_id]

    async def put(self, citizen_id: str, prefs: Prefs) -> Prefs:
        channels: dict[str, dict[str, bool]] = {
            category: {
                channel: bool(prefs.channels.get(category, {}).get(channel, default))
                for channel, default in DEFAULT_CHANNELS[category].items()
            }
            for category in CATEGORIES
        }
        channels["transactional"]["inbox"] = True  # a payment's record cannot be turned off
        row = {
            "citizen_id": citizen_id,
            "channels": channels,
            "quiet": prefs.quiet,
            "quiet_start": prefs.quiet_start,
            "quiet_end": prefs.quiet_end,
            "updated_at": self._clock.now(),
        }
        await db.bulk_insert(MessagePreference, [row], on_conflict_update=("citizen_id", None))
        return Prefs(
            channels=channels, quiet=prefs.quiet, quiet_start=prefs.quiet_start, quiet_end=prefs.quiet_end
        )


class Consents:
    """Subscriptions to reminder templates (订阅消息): standing, or one-time acceptances."""

    def __init__(self, clock: Clock, templates: Templates) -> None:
        self._clock = clock
        self._templates = templates

    def _subscribable(self, template_id: str) -> Template:
        template = self._templates.declared.get(template_id)
        if template is None:
            raise NotFound(
                f"no message template {template_id!r}", code="template_not_found", template=template_id
            )
        if template.category != "reminder":
            raise InvalidInput(
                "only reminders are subscribed to: transactional messages always come, announcements are"
                " turned off in the preferences",
                code="not_subscribable",
            )
        return template

    async def subscribe(
        self, citizen_id: str, template_id: str, mode: Literal["once", "standing"]
    ) -> dict[str, Any]:
        self._subscribable(template_id)
        key = f"{citizen_id}/{template_id}"
        now = self._clock.now()
        async with db.transaction():
            row = (
                await db.for_update(MessageConsent.select().where(MessageConsent.citizen_template == key))
                .first()
                .run()
            )
            if row is None:
                await MessageConsent.insert(
                    MessageConsent(
                        citizen_template=key,
                        citizen_id=citizen_id,
                        template_id=template_id,
                        standing=mode == "standing",
                        once_left=1 if mode == "once" else 0,
                        updated_at=now,
                    )
                ).run()
            else:
                values: dict[Any, Any] = {MessageConsent.updated_at: now}
                if mode == "standing":
                    values[MessageConsent.standing] = True
                else:  # one more acceptance, as WeChat counts them (kept to a sensible number)
                    values[MessageConsent.once_left] = min(row["once_left"] + 1, 50)
                await MessageConsent.update(values).where(MessageConsent.citizen_template == key).run()
        return await self.get(citizen_id, template_id)

    async def withdraw(self, citizen_id: str, template_id: str) -> dict[str, Any]:
        self._subscribable(template_id)
        await (
            MessageConsent.update(
                {
                    MessageConsent.standing: False,
                    MessageConsent.once_left: 0,
                    MessageConsent.updated_at: self._clock.now(),
                }
            )
            .where(MessageConsent.citizen_template == f"{citizen_id}/{template_id}")
            .run()
        )
        return await self.get(citizen_id, template_id)

    async def get(self, citizen_id: str, template_id: str) -> dict[str, Any]:
        row = (
            await MessageConsent.select()
            .where(MessageConsent.citizen_template == f"{citizen_id}/{template_id}")
            .first()
            .run()
        )
        return {
            "template_id": template_id,
            "standing": bool(row and row["standing"]),
            "once_left": row["once_left"] if row else 0,
        }

    async def of_citizen(self, citizen_id: str) -> list[dict[str, Any]]:
        rows = {
            r["template_id"]: r
            for r in await MessageConsent.select().where(MessageConsent.citizen_id == citizen_id).run()
        }
        return [
            {
                "template_id": tid,
                "standing": bool(rows.get(tid, {}).get("standing")),
                "once_left": rows.get(tid, {}).get("once_left", 0),
            }
            for tid, t in sorted(self._templates.declared.items())
            if t.category == "reminder"
        ]

    async def spend(self, citizen_ids: Sequence[str], template_id: str) -> set[str]:
        """Of these citizens, those whose consent covers one message of ``template_id`` now (a one-time
        acceptance is used up, race-free: a conditional update). Inside the sender's transaction."""
        if not citizen_ids:
            return set()
        keys = [f"{c}/{template_id}" for c in set(citizen_ids)]
        rows = (
            await MessageConsent.select(
                MessageConsent.citizen_id, MessageConsent.standing, MessageConsent.once_left
            )
            .where(MessageConsent.citizen_template.is_in(keys))
            .run()
        )
        covered = {r["citizen_id"] for r in rows if r["standing"]}
        for r in rows:
            if r["standing"] or r["once_left"] <= 0:
                continue
            spent = (
                await MessageConsent.update({MessageConsent.once_left: MessageConsent.once_left - 1})
                .where(
                    (MessageConsent.citizen_template == f"{r['citizen_id']}/{template_id}")
                    & (MessageConsent.once_left > 0)
                )
                .returning(MessageConsent.once_left)
                .run()
            )
            if spent:
                covered.add(r["citizen_id"])
        return covered


# ---- sending -------------------------------------------------------------------------------------------
class MessageCentre:
    """Sends messages: checks the template, the data and who may receive them, writes the inbox rows and
    the deliveries they need in one transaction, then tells open apps (after the commit)."""

    def __init__(
        self,
        clock: Clock,
        store: Store,
        live: Live,
        pairwise: Pairwise,
        templates: Templates,
        preferences: Preferences,
        consents: Consents,
        limits: Limits,
    ) -> None:
        self._clock = clock
        self._store = store
        self._live = live
        self._pairwise = pairwise
        self.templates = templates
        self.preferences = preferences
        self.consents = consents
        self.limits = limits
        self.push_enabled = False  # Web Push can send (its VAPID key is loaded at start-up)

    # -- a mini-app's face (by pairwise id) --
    async def notify_app(
        self, app_id: str, items: Sequence[tuple[str, str, dict[str, Any], str, datetime | None]]
    ) -> list[Notice]:
        """``(openid, template name, data, key, at)`` from mini-app ``app_id``; unknown openids are
        skipped."""
        citizens = await self._pairwise.citizens(app_id, list({i[0] for i in items}))
        by_template: dict[str, list[tuple[int, Outgoing]]] = {}
        out: list[Notice | None] = [None] * len(items)
        for n, (openid, name, data, key, at) in enumerate(items):
            citizen = citizens.get(openid)
            if citizen is None:
                out[n] = Notice("skipped", reason="unknown_citizen")
                continue
            by_template.setdefault(name, []).append((n, Outgoing(citizen, key, data, at)))
        for name, batch in by_template.items():
            notices = await self.send(app_id, name, [o for _, o in batch])
            for (n, _), notice in zip(batch, notices, strict=True):
                out[n] = notice
        return [o or Notice("skipped", reason="unknown_citizen") for o in out]

    async def cancel(self, sender: str, key: str) -> bool:
        """Withdraw a scheduled message not shown yet (a reservation used before its reminder)."""
        now = self._clock.now()
        async with db.transaction():
            rows = (
                await Message.update({Message.cancelled_at: now})
                .where(
                    (Message.idempotency == f"{sender}/{key}")
                    & (Message.visible_at > now)
                    & Message.cancelled_at.is_null()
                )
                .returning(Message.id)
                .run()
            )
            if rows:
                await (
                    MessageDelivery.update({MessageDelivery.state: "cancelled"})
                    .where((MessageDelivery.message == rows[0]["id"]) & (MessageDelivery.state == "pending"))
                    .run()
                )
        return bool(rows)

    async def send(
        self, sender: str, name: str, items: Sequence[Outgoing], *, announcement: str = ""
    ) -> list[Notice]:
        """Send template ``<sender>.<name>`` to each item's citizen; the same key again is a duplicate."""
        template_id = f"{sender}.{name}"
        template = await self.templates.usable(template_id)
        # an announcement's batch (or any batch) sends the same data to many: each distinct data is
        # checked and rendered once (rendering four texts a message was a fifth of an announcement's time)
        by_data: dict[bytes, tuple[dict[str, Any], str, dict[str, Any]]] = {}
        shared: list[tuple[dict[str, Any], str, dict[str, Any]]] = []
        for item in items:
            try:
                data_key = _ENCODE(item.data)
            except (TypeError, msgspec.EncodeError):
                data_key = b""
            done = by_data.get(data_key) if data_key else None
            if done is None:
                ok = check_data(template, item.data)
                text = content(template, ok)
                done = (ok, _ENCODE(text).decode(), hint_title(text))
                if data_key:
                    by_data[data_key] = done
            shared.append(done)
        now = self._clock.now()
        latest = now + timedelta(days=self.limits.max_schedule_days)
        for item in items:
            if len(item.key) > 160 or not item.key:
                raise InvalidInput("an idempotency key is 1-160 characters", code="invalid_idempotency_key")
            if item.at is not None and (item.at.tzinfo is None or item.at > latest):
                raise InvalidInput(
                    f"a message may be scheduled up to {self.limits.max_schedule_days} days ahead,"
                    " with a time zone",
                    code="invalid_schedule",
                )
        category = template.category
        if category == "reminder" and not announcement:
            await self._rate(sender, len(items))
        keys = [f"{sender}/{item.key}" for item in items]
        notices: list[Notice | None] = [None] * len(items)
        pending_hints: list[tuple[str, dict[str, Any]]] = []
        async with db.transaction():
            existing = {r["idempotency"]: str(r["id"]) for r in await _existing(list(set(keys)))}
            fresh = [(n, item) for n, item in enumerate(items) if keys[n] not in existing]
            for n, key in enumerate(keys):
                if key in existing:
                    notices[n] = Notice("duplicate", existing[key])
            citizen_ids = [item.citizen_id for _, item in fresh]
            prefs = await self.preferences.of(citizen_ids)
            allowed = set(citizen_ids)
            reasons: dict[str, str] = {}
            if category != "transactional":
                for c in citizen_ids:
                    if not prefs[c].allows(category, "inbox"):
                        allowed.discard(c)
                        reasons[c] = "opted_out"
                if category == "reminder":
                    covered = await self.consents.spend(sorted(allowed), template_id)
                    for c in allowed - covered:
                        reasons[c] = "not_subscribed"
                    allowed &= covered
                for c in await self._over_cap(sorted(allowed), now):
                    allowed.discard(c)
                    reasons[c] = "daily_cap"
            rows: list[dict[str, Any]] = []
            seen: set[str] = set()
            for n, item in fresh:
                if item.citizen_id not in allowed:
                    notices[n] = Notice("skipped", reason=reasons.get(item.citizen_id, "opted_out"))
                    continue
                if keys[n] in seen:  # the same key twice in one batch
                    continue
                seen.add(keys[n])
                visible = max(item.at or now, now)
                rows.append(
                    {
                        "id": uuid.uuid4(),
                        "citizen_id": item.citizen_id,
                        "sender": sender,
                        "template_id": template_id,
                        "category": category,
                        "urgent": template.urgent,
                        "content": shared[n][1],  # JSON, written as it is
                        "link": template.link,
                        "idempotency": keys[n],
                        "announcement": announcement,
                        "created_at": now,
                        "visible_at": visible,
                        "notified_at": now if visible <= now else None,
                    }
                )
            written = set(
                await db.bulk_insert(
                    Message, rows, on_conflict_do_nothing="idempotency", returning="idempotency"
                )
            )
            new_rows = [r for r in rows if r["idempotency"] in written]
            await self._deliveries(new_rows, template, prefs, now)
            by_key = {r["idempotency"]: r for r in rows}
            for n, key in enumerate(keys):
                if notices[n] is not None:
                    continue
                row = by_key.get(key)
                if row is None or key not in written:  # a concurrent sender wrote it first
                    other = await Message.select(Message.id).where(Message.idempotency == key).first().run()
                    notices[n] = Notice("duplicate", str(other["id"]) if other else None)
                    continue
                notices[n] = Notice("sent" if row["visible_at"] <= now else "scheduled", str(row["id"]))
            titles = {keys[n]: shared[n][2] for n, _ in fresh}
            pending_hints = [
                (r["citizen_id"], hint(r, titles[r["idempotency"]]))
                for r in new_rows
                if r["visible_at"] <= now
            ]
            if pending_hints and not db.after_commit(lambda: self.tell(pending_hints)):
                await self.tell(pending_hints)
        return [n or Notice("skipped") for n in notices]

    async def tell(self, hints: Iterable[tuple[str, dict[str, Any]]]) -> None:
        """The live event to each citizen's open apps: a message arrived (the app fetches the inbox)."""
        await self._live.publish([(f"citizen:{c}", "message", data) for c, data in hints])

    async def _rate(self, sender: str, n: int) -> None:
        window = int(self._clock.time() // 60)
        used = await self._store.incr(f"msg:rate:{sender}:{window}", 120, n)
        if used > self.limits.app_per_minute:
            raise RateLimited(
                f"{sender} may send {self.limits.app_per_minute} reminders a minute; try again shortly",
                code="message_rate_limited",
                retry_after=60 - int(self._clock.time()) % 60,
            )

    async def _over_cap(self, citizen_ids: Sequence[str], now: datetime) -> set[str]:
        """Citizens who had their day's share of reminders and announcements (counted in the books)."""
        if not citizen_ids:
            return set()
        if _postgres():  # one array parameter, whatever the number (an announcement's batch)
            counts = await Message.raw(
                "SELECT citizen_id, COUNT(*) AS n FROM message WHERE citizen_id = ANY({}::text[])"
                " AND visible_at >= {} AND category <> 'transactional' GROUP BY citizen_id",
                list(citizen_ids),
                day_start(now),
            ).run()
            return {r["citizen_id"] for r in counts if r["n"] >= self.limits.daily_cap}
        # only placeholders are joined in; the values are parameters
        marks = ", ".join(["{}"] * len(citizen_ids))
        where = f"citizen_id IN ({marks}) AND visible_at >= {{}} AND category <> 'transactional'"
        sql = f"SELECT citizen_id, COUNT(*) AS n FROM message WHERE {where} GROUP BY citizen_id"  # noqa: S608
        counts = await Message.raw(sql, *citizen_ids, day_start(now)).run()
        return {r["citizen_id"] for r in counts if r["n"] >= self.limits.daily_cap}

    async def _deliveries(
        self, rows: list[dict[str, Any]], template: Template, prefs: dict[str, Prefs], now: datetime
    ) -> None:
        """The work each new message needs beyond the inbox: Web Push to each live browser subscription
        (held past quiet hours unless urgent), an SMS if an urgent one stays unread."""
        if not rows:
            return
        subs: dict[str, list[str]] = {}
        if self.push_enabled:
            wanting = sorted(
                {r["citizen_id"] for r in rows if prefs[r["citizen_id"]].allows(r["category"], "webpush")}
            )
            if wanting:
                if _postgres():
                    found = await PushSubscription.raw(
                        "SELECT id, citizen_id FROM push_subscription"
                        " WHERE citizen_id = ANY({}::text[]) AND gone_at IS NULL",
                        wanting,
                    ).run()
                else:
                    found = (
                        await PushSubscription.select(PushSubscription.id, PushSubscription.citizen_id)
                        .where(
                            PushSubscription.citizen_id.is_in(wanting) & PushSubscription.gone_at.is_null()
                        )
                        .run()
                    )
                for s in found:
                    subs.setdefault(s["citizen_id"], []).append(str(s["id"]))
        out = []
        for r in rows:
            pref = prefs[r["citizen_id"]]
            targets = subs.get(r["citizen_id"], ())
            if targets:
                at = r["visible_at"] if template.urgent else after_quiet(r["visible_at"], pref)
            for target in targets:
                out.append(
                    {
                        "message": r["id"],
                        "citizen_id": r["citizen_id"],
                        "channel": "webpush",
                        "target": target,
                        "next_attempt_at": at,
                        "created_at": now,
                    }
                )
            if template.urgent and pref.allows(r["category"], "sms"):
                out.append(
                    {
                        "message": r["id"],
                        "citizen_id": r["citizen_id"],
                        "channel": "sms",
                        "target": "",
                        "next_attempt_at": r["visible_at"] + timedelta(seconds=self.limits.sms_after),
                        "created_at": now,
                    }
                )
        await db.bulk_insert(MessageDelivery, out)


def _postgres() -> bool:
    return isinstance(Message._meta.db, PostgresEngine)


async def _existing(keys: list[str]) -> list[dict[str, Any]]:
    """The messages already written under these idempotency keys (id, idempotency)."""
    if _postgres():  # one array parameter: Piccolo's IN (...) costs a few microseconds a value
        return list(
            await Message.raw(
                "SELECT id, idempotency FROM message WHERE idempotency = ANY({}::text[])", keys
            ).run()
        )
    return list(
        await Message.select(Message.id, Message.idempotency).where(Message.idempotency.is_in(keys)).run()
    )


def hint_title(text: dict[str, Any]) -> dict[str, Any]:
    return {"zh-CN": text["zh-CN"]["title"], "en": text["en"]["title"]}


def hint(row: dict[str, Any], title: dict[str, Any] | None = None) -> dict[str, Any]:
    """The live event's data: enough for a toast in either language; the app fetches the rest."""
    return {
        "id": str(row["id"]),
        "sender": row["sender"],
        "category": row["category"],
        "title": title or hint_title(_json(row["content"])),
    }


# ---- the inbox -------------------------------------------------------------------------------------------
class Inbox:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def _mine(self, citizen_id: str) -> Any:
        return (
            (Message.citizen_id == citizen_id)
            & (Message.visible_at <= self._clock.now())
            & Message.deleted_at.is_null()
            & Message.cancelled_at.is_null()
        )

    async def page(
        self, citizen_id: str, *, locale: str, limit: int, offset: int, unread: bool = False
    ) -> list[dict[str, Any]]:
        where = self._mine(citizen_id)
        if unread:
            where = where & Message.read_at.is_null()
        rows = (
            await Message.select(
                Message.id,
                Message.sender,
                Message.template_id,
                Message.category,
                Message.urgent,
                Message.content,
                Message.link,
                Message.visible_at,
                Message.read_at,
            )
            .where(where)
            .order_by(Message.visible_at, ascending=False)
            .order_by(Message.id, ascending=False)
            .limit(limit + 1)
            .offset(offset)
            .run()
        )
        return [view(r, locale) for r in rows]

    async def get(self, citizen_id: str, message_id: str, *, locale: str) -> dict[str, Any]:
        row = (
            await Message.select()
            .where(self._mine(citizen_id) & (Message.id == _uuid(message_id)))
            .first()
            .run()
        )
        if row is None:
            raise NotFound("no such message", code="message_not_found")
        return view(row, locale)

    async def unread(self, citizen_id: str) -> int:
        return int(await Message.count().where(self._mine(citizen_id) & Message.read_at.is_null()).run())

    async def mark_read(self, citizen_id: str, message_id: str | None) -> int:
        """Mark one message read (or all, ``None``); returns the unread count after it."""
        where = self._mine(citizen_id) & Message.read_at.is_null()
        if message_id is not None:
            mid = _uuid(message_id)
            if not await Message.exists().where(self._mine(citizen_id) & (Message.id == mid)).run():
                raise NotFound("no such message", code="message_not_found")
            where = where & (Message.id == mid)
        await Message.update({Message.read_at: self._clock.now()}).where(where).run()
        return await self.unread(citizen_id)

    async def delete(self, citizen_id: str, message_id: str) -> None:
        rows = (
            await Message.update({Message.deleted_at: self._clock.now()})
            .where(self._mine(citizen_id) & (Message.id == _uuid(message_id)))
            .returning(Message.id)
            .run()
        )
        if not rows:
            raise NotFound("no such message", code="message_not_found")

    async def log(self, citizen_id: str, message_id: str) -> list[dict[str, Any]]:
        """The delivery log of one of the citizen's messages: the inbox, then each channel."""
        row = (
            await Message.select()
            .where(self._mine(citizen_id) & (Message.id == _uuid(message_id)))
            .first()
            .run()
        )
        if row is None:
            raise NotFound("no such message", code="message_not_found")
        return await delivery_log(row)


async def delivery_log(row: dict[str, Any]) -> list[dict[str, Any]]:
    out = [
        {"channel": "inbox", "state": "stored", "at": row["visible_at"], "attempts": 1, "error": ""},
        {
            "channel": "live",
            "state": "published" if row["notified_at"] else "due",
            "at": row["notified_at"],
            "attempts": 1 if row["notified_at"] else 0,
            "error": "",
        },
    ]
    for d in (
        await MessageDelivery.select()
        .where(MessageDelivery.message == row["id"])
        .order_by(MessageDelivery.created_at)
        .run()
    ):
        out.append(
            {
                "channel": d["channel"],
                "state": d["state"],
                "at": d["sent_at"] or d["next_attempt_at"],
                "attempts": d["attempts"],
                "error": d["last_error"],
            }
        )
    return out


async def forget(citizen_id: str) -> None:
    """An account deleted: everything the message centre keeps of it goes, in one transaction."""
    async with db.transaction():
        mine = Message.select(Message.id).where(Message.citizen_id == citizen_id)  # by the inbox's index
        await MessageDelivery.delete().where(MessageDelivery.message.is_in(mine)).run()
        await Message.delete().where(Message.citizen_id == citizen_id).run()
        await MessageConsent.delete().where(MessageConsent.citizen_id == citizen_id).run()
        await MessagePreference.delete().where(MessagePreference.citizen_id == citizen_id).run()
        await PushSubscription.delete().where(PushSubscription.citizen_id == citizen_id).run()


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound("no such message", code="message_not_found") from None


def view(row: dict[str, Any], locale: str) -> dict[str, Any]:
    text = _json(row["content"])
    lang = "en" if locale == "en" else "zh-CN"
    return {
        "id": str(row["id"]),
        "sender": row["sender"],
        "template_id": row["template_id"],
        "category": row["category"],
        "urgent": row["urgent"],
        "title": text[lang]["title"],
        "body": text[lang]["body"],
        "link": row["link"],
        "at": row["visible_at"],
        "read": row["read_at"] is not None,
    }
