"""Login, refresh with rotation and reuse detection, logout, devices, account deletion."""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from auth._otp import OtpService
from auth._realname import CLEARED, RealNameService
from auth._tokens import AccessTokens
from auth.pii import mask_phone
from auth.principals import CitizenPrincipal
from auth.tables import Citizen, Device, RefreshToken
from backend import audit, db
from backend.clock import Clock
from backend.crypto import Keyring, keyed_hash
from backend.errors import Forbidden, NotFound, Unauthorized
from backend.settings import Settings

log = logging.getLogger("shengshitong.auth.sessions")


class TokenPair(dict[str, Any]):
    pass


def _invalid_grant(detail: str, code: str = "invalid_grant") -> Unauthorized:
    return Unauthorized(detail, code=code)


class SessionService:
    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        otp: OtpService,
        tokens: AccessTokens,
        pii: Keyring,
        realname: RealNameService,
    ) -> None:
        self._s = settings
        self._realname = realname
        self._clock = clock
        self._otp = otp
        self._tokens = tokens
        self._pii = pii
        self._key = settings.secret_bytes("secret_key")
        # told (citizen id, device id; None: the whole account deleted) when a device signs out or is
        # signed out, or an account is deleted: packages above drop what they keep for it (a browser's
        # push subscription, an account's inbox). Appended by those packages when they are built.
        self.departures: list[Callable[[str, str | None], Awaitable[None]]] = []

    async def _departed(self, citizen_id: str, device_id: str | None) -> None:
        for observer in self.departures:
            try:
                await observer(citizen_id, device_id)
            except Exception:  # the sign-out stands; what the observer keeps expires or is cleaned later
                log.exception("a sign-out observer failed")

    def _hash(self, refresh_token: str) -> str:
        return keyed_hash(self._key, "refresh", refresh_token)

    async def _new_refresh(self, *, family: uuid.UUID, citizen: uuid.UUID, device: uuid.UUID) -> str:
        token = "rt_" + secrets.token_urlsafe(32)
        now = self._clock.now()
        await RefreshToken.insert(
            RefreshToken(
                family=family,
                citizen=citizen,
                device=device,
                token_hash=self._hash(token),
                created_at=now,
                expires_at=now + timedelta(seconds=self._s.refresh_token_ttl),
            )
        ).run()
        return token

    async def _pair(
        self, *, citizen: uuid.UUID, family: uuid.UUID, device_id: str, refresh: str
    ) -> TokenPair:
        access = await self._tokens.issue(
            citizen_id=str(citizen), session_id=str(family), device_id=device_id
        )
        return TokenPair(
            access_token=access,
            refresh_token=refresh,
            token_type="Bearer",  # noqa: S106 - the OAuth token type, not a secret
            expires_in=self._tokens.ttl,
            refresh_expires_in=self._s.refresh_token_ttl,
        )

    # ---- login -----------------------------------------------------------------------------------
    async def ensure_citizen(self, phone: str) -> str:
        """The id of the account of an E.164 phone, made if there is none (demo data; login makes them
        otherwise)."""
        idx = self._otp.phone_index(phone)
        async with db.transaction():
            row = await Citizen.select(Citizen.id).where(Citizen.phone_index == idx).first().run()
            if row is not None:
                return str(row["id"])
            citizen_id, now = uuid.uuid4(), self._clock.now()
            await Citizen.insert(
                Citizen(
                    id=citizen_id,
                    phone_index=idx,
                    phone_masked=mask_phone(phone),
                    created_at=now,
                    updated_at=now,
                    phone_sealed=self._pii.encrypt(phone, f"citizen:{citizen_id}:phone"),
                )
            ).run()
        return str(citizen_id)

    async def login(self, *, phone: str, code: str, device_id: str, device_name: str, ip: str) -> TokenPair:
        await self._otp.verify(phone, code)
        idx = self._otp.phone_index(phone)
        now = self._clock.now()
        blocked: Any = None
        async with db.transaction():
            row = (
                await Citizen.select(Citizen.id, Citizen.status)
                .where(Citizen.phone_index == idx)
                .first()
                .run()
            )
            created = row is None
            if row is not None and row["status"] != "active":
                blocked = row["id"]
            else:
                citizen_id = uuid.uuid4() if row is None else row["id"]
                if row is None:
                    await Citizen.insert(
                        Citizen(
                            id=citizen_id,
                            phone_index=idx,
                            phone_masked=mask_phone(phone),
                            created_at=now,
                            updated_at=now,
                            phone_sealed=self._pii.encrypt(phone, f"citizen:{citizen_id}:phone"),
                        )
                    ).run()
                device_pk = await self._register_device(citizen_id, device_id, device_name, now)
                family = uuid.uuid4()
                refresh = await self._new_refresh(family=family, citizen=citizen_id, device=device_pk)
        if blocked is not None:
            await audit.record("login_refused_blocked", actor_kind="citizen", actor_id=str(blocked), ip=ip)
            raise Forbidden("this account is blocked; contact the service desk", code="account_blocked")
        await audit.record(
            "login",
            actor_kind="citizen",
            actor_id=str(citizen_id),
            ip=ip,
            subject=f"device:{device_id}",
            new_account=created,
        )
        return await self._pair(citizen=citizen_id, family=family, device_id=device_id, refresh=refresh)

    async def _register_device(self, citizen_id: uuid.UUID, device_id: str, name: str, now: Any) -> uuid.UUID:
        device = (
            await Device.select(Device.id)
            .where((Device.citizen == citizen_id) & (Device.device_id == device_id))
            .first()
            .run()
        )
        if device is None:
            device_pk = uuid.uuid4()
            await Device.insert(
                Device(
                    id=device_pk,
                    citizen=citizen_id,
                    device_id=device_id,
                    name=name,
                    created_at=now,
                    last_seen_at=now,
                )
            ).run()
            return device_pk
        values: dict[Any, Any] = {Device.last_seen_at: now, Device.revoked_at: None}
        if name:
            values[Device.name] = name
        await Device.update(values).where(Device.id == device["id"]).run()
        return device["id"]  # type: ignore[no-any-return]

    # ---- refresh ---------------------------------------------------------------------------------
    async def refresh(self, refresh_token: str, *, ip: str) -> TokenPair:
        now = self._clock.now()
        outcome: str
        async with db.transaction():
            row = (
                await RefreshToken.select(
                    RefreshToken.id,
                    RefreshToken.family,
                    RefreshToken.citizen,
                    RefreshToken.device,
                    RefreshToken.device.device_id,
                    RefreshToken.expires_at,
                    RefreshToken.spent_at,
                    RefreshToken.revoked_at,
                )
                .where(RefreshToken.token_hash == self._hash(refresh_token))
                .first()
                .run()
            )
            if row is None:
                outcome = "unknown"
            elif row["revoked_at"] is not None:
                outcome = "revoked"
            elif row["spent_at"] is not None:
                outcome = "reused"
                await self._revoke_families_in_tx([row["family"]], now)
            elif row["expires_at"] <= now:
                outcome = "expired"
            else:
                spent = (
                    await RefreshToken.update({RefreshToken.spent_at: now})
                    .where((RefreshToken.id == row["id"]) & RefreshToken.spent_at.is_null())
                    .returning(RefreshToken.id)
                    .run()
                )
                if not spent:  # a concurrent refresh spent it between our read and write
                    outcome = "reused"
                    await self._revoke_families_in_tx([row["family"]], now)
                else:
                    outcome = "ok"
                    new = await self._new_refresh(
                        family=row["family"], citizen=row["citizen"], device=row["device"]
                    )
                    await Device.update({Device.last_seen_at: now}).where(Device.id == row["device"]).run()
        if outcome == "reused":
            assert row is not None
            await self._tokens.revoke_sessions([str(row["family"])])
            await audit.record(
                "refresh_reuse_detected",
                actor_kind="citizen",
                actor_id=str(row["citizen"]),
                subject=f"session:{row['family']}",
                ip=ip,
            )
            log.warning("refresh token reuse: session revoked", extra={"session": str(row["family"])})
            raise _invalid_grant(
                "this refresh token was already used; the session has been signed out",
                code="refresh_token_reused",
            )
        if outcome != "ok":
            raise _invalid_grant(
                {
                    "unknown": "the refresh token is not valid",
                    "revoked": "this session has been signed out",
                    "expired": "the refresh token has expired; log in again",
                }[outcome]
            )
        assert row is not None
        return await self._pair(
            citizen=row["citizen"], family=row["family"], device_id=row["device.device_id"], refresh=new
        )

    # ---- revocation ------------------------------------------------------------------------------
    async def _revoke_families_in_tx(self, families: list[Any], now: Any) -> None:
        if families:
            await (
                RefreshToken.update({RefreshToken.revoked_at: now})
                .where(RefreshToken.family.is_in(families) & RefreshToken.revoked_at.is_null())
                .run()
            )

    async def logout(self, principal: CitizenPrincipal, *, ip: str) -> None:
        async with db.transaction():
            await self._revoke_families_in_tx([uuid.UUID(principal.session_id)], self._clock.now())
        await self._tokens.revoke_sessions([principal.session_id])
        await audit.record(
            "logout",
            actor_kind="citizen",
            actor_id=principal.citizen_id,
            subject=f"session:{principal.session_id}",
            ip=ip,
        )
        await self._departed(principal.citizen_id, principal.device_id)

    async def _families_of(self, where: Any) -> list[Any]:
        rows = await RefreshToken.select(RefreshToken.family).where(where).distinct().run()
        return [r["family"] for r in rows]

    async def list_devices(
        self, principal: CitizenPrincipal, *, limit: int, offset: int
    ) -> list[dict[str, Any]]:
        rows = (
            await Device.select(Device.device_id, Device.name, Device.created_at, Device.last_seen_at)
            .where((Device.citizen == uuid.UUID(principal.citizen_id)) & Device.revoked_at.is_null())
            .order_by(Device.last_seen_at, ascending=False)
            .order_by(Device.device_id)
            .limit(limit)
            .offset(offset)
            .run()
        )
        for r in rows:
            r["current"] = r["device_id"] == principal.device_id
        return rows

    async def revoke_device(self, principal: CitizenPrincipal, device_id: str, *, ip: str) -> None:
        citizen = uuid.UUID(principal.citizen_id)
        now = self._clock.now()
        async with db.transaction():
            device = (
                await Device.select(Device.id)
                .where(
                    (Device.citizen == citizen)
                    & (Device.device_id == device_id)
                    & Device.revoked_at.is_null()
                )
                .first()
                .run()
            )
            if device is None:
                raise NotFound("no such device", code="device_not_found")
            await Device.update({Device.revoked_at: now}).where(Device.id == device["id"]).run()
            families = await self._families_of(RefreshToken.device == device["id"])
            await self._revoke_families_in_tx(families, now)
        await self._tokens.revoke_sessions([str(f) for f in families])
        await audit.record(
            "device_revoked",
            actor_kind="citizen",
            actor_id=principal.citizen_id,
            subject=f"device:{device_id}",
            ip=ip,
        )
        await self._departed(principal.citizen_id, device_id)

    async def delete_account(self, principal: CitizenPrincipal, *, ip: str) -> None:
        """Personal data goes at once; every session and device stops working at once."""
        citizen = uuid.UUID(principal.citizen_id)
        now = self._clock.now()
        async with db.transaction():
            families = await self._families_of(RefreshToken.citizen == citizen)
            await self._revoke_families_in_tx(families, now)
            await (
                Device.update({Device.revoked_at: now})
                .where((Device.citizen == citizen) & Device.revoked_at.is_null())
                .run()
            )
            await (
                Citizen.update(
                    {
                        Citizen.status: "deleted",
                        Citizen.phone_index: None,
                        Citizen.phone_sealed: None,
                        Citizen.phone_masked: "",
                        **CLEARED,  # the real name, ID number and their verification
                        Citizen.deleted_at: now,
                        Citizen.updated_at: now,
                    }
                )
                .where(Citizen.id == citizen)
                .run()
            )
        await self._tokens.revoke_sessions([str(f) for f in families])
        # codes already on screen stop verifying at once, for as long as any of them could be presented
        await self._tokens.revocations.account_deleted(principal.citizen_id)
        await audit.record("account_deleted", actor_kind="citizen", actor_id=principal.citizen_id, ip=ip)
        await self._realname.notify(principal.citizen_id)  # its entitlements are gone with it
        await self._departed(principal.citizen_id, None)

    async def set_blocked(self, citizen_id: str, blocked: bool, *, actor: str) -> dict[str, Any]:
        """An operator blocks (or unblocks) an account: login is refused and its codes stop verifying."""
        try:
            cid = uuid.UUID(citizen_id)
        except ValueError:
            raise NotFound("no such account", code="account_not_found") from None
        updated = (
            await Citizen.update(
                {Citizen.status: "blocked" if blocked else "active", Citizen.updated_at: self._clock.now()}
            )
            .where((Citizen.id == cid) & Citizen.status.is_in(["active", "blocked"]))
            .returning(Citizen.id)
            .run()
        )
        if not updated:
            raise NotFound("no such account", code="account_not_found")
        await self._tokens.revocations.account_blocked(citizen_id, blocked)
        await audit.record(
            "account_blocked" if blocked else "account_unblocked",
            actor_kind="operator",
            actor_id=actor,
            subject=f"citizen:{citizen_id}",
        )
        return {"citizen_id": citizen_id, "status": "blocked" if blocked else "active"}
