"""Issuers (the departments), their signing keys, the issuer trust list the platform publishes, and the
status lists the licences' entries live in."""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from auth._machines import MachineCredentials
from backend import audit
from backend.clock import Clock
from backend.crypto import b64u
from backend.errors import Conflict, InvalidInput, NotFound
from backend.keystore import RELOAD_INTERVAL, KeyStore, LoadedKey
from backend.settings import Settings
from backend.store import Store
from codes.format import sign_bytes
from licences.format import pack_statuses, status_token
from licences.rules import DEPARTMENTS, STATUS_VALUES, TYPES, status_index
from licences.tables import Licence, LicenceIssuer, LicenceStatusList
from licences.verifier import TRUST_LIST_TYPE
from messages.templates import BAD_CHARS

log = logging.getLogger("shengshitong.licences")
_CODE = re.compile(r"^[a-z][a-z0-9-]{1,31}$")
LIST_SIZE = 1 << 17  # entries per status list: 131,072 licences, 32 KiB of 2-bit statuses before zlib
LIST_NUMBERS = range(1, 2**31)  # what the list's integer column holds: any other number names no list


@dataclass(frozen=True)
class IssuerSettings:
    public_url: str
    credential_days: int  # a credential's lifetime on a device (then the app fetches a fresh one)
    trust_refresh: int  # seconds an inspector's device keeps the trust list before it fetches it again
    status_ttl: int  # seconds a status list is fresh (its ``ttl``)
    status_max_age: int  # seconds an offline verifier may still rely on one (its ``exp``)

    @classmethod
    def of(cls, s: Settings) -> IssuerSettings:
        return cls(
            public_url=s.public_url.rstrip("/"),
            credential_days=s.licence_credential_days,
            trust_refresh=s.licence_trust_refresh,
            status_ttl=s.licence_status_ttl,
            status_max_age=s.licence_status_max_age,
        )


