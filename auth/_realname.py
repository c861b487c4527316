"""The citizen's real-name verification (实名认证): the one place a name and an ID number become the
account's, and only once a provider has said they match.

``verify`` is used by ``POST /api/v1/me/real-name`` and by ``PATCH /api/v1/me``; ``clear`` by
``DELETE /api/v1/me/real-name`` and the operators' ``shengshi citizens clear-real-name``. After either
commits, the observers (``observers``: async callables taking the citizen id) learn that the citizen's
entitlements may have changed; an observer's failure is logged and never fails the request.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from auth.pii import mask_id_number, mask_name, normalise_id_number, normalise_name
from auth.realname import Claim, RealNameProvider, Verdict
from auth.tables import Citizen
from backend import audit, db
from backend.clock import Clock
from backend.crypto import Keyring, keyed_hash
from backend.errors import Conflict, InvalidInput, NotFound, RateLimited, ServiceUnavailable
from backend.settings import Settings
from backend.store import Store

log = logging.getLogger("shengshitong.auth.realname")
DAY = 24 * 3600
UNAVAILABLE_RETRY_AFTER = 30

RealNameObserver = Callable[[str], Awaitable[None]]

CLEARED: dict[Any, Any] = {
    Citizen.name_sealed: None,
    Citizen.id_number_sealed: None,
    Citizen.id_number_index: None,
    Citizen.real_name_verified_at: None,
    Citizen.real_name_provider: "",
    Citizen.real_name_level: "",
    Citizen.real_name_reference: "",
}


def _taken() -> Conflict:
    return Conflict("this ID number belongs to another account", code="id_number_taken")


class RealNameService:
    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        store: Store,
        pii: Keyring,
        provider: RealNameProvider,
        observers: list[RealNameObserver] | None = None,
    ) -> None:
        self._s = settings
        self._clock = clock
        self._store = store
        self._pii = pii
        self._key = settings.secret_bytes("secret_key")
        self.provider = provider
        # called with the citizen id after a verification or a clearing commits; subscribers append
        # theirs when they are built (the composition root builds them after identity)
        self.observers: list[RealNameObserver] = observers if observers is not None else []

    def id_number_index(self, id_number: str) -> str:
        return keyed_hash(self._key, "id_number", id_number)

    async def _current(self, cid: uuid.UUID) -> tuple[str | None, str | None, bool]:
        """The verified name and ID number on file (None when not verified), and whether verified."""
        row = (
            await Citizen.select(Citizen.name_sealed, Citizen.id_number_sealed, Citizen.real_name_verified_at)
            .where((Citizen.id == cid) & (Citizen.status != "deleted"))
            .first()
            .run()
        )
        if row is None:
            raise NotFound("no such account", code="account_not_found")
        if row["real_name_verified_at"] is None:
            return None, None, False
        context = f"citizen:{cid}"
        name = self._pii.decrypt(row["name_sealed"], f"{context}:name") if row["name_sealed"] else None
        number = (
            self._pii.decrypt(row["id_number_sealed"], f"{context}:id_number")
            if row["id_number_sealed"]
            else None
        )
        return name, number, True

    async def verify(
        self,
        citizen_id: str,
        *,
        real_name: str | None,
        id_number: str | None,
        liveness_token: str | None = None,
        ip: str = "",
    ) -> None:
        """Verify the name and ID number with the provider and, only when they match, make them the
        account's. A value left out is the verified one on file; with none on file both are needed."""
        cid = uuid.UUID(citizen_id)
        current_name, current_number, verified = await self._current(cid)
        name = normalise_name(real_name) if real_name is not None else current_name
        number = normalise_id_number(id_number) if id_number is not None else current_number
        if name is None or number is None:
            raise InvalidInput(
                "real_name and id_number are verified together: give both", code="real_name_incomplete"
            )
        if verified and (name, number) == (current_name, current_number) and liveness_token is None:
            return  # already verified as given: nothing to ask the authority
        index = self.id_number_index(number)
        masked = {"real_name": mask_name(name), "id_number": mask_id_number(number)}

        async def record(outcome: str, **data: Any) -> None:
            await audit.record(
                "real_name_verification",
                actor_kind="citizen",
                actor_id=citizen_id,
                subject=f"citizen:{citizen_id}",
                ip=ip,
                outcome=outcome,
                **masked,
                **data,
            )

        limited = await self._spend_attempt(citizen_id, index, face=liveness_token is not None)
        if limited is not None:
            await record("rate_limited")
            raise limited
        if await self._held_by_another(index, cid):
            await record("id_number_taken")
            raise _taken()
        verdict = await self.provider.verify(Claim(name, number, liveness_token), at=self._clock.now())
        facts = {"provider": verdict.provider, "reference": verdict.reference, "reason": verdict.reason}
        if verdict.outcome == "unavailable":
            await self._refund_attempt(citizen_id, index, face=liveness_token is not None)
            await record("unavailable", **facts)
            raise ServiceUnavailable(
                "real-name verification is unavailable; try again shortly",
                code="realname_unavailable",
                headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER)},
            )
        if not verdict.matched:
            await record("not_matched", **facts)
            raise InvalidInput(
                "the name and ID number could not be verified together", code="real_name_mismatch"
            )
        await self._store_verified(cid, name, number, index, verdict)
        await record("matched", level=verdict.level, **facts)
        await self.notify(citizen_id)

    async def _store_verified(
        self, cid: uuid.UUID, name: str, number: str, index: str, verdict: Verdict
    ) -> None:
        context = f"citizen:{cid}"
        values: dict[Any, Any] = {
            Citizen.name_sealed: self._pii.encrypt(name, f"{context}:name"),
            Citizen.id_number_sealed: self._pii.encrypt(number, f"{context}:id_number"),
            Citizen.id_number_index: index,
            Citizen.real_name_verified_at: verdict.at,
            Citizen.real_name_provider: verdict.provider[:32],
            Citizen.real_name_level: verdict.level,
            Citizen.real_name_reference: verdict.reference[:64],
            Citizen.updated_at: self._clock.now(),
        }
        try:
            async with db.transaction():
                if await self._held_by_another(index, cid):
                    raise _taken()
                updated = (
                    await Citizen.update(values)
                    .where((Citizen.id == cid) & (Citizen.status != "deleted"))
                    .returning(Citizen.id)
                    .run()
                )
                if not updated:
                    raise NotFound("no such account", code="account_not_found")
        except Exception as exc:
            if db.unique_violation(exc):  # another account took it between our check and our write
                raise _taken() from None
            raise

    async def _held_by_another(self, index: str, cid: uuid.UUID) -> bool:
        return bool(
            await Citizen.exists().where((Citizen.id_number_index == index) & (Citizen.id != cid)).run()
        )

    def _attempt_keys(self, citizen_id: str, index: str, face: bool) -> list[tuple[str, int]]:
        """The counters an attempt spends. An attempt with a liveness result (a face the authority
        compares with the ID number's photo) is not a name guess: it does not count against the ID
        number, so strangers who used up a number's attempts cannot lock its real owner out."""
        keys = [(f"realname:citizen:{citizen_id}", self._s.realname_attempts_per_day)]
        if not face:
            keys.append((f"realname:id:{index}", self._s.realname_attempts_per_id_number_per_day))
        return keys

    async def _spend_attempt(self, citizen_id: str, index: str, face: bool = False) -> RateLimited | None:
        """Count an attempt per citizen and per ID number (a day's window each, in the shared store): the
        endpoint would otherwise answer "does this name go with this ID number" for anyone who asks."""
        for key, limit in self._attempt_keys(citizen_id, index, face):
            if await self._store.incr(key, ttl=DAY) > limit:
                retry = int(await self._store.ttl(key) or DAY)
                if key.startswith("realname:id:"):  # strangers may have spent them: a face check still works
                    return RateLimited(
                        "too many attempts for this ID number today; verify with a face check",
                        retry_after=retry,
                        code="id_number_attempts_exhausted",
                    )
                return RateLimited(
                    "too many real-name verification attempts; try again later", retry_after=retry
                )
        return None

    async def _refund_attempt(self, citizen_id: str, index: str, face: bool = False) -> None:
        """An attempt the authority never answered does not count against the citizen."""
        for key, _ in self._attempt_keys(citizen_id, index, face):
            await self._store.incr(key, ttl=DAY, amount=-1)

    async def clear(
        self, citizen_id: str, *, actor_kind: str, actor_id: str, ip: str = "", reason: str = ""
    ) -> dict[str, Any]:
        """Withdraw the account's real name: the name, ID number, index and verification go."""
        try:
            cid = uuid.UUID(citizen_id)
        except ValueError:
            raise NotFound("no such account", code="account_not_found") from None
        async with db.transaction():
            updated = (
                await Citizen.update({**CLEARED, Citizen.updated_at: self._clock.now()})
                .where((Citizen.id == cid) & (Citizen.status != "deleted"))
                .returning(Citizen.id)
                .run()
            )
        if not updated:
            raise NotFound("no such account", code="account_not_found")
        await audit.record(
            "real_name_cleared",
            actor_kind=actor_kind,
            actor_id=actor_id,
            subject=f"citizen:{citizen_id}",
            ip=ip,
            reason=reason[:200],
        )
        await self.notify(citizen_id)
        return {"citizen_id": citizen_id, "real_name_verified": False}

    async def notify(self, citizen_id: str) -> None:
        """Tell every observer; each one's failure is logged and the others still run."""
        for observer in list(self.observers):
            try:
                await observer(citizen_id)
            except Exception:
                log.exception(
                    "a real-name observer (%s) failed for citizen %s",
                    getattr(observer, "__qualname__", type(observer).__name__),
                    citizen_id,
                )
