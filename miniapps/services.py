"""The mini-app platform's services: the enabled mini-apps with the Platform each gets, the gate that
routes scans to them, their citizens' authorisations and tokens, and their payment events."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from auth._machines import MachineCredentials
from auth.pairwise import Pairwise
from auth.pii import mask_name, normalise_id_number, normalise_phone
from auth.privacy_numbers import NoPrivacyNumbers, PrivacyNumbers, create_privacy_numbers
from auth.services import AuthServices
from auth.tables import Citizen
from backend import audit, db
from backend.clock import Clock
from backend.crypto import DecryptionError, Keyring, b64u, open_sealed, seal
from backend.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from backend.i18n import pick
from backend.runtime import Runtime, Slot
from backend.settings import Settings
from backend.store import Store
from codes.format import sign_bytes
from codes.services import CodeFreshness, CodeServices
from codes.sources import Contributed
from codes.verifier import DOCUMENT_TYPE as TRUST_LIST_TYPE
from licences._consent import Requester
from licences.setup import LicenceServices
from messages.services import MessageCentre, Notice
from messages.setup import MessageServices
from miniapps._payments import MiniAppPayments
from miniapps.contract import (
    SCOPES,
    SCOPES_ZH,
    Contribution,
    Identified,
    LicenceAsk,
    MiniApp,
    Note,
    PastRating,
    PaymentEvent,
    PrivacyBinding,
    RatingUnit,
    Scanner,
    SharedLicence,
)
from miniapps.gate import Gate
from miniapps.registry import MiniAppError, discover, enabled, load_config, piccolo_apps, wanted
from miniapps.tables import MiniAppGrant
from payments.events import OrderEvent
from payments.services import PaymentServices
from ratings.services import RatingCentre
from ratings.setup import RatingServices

CODE_TTL = 300
TOKEN_TTL = 3600
_TYP = re.compile(r"^[a-z0-9.+-]{1,40}$")
_TRUST_LIST_TYP = "trust-list+json"


@dataclass(frozen=True)
class Identity:
    """What the platform needs to find a citizen, seal an app's keys and sign its documents (doors)."""

    auth: AuthServices
    codes: CodeServices
    kek: bytes