class Issuers:
    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        store: Store,
        machines: MachineCredentials,
        root: KeyStore,
    ) -> None:
        self.s = IssuerSettings.of(settings)
        self._kek = settings.secret_bytes("key_encryption_key")
        self._clock = clock
        self._store = store
        self._machines = machines
        self._root = root
        self._keys: dict[str, KeyStore] = {}

    # ---- names -----------------------------------------------------------------------------------
    def iss(self, code: str) -> str:
        return f"{self.s.public_url}/licences/issuers/{code}"

    def status_uri(self, code: str, number: int) -> str:
        return f"{self.s.public_url}/api/v1/licences/status/{code}/{number}"

    def keystore(self, code: str) -> KeyStore:
        store = self._keys.get(code)
        if store is None:
            # an old key stays published as long as a credential it signed may be shown; a new one is
            # published a trust-list refresh (plus a worker's key reload) before it signs, so an inspector
            # holding the list it fetched before a rotation knows every credential and status list signed
            # after it (as the citizen code's keys do: docs/licences.md, "The issuer trust list")
            # the purpose column holds 16 characters: the issuer's code, hashed, names its keys
            store = KeyStore(
                "lic:" + hashlib.sha256(code.encode()).hexdigest()[:12],
                self._kek,
                self._clock,
                default_alg="ES256",
                publish_overlap=(self.s.credential_days + 1) * 86400,
                activation_delay=self.s.trust_refresh + RELOAD_INTERVAL,
            )
            self._keys[code] = store
        return store

    async def signing_key(self, code: str) -> LoadedKey:
        """The issuer's key that signs now. A revoked issuer's keys sign nothing more: it left the trust
        list (a compromised key is one reason), so what they would sign verifies nowhere."""
        if (
            not await LicenceIssuer.exists()
            .where((LicenceIssuer.code == code) & (LicenceIssuer.status == "active"))
            .run()
        ):
            raise Conflict("the licence's issuer is no longer trusted", code="issuer_revoked")
        store = self.keystore(code)
        if not store._keys:  # first use in this worker
            await store.load()
        return await store.active()

    # ---- the register ----------------------------------------------------------------------------
    async def create(
        self, code: str, name_zh: str, name_en: str, department: str, types: list[str], *, actor: str
    ) -> dict[str, Any]:
        """Register a department as an issuer: its row, its first signing key and its machine credential
        (the secret is shown once)."""
        if not _CODE.match(code or ""):
            raise InvalidInput("an issuer code is 2-32 of a-z, 0-9 and -", code="invalid_issuer_code")
        if department not in DEPARTMENTS:
            raise InvalidInput(
                f"department must be one of {sorted(DEPARTMENTS)}",
                code="unknown_department",
                departments=sorted(DEPARTMENTS),
            )
        wrong = [t for t in types if t not in TYPES or TYPES[t].department != department]
        if not types or wrong:
            own = sorted(t for t, k in TYPES.items() if k.department == department)
            raise InvalidInput(
                f"a {department} issuer issues {own}",
                code="type_not_for_department",
                department=department,
            )
        for name, limit in ((name_zh, 64), (name_en, 96)):
            # shown on inspectors' screens and in the holders' messages as written
            if not name.strip() or len(name) > limit or BAD_CHARS.search(name):
                raise InvalidInput(
                    "an issuer's names are 1-64 (Chinese) and 1-96 (English) characters, none of them"
                    " control or direction-changing ones",
                    code="invalid_issuer_name",
                )
        if await LicenceIssuer.exists().where(LicenceIssuer.code == code).run():
            raise Conflict(f"issuer {code} exists", code="issuer_exists")
        await self.keystore(code).ensure()
        credential = await self._machines.create("issuer", name=name_zh, context=code, actor=actor)
        await LicenceIssuer.insert(
            LicenceIssuer(
                code=code,
                name_zh=name_zh.strip(),
                name_en=name_en.strip(),
                department=department,
                types=sorted(set(types)),
                client_id=credential["client_id"],
                created_at=self._clock.now(),
            )
        ).run()
        await audit.record("licence_issuer_created", actor_kind="operator", actor_id=actor, subject=code)
        return {
            **(await self.get(code)),
            "client_id": credential["client_id"],
            "client_secret": credential["client_secret"],
        }

    async def revoke(self, code: str, *, actor: str) -> dict[str, Any]:
        """The issuer leaves the trust list (its licences stop verifying at the inspectors' next refresh)
        and its credential stops working."""
        issuer = await self.get(code)
        if issuer["status"] != "revoked":
            await (
                LicenceIssuer.update(
                    {LicenceIssuer.status: "revoked", LicenceIssuer.revoked_at: self._clock.now()}
                )
                .where(LicenceIssuer.code == code)
                .run()
            )
            if issuer["client_id"]:
                await self._machines.revoke(issuer["client_id"], actor=actor)
            await audit.record("licence_issuer_revoked", actor_kind="operator", actor_id=actor, subject=code)
        return await self.get(code)

    async def rotate(self, code: str, *, actor: str) -> dict[str, str]:
        """A new signing key for the issuer: published at once, signing from ``signs_from``, once every
        inspector's trust list can hold it (see keystore()); the old one signs until then and stays
        published while what it signed lives. Audited under the operator."""
        await self.get(code)
        key = await self.keystore(code).rotate()
        await audit.record(
            "licence_issuer_key_rotated",
            actor_kind="operator",
            actor_id=actor,
            subject=code,
            kid=key.kid,
            active_from=key.active_from.isoformat(),
        )
        return {"kid": key.kid, "signs_from": key.active_from.isoformat()}

    async def get(self, code: str) -> dict[str, Any]:
        row = await LicenceIssuer.select().where(LicenceIssuer.code == code).first().run()
        if row is None:
            raise NotFound(f"no issuer {code}", code="issuer_not_found")
        return _issuer_view(row)

    async def list(self) -> list[dict[str, Any]]:
        rows = await LicenceIssuer.select().order_by(LicenceIssuer.created_at).run()
        return [_issuer_view(r) for r in rows]

    async def of_client(self, client_id: str) -> dict[str, Any]:
        row = (
            await LicenceIssuer.select()
            .where((LicenceIssuer.client_id == client_id) & (LicenceIssuer.status == "active"))
            .first()
            .run()
        )
        if row is None:
            raise NotFound("this credential is not an active issuer's", code="issuer_not_found")
        return _issuer_view(row)

    # ---- the trust list --------------------------------------------------------------------------
    async def trust_document(self) -> dict[str, Any]:
        rows = (
            await LicenceIssuer.select()
            .where(LicenceIssuer.status == "active")
            .order_by(LicenceIssuer.code)
            .run()
        )
        issuers = []
        for row in rows:
            # published() reads the keys again once the worker's copy is a reload interval old (a rotation
            # elsewhere shows within it, and a new key signs only a refresh plus that interval later);
            # loading here on every call unsealed every issuer's private keys per request, on a public route
            keys = [k.jwk for k in await self.keystore(row["code"]).published()]
            issuers.append(
                {
                    "iss": self.iss(row["code"]),
                    "code": row["code"],
                    "name_zh": row["name_zh"],
                    "name_en": row["name_en"],
                    "department": row["department"],
                    "types": _list(row["types"]),
                    "keys": keys,
                }
            )
        return {
            "type": TRUST_LIST_TYPE,
            "format": 1,
            "iss": self.s.public_url,
            "server_time": int(self._clock.time()),
            "refresh_after": self.s.trust_refresh,
            "issuers": issuers,
        }

    async def signed_trust_list(self) -> tuple[dict[str, str], str]:
        """The issuer trust list as a flattened JWS signed by the platform's root key (the key that signs
        the citizen-code trust list, pinned by scanners and inspectors alike), and its weak ETag."""
        doc = await self.trust_document()
        root = await self._root.active()
        stable = json.dumps({**doc, "server_time": 0, "root": root.kid}, sort_keys=True).encode()
        etag = 'W/"' + hashlib.sha256(stable).hexdigest()[:32] + '"'
        protected = b64u(
            json.dumps({"alg": root.alg, "kid": root.kid, "typ": "licence-issuers+json"}).encode()
        )
        payload = b64u(json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode())
        signature = sign_bytes(root.private, root.alg, f"{protected}.{payload}".encode("ascii"))
        return {"protected": protected, "payload": payload, "signature": b64u(signature)}, etag

    async def root_jwk(self) -> dict[str, Any]:
        return (await self._root.active()).jwk


