"""The citizen's choices: channels per category and quiet hours (preferences), and subscriptions to
reminder templates (consent: standing, or one-time acceptances each good for one message)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

import msgspec
from piccolo.engine.postgres import PostgresEngine

from backend import db
from backend.clock import Clock
from backend.errors import InvalidInput, NotFound
from messages._approval import Templates
from messages.tables import MessageConsent, MessagePreference
from messages.templates import CATEGORIES, CHINA, Template

DEFAULT_CHANNELS: dict[str, dict[str, bool]] = {
    "transactional": {"inbox": True, "webpush": True, "sms": True},
    "reminder": {"inbox": True, "webpush": True, "sms": True},
    "announcement": {"inbox": True, "webpush": True, "sms": False},
}


def on_postgres() -> bool:
    """Whether the message tables are on PostgreSQL (where one array parameter beats a list of them)."""
    return isinstance(MessagePreference._meta.db, PostgresEngine)


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


class Preferences:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    async def of(self, citizen_ids: Sequence[str]) -> dict[str, Prefs]:
        """Each citizen's preferences (the defaults for one who never chose), one query."""
        out = dict.fromkeys(citizen_ids, DEFAULT_PREFS)
        if not citizen_ids:
            return out
        wanted = list(set(citizen_ids))
        if on_postgres():
            found = await MessagePreference.raw(
                "SELECT * FROM message_preference WHERE citizen_id = ANY({}::text[])", wanted
            ).run()
        else:
            found = await MessagePreference.select().where(MessagePreference.citizen_id.is_in(wanted)).run()
        for row in found:
            out[row["citizen_id"]] = Prefs(
                channels=db.json_value(row["channels"]),
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
        """The reminders a citizen may subscribe to now (declared and approved: a suspended or changed
        text is not offered), each with the citizen's subscription."""
        usable = await self._templates.usable_ids()
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
            if t.category == "reminder" and tid in usable
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
