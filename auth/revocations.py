"""Signed-out sessions, deleted and blocked accounts: the database is their record, the store a cache.

Every check (an access token, a scan) reads the store's markers in the round trip it makes anyway, and
with them one more key: the cache's *loaded* marker. A store that restarted empty or was flushed has
lost that marker together with the others, so a check that finds it missing cannot trust a missing
revocation marker: it asks the database instead (two indexed lookups), and one worker rebuilds the
cache from the database in the background, setting the loaded marker last. A signed-out device therefore
stays signed out whatever happens to the store; what a store loss costs is a few database reads until
the cache is back.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import timedelta
from typing import NamedTuple

from auth.tables import Citizen, RefreshToken
from backend.clock import Clock
from backend.settings import Settings
from backend.store import Store, StoreUnavailable

log = logging.getLogger("shengshitong.auth")

LOADED = "auth:revocations:loaded"
_REBUILDING = "auth:revocations:rebuilding"
TOKEN_LEEWAY = 30  # seconds an access token is accepted past its expiry (auth._tokens)


def session_key(session_id: str) -> str:
    return f"auth:revoked-session:{session_id}"


def deleted_key(citizen_id: str) -> str:
    return f"auth:deleted-citizen:{citizen_id}"


def blocked_key(citizen_id: str) -> str:
    return f"auth:blocked-citizen:{citizen_id}"


class AccountState(NamedTuple):
    session_revoked: bool
    deleted: bool
    blocked: bool


class Revocations:
    def __init__(self, settings: Settings, clock: Clock, store: Store) -> None:
        self._clock = clock
        self._store = store
        # a revoked session's marker lives as long as an access token of it could still be presented
        self.session_ttl = settings.access_token_ttl + TOKEN_LEEWAY + 60
        # a deleted account's codes on screen (or in an offline terminal's queue) must keep failing
        self.deleted_ttl = settings.code_validity + settings.code_skew + settings.code_batch_window
        self._rebuild: asyncio.Task[int] | None = None

    # ---- recording (after the database change has committed) ---------------------------------------
    async def sessions_revoked(self, session_ids: list[str]) -> None:
        await self._store.set_many(
            {session_key(s): "1" for s in session_ids},
            {session_key(s): self.session_ttl for s in session_ids},
        )

    async def account_deleted(self, citizen_id: str) -> None:
        await self._store.set(deleted_key(citizen_id), "1", ttl=self.deleted_ttl)

    async def account_blocked(self, citizen_id: str, blocked: bool) -> None:
        if blocked:
            await self._store.set(blocked_key(citizen_id), "1")
        else:
            await self._store.delete(blocked_key(citizen_id))

    # ---- checking --------------------------------------------------------------------------------
    async def session_revoked(self, session_id: str) -> bool:
        marker, loaded = await self._store.mget(session_key(session_id), LOADED)
        if loaded is None:
            return (await self._from_database(session_id, None)).session_revoked
        return marker is not None

    @staticmethod
    def keys_for(citizen_id: str, session_id: str) -> tuple[str, ...]:
        """The keys a caller reads (in its own round trip) and hands to :meth:`state`."""
        return session_key(session_id), deleted_key(citizen_id), blocked_key(citizen_id), LOADED

    async def state(self, citizen_id: str, session_id: str, values: list[bytes | None]) -> AccountState:
        revoked, deleted, blocked, loaded = values
        if loaded is None:
            return await self._from_database(session_id, citizen_id)
        return AccountState(revoked is not None, deleted is not None, blocked is not None)

    async def _from_database(self, session_id: str, citizen_id: str | None) -> AccountState:
        self._start_rebuild()
        try:
            family = uuid.UUID(session_id)
        except ValueError:
            return AccountState(True, False, False)
        revoked = await (
            RefreshToken.exists().where(
                (RefreshToken.family == family) & RefreshToken.revoked_at.is_not_null()
            )
        ).run()
        deleted = blocked = False
        if citizen_id is not None:
            row = (
                await Citizen.select(Citizen.status).where(Citizen.id == uuid.UUID(citizen_id)).first().run()
            )
            status = row["status"] if row else "deleted"
            deleted, blocked = status == "deleted", status == "blocked"
        return AccountState(bool(revoked), deleted, blocked)

    # ---- rebuilding ------------------------------------------------------------------------------
    def _start_rebuild(self) -> None:
        if self._rebuild is None or self._rebuild.done():
            self._rebuild = asyncio.create_task(self._rebuild_logged(), name="revocations-rebuild")

    async def _rebuild_logged(self) -> int:
        try:
            return await self.rebuild()
        except Exception:  # the checks go on asking the database; the next miss tries again
            log.exception("rebuilding the revocation cache failed")
            return 0

    async def ensure_loaded(self) -> None:
        """At start-up: a store without the loaded marker (new, restarted empty) is filled first. A store
        that does not answer yet is no reason not to start (readiness says so); the first check that
        finds the marker missing rebuilds then."""
        try:
            if await self._store.get(LOADED) is None:
                await self.rebuild()
        except StoreUnavailable:
            log.warning("the store is not answering at start-up; revocations are checked in the database")

    async def rebuild(self) -> int:
        """Write every marker that can still matter from the database, then the loaded marker. One worker
        does it at a time; the others keep asking the database meanwhile. Returns the markers written."""
        if not await self._store.set_if_absent(_REBUILDING, "1", ttl=120):
            return 0
        try:
            now = self._clock.now()
            families = (
                await RefreshToken.select(RefreshToken.family, RefreshToken.revoked_at)
                .where(RefreshToken.revoked_at >= now - timedelta(seconds=self.session_ttl))
                .run()
            )
            deleted = (
                await Citizen.select(Citizen.id, Citizen.deleted_at)
                .where(
                    (Citizen.status == "deleted")
                    & (Citizen.deleted_at >= now - timedelta(seconds=self.deleted_ttl))
                )
                .run()
            )
            blocked = await Citizen.select(Citizen.id).where(Citizen.status == "blocked").run()
            items: dict[str, bytes | str] = {}
            ttls: dict[str, float | None] = {}
            for r in families:
                left = self.session_ttl - (now - r["revoked_at"]).total_seconds()
                if left > 0:
                    items[session_key(str(r["family"]))], ttls[session_key(str(r["family"]))] = "1", left
            for r in deleted:
                left = self.deleted_ttl - (now - r["deleted_at"]).total_seconds()
                if left > 0:
                    items[deleted_key(str(r["id"]))], ttls[deleted_key(str(r["id"]))] = "1", left
            for r in blocked:
                items[blocked_key(str(r["id"]))], ttls[blocked_key(str(r["id"]))] = "1", None
            await self._store.set_many(items, ttls)
            await self._store.set(LOADED, "1")
            log.info("revocation cache rebuilt from the database", extra={"markers": len(items)})
            return len(items)
        finally:
            await self._store.delete(_REBUILDING)