class AppPlatform:
    """The :class:`miniapps.contract.Platform` one mini-app gets: its config, a logger, the clock, a
    key-value namespace of its own in the shared store, and the payment centre as it may use it."""

    def __init__(
        self,
        app_id: str,
        config: dict[str, Any],
        store: Store,
        clock: Clock,
        *,
        payments: MiniAppPayments,
        pairwise: Pairwise,
        freshness: CodeFreshness,
        messages: MessageCentre,
        ratings: RatingCentre,
        licences: LicenceServices,
        name: str = "",
        machines: MachineCredentials | None = None,
        serving: bool = True,
        phone_of: Callable[[str], Awaitable[str | None]] | None = None,
        privacy: PrivacyNumbers | None = None,
        identity: Identity | None = None,
    ) -> None:
        self._phone_of = phone_of  # resolved inside the platform only (privacy numbers)
        self._privacy = privacy or NoPrivacyNumbers()
        self.app_id = app_id
        self.serving = serving  # False in an operator's command: no listeners of the app's own
        self._machines = machines
        self._gate: Gate | None = None  # set once the gate over every app is built
        self._identity = identity
        self.name = name or app_id  # the manifest's name, as citizens see who asks them
        self._messages = messages
        self._ratings = ratings
        self._licences = licences
        self._freshness = freshness
        self.config = config
        self.log = logging.getLogger(f"shengshitong.miniapps.{app_id}")
        self.payments = payments
        self._pairwise = pairwise
        self._store = store
        self._clock = clock
        self._prefix = f"app:{app_id}:"

    def now(self) -> datetime:
        return self._clock.now()

    async def kv_get(self, key: str) -> bytes | None:
        return await self._store.get(self._prefix + key)

    async def kv_set(self, key: str, value: bytes | str, ttl: float | None = None) -> None:
        await self._store.set(self._prefix + key, value, ttl)

    async def kv_set_if_absent(self, key: str, value: bytes | str, ttl: float) -> bool:
        return await self._store.set_if_absent(self._prefix + key, value, ttl)

    async def knows(self, openid: str) -> bool:
        return await self._pairwise.citizen(self.app_id, openid) is not None

    def transaction(self) -> Any:
        return db.transaction()

    async def entitlement_changed(self, *openids: str) -> None:
        if not openids:
            return
        citizens = await self._pairwise.citizens(self.app_id, list(dict.fromkeys(openids)))
        await self._freshness.changed(sorted(set(citizens.values())), self.app_id)

    async def upsert(
        self, table: Any, rows: list[dict[str, Any]], *, key: str, only_if: tuple[str, Any] | None = None
    ) -> None:
        await db.bulk_insert(table, rows, on_conflict_update=(key, only_if))

    async def notify(
        self, openid: str, template: str, data: dict[str, Any], *, key: str, at: datetime | None = None
    ) -> Notice:
        return (await self.notify_many([Note(openid, template, data, key, at)]))[0]

    async def notify_many(self, notes: list[Note]) -> list[Notice]:
        """As the contract says: a template not approved (yet) skips its messages rather than failing
        the mini-app's own writes (a booking, a journal batch), and says so in the log."""
        if not notes:
            return []
        out: list[Notice] = []
        by_template: dict[str, list[Note]] = {}
        for note in notes:
            by_template.setdefault(note.template, []).append(note)
        sent: dict[int, Notice] = {}
        for name, group in by_template.items():
            try:
                notices = await self._messages.notify_app(
                    self.app_id, [(n.openid, n.template, n.data, n.key, n.at) for n in group]
                )
            except (Conflict, NotFound) as exc:
                self.log.warning("messages of %s.%s not sent: %s", self.app_id, name, exc.code)
                notices = [Notice("skipped", reason=exc.code) for _ in group]
            for note, notice in zip(group, notices, strict=True):
                sent[id(note)] = notice
        out = [sent[id(n)] for n in notes]
        return out

    async def cancel_notice(self, key: str) -> bool:
        return await self._messages.cancel(self.app_id, key)

    # ---- a shared counter, an SMS due at a set time, privacy numbers (扫码挪车) -------------------------
    async def kv_incr(self, key: str, ttl: float, by: int = 1) -> int:
        return await self._store.incr(self._prefix + key, ttl, by)

    async def notify_urgent(
        self,
        openid: str,
        template: str,
        data: dict[str, Any],
        *,
        key: str,
        at: datetime | None = None,
        sms_after: float = 0.0,
    ) -> Notice:
        try:
            [notice] = await self._messages.notify_app(
                self.app_id, [(openid, template, data, key, at)], sms_after=sms_after
            )
        except (Conflict, NotFound) as exc:  # not approved (yet): as notify_many says
            self.log.warning("messages of %s.%s not sent: %s", self.app_id, template, exc.code)
            return Notice("skipped", reason=exc.code)
        return notice

    async def privacy_number(self, openid: str, *, minutes: int) -> PrivacyBinding | None:
        if not 1 <= minutes <= 30:
            raise InvalidInput("a privacy number is bound for 1 to 30 minutes", code="invalid_input")
        citizen = await self._pairwise.citizen(self.app_id, openid)
        if citizen is None or self._phone_of is None:
            return None
        phone = await self._phone_of(citizen)
        if phone is None:
            return None
        bound = await self._privacy.bind(phone, minutes=minutes, at=self._clock.now())
        self.log.info("privacy number bound for %s minutes", minutes)  # never the numbers
        return PrivacyBinding(number=bound.number, expires_at=bound.expires_at, binding=bound.binding)

    async def rateable(
        self, openid: str, service: str, *, key: str, unit: str = "", at: datetime | None = None
    ) -> str | None:
        citizen = await self._pairwise.citizen(self.app_id, openid)
        if citizen is None:
            return None
        event_id, _ = await self._ratings.record(self.app_id, service, citizen, key, unit=unit, at=at)
        return event_id

    async def save_units(self, units: list[RatingUnit]) -> None:
        await self._ratings.units.save(self.app_id, units)

    def _requester(self) -> Requester:
        return Requester("miniapp", self.app_id, self.name)

    async def ask_licence(
        self,
        openid: str,
        licence_type: str,
        fields: list[str],
        purpose: str,
        *,
        key: str,
        standing: bool = False,
    ) -> LicenceAsk | None:
        citizen = await self._pairwise.citizen(self.app_id, openid)
        if citizen is None:
            return None
        row, _ = await self._licences.consents.request(
            self._requester(),
            citizen,
            licence_type,
            fields,
            purpose,
            "standing" if standing else "once",
            key=key,
        )
        return _ask(row)

    async def licence_request(self, request_id: str) -> LicenceAsk:
        return _ask(await self._licences.consents.for_requester(self._requester(), request_id))

    async def licence_fields(self, request_id: str) -> SharedLicence:
        shared = await self._licences.consents.share(self._requester(), request_id)
        return SharedLicence(
            request=shared["request"],
            type=shared["vct"].split(":")[3],
            fields=dict(shared["fields"]),
            presentation=shared["presentation"],
            expires_at=shared["expires_at"],
        )

    # ---- 扫码门禁 doors ---------------------------------------------------------
    def _id(self) -> Identity:
        if self._identity is None:
            raise RuntimeError("this platform was built without identity services")
        return self._identity

    async def find_citizen(self, *, phone: str | None = None, id_number: str | None = None) -> str | None:
        if (phone is None) == (id_number is None):
            raise InvalidInput("give a phone or an ID number, one of them", code="invalid_citizen_query")
        ident = self._id()
        where: Any
        if phone is not None:
            where = Citizen.phone_index == ident.auth.otp.phone_index(normalise_phone(phone))
        else:
            index = ident.auth.realname.id_number_index(normalise_id_number(id_number or ""))
            where = (Citizen.id_number_index == index) & Citizen.real_name_verified_at.is_not_null()
        row = await Citizen.select(Citizen.id).where(where & (Citizen.status == "active")).first().run()
        if row is None:
            return None
        return await self._pairwise.issue(self.app_id, str(row["id"]))

    def seal(self, data: bytes, context: str) -> str:
        return seal(self._id().kek, data, f"miniapp:{self.app_id}:{context}".encode())

    def unseal(self, text: str, context: str) -> bytes:
        try:
            return open_sealed(self._id().kek, text, f"miniapp:{self.app_id}:{context}".encode())
        except DecryptionError as exc:
            raise ValueError(str(exc)) from None

    async def sign_document(self, document: dict[str, Any], typ: str) -> dict[str, str]:
        if not _TYP.match(typ):
            raise ValueError(f"bad document type {typ!r}")
        # the root key also signs the trust list every scanner believes: no mini-app has one signed (a
        # scanner reads the trust list by its payload's type), and each document names the app that had it
        # signed, so a terminal takes an app's documents from that app only
        if typ == _TRUST_LIST_TYP or document.get("type") == TRUST_LIST_TYPE:
            raise ValueError("the trust list is the platform's own document")
        root = await self._id().codes.keys.root.active()
        header = {"alg": root.alg, "kid": root.kid, "typ": typ, "app": self.app_id}
        protected = b64u(json.dumps(header, separators=(",", ":")).encode())
        payload = b64u(json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode())
        signature = sign_bytes(root.private, root.alg, f"{protected}.{payload}".encode("ascii"))
        return {"protected": protected, "payload": payload, "signature": b64u(signature)}

    # ---- end of the doors additions

    async def import_ratings(self, service: str, ratings: list[PastRating]) -> int:
        citizens = await self._pairwise.citizens(self.app_id, list({r.openid for r in ratings}))
        items = [
            {
                "citizen_id": citizens[r.openid],
                "key": r.key,
                "unit": r.unit,
                "occurred_at": r.occurred_at,
                "rated_at": r.rated_at,
                "level": r.level,
                "comment": r.comment,
            }
            for r in ratings
            if r.openid in citizens and 1 <= r.level <= 5
        ]
        return await self._ratings.import_history(self.app_id, service, items)

    # ---- codes read by a mini-app's own protocol server (一码借阅) -------------
    async def scanner_login(self, client_id: str, secret: str, *, ip: str = "") -> Scanner | None:
        if self._machines is None:
            return None
        try:
            who = await self._machines.verify(client_id, secret, ("scanner",), ip=ip)
        except (Unauthorized, InvalidInput):
            return None
        if who.app_id != self.app_id:
            return None
        return Scanner(client_id=who.client_id, place=who.place, context=who.context)

    async def identify(self, code: str, *, scanner: str) -> Identified:
        who = None if self._machines is None else await self._machines.active(scanner)
        if who is None or who.kind != "scanner" or who.app_id != self.app_id or self._gate is None:
            return Identified(allow=False, reason="scanner_revoked")
        result, openid = await self._gate.identify(who, code)
        return Identified(
            allow=result.result == "allow",
            reason=result.reason,
            openid=openid,
            scanner=Scanner(client_id=who.client_id, place=who.place, context=who.context),
            record_id=result.record_id,
        )


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
            info["real_name_verified"] = row["real_name_verified_at"] is not None
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


