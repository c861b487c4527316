"""The console's 电子证照 desk: the register of issuers (the departments that issue e-licences) as operators
keep it on the console's page, over the e-licence centre's own services (built once in the composition
root and passed in), so the page and the operators' API (``/api/v1/admin/licences``) share their checks
and audit events: registering an issuer (its signing key and its credential, the secret shown once),
revoking one, rotating its key; each issuer's published keys, and which one signs."""

from __future__ import annotations

from typing import Any

from backend.clock import Clock
from licences.rules import DEPARTMENTS, TYPES
from licences.setup import LicenceServices


class LicencesDesk:
    def __init__(self, licences: LicenceServices, clock: Clock) -> None:
        self._licences = licences
        self._clock = clock

    @staticmethod
    def departments() -> list[dict[str, Any]]:
        """The departments an issuer may be, each with the licence types a department of its kind issues
        (what the register form offers)."""
        return [
            {
                "code": code,
                "zh": zh,
                "en": en,
                "types": [
                    {"code": t.code, "zh": t.zh, "en": t.en} for t in TYPES.values() if t.department == code
                ],
            }
            for code, (zh, en) in DEPARTMENTS.items()
        ]

    async def _keys(self, code: str) -> list[dict[str, Any]]:
        """The issuer's published keys, newest first: which one signs now, which one waits for the
        inspectors' trust lists, which one only verifies what it signed until it is withdrawn."""
        store = self._licences.issuers.keystore(code)
        await store.load()
        now = self._clock.now()
        keys = sorted(await store.published(), key=lambda k: k.created_at, reverse=True)
        return [
            {
                "kid": k.kid,
                "alg": k.alg,
                "created_at": k.created_at,
                "active_from": k.active_from,
                "retired_at": k.retired_at,
                "publish_until": k.publish_until,
                "state": "signing" if k.signs_at(now) else "waiting" if k.active_from > now else "retired",
            }
            for k in keys
        ]

    async def _with_keys(self, issuer: dict[str, Any]) -> dict[str, Any]:
        return {**issuer, "keys": await self._keys(issuer["code"]) if issuer["status"] == "active" else []}

    async def issuers(self) -> list[dict[str, Any]]:
        return [await self._with_keys(i) for i in await self._licences.issuers.list()]

    async def register(
        self, operator: str, code: str, name_zh: str, name_en: str, department: str, types: list[str]
    ) -> dict[str, Any]:
        """A new issuer, its first key and its credential: the answer carries the secret, this once."""
        made = await self._licences.issuers.create(code, name_zh, name_en, department, types, actor=operator)
        return await self._with_keys(made)

    async def revoke(self, operator: str, code: str) -> dict[str, Any]:
        """Out of the trust list (its licences stop verifying at the inspectors' next refresh) and its
        credential stops; audited under the operator."""
        return await self._with_keys(await self._licences.issuers.revoke(code, actor=operator))

    async def rotate(self, operator: str, code: str) -> dict[str, Any]:
        """A new key, published now and signing once every inspector can hold it; audited."""
        await self._licences.issuers.rotate(code, actor=operator)
        return await self._with_keys(await self._licences.issuers.get(code))
