"""授权: a mini-app or a government service (a relying party) asks for named fields of a licence type for
a purpose; the citizen approves (once, or standing until a date and revocable) or refuses; the requester
then receives an issuer-signed presentation of exactly those fields, and every such use is logged.

States: pending → approved | refused | expired; approved → used (a one-time consent, once shared) |
revoked (the citizen withdrew a standing one) | expired (its time ran out).
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from backend import db
from backend.clock import Clock
from backend.errors import Conflict, InvalidInput, NotFound
from licences.format import mint
from licences.rules import TYPES, check_fields_requested, licence_type
from licences.services import LicenceBook
from licences.tables import Licence, LicenceRequest
from licences.verifier import vct_of
from messages.services import PLATFORM, MessageCentre, Outgoing

log = logging.getLogger("shengshitong.licences")
_KEY = re.compile(r"^[A-Za-z0-9._:\-]{1,64}$")


@dataclass(frozen=True)
class ConsentSettings:
    request_days: int = 7  # a request the citizen has not answered lapses then
    standing_days: int = 365  # the longest a standing consent lasts
    once_hours: int = 24  # a one-time consent must be used within this
    shared_minutes: int = 15  # a shared presentation's lifetime
    pending_per_requester: int = 5  # unanswered requests one requester may have with one citizen


@dataclass(frozen=True)
class Requester:
    kind: str  # miniapp | relying_party
    id: str  # the app id or the credential's client id
    name: str


class Consents:
    def __init__(
        self, clock: Clock, book: LicenceBook, messages: MessageCentre, settings: ConsentSettings
    ) -> None:
        self._clock = clock
        self._book = book
        self._messages = messages
        self.s = settings

    async def request(
        self,
        requester: Requester,
        citizen_id: str,
        type_code: str,
        fields: list[str],
        purpose: str,
        mode: str,
        *,
        key: str | None = None,
        standing_days: int | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """A new request (``True``), or the one this requester made with the same ``key`` (``False``)."""
        kind = licence_type(type_code)
        fields = check_fields_requested(kind, fields)
        purpose = unicodedata.normalize("NFC", " ".join((purpose or "").split()))
        # the citizen reads it to decide: no control, format or direction-changing characters
        if not 2 <= len(purpose) <= 200 or any(unicodedata.category(c)[0] == "C" for c in purpose):
            raise InvalidInput("say what the fields are for, in 2-200 characters", code="invalid_purpose")
        if mode not in ("once", "standing"):
            raise InvalidInput("mode is once or standing", code="invalid_mode")
        days = standing_days or self.s.standing_days
        if not 1 <= days <= self.s.standing_days:
            raise InvalidInput(
                f"a standing consent lasts 1-{self.s.standing_days} days", code="invalid_consent_days"
            )
        if key is not None and not _KEY.match(key):
            raise InvalidInput(
                "an idempotency key is 1-64 of A-Z a-z 0-9 . _ : -", code="invalid_idempotency_key"
            )
        idem = f"{requester.id}/{key}" if key else None
        if idem:
            found = await LicenceRequest.select().where(LicenceRequest.idempotency == idem).first().run()
            if found is not None:
                return _view(found), False
        waiting = (
            await LicenceRequest.count()
            .where(
                (LicenceRequest.citizen_id == citizen_id)
                & (LicenceRequest.requester_id == requester.id)
                & (LicenceRequest.state == "pending")
                & (LicenceRequest.expires_at > self._clock.now())
            )
            .run()
        )
        if waiting >= self.s.pending_per_requester:
            # each request is a message in the citizen's inbox: a requester does not flood it
            raise Conflict(
                "this citizen has not answered your earlier requests yet",
                code="requests_pending",
                most=self.s.pending_per_requester,
            )
        now = self._clock.now()
        request_id = uuid.uuid4()
        row = LicenceRequest(
            id=request_id,
            citizen_id=citizen_id,
            requester_kind=requester.kind,
            requester_id=requester.id,
            requester_name=requester.name[:96],
            type=kind.code,
            fields=fields,
            purpose=purpose,
            mode=mode,
            state="pending",
            idempotency=idem,
            created_at=now,
            expires_at=now + timedelta(days=self.s.request_days),
            consent_until=now + timedelta(days=days) if mode == "standing" else None,
        )
        try:
            await LicenceRequest.insert(row).run()
        except Exception as exc:  # the same key raced in from another worker: that one is the request
            if idem is None or not db.unique_violation(exc):
                raise
            found = await LicenceRequest.select().where(LicenceRequest.idempotency == idem).first().run()
            if found is None:
                raise Conflict("the request could not be recorded; retry", code="request_conflict") from exc
            return _view(found), False
        try:
            await self._messages.send(
                PLATFORM,
                "licence_request",
                [
                    Outgoing(
                        citizen_id=citizen_id,
                        key=f"licence-request:{request_id}",
                        data={
                            "requester": requester.name[:64],
                            "licence": kind.zh,
                            "licence_en": kind.en,
                            "purpose": purpose,
                        },
                    )
                ],
            )
        except (Conflict, NotFound, InvalidInput) as exc:  # the request stands; the inbox lists it
            log.warning("licence request message not sent: %s", exc.code)
        saved = await LicenceRequest.select().where(LicenceRequest.id == request_id).first().run()
        assert saved is not None
        return _view(saved), True

    async def _lapse(self, where: Any) -> None:
        """Requests past their time, as their state says (a pending one unanswered, a consent run out)."""
        now = self._clock.now()
        await (
            LicenceRequest.update({LicenceRequest.state: "expired"})
            .where(where & (LicenceRequest.state == "pending") & (LicenceRequest.expires_at <= now))
            .run()
        )
        await (
            LicenceRequest.update({LicenceRequest.state: "expired"})
            .where(where & (LicenceRequest.state == "approved") & (LicenceRequest.consent_until <= now))
            .run()
        )

    async def for_requester(self, requester: Requester, request_id: str) -> dict[str, Any]:
        rid = _uuid(request_id)
        where = (LicenceRequest.id == rid) & (LicenceRequest.requester_id == requester.id)
        await self._lapse(where)
        row = await LicenceRequest.select().where(where).first().run()
        if row is None:
            raise NotFound("no such request", code="request_not_found")
        return _view(row)

    async def share(self, requester: Requester, request_id: str) -> dict[str, Any]:
        """The presentation of exactly the consented fields, logged as a use. A one-time consent is spent
        by it (two racing calls: the row lock lets one through); a refused, pending, revoked or lapsed
        one gives nothing."""
        rid = _uuid(request_id)
        where = (LicenceRequest.id == rid) & (LicenceRequest.requester_id == requester.id)
        await self._lapse(where)
        now = self._clock.now()
        async with db.transaction():
            row = await db.for_update(LicenceRequest.select().where(where)).first().run()
            if row is None:
                raise NotFound("no such request", code="request_not_found")
            if row["state"] != "approved":
                raise Conflict(_WHY[row["state"]], code=f"consent_{row['state']}", state=row["state"])
            licence = await Licence.select().where(Licence.id == row["licence"]).first().run()
            if licence is None or licence["status"] != "valid":
                status = licence["status"] if licence else "revoked"
                raise Conflict(f"the citizen's licence is {status}", code=f"licence_{status}")
            # a consent is the word of the licence's holder: once the account no longer holds it (its real
            # name cleared, or verified as another ID number) it gives nothing, and the true holder's own
            # account starts with no consent of someone else's
            if licence["holder_index"] != await self._book.index_of_citizen(row["citizen_id"]):
                raise Conflict(
                    "the citizen who consented no longer holds this licence", code="licence_not_held"
                )
            if licence["valid_until"] is not None and licence["valid_until"] <= now:
                raise Conflict("the citizen's licence has expired", code="licence_expired")
            fields = _fields(row)
            all_fields = self._book.fields_of(licence)
            shared = {f: all_fields[f] for f in fields if f in all_fields}
            until = now + timedelta(minutes=self.s.shared_minutes)
            if licence["valid_until"] is not None:
                until = min(until, licence["valid_until"])
            number = await self._book.list_number(licence["status_list"])
            issuers = self._book.issuers
            presentation = mint(
                await issuers.signing_key(licence["issuer"]),
                iss=issuers.iss(licence["issuer"]),
                vct=vct_of(licence["type"]),
                fields=shared,
                holder_jwk=None,
                status_uri=issuers.status_uri(licence["issuer"], number),
                status_idx=licence["status_idx"],
                iat=int(now.timestamp()),
                exp=int(until.timestamp()),
            )
            if row["mode"] == "once":
                await (
                    LicenceRequest.update({LicenceRequest.state: "used", LicenceRequest.used_at: now})
                    .where(LicenceRequest.id == rid)
                    .run()
                )
            else:
                await (
                    LicenceRequest.update({LicenceRequest.used_at: now}).where(LicenceRequest.id == rid).run()
                )
            await self._book.uses.record(
                row["citizen_id"],
                dict(licence),
                "shared",
                requester.kind,
                requester.id,
                requester.name,
                list(shared),
                row["purpose"],
                request=rid,
            )
        return {
            "request": str(rid),
            "format": "dc+sd-jwt",
            "vct": vct_of(licence["type"]),
            "presentation": presentation,
            "fields": shared,
            "expires_at": until,
        }

    # ---- the citizen's side ----------------------------------------------------------------------
    async def mine(
        self, citizen_id: str, state: str | None, *, limit: int, offset: int
    ) -> list[dict[str, Any]]:
        where: Any = LicenceRequest.citizen_id == citizen_id
        await self._lapse(where)
        if state:
            where &= LicenceRequest.state == state
        rows = (
            await LicenceRequest.select()
            .where(where)
            .order_by(LicenceRequest.created_at, ascending=False)
            .limit(limit)
            .offset(offset)
            .run()
        )
        return [_view(r) for r in rows]

    async def decide(
        self, citizen_id: str, request_id: str, approve: bool, licence_id: str | None = None
    ) -> dict[str, Any]:
        """Approve (with the licence to share from: the one given, else the citizen's valid licence of the
        type issued last) or refuse; only a pending request, once (a conditional UPDATE)."""
        rid = _uuid(request_id)
        where = (LicenceRequest.id == rid) & (LicenceRequest.citizen_id == citizen_id)
        await self._lapse(where)
        row = await LicenceRequest.select().where(where).first().run()
        if row is None:
            raise NotFound("no such request", code="request_not_found")
        now = self._clock.now()
        changes: dict[Any, Any] = {LicenceRequest.decided_at: now}
        if approve:
            licence = await self._licence_for(citizen_id, row["type"], licence_id)
            changes[LicenceRequest.state] = "approved"
            changes[LicenceRequest.licence] = licence
            if row["mode"] == "once":
                changes[LicenceRequest.consent_until] = now + timedelta(hours=self.s.once_hours)
            else:
                changes[LicenceRequest.consent_until] = row["consent_until"] or now + timedelta(
                    days=self.s.standing_days
                )
        else:
            changes[LicenceRequest.state] = "refused"
        return await self._move(where, "pending", changes, "only a pending one is answered")

    async def _licence_for(self, citizen_id: str, type_code: str, licence_id: str | None) -> uuid.UUID:
        if licence_id:
            held = await self._book.held(citizen_id, licence_id)
            if held["type"] != type_code:
                raise InvalidInput("that licence is of another type", code="wrong_licence_type")
            if held["status"] != "valid":
                raise Conflict(f"that licence is {held['status']}", code=f"licence_{held['status']}")
            if _lapsed(held, self._clock.now()):
                raise Conflict("that licence has expired", code="licence_expired")
            return uuid.UUID(str(held["id"]))
        _, mine = await self._book.mine(citizen_id)
        valid = [m for m in mine if m["type"] == type_code and m["status"] == "valid"]
        current = [m for m in valid if not _lapsed(m, self._clock.now())]
        if valid and not current:
            raise Conflict("your licence of this type has expired", code="licence_expired")
        if not current:
            raise Conflict(
                f"you hold no valid {TYPES[type_code].en.lower()}", code="no_licence_of_type", type=type_code
            )
        return uuid.UUID(current[-1]["id"])

    async def revoke(self, citizen_id: str, request_id: str) -> dict[str, Any]:
        """Withdraw an approved consent: the requester gets nothing more from it."""
        rid = _uuid(request_id)
        where = (LicenceRequest.id == rid) & (LicenceRequest.citizen_id == citizen_id)
        row = await LicenceRequest.select().where(where).first().run()
        if row is None:
            raise NotFound("no such request", code="request_not_found")
        if row["state"] == "revoked":
            return _view(row)
        changes = {LicenceRequest.state: "revoked", LicenceRequest.decided_at: self._clock.now()}
        return await self._move(where, "approved", changes, "only an approved consent is withdrawn")

    async def _move(self, where: Any, expected: str, changes: dict[Any, Any], why: str) -> dict[str, Any]:
        """The request from ``expected`` to its new state in one conditional UPDATE (of racing callers,
        one moves it); the others are told the state it is in now."""
        done = (
            await LicenceRequest.update(changes)
            .where(where & (LicenceRequest.state == expected))
            .returning(*LicenceRequest.all_columns())
            .run()
        )
        if done:
            return _view(done[0])
        now = await LicenceRequest.select(LicenceRequest.state).where(where).first().run()
        state = now["state"] if now else "expired"
        raise Conflict(f"this request is {state}: {why}", code="request_decided", state=state)

    async def forget(self, citizen_id: str) -> None:
        await LicenceRequest.delete().where(LicenceRequest.citizen_id == citizen_id).run()


_WHY = {
    "pending": "the citizen has not answered yet",
    "refused": "the citizen refused",
    "expired": "the request or the consent has lapsed",
    "used": "this one-time consent was used",
    "revoked": "the citizen withdrew the consent",
}


def _lapsed(licence: dict[str, Any], now: datetime) -> bool:
    return licence["valid_until"] is not None and licence["valid_until"] <= now


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound("no such request", code="request_not_found") from None


def _fields(row: dict[str, Any]) -> list[str]:
    value = row["fields"]
    return list(json.loads(value)) if isinstance(value, str) else list(value or [])


def _view(row: dict[str, Any]) -> dict[str, Any]:
    kind = TYPES.get(row["type"])
    labels = {f.name: (f.zh, f.en) for f in kind.fields} if kind else {}
    return {
        "id": str(row["id"]),
        "requester": {
            "kind": row["requester_kind"],
            "id": row["requester_id"],
            "name": row["requester_name"],
        },
        "type": row["type"],
        "type_zh": kind.zh if kind else "",
        "type_en": kind.en if kind else "",
        "fields": [
            {"name": n, "zh": labels.get(n, (n, n))[0], "en": labels.get(n, (n, n))[1]} for n in _fields(row)
        ],
        "purpose": row["purpose"],
        "mode": row["mode"],
        "state": row["state"],
        "created_at": row["created_at"],
        "expires_at": row["expires_at"],
        "decided_at": row["decided_at"],
        "consent_until": row["consent_until"],
        "used_at": row["used_at"],
    }