@dataclass(frozen=True)
class MiniAppServices:
    apps: dict[str, MiniApp]  # the enabled mini-apps by id, in settings order
    auth: MiniAppAuth
    gate: Gate
    privacy_numbers: PrivacyNumbers = field(default_factory=NoPrivacyNumbers)


MINIAPPS = Slot[MiniAppServices]("miniapps")


def _enabled_classes(settings: Settings, extra: list[type[MiniApp]] | None) -> list[type[MiniApp]]:
    named = wanted(settings.miniapps)
    named += [c.manifest.id for c in extra or [] if c.manifest.id not in named]
    classes = enabled(named, discover(extra))
    # each one's Piccolo app is checked at start-up (and its tables loaded, so the engine binds them)
    piccolo_apps(classes)
    return classes


def _ask(row: dict[str, Any]) -> LicenceAsk:
    return LicenceAsk(id=row["id"], state=row["state"], fields=tuple(f["name"] for f in row["fields"]))


def build_miniapp_services(
    runtime: Runtime,
    *,
    auth: AuthServices,
    codes: CodeServices,
    payments: PaymentServices,
    messages: MessageServices,
    ratings: RatingServices,
    licences: LicenceServices,
    extra: list[type[MiniApp]] | None = None,
) -> MiniAppServices:
    """Start the enabled mini-apps (``SHENGSHI_MINIAPPS``, and ``extra`` ones for tests and embedding),
    each with its own Platform; build the gate over them; take the payment centre's events of their
    orders."""
    s = runtime.settings
    apps: dict[str, MiniApp] = {}
    platforms: list[AppPlatform] = []
    privacy_numbers = create_privacy_numbers(s.privacy_number_provider)
    identity = Identity(auth=auth, codes=codes, kek=s.secret_bytes("key_encryption_key"))
    for cls in _enabled_classes(s, extra):
        app_id = cls.manifest.id
        platform = AppPlatform(
            app_id,
            load_config(cls.manifest),
            runtime.store,
            runtime.clock,
            payments=MiniAppPayments(app_id, payments.orders, auth.pairwise, payments.unpaid),
            pairwise=auth.pairwise,
            freshness=codes.freshness,
            messages=messages.centre,
            ratings=ratings.centre,
            licences=licences,
            name=cls.manifest.name_zh,
            machines=auth.machines,
            serving=runtime.serving,
            phone_of=auth.profile.phone_of,
            privacy=privacy_numbers,
            identity=identity,
        )
        platforms.append(platform)
        messages.register(app_id, dict(cls.manifest.templates))
        ratings.register(
            app_id,
            dict(cls.manifest.rateable),
            RatingUnit(code=app_id, name_zh=cls.manifest.name_zh, name_en=cls.manifest.name_en),
        )
        try:
            apps[app_id] = cls(platform)
        except Exception as exc:
            raise MiniAppError(f"mini-app {app_id!r} failed to start: {exc}") from exc
        for name in cls.manifest.contributes:
            codes.entitlements.contribute(Contributor(apps[app_id], name, auth.pairwise))
        if cls.adds_code_claims():
            codes.entitlements.contribute_keyed(KeyedClaims(apps[app_id], auth.pairwise))
    gate = Gate(
        codes.scans,
        apps,
        auth.pairwise,
        clock=runtime.clock,
        budget=s.miniapp_scan_budget,
        observers=runtime.scan_observers,
        store=runtime.store,
        unpaid=payments.unpaid,
        writes=("behind" if runtime.store.kind == "redis" else "inline")
        if s.gate_writes == "auto"
        else s.gate_writes,
    )
    for p in platforms:
        p._gate = gate
    payments.subscribers.subscribe("miniapp", PaymentEvents(apps, payments, auth.pairwise))
    return MiniAppServices(
        apps=apps,
        auth=MiniAppAuth(s, runtime.clock, runtime.store, auth.pairwise, apps),
        gate=gate,
        privacy_numbers=privacy_numbers,
    )


