"""The mini-app platform's services: the per-app Platform, pairwise ids, authorisation and tokens."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
import uuid
from datetime import datetime
from typing import Any

from auth.pii import mask_name
from auth.tables import Citizen
from backend import audit, db
from backend.clock import Clock
from backend.crypto import Keyring, keyed_hash
from backend.errors import Forbidden, InvalidInput, NotFound, Unauthorized
from backend.i18n import pick
from backend.settings import Settings
from backend.store import Store
from miniapps.contract import SCOPES, SCOPES_ZH, MiniApp
from miniapps.tables import MiniAppGrant, PairwiseSubject

CODE_TTL = 300
TOKEN_TTL = 3600


class AppPlatform:
    """The :class:`miniapps.contract.Platform` one mini-app gets: its config, a logger, the clock, and a
    key-value namespace of its own in the shared store."""

    def __init__(
        self,
        app_id: str,
        config: dict[str, Any],
        store: Store,
        clock: Clock,
        services: dict[str, Any] | None = None,
    ) -> None:
        self.app_id = app_id
        self._services = services if services is not None else {}
        self._payments: Any = None
        self.config = config
        self.log = logging.getLogger(f"shengshitong.miniapps.{app_id}")
        self._store = store
        self._clock = clock
        self._prefix = f"app:{app_id}:"

    def now(self) -> datetime:
        return self._clock.now()

    @property
    def payments(self) -> Any:
        """Orders and unpaid totals for this mini-app (see ``payments.facade.MiniAppPayments``)."""
        if self._payments is None:
            from payments.facade import MiniAppPayments

            self._payments = MiniAppPayments(
                self.app_id, self._services["payments"].orders, self._services["miniapps"].pairwise
            )
        return self._payments

    async def kv_get(self, key: str) -> bytes | None:
        return await self._store.get(self._prefix + key)

    async def kv_set(self, key: str, value: bytes | str, ttl: float | None = None) -> None:
        await self._store.set(self._prefix + key, value, ttl)

    async def kv_set_if_absent(self, key: str, value: bytes | str, ttl: float) -> bool:
        return await self._store.set_if_absent(self._prefix + key, value, ttl)

    async def knows(self, openid: str) -> bool:
        return await self._services["miniapps"].pairwise.citizen(self.app_id, openid) is not None

    def transaction(self) -> Any:
        return db.transaction()


class Pairwise:
    """OIDC-style pairwise subject: HMAC(secret, app id, citizen id) — stable for the pair, different in
    every mini-app, and not reversible by a mini-app. The platform remembers which citizen an openid
    stands for, so a mini-app can name the citizen by openid when it creates an order."""

    def __init__(self, settings: Settings) -> None:
        self._key = settings.secret_bytes("secret_key")
        self._remembered: set[str] = set()

    def openid(self, app_id: str, citizen_id: str) -> str:
        digest = bytes.fromhex(keyed_hash(self._key, "pairwise-sub", f"{app_id}:{citizen_id}"))
        return "o_" + base64.urlsafe_b64encode(digest[:18]).decode()

    async def issue(self, app_id: str, citizen_id: str) -> str:
        """The openid, remembered for :meth:`citizen` (one insert per pair, then an in-process cache)."""
        openid = self.openid(app_id, citizen_id)
        key = f"{app_id}/{openid}"
        if key not in self._remembered:
            await (
                PairwiseSubject.insert(PairwiseSubject(app_openid=key, citizen_id=citizen_id))
                .on_conflict(target=PairwiseSubject.app_openid, action="DO NOTHING")
                .run()
            )
            if len(self._remembered) > 200_000:
                self._remembered.clear()
            self._remembered.add(key)
        return openid

    async def citizen(self, app_id: str, openid: str) -> str | None:
        row = (
            await PairwiseSubject.select(PairwiseSubject.citizen_id)
            .where(PairwiseSubject.app_openid == f"{app_id}/{openid}")
            .first()
            .run()
        )
        return None if row is None else str(row["citizen_id"])


def _h(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class MiniAppAuth:
    """Mini-app login like an OAuth 2 authorisation-code flow, with pairwise ids and scoped tokens."""

    def __init__(
        self, settings: Settings, clock: Clock, store: Store, pairwise: Pairwise, apps: dict[str, MiniApp]
    ) -> None:
        self._clock = clock
        self._store = store
        self._pairwise = pairwise
        self._apps = apps
        self._pii = Keyring(settings.pii_keyring())

    def _app(self, app_id: str) -> MiniApp:
        app = self._apps.get(app_id)
        if app is None:
            raise NotFound(f"no mini-app {app_id!r}", code="miniapp_not_found")
        return app

    async def authorize(self, citizen_id: str, app_id: str, scopes: list[str], *, ip: str) -> dict[str, Any]:
        app = self._app(app_id)
        wanted = sorted(set(scopes) | {"openid"})
        if not_allowed := set(wanted) - set(app.manifest.scopes) - {"openid"}:
            raise InvalidInput(f"{app_id} may not ask for {sorted(not_allowed)}", code="invalid_scope")
        now = self._clock.now()
        key = f"{citizen_id}/{app_id}"
        async with db.transaction():
            row = (
                await MiniAppGrant.select(MiniAppGrant.id)
                .where(MiniAppGrant.citizen_app == key)
                .first()
                .run()
            )
            if row is None:
                grant_id = uuid.uuid4()
                await MiniAppGrant.insert(
                    MiniAppGrant(
                        id=grant_id,
                        citizen=uuid.UUID(citizen_id),
                        app_id=app_id,
                        citizen_app=key,
                        scopes=wanted,
                        created_at=now,
                        updated_at=now,
                    )
                ).run()
            else:
                grant_id = row["id"]
                await (
                    MiniAppGrant.update(
                        {
                            MiniAppGrant.scopes: wanted,
                            MiniAppGrant.updated_at: now,
                            MiniAppGrant.revoked_at: None,
                        }
                    )
                    .where(MiniAppGrant.id == grant_id)
                    .run()
                )
        code = "ac_" + secrets.token_urlsafe(24)
        record = {
            "c": citizen_id,
            "a": app_id,
            "s": wanted,
            "g": str(grant_id),
            "exp": self._clock.time() + CODE_TTL,
        }
        await self._store.set(f"mauth:code:{_h(code)}", json.dumps(record), ttl=CODE_TTL)
        await audit.record(
            "miniapp_authorized",
            actor_kind="citizen",
            actor_id=citizen_id,
            subject=app_id,
            ip=ip,
            scopes=wanted,
        )
        return {"code": code, "expires_in": CODE_TTL, "scopes": wanted}

    async def exchange(self, app_id: str, code: str, *, caller_app_id: str) -> dict[str, Any]:
        """A mini-app's backend (authenticated as ``caller_app_id``) trades a one-time code for a token at
        ``app_id``'s endpoint. The code is spent by any attempt, whoever makes it and whatever the answer,
        so a code seen by the wrong party cannot be tried again by anyone."""
        key = f"mauth:code:{_h(code)}"
        raw = await self._store.get(key)
        spent = raw is not None and await self._store.delete(key) == 1
        if caller_app_id != app_id:
            raise Forbidden(
                f"this credential belongs to {caller_app_id!r}, not {app_id!r}", code="wrong_miniapp"
            )
        self._app(app_id)
        if not spent or raw is None:
            raise Unauthorized(
                "the authorisation code is not valid (used, expired or unknown)", code="invalid_grant"
            )
        record = json.loads(raw)
        if record["a"] != app_id:
            raise Unauthorized("the authorisation code was issued to another mini-app", code="invalid_grant")
        if self._clock.time() > record["exp"]:
            raise Unauthorized("the authorisation code has expired", code="invalid_grant")
        token = "mt_" + secrets.token_urlsafe(32)
        tok = {
            "c": record["c"],
            "a": app_id,
            "s": record["s"],
            "g": record["g"],
            "exp": self._clock.time() + TOKEN_TTL,
        }
        await self._store.set(f"mauth:token:{_h(token)}", json.dumps(tok), ttl=TOKEN_TTL)
        return {
            "openid": await self._pairwise.issue(app_id, record["c"]),
            "scopes": record["s"],
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": TOKEN_TTL,
        }

    async def _token(self, app_id: str, token: str) -> dict[str, Any]:
        raw = await self._store.get(f"mauth:token:{_h(token)}")
        if raw is None:
            raise Unauthorized("the mini-app access token is not valid", code="invalid_token")
        tok = dict(json.loads(raw))
        if tok["a"] != app_id or self._clock.time() > tok["exp"]:
            raise Unauthorized("the mini-app access token is not valid", code="invalid_token")
        grant = (
            await MiniAppGrant.select(MiniAppGrant.revoked_at)
            .where(MiniAppGrant.id == uuid.UUID(tok["g"]))
            .first()
            .run()
        )
        if grant is None or grant["revoked_at"] is not None:
            raise Unauthorized("the citizen has revoked this mini-app's access", code="grant_revoked")
        return tok

    async def userinfo(self, app_id: str, token: str, *, need: str | None = None) -> dict[str, Any]:
        """What the granted scopes allow; ``need`` names a scope the caller insists on (403 without)."""
        tok = await self._token(app_id, token)
        scopes = set(tok["s"])
        if need is not None and need not in scopes:
            raise Forbidden(f"this token does not carry the {need!r} scope", code="insufficient_scope")
        citizen_id = tok["c"]
        row = (
            await Citizen.select()
            .where((Citizen.id == uuid.UUID(citizen_id)) & (Citizen.status == "active"))
            .first()
            .run()
        )
        if row is None:
            raise Unauthorized("the account no longer exists", code="invalid_token")
        info: dict[str, Any] = {"openid": self._pairwise.openid(app_id, citizen_id), "scopes": sorted(scopes)}
        ctx = f"citizen:{citizen_id}"
        name = self._pii.decrypt(row["name_sealed"], f"{ctx}:name") if row["name_sealed"] else None
        if "profile" in scopes:
            info["name"] = mask_name(name) if name else None
            info["real_name_verified"] = bool(row["id_number_sealed"])
        if "phone" in scopes:
            info["phone"] = (
                self._pii.decrypt(row["phone_sealed"], f"{ctx}:phone") if row["phone_sealed"] else None
            )
        if "id_number" in scopes:
            info["real_name"] = name
            info["id_number"] = (
                self._pii.decrypt(row["id_number_sealed"], f"{ctx}:id_number")
                if row["id_number_sealed"]
                else None
            )
        return info

    async def grants(self, citizen_id: str, *, limit: int, offset: int) -> list[dict[str, Any]]:
        rows = (
            await MiniAppGrant.select(
                MiniAppGrant.app_id, MiniAppGrant.scopes, MiniAppGrant.created_at, MiniAppGrant.updated_at
            )
            .where((MiniAppGrant.citizen == uuid.UUID(citizen_id)) & MiniAppGrant.revoked_at.is_null())
            .order_by(MiniAppGrant.updated_at, ascending=False)
            .order_by(MiniAppGrant.app_id)
            .limit(limit)
            .offset(offset)
            .run()
        )
        for r in rows:
            r["scopes"] = r["scopes"] if isinstance(r["scopes"], list) else json.loads(r["scopes"])
            r["scope_descriptions"] = {s: pick(SCOPES_ZH[s], SCOPES[s]) for s in r["scopes"] if s in SCOPES}
        return rows

    async def revoke(self, citizen_id: str, app_id: str, *, ip: str) -> None:
        updated = (
            await MiniAppGrant.update({MiniAppGrant.revoked_at: self._clock.now()})
            .where((MiniAppGrant.citizen_app == f"{citizen_id}/{app_id}") & MiniAppGrant.revoked_at.is_null())
            .returning(MiniAppGrant.id)
            .run()
        )
        if not updated:
            raise NotFound(f"no active grant for {app_id!r}", code="grant_not_found")
        await audit.record(
            "miniapp_revoked", actor_kind="citizen", actor_id=citizen_id, subject=app_id, ip=ip
        )
