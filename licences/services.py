"""The licence book: issuers issue, update, suspend, reinstate and revoke licences addressed by ID
number; citizens list and view theirs, bind a credential to a device key, and show a presentation to an
inspector (亮证), inline in a QR or handed over by a one-time reference."""

from __future__ import annotations

import json
import logging
import secrets
import uuid
from datetime import datetime, timedelta
from typing import Any

from auth.pii import normalise_id_number
from auth.tables import Citizen
from backend import audit, db
from backend.clock import Clock
from backend.crypto import Keyring, keyed_hash, unb64u
from backend.errors import Conflict, Forbidden, InvalidInput, NotFound
from backend.store import Store
from licences._issuers import Issuers, StatusLists
from licences._uses import Uses
from licences.format import mint
from licences.holder import PROOF_TYP
from licences.rules import TYPES, LicenceType, clean_fields, licence_type, mask
from licences.tables import Licence, LicenceCredential, LicenceIssuer, LicenceStatusList
from licences.verifier import (
    PresentationError,
    jwk_thumbprint,
    public_key_from_jwk,
    vct_of,
    verify_jws,
)
from messages.services import PLATFORM, MessageCentre, Outgoing

log = logging.getLogger("shengshitong.licences")

NONCE_SECONDS = 300
TRANSITIONS = {
    "suspend": ({"valid"}, "suspended"),
    "reinstate": ({"suspended"}, "valid"),
    "revoke": ({"valid", "suspended"}, "revoked"),
}


