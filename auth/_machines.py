"""Credentials of machine callers (scanners, mini-app backends, merchants) and HTTP Basic checks.

Secrets are long random values, so a keyed SHA-256 (HMAC) is the right hash: it costs microseconds on
the scan path, where a password hash would cost tens of milliseconds. Lookups are cached in the worker
for a few seconds, so a revocation takes effect everywhere within that time.
"""

from __future__ import annotations

import base64
import binascii
import logging
import secrets
import time
import uuid
from typing import Any
from urllib.parse import unquote

from auth.principals import MachinePrincipal
from auth.tables import MachineClient
from backend import audit
from backend.clock import Clock
from backend.crypto import keyed_hash, same
from backend.errors import InvalidInput, NotFound, Unauthorized
from backend.settings import Settings
from backend.store import Store

log = logging.getLogger("shengshitong.auth.machines")
KINDS = {
    "scanner": "scn",
    "miniapp": "app",
    "merchant": "mch",
    "operator": "opr",
    "source": "src",
    "unit": "unt",
    "issuer": "iss",  # a department issuing e-licences (licences/)
    "inspector": "ins",  # an inspector's verifier fetching handed-over presentations
    "relying_party": "rp",  # a government service asking for licence fields on consent
    "department": "dep",  # a department issuing payment notices for non-tax fees (fees/); app_id: its code
}
_BASIC = {"WWW-Authenticate": 'Basic realm="shengshitong", charset="UTF-8"'}
LAST_SEEN_EVERY = 60.0


def bad_client(detail: str = "client authentication failed") -> Unauthorized:
    return Unauthorized(detail, code="invalid_client", headers=_BASIC)


def parse_basic(header: str | None) -> tuple[str, str]:
    """RFC 6749 section 2.3.1: Basic base64(urlencode(client_id) ":" urlencode(secret))."""
    if not header or not header[:6].lower() == "basic ":
        raise bad_client("HTTP Basic client credentials required")
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise bad_client() from None
    client_id, sep, secret = decoded.partition(":")
    if not sep or not client_id or not secret:
        raise bad_client()
    return unquote(client_id), unquote(secret)


class _Cached:
    __slots__ = ("expires", "principal", "revoked", "secret_hash", "seen_written")

    def __init__(
        self, principal: MachinePrincipal | None, secret_hash: str, revoked: bool, expires: float
    ) -> None:
        self.principal = principal
        self.secret_hash = secret_hash
        self.revoked = revoked
        self.expires = expires
        self.seen_written = 0.0


