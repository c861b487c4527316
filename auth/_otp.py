"""One-time SMS codes: stored hashed in the store, 5 minutes, 5 tries, rate limited across workers."""

from __future__ import annotations

import logging
import secrets

from auth.pii import mask_phone
from auth.sms import SmsGateway
from backend.clock import Clock
from backend.crypto import keyed_hash, same
from backend.errors import RateLimited, Unauthorized
from backend.settings import Settings
from backend.store import Store

log = logging.getLogger("shengshitong.auth.otp")
HOUR = 3600


class OtpService:
    def __init__(self, settings: Settings, store: Store, sms: SmsGateway, clock: Clock) -> None:
        self._s = settings
        self._store = store
        self._sms = sms
        self._clock = clock
        self._key = settings.secret_bytes("secret_key")

    def phone_index(self, phone: str) -> str:
        return keyed_hash(self._key, "phone", phone)

    async def _limit(self, key: str, limit: int, window: int, what: str) -> None:
        count = await self._store.incr(key, ttl=window)
        if count > limit:
            retry = int(await self._store.ttl(key) or window)
            raise RateLimited(f"too many codes requested {what}; try again later", retry_after=retry)

    async def send(self, phone: str, ip: str) -> None:
        idx = self.phone_index(phone)
        await self._limit(f"otp:ip:{ip}", self._s.otp_per_ip_per_hour, HOUR, "from this network")
        interval = self._s.otp_resend_interval
        if interval > 0 and not await self._store.set_if_absent(f"otp:cooldown:{idx}", "1", ttl=interval):
            retry = int(await self._store.ttl(f"otp:cooldown:{idx}") or self._s.otp_resend_interval)
            raise RateLimited("a code was sent moments ago; wait before asking again", retry_after=retry)
        await self._limit(f"otp:phone:{idx}", self._s.otp_per_phone_per_hour, HOUR, "for this phone")
        code = f"{secrets.randbelow(1_000_000):06d}"
        await self._store.set(
            f"otp:code:{idx}", keyed_hash(self._key, "otp", idx + code), ttl=self._s.otp_ttl
        )
        await self._store.delete(f"otp:tries:{idx}")
        minutes = self._s.otp_ttl // 60
        try:
            await self._sms.send(
                phone, f"【盛事通】验证码 {code}，{minutes}分钟内有效。请勿告诉他人。", at=self._clock.now()
            )
        except Exception:
            # nothing was delivered: let the citizen ask again at once
            await self._store.delete(f"otp:code:{idx}", f"otp:cooldown:{idx}")
            raise
        log.info("otp sent to %s", mask_phone(phone))

    async def verify(self, phone: str, code: str) -> None:
        """Spend the code or raise. The 6th try fails even with the right code; a code works once."""
        idx = self.phone_index(phone)
        tries = await self._store.incr(f"otp:tries:{idx}", ttl=self._s.otp_ttl)
        if tries > self._s.otp_max_attempts:
            await self._store.delete(f"otp:code:{idx}")
            raise Unauthorized("too many wrong codes; request a new one", code="otp_locked")
        stored = await self._store.get(f"otp:code:{idx}")
        wanted = keyed_hash(self._key, "otp", idx + (code or ""))
        if stored is None or not same(stored.decode(), wanted):
            raise Unauthorized("the code is wrong or has expired", code="otp_invalid")
        if await self._store.delete(f"otp:code:{idx}") != 1:  # another request spent it first
            raise Unauthorized("the code is wrong or has expired", code="otp_invalid")
        await self._store.delete(f"otp:tries:{idx}")