class LicenceBook:
    def __init__(
        self,
        clock: Clock,
        store: Store,
        pii: Keyring,
        key: bytes,
        issuers: Issuers,
        statuses: StatusLists,
        uses: Uses,
        messages: MessageCentre,
    ) -> None:
        self._clock = clock
        self._store = store
        self._pii = pii
        self._key = key
        self.issuers = issuers
        self.statuses = statuses
        self.uses = uses
        self._messages = messages

    # ---- helpers ---------------------------------------------------------------------------------
    def holder_index(self, id_number: str) -> str:
        """The same HMAC index auth keeps of a verified citizen's ID number (auth/_realname.py)."""
        return keyed_hash(self._key, "id_number", normalise_id_number(id_number))

    def _number_index(self, issuer: str, kind: str, number: str) -> str:
        return keyed_hash(self._key, "licence-number", f"{issuer}/{kind}/{number}")

    def _seal(self, licence_id: uuid.UUID, fields: dict[str, str]) -> str:
        return self._pii.encrypt(json.dumps(fields, ensure_ascii=False), f"licence:{licence_id}")

    def fields_of(self, row: dict[str, Any]) -> dict[str, str]:
        return dict(json.loads(self._pii.decrypt(row["fields_sealed"], f"licence:{row['id']}")))

    @staticmethod
    def _summary(kind: LicenceType, fields: dict[str, str]) -> dict[str, str]:
        number = kind.field(kind.number_field)
        assert number is not None
        return {"number": mask(number, fields.get(kind.number_field, ""))}

    async def citizen_of_id_number(self, id_number: str) -> str | None:
        return await self._citizen_of_index(self.holder_index(id_number))

    async def _citizen_of_index(self, holder_index: str) -> str | None:
        row = (
            await Citizen.select(Citizen.id)
            .where(
                (Citizen.id_number_index == holder_index)
                & (Citizen.status == "active")
                & Citizen.real_name_verified_at.is_not_null()
            )
            .first()
            .run()
        )
        return str(row["id"]) if row else None

    async def index_of_citizen(self, citizen_id: str) -> str | None:
        """A citizen's ID-number index, once a provider verified it (a typed-in number reaches nothing)."""
        row = (
            await Citizen.select(Citizen.id_number_index, Citizen.real_name_verified_at)
            .where((Citizen.id == uuid.UUID(citizen_id)) & (Citizen.status == "active"))
            .first()
            .run()
        )
        if row is None or row["real_name_verified_at"] is None or not row["id_number_index"]:
            return None
        return str(row["id_number_index"])

    # ---- the issuer's side -----------------------------------------------------------------------
    async def issue(
        self,
        issuer: dict[str, Any],
        type_code: str,
        id_number: str,
        raw_fields: dict[str, Any],
        valid_until: datetime | None,
    ) -> tuple[dict[str, Any], bool]:
        """Issue a licence; the same number of the same type again is the same licence (``False``), or a
        conflict if its fields differ (an update is a PATCH)."""
        kind = licence_type(type_code)
        if kind.code not in issuer["types"]:
            raise Forbidden(f"{issuer['code']} may not issue {kind.code}", code="type_not_allowed")
        fields = clean_fields(kind, raw_fields)
        holder = self.holder_index(id_number)
        number_index = self._number_index(issuer["code"], kind.code, fields[kind.number_field])
        _check_until(valid_until)
        now = self._clock.now()
        licence_id = uuid.uuid4()
        for attempt in (1, 2):
            try:
                async with db.transaction():
                    existing = (
                        await Licence.select()
                        .where(
                            (Licence.issuer == issuer["code"])
                            & (Licence.type == kind.code)
                            & (Licence.number_index == number_index)
                        )
                        .first()
                        .run()
                    )
                    if existing is not None:
                        if existing["holder_index"] == holder and self.fields_of(existing) == fields:
                            return self._issuer_view(existing), False
                        raise Conflict(
                            "a licence with this number exists with other details: update it",
                            code="licence_exists",
                            licence=str(existing["id"]),
                        )
                    list_id, _, idx = await self.statuses.allocate(issuer["code"])
                    await Licence.insert(
                        Licence(
                            id=licence_id,
                            issuer=issuer["code"],
                            type=kind.code,
                            number_index=number_index,
                            holder_index=holder,
                            fields_sealed=self._seal(licence_id, fields),
                            summary=self._summary(kind, fields),
                            status="valid",
                            version=1,
                            status_list=list_id,
                            status_idx=idx,
                            valid_until=valid_until,
                            issued_at=now,
                            updated_at=now,
                        )
                    ).run()
                    await audit.record(
                        "licence_issued",
                        actor_kind="issuer",
                        actor_id=issuer["code"],
                        subject=str(licence_id),
                        type=kind.code,
                    )
                break
            except Exception as exc:
                # (issuer, type, number) is unique: the same licence issued at the same moment by a
                # retry went in first; the second round finds it and answers as for a retry
                if attempt == 2 or not db.unique_violation(exc):
                    raise
        saved = await Licence.select().where(Licence.id == licence_id).first().run()
        assert saved is not None
        citizen = await self._citizen_of_index(holder)
        if citizen is not None:
            await self._tell(citizen, "licence_issued", f"licence-issued:{licence_id}", kind, issuer)
        return self._issuer_view(saved), True

    async def update(
        self,
        issuer: dict[str, Any],
        licence_id: str,
        raw_fields: dict[str, Any],
        valid_until: datetime | None,
    ) -> dict[str, Any]:
        """New details (a new address, a new class): the version goes up; credentials minted from the old
        version keep verifying until they expire, as a paper licence does until it is exchanged."""
        _check_until(valid_until)
        async with db.transaction():
            row = await self._own(issuer, licence_id, lock=True)
            if row["status"] == "revoked":
                raise Conflict("a revoked licence is not updated", code="licence_revoked")
            kind = TYPES[row["type"]]
            fields = {**self.fields_of(row), **clean_fields(kind, raw_fields, partial=True)}
            fields = {k: v for k, v in fields.items() if v != ""}
            clean_fields(kind, fields)  # still complete
            if fields[kind.number_field] != self.fields_of(row)[kind.number_field]:
                raise InvalidInput(
                    "a licence's number does not change: issue a new one", code="licence_number_fixed"
                )
            changes: dict[Any, Any] = {
                Licence.fields_sealed: self._seal(row["id"], fields),
                Licence.summary: self._summary(kind, fields),
                Licence.version: Licence.version + 1,
                Licence.updated_at: self._clock.now(),
            }
            if valid_until is not None:
                changes[Licence.valid_until] = valid_until
            await Licence.update(changes).where(Licence.id == row["id"]).run()
            await audit.record(
                "licence_updated", actor_kind="issuer", actor_id=issuer["code"], subject=licence_id
            )
        return await self.for_issuer(issuer, licence_id)

    async def set_status(
        self, issuer: dict[str, Any], licence_id: str, action: str, reason: str
    ) -> dict[str, Any]:
        """Suspend, reinstate or revoke: one conditional UPDATE (two racing calls: one wins, the other
        finds the licence already so) and the status list marked changed in the same transaction."""
        allowed, target = TRANSITIONS[action]
        reason = " ".join((reason or "").split())[:200]
        row = await self._own(issuer, licence_id)
        async with db.transaction():
            done = (
                await Licence.update(
                    {Licence.status: target, Licence.reason: reason, Licence.updated_at: self._clock.now()}
                )
                .where((Licence.id == row["id"]) & Licence.status.is_in(list(allowed)))
                .returning(Licence.status_list)
                .run()
            )
            if done:
                await self.statuses.changed(done[0]["status_list"])
                await audit.record(
                    f"licence_{target}", actor_kind="issuer", actor_id=issuer["code"], subject=licence_id
                )
        if not done:
            current = await self._own(issuer, licence_id)
            if current["status"] != target:
                raise Conflict(
                    f"a {current['status']} licence cannot be {target}",
                    code="licence_state",
                    state=current["status"],
                )
        else:
            number = await self.list_number(done[0]["status_list"])
            await self.statuses.drop(issuer["code"], number)
            citizen = await self._citizen_of_index(row["holder_index"])
            if citizen is not None and target != "valid":
                await self._tell(
                    citizen,
                    f"licence_{target}",
                    f"licence-{target}:{licence_id}:{secrets.token_hex(4)}",
                    TYPES[row["type"]],
                    issuer,
                )
        return await self.for_issuer(issuer, licence_id)

    async def list_number(self, list_id: int) -> int:
        row = (
            await LicenceStatusList.select(LicenceStatusList.number)
            .where(LicenceStatusList.id == list_id)
            .first()
            .run()
        )
        assert row is not None
        return int(row["number"])

    async def _own(self, issuer: dict[str, Any], licence_id: str, *, lock: bool = False) -> dict[str, Any]:
        try:
            lid = uuid.UUID(licence_id)
        except ValueError:
            raise NotFound("no such licence", code="licence_not_found") from None
        query = Licence.select().where((Licence.id == lid) & (Licence.issuer == issuer["code"]))
        row = await (db.for_update(query) if lock else query).first().run()
        if row is None:
            raise NotFound("no such licence", code="licence_not_found")
        return dict(row)

    async def for_issuer(self, issuer: dict[str, Any], licence_id: str) -> dict[str, Any]:
        return self._issuer_view(await self._own(issuer, licence_id))

    def _issuer_view(self, row: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": str(row["id"]),
            "type": row["type"],
            "status": row["status"],
            "reason": row["reason"],
            "version": row["version"],
            "number": _summary(row).get("number", ""),
            "valid_until": row["valid_until"],
            "issued_at": row["issued_at"],
            "updated_at": row["updated_at"],
        }

    async def _tell(
        self, citizen_id: str, template: str, key: str, kind: LicenceType, issuer: dict[str, Any]
    ) -> None:
        try:
            await self._messages.send(
                PLATFORM,
                template,
                [
                    Outgoing(
                        citizen_id=citizen_id,
                        key=key,
                        data={
                            "licence": kind.zh,
                            "licence_en": kind.en,
                            "issuer": issuer["name_zh"],
                            "issuer_en": issuer["name_en"],
                        },
                    )
                ],
            )
        # a template not approved yet, or data it does not take: the change is made (and committed) anyway,
        # and the issuer is told it was
        except (Conflict, NotFound, InvalidInput) as exc:
            log.warning("licence message %s not sent: %s", template, exc.code)

    # ---- the citizen's side ----------------------------------------------------------------------
    async def mine(self, citizen_id: str) -> tuple[bool, list[dict[str, Any]]]:
        """``(verified, licences)``: a citizen's licences reach the account once a provider verified
        their real name and ID number (as entitlements do)."""
        index = await self.index_of_citizen(citizen_id)
        if index is None:
            return False, []
        rows = await Licence.select().where(Licence.holder_index == index).order_by(Licence.issued_at).run()
        names = await self._issuer_names({r["issuer"] for r in rows})
        return True, [self._citizen_summary(r, names) for r in rows]

    async def _issuer_names(self, codes: set[str]) -> dict[str, tuple[str, str]]:
        if not codes:
            return {}
        rows = (
            await LicenceIssuer.select(LicenceIssuer.code, LicenceIssuer.name_zh, LicenceIssuer.name_en)
            .where(LicenceIssuer.code.is_in(sorted(codes)))
            .run()
        )
        return {r["code"]: (r["name_zh"], r["name_en"]) for r in rows}

    def _citizen_summary(self, row: dict[str, Any], names: dict[str, tuple[str, str]]) -> dict[str, Any]:
        kind = TYPES[row["type"]]
        zh, en = names.get(row["issuer"], ("", ""))
        return {
            "id": str(row["id"]),
            "type": kind.code,
            "name_zh": kind.zh,
            "name_en": kind.en,
            "issuer": row["issuer"],
            "issuer_zh": zh,
            "issuer_en": en,
            "number": _summary(row).get("number", ""),
            "status": row["status"],
            "valid_until": row["valid_until"],
            "issued_at": row["issued_at"],
            "version": row["version"],
        }

    async def held(self, citizen_id: str, licence_id: str) -> dict[str, Any]:
        """One of the citizen's licences (not found for anyone else's, or before verification)."""
        index = await self.index_of_citizen(citizen_id)
        try:
            lid = uuid.UUID(licence_id)
        except ValueError:
            raise NotFound("no such licence", code="licence_not_found") from None
        row = None
        if index is not None:
            row = (
                await Licence.select()
                .where((Licence.id == lid) & (Licence.holder_index == index))
                .first()
                .run()
            )
        if row is None:
            raise NotFound("no such licence", code="licence_not_found")
        return dict(row)

    async def view(self, citizen_id: str, licence_id: str) -> dict[str, Any]:
        """The licence as its holder sees it: every field in full (it is theirs), the devices holding a
        credential of it."""
        row = await self.held(citizen_id, licence_id)
        kind = TYPES[row["type"]]
        fields = self.fields_of(row)
        names = await self._issuer_names({row["issuer"]})
        devices = (
            await LicenceCredential.select(
                LicenceCredential.device_jkt, LicenceCredential.minted_at, LicenceCredential.expires_at
            )
            .where(
                (LicenceCredential.licence == row["id"])
                & LicenceCredential.withdrawn_at.is_null()
                & (LicenceCredential.expires_at > self._clock.now())
            )
            .order_by(LicenceCredential.minted_at)
            .run()
        )
        return {
            **self._citizen_summary(row, names),
            "reason": row["reason"],
            "fields": [
                {"name": f.name, "zh": f.zh, "en": f.en, "value": fields[f.name]}
                for f in kind.fields
                if f.name in fields
            ],
            "devices": devices,
        }

    async def nonce(self, citizen_id: str) -> tuple[str, int]:
        """A one-time nonce the device signs to prove it holds the key a credential will be bound to."""
        value = secrets.token_urlsafe(24)
        await self._store.set(f"licences:c_nonce:{value}", citizen_id, ttl=NONCE_SECONDS)
        return value, NONCE_SECONDS

    async def credential(self, citizen_id: str, licence_id: str, proof: str) -> dict[str, Any]:
        """Mint an SD-JWT VC of the licence bound to the device key that signed ``proof`` over a nonce
        this server gave the citizen (used once)."""
        row = await self.held(citizen_id, licence_id)
        holder_jwk = await self._check_proof(citizen_id, proof)
        if row["status"] != "valid":
            raise Conflict(f"the licence is {row['status']}", code=f"licence_{row['status']}")
        now = self._clock.now()
        until = now + timedelta(days=self.issuers.s.credential_days)
        if row["valid_until"] is not None:
            if row["valid_until"] <= now:
                raise Conflict("the licence has expired", code="licence_expired")
            until = min(until, row["valid_until"])
        jkt = jwk_thumbprint(holder_jwk)
        # a device the citizen withdrew (a lost phone) gets no credential again: whoever holds the phone
        # and its session would otherwise bind it anew (a new phone has a new key)
        if (
            await LicenceCredential.exists()
            .where(
                (LicenceCredential.licence == row["id"])
                & (LicenceCredential.device_jkt == jkt)
                & LicenceCredential.withdrawn_at.is_not_null()
            )
            .run()
        ):
            raise Conflict("this device was withdrawn from the licence", code="device_withdrawn")
        number = await self.list_number(row["status_list"])
        key = await self.issuers.signing_key(row["issuer"])
        credential = mint(
            key,
            iss=self.issuers.iss(row["issuer"]),
            vct=vct_of(row["type"]),
            fields=self.fields_of(row),
            holder_jwk=holder_jwk,
            status_uri=self.issuers.status_uri(row["issuer"], number),
            status_idx=row["status_idx"],
            iat=int(now.timestamp()),
            exp=int(until.timestamp()),
        )
        await LicenceCredential.insert(
            LicenceCredential(
                id=uuid.uuid4(),
                licence=row["id"],
                citizen_id=citizen_id,
                device_jkt=jkt,
                version=row["version"],
                minted_at=now,
                expires_at=until,
            )
        ).run()
        return {
            "format": "dc+sd-jwt",
            "vct": vct_of(row["type"]),
            "credential": credential,
            "device": jkt,
            "expires_at": until,
            "version": row["version"],
        }

    async def _check_proof(self, citizen_id: str, proof: str) -> dict[str, Any]:
        try:
            header_part = proof.split(".")[0]
            header = json.loads(unb64u(header_part))
            jwk = header["jwk"]
            if not isinstance(jwk, dict) or jwk.get("kty") != "EC" or jwk.get("crv") != "P-256" or "d" in jwk:
                raise ValueError("a public P-256 key")
            _, payload = verify_jws(proof, public_key_from_jwk(jwk), typ=PROOF_TYP)
        except (
            PresentationError,
            ValueError,
            KeyError,
            TypeError,
            IndexError,
            UnicodeDecodeError,
            RecursionError,  # a header of JSON nested past the parser
        ) as exc:
            raise InvalidInput(
                "proof must be a JWT (typ openid4vci-proof+jwt, ES256) signed by the P-256 key in its header",
                code="invalid_proof",
            ) from exc
        nonce = payload.get("nonce")
        if not isinstance(nonce, str) or len(nonce) > 64:
            raise InvalidInput("the proof names no nonce of ours", code="invalid_proof")
        key = f"licences:c_nonce:{nonce}"
        # the nonce is the citizen's and is used once: the compare-and-delete is the one that counts
        if payload.get("aud") != self.issuers.s.public_url or not await self._store.delete_if_equal(
            key, citizen_id
        ):
            raise InvalidInput(
                "the proof's nonce is unknown, used or someone else's, or its audience is not us",
                code="invalid_proof",
            )
        iat = payload.get("iat")
        if not isinstance(iat, int) or abs(iat - self._clock.time()) > NONCE_SECONDS:
            raise InvalidInput("the proof is not fresh", code="invalid_proof")
        return {k: jwk[k] for k in ("kty", "crv", "x", "y")}

    async def withdraw_device(self, citizen_id: str, licence_id: str, jkt: str) -> int:
        """The citizen withdraws a device's credentials of a licence (a lost phone): the server shows them
        no more and mints none to it. (An offline inspector cannot know: a lost phone is why a device key
        sits behind the phone's own lock, and why credentials expire.)"""
        row = await self.held(citizen_id, licence_id)
        done = (
            await LicenceCredential.update({LicenceCredential.withdrawn_at: self._clock.now()})
            .where(
                (LicenceCredential.licence == row["id"])
                & (LicenceCredential.device_jkt == jkt)
                & LicenceCredential.withdrawn_at.is_null()
            )
            .returning(LicenceCredential.id)
            .run()
        )
        return len(done)


def _summary(row: dict[str, Any]) -> dict[str, Any]:
    value = row.get("summary") or {}
    return dict(json.loads(value)) if isinstance(value, str) else dict(value)


def _check_until(valid_until: datetime | None) -> None:
    if valid_until is not None and valid_until.tzinfo is None:
        raise InvalidInput("valid_until needs a time zone", code="invalid_time")
    if valid_until is not None and valid_until.year > 9000:
        raise InvalidInput("valid_until is too far", code="invalid_time")