class MachineCredentials:
    def __init__(self, settings: Settings, clock: Clock, store: Store) -> None:
        self._key = settings.secret_bytes("secret_key")
        self._clock = clock
        self._store = store
        self._cache_seconds = settings.machine_auth_cache_seconds
        self._cache: dict[str, _Cached] = {}

    def _hash(self, secret: str) -> str:
        return keyed_hash(self._key, "client-secret", secret)

    async def create(
        self,
        kind: str,
        *,
        name: str = "",
        app_id: str = "",
        place: str = "",
        context: str = "",
        actor: str = "operator",
    ) -> dict[str, Any]:
        if kind not in KINDS:
            raise InvalidInput(
                f"kind must be one of {sorted(KINDS)}", code="unknown_client_kind", kinds=sorted(KINDS)
            )
        client_id = f"{KINDS[kind]}_{secrets.token_hex(8)}"
        secret = "sk_" + secrets.token_urlsafe(32)
        row = MachineClient(
            id=uuid.uuid4(),
            kind=kind,
            client_id=client_id,
            secret_hash=self._hash(secret),
            name=name,
            app_id=app_id,
            place=place,
            context=context,
            created_at=self._clock.now(),
        )
        await MachineClient.insert(row).run()
        await audit.record(
            "credential_created",
            actor_kind="operator",
            actor_id=actor,
            subject=client_id,
            kind=kind,
            app_id=app_id,
            place=place,
        )
        return {
            "id": str(row.id),
            "client_id": client_id,
            "client_secret": secret,
            "kind": kind,
            "name": name,
            "app_id": app_id,
            "place": place,
            "context": context,
        }

    async def revoke(
        self, client_id: str, *, kind: str | None = None, actor: str = "operator"
    ) -> dict[str, Any]:
        where: Any = MachineClient.client_id == client_id
        if kind:
            where &= MachineClient.kind == kind
        updated = (
            await MachineClient.update({MachineClient.revoked_at: self._clock.now()})
            .where(where & MachineClient.revoked_at.is_null())
            .returning(MachineClient.client_id)
            .run()
        )
        if not updated:
            exists = await MachineClient.exists().where(where).run()
            if not exists:
                raise NotFound(f"no {kind or 'machine'} credential {client_id}", code="credential_not_found")
            return {"client_id": client_id, "revoked": True, "already": True}
        self._cache.pop(client_id, None)
        await audit.record("credential_revoked", actor_kind="operator", actor_id=actor, subject=client_id)
        return {"client_id": client_id, "revoked": True, "already": False}

    async def list(self, kind: str, *, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        return (
            await MachineClient.select(
                MachineClient.client_id,
                MachineClient.kind,
                MachineClient.name,
                MachineClient.app_id,
                MachineClient.place,
                MachineClient.context,
                MachineClient.created_at,
                MachineClient.last_seen_at,
                MachineClient.revoked_at,
            )
            .where(MachineClient.kind == kind)
            .order_by(MachineClient.created_at)
            .limit(limit)
            .offset(offset)
            .run()
        )

    async def _lookup(self, client_id: str) -> _Cached | None:
        now = time.monotonic()
        cached = self._cache.get(client_id)
        if cached is not None and cached.expires > now:
            return cached
        row = await MachineClient.select().where(MachineClient.client_id == client_id).first().run()
        if row is None:
            self._cache.pop(client_id, None)
            return None
        principal = MachinePrincipal(
            id=str(row["id"]),
            client_id=client_id,
            kind=row["kind"],
            name=row["name"],
            app_id=row["app_id"],
            place=row["place"],
            context=row["context"],
        )
        fresh = _Cached(
            principal, row["secret_hash"], row["revoked_at"] is not None, now + self._cache_seconds
        )
        if cached is not None:
            fresh.seen_written = cached.seen_written
        if len(self._cache) > 100_000:
            self._cache.clear()
        self._cache[client_id] = fresh
        return fresh

    async def authenticate(
        self, header: str | None, kinds: tuple[str, ...], *, ip: str = ""
    ) -> MachinePrincipal:
        client_id, secret = parse_basic(header)
        return await self.verify(client_id, secret, kinds, ip=ip)

    # ---- credentials presented outside HTTP (a SIP2 kiosk's login) (一码借阅) ----
    async def active(self, client_id: str) -> MachinePrincipal | None:
        """The principal of a credential that is not revoked (no secret checked: for a terminal that
        authenticated already, whose revocation must still stop it)."""
        entry = await self._lookup(client_id)
        if entry is None or entry.principal is None or entry.revoked:
            return None
        return entry.principal

    async def verify(
        self, client_id: str, secret: str, kinds: tuple[str, ...], *, ip: str = ""
    ) -> MachinePrincipal:
        """:meth:`authenticate` for a client id and secret given some other way than a Basic header."""
        entry = await self._lookup(client_id)
        if entry is None or entry.principal is None or not same(entry.secret_hash, self._hash(secret)):
            raise bad_client()
        if entry.revoked:
            # audit once a minute per credential, not on every retry of a revoked gate
            if await self._store.set_if_absent(f"auth:revoked-use:{client_id}", "1", ttl=60):
                await audit.record(
                    "credential_used_after_revocation",
                    actor_kind=entry.principal.kind,
                    actor_id=client_id,
                    ip=ip,
                )
            raise bad_client("this credential has been revoked")
        if entry.principal.kind not in kinds:
            raise Unauthorized(
                f"this route is for {' or '.join(kinds)} credentials",
                code="wrong_client_kind",
                headers=_BASIC,
            )
        now = time.monotonic()
        if now - entry.seen_written > LAST_SEEN_EVERY:
            entry.seen_written = now
            await (
                MachineClient.update({MachineClient.last_seen_at: self._clock.now()})
                .where(MachineClient.client_id == client_id)
                .run()
            )
        return entry.principal
