"""The citizen's inbox: list, read, delete, each message's delivery log; and forgetting an account."""

from __future__ import annotations

import uuid
from typing import Any

from backend import db
from backend.clock import Clock
from backend.errors import NotFound
from messages.tables import (
    Announcement,
    Message,
    MessageConsent,
    MessageDelivery,
    MessagePreference,
    PushSubscription,
)


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

    async def _one(self, citizen_id: str, message_id: str) -> dict[str, Any]:
        row = (
            await Message.select()
            .where(self._mine(citizen_id) & (Message.id == _uuid(message_id)))
            .first()
            .run()
        )
        if row is None:
            raise NotFound("no such message", code="message_not_found")
        return row

    async def get(self, citizen_id: str, message_id: str, *, locale: str) -> dict[str, Any]:
        return view(await self._one(citizen_id, message_id), locale)

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
        return await delivery_log(await self._one(citizen_id, message_id))


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
        # an announcement's batch in flight read this account as living before it was deleted: wait for
        # the batch (it holds its announcement's row) so its messages are committed, and erased below
        await db.for_update(Announcement.select(Announcement.id).where(Announcement.state == "sending")).run()
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
    text = db.json_value(row["content"])
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
