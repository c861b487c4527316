"""The message centre's sending: one message or a batch, idempotent by key, checked against its template,
the citizen's consent and choices, caps and rate limits, written with the deliveries it needs in one
transaction. Its parts, re-exported here: templates and their approval (``messages._approval``), the
citizen's preferences and subscriptions (``messages._choices``), the inbox (``messages._inbox``).
Delivery on the channels that need work (Web Push, SMS) is ``messages._delivery``; announcements to
segments ``messages._announce``.

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

import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import msgspec

from auth.pairwise import Pairwise
from auth.tables import Citizen
from backend import db
from backend.clock import Clock
from backend.errors import InvalidInput, RateLimited
from backend.live import Live
from backend.store import Store
from messages._approval import Templates
from messages._choices import (
    DEFAULT_CHANNELS,
    DEFAULT_PREFS,
    Consents,
    Preferences,
    Prefs,
    after_quiet,
    on_postgres,
)
from messages._inbox import Inbox, delivery_log, forget, view
from messages.tables import (
    Message,
    MessageDelivery,
    PushSubscription,
)
from messages.templates import CHINA, Template, check_data, content

log = logging.getLogger("shengshitong.messages")
__all__ = [
    "DEFAULT_CHANNELS",
    "DEFAULT_PREFS",
    "PLATFORM",
    "Consents",
    "Inbox",
    "Limits",
    "MessageCentre",
    "Notice",
    "Outgoing",
    "Preferences",
    "Prefs",
    "Templates",
    "after_quiet",
    "day_start",
    "delivery_log",
    "forget",
    "hint",
    "view",
]
PLATFORM = "platform"


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


_ENCODE = msgspec.json.Encoder().encode


# ---- templates ---------------------------------------------------------------------------------------
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
        self,
        app_id: str,
        items: Sequence[tuple[str, str, dict[str, Any], str, datetime | None]],
        *,
        sms_after: float | None = None,
    ) -> list[Notice]:
        """``(openid, template name, data, key, at)`` from mini-app ``app_id``; unknown openids are
        skipped. ``sms_after``: see :meth:`send`."""
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
            notices = await self.send(app_id, name, [o for _, o in batch], sms_after=sms_after)
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
        self,
        sender: str,
        name: str,
        items: Sequence[Outgoing],
        *,
        announcement: str = "",
        sms_after: float | None = None,
    ) -> list[Notice]:
        """Send template ``<sender>.<name>`` to each item's citizen; the same key again is a duplicate.
        ``sms_after``: for an urgent template, the seconds after it shows that its SMS is due (instead
        of the limits' ``sms_after``; 0: when it shows)."""
        template_id = f"{sender}.{name}"
        template = await self.templates.usable(template_id)
        if sms_after is not None and (not template.urgent or not 0 <= sms_after <= 7 * 86400):
            raise InvalidInput(
                f"{template_id} is not urgent: it has no SMS fallback to schedule"
                if not template.urgent
                else "sms_after is 0 to 604800 seconds",
                code="invalid_message_data",
                problems="sms_after",
            )
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
            # the recipients' accounts first, locked: a deleted one gets nothing (its inbox was erased and
            # must stay so), and a deletion racing this send waits for it, then erases what it wrote. A
            # reminder locks its citizens for itself: two sends to one citizen take turns, so the second
            # sees the first's message (the same key is a duplicate and spends no second acceptance) and
            # its place under the daily cap
            living = await _living(
                [item.citizen_id for item in items],
                lock=None if announcement else "share" if category == "transactional" else "exclusive",
            )
            existing = {r["idempotency"]: str(r["id"]) for r in await _existing(list(set(keys)))}
            for n, key in enumerate(keys):
                if key in existing:
                    notices[n] = Notice("duplicate", existing[key])
                elif items[n].citizen_id not in living:
                    notices[n] = Notice("skipped", reason="unknown_citizen")
            fresh = [(n, item) for n, item in enumerate(items) if notices[n] is None]
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
            await self._deliveries(new_rows, template, prefs, now, sms_after)
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
        if on_postgres():  # one array parameter, whatever the number (an announcement's batch)
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
        self,
        rows: list[dict[str, Any]],
        template: Template,
        prefs: dict[str, Prefs],
        now: datetime,
        sms_after: float | None = None,
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
                if on_postgres():
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
                        "next_attempt_at": r["visible_at"]
                        + timedelta(seconds=self.limits.sms_after if sms_after is None else sms_after),
                        "created_at": now,
                    }
                )
        await db.bulk_insert(MessageDelivery, out)


async def _living(citizen_ids: Sequence[str], *, lock: Literal["share", "exclusive"] | None) -> set[str]:
    """Of these citizens, those whose account is not deleted; on PostgreSQL their rows stay locked until
    the sender's transaction ends (in id order, so senders never deadlock): shared for a transactional
    message (they never wait for each other; a deletion waits for them, then erases what they wrote), for
    the sender alone when it counts against the daily cap or spends a consent. An announcement's batch
    locks none (1000 row locks a batch cost a sixth of its throughput): it holds its announcement's row,
    which :func:`forget` waits for. On SQLite the write transaction already serialises."""
    ids: list[uuid.UUID] = []
    for c in set(citizen_ids):
        try:
            ids.append(uuid.UUID(c))
        except ValueError:
            continue
    if not ids:
        return set()
    if on_postgres():
        clause = {None: "", "share": " FOR SHARE", "exclusive": " FOR NO KEY UPDATE"}[lock]
        rows = await Citizen.raw(
            "SELECT id FROM citizen WHERE id = ANY({}::uuid[]) AND status <> 'deleted'"  # noqa: S608
            f" ORDER BY id{clause}",
            sorted(ids),
        ).run()
    else:
        rows = (
            await Citizen.select(Citizen.id)
            .where(Citizen.id.is_in(ids) & (Citizen.status != "deleted"))
            .run()
        )
    return {str(r["id"]) for r in rows}


async def _existing(keys: list[str]) -> list[dict[str, Any]]:
    """The messages already written under these idempotency keys (id, idempotency)."""
    if on_postgres():  # one array parameter: Piccolo's IN (...) costs a few microseconds a value
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
        "title": title or hint_title(db.json_value(row["content"])),
    }


# ---- the inbox -------------------------------------------------------------------------------------------