class Contributor:
    """A mini-app's contribution to the citizen code, as the code's issuer asks for it (by citizen id;
    the mini-app answers by its openid for the citizen)."""

    def __init__(self, app: MiniApp, entitlement: str, pairwise: Pairwise) -> None:
        self.app = app
        self.entitlement = entitlement
        self.app_id = app.manifest.id
        self.names = (app.manifest.name_zh, app.manifest.name_en)
        self._pairwise = pairwise
        self._log = logging.getLogger(f"shengshitong.miniapps.{self.app_id}")

    async def contribution(self, citizen_id: str, at: datetime) -> Contributed:
        openid = self._pairwise.openid(self.app_id, citizen_id)
        try:
            answer = await self.app.entitlement(openid, self.entitlement, at)
        except Exception:  # a mini-app's failure must not stop the citizen's code: unknown, not refused
            self._log.exception("contribution of %s failed", self.entitlement)
            return Contributed(False, None, "source_unavailable")
        if not isinstance(answer, Contribution):
            self._log.error("contribution of %s is not a Contribution", self.entitlement)
            return Contributed(False, None, "source_unavailable")
        return Contributed(answer.granted, answer.until, answer.reason[:40], dict(answer.detail))


class KeyedClaims:
    """A mini-app's keyed claims in the citizen code (doors), as the code's issuer asks for them."""

    def __init__(self, app: MiniApp, pairwise: Pairwise) -> None:
        self.app = app
        self.app_id = app.manifest.id
        self._pairwise = pairwise
        self._log = logging.getLogger(f"shengshitong.miniapps.{self.app_id}")

    async def keyed(self, citizen_id: str, cti: bytes) -> list[tuple[int, bytes]]:
        openid = self._pairwise.openid(self.app_id, citizen_id)
        try:
            claims = list(await self.app.code_claims(openid, cti))
        except Exception:  # a mini-app's failure must not stop the citizen's code: it goes without them
            self._log.exception("keyed claims failed")
            return []
        good = [
            (n, v)
            for n, v in claims[:2]
            if isinstance(n, int) and 0 <= n < 2**32 and isinstance(v, bytes) and len(v) == 8
        ]
        if len(good) != len(claims):
            self._log.error("keyed claims dropped: at most 2 (scope, 8 bytes)")
        return good


class PaymentEvents:
    """The payment centre's events of a mini-app's orders, handed to the mini-app as the contract's
    :class:`PaymentEvent` with the citizen's openid for that app (the payment centre's events name no
    citizen: merchants get them too)."""

    def __init__(self, apps: dict[str, MiniApp], payments: PaymentServices, pairwise: Pairwise) -> None:
        self._apps = apps
        self._orders = payments.orders
        self._pairwise = pairwise

    async def __call__(self, app_id: str, event: OrderEvent) -> None:
        app = self._apps.get(app_id)
        if app is None:
            raise RuntimeError(f"mini-app {app_id!r} is not enabled")
        citizen = await self._orders.citizen_of(event.order_id)
        openid = await self._pairwise.issue(app_id, citizen) if citizen else ""
        await app.on_payment_event(
            PaymentEvent(
                type=event.type,  # type: ignore[arg-type]
                order_id=event.order_id,
                reference=event.reference,
                openid=openid,
                amount=event.amount,
                refunded=event.refunded,
                at=event.at,
                data=event.data,
            )
        )