class StatusLists:
    """Hands out status entries and publishes each list as a signed Status List Token, built from the
    licences that are not valid (a valid one is a zero) and kept in the shared store until its list
    changes or it is half-way through its ``ttl``."""

    def __init__(self, issuers: Issuers, clock: Clock, store: Store) -> None:
        self._issuers = issuers
        self._clock = clock
        self._store = store

    async def allocate(self, issuer: str) -> tuple[int, int, int]:
        """``(list id, list number, index)`` for a new licence; inside the caller's transaction.

        The conditional UPDATE takes one entry of the issuer's newest list, race-free. Only the newest:
        when racing workers each opened a successor, an UPDATE over every list with room would take an
        entry of each and use one (bench/licences.py's books found it). A full (or missing) newest list
        gets one successor; a worker that finds a successor opened meanwhile takes from it."""
        for _ in range(5):
            taken = await LicenceStatusList.raw(
                "UPDATE licence_status_list SET used = used + 1"
                " WHERE issuer = {} AND used < size"
                " AND number = (SELECT max(number) FROM licence_status_list WHERE issuer = {})"
                " RETURNING id, number, used, size",
                issuer,
                issuer,
            ).run()
            if taken:
                row = taken[0]
                return row["id"], row["number"], status_index(row["used"] - 1, row["size"])
            newest = (
                await LicenceStatusList.select(
                    LicenceStatusList.number, LicenceStatusList.used, LicenceStatusList.size
                )
                .where(LicenceStatusList.issuer == issuer)
                .order_by(LicenceStatusList.number, ascending=False)
                .first()
                .run()
            )
            if newest is not None and newest["used"] < newest["size"]:
                continue  # a racing worker's successor, committed since: take from it
            # (issuer, number) is unique: a racing worker's list wins and this loop takes from it
            await LicenceStatusList.raw(
                "INSERT INTO licence_status_list (issuer, number, size, bits, used, changed_at) "
                "VALUES ({}, {}, {}, 2, 0, {}) ON CONFLICT (issuer, number) DO NOTHING",
                issuer,
                (newest["number"] if newest else 0) + 1,
                LIST_SIZE,
                self._clock.now(),
            ).run()
        raise Conflict("no status list entry could be taken; retry", code="status_list_busy")

    async def changed(self, list_id: int) -> None:
        """Within the transaction that changed a licence's status: the list's token is rebuilt."""
        await (
            LicenceStatusList.update({LicenceStatusList.changed_at: self._clock.now()})
            .where(LicenceStatusList.id == list_id)
            .run()
        )

    async def token(self, issuer: str, number: int) -> tuple[str, str, int]:
        """``(token, etag, ttl)`` of list ``number`` of ``issuer``."""
        if number not in LIST_NUMBERS:  # asked of the database, it overflows its integer: a 500
            raise NotFound("no such status list", code="status_list_not_found")
        row = (
            await LicenceStatusList.select()
            .where((LicenceStatusList.issuer == issuer) & (LicenceStatusList.number == number))
            .first()
            .run()
        )
        if row is None:
            raise NotFound("no such status list", code="status_list_not_found")
        ttl = self._issuers.s.status_ttl
        version = f"{row['changed_at'].timestamp():.6f}"
        key = f"licences:status:{issuer}:{number}"
        cached = await self._store.get(key)
        now = int(self._clock.time())
        if cached is not None:
            held = json.loads(cached)
            if held["version"] == version and held["iat"] + ttl // 2 > now:
                return held["token"], held["etag"], ttl
        not_valid = (
            await Licence.select(Licence.status_idx, Licence.status)
            .where((Licence.status_list == row["id"]) & (Licence.status != "valid"))
            .run()
        )
        data = pack_statuses(
            {r["status_idx"]: STATUS_VALUES[r["status"]] for r in not_valid}, row["size"], row["bits"]
        )
        key_now = await self._issuers.signing_key(issuer)
        token = status_token(
            key_now,
            iss=self._issuers.iss(issuer),
            uri=self._issuers.status_uri(issuer, number),
            data=data,
            bits=row["bits"],
            iat=now,
            ttl=ttl,
            exp_after=self._issuers.s.status_max_age,
        )
        etag = '"' + hashlib.sha256(f"{version}:{now}".encode()).hexdigest()[:24] + '"'
        await self._store.set(
            key, json.dumps({"version": version, "iat": now, "token": token, "etag": etag}), ttl=ttl
        )
        return token, etag, ttl

    async def drop(self, issuer: str, number: int) -> None:
        await self._store.delete(f"licences:status:{issuer}:{number}")


def _list(value: Any) -> list[str]:
    return list(json.loads(value)) if isinstance(value, str) else list(value or [])


def _issuer_view(row: dict[str, Any]) -> dict[str, Any]:
    zh, en = DEPARTMENTS.get(row["department"], ("", ""))
    return {
        "code": row["code"],
        "name_zh": row["name_zh"],
        "name_en": row["name_en"],
        "department": row["department"],
        "department_zh": zh,
        "department_en": en,
        "types": _list(row["types"]),
        "client_id": row["client_id"],
        "status": row["status"],
        "created_at": row["created_at"],
        "revoked_at": row["revoked_at"],
    }


def after(seconds: int) -> timedelta:
    return timedelta(seconds=seconds)
