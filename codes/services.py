"""Issuing codes, publishing the trust list, and verifying scans online and in batches."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NamedTuple

from auth.principals import CitizenPrincipal, MachinePrincipal
from auth.revocations import Revocations
from backend.batch import BatchWriter
from backend.clock import Clock
from backend.i18n import current_locale
from backend.keystore import RELOAD_INTERVAL, KeyStore, LoadedKey
from backend.settings import Settings
from backend.store import Store
from codes import format as fmt
from codes.entitlements import Entitlements
from codes.sources import EntitlementSource
from codes.tables import IssuedCode, ScanRecord
from codes.trustlist import TrustedKey, TrustList, build_document, sign_document
from codes.verifier import verify

log = logging.getLogger("shengshitong.codes")

# What a scan context needs of the code, until mini-apps declare it in their manifests.
DEFAULT_REQUIREMENTS: dict[str, str | None] = {
    "transit": "transit",
    "bus": "transit",
    "metro": "transit",
    "metro-entry": "transit",
    "metro-exit": "transit",
    "hospital": "medical",
    "tourism": None,
    "hotel": None,
    "parking": None,
}

# What the gate screen shows for each outcome: colour, then (title, subtitle) in Chinese and in English;
# a screen shows one language, the scanner's (its request's Accept-Language, zh-CN by default).
DISPLAY: dict[str, tuple[str, tuple[str, str], tuple[str, str]]] = {
    "ok": ("green", ("请通行", ""), ("Welcome", "")),
    "bad_format": ("red", ("无效的码", "这不是市民码"), ("Invalid code", "Not a citizen code")),
    "bad_prefix": ("red", ("无效的码", "这不是市民码"), ("Invalid code", "Not a citizen code")),
    "bad_base45": ("red", ("无效的码", "这不是市民码"), ("Invalid code", "Not a citizen code")),
    "oversized": ("red", ("无效的码", "这不是市民码"), ("Invalid code", "Not a citizen code")),
    "unknown_kid": ("red", ("无效的码", "签发密钥未知"), ("Invalid code", "Unknown issuer key")),
    "wrong_alg": ("red", ("无效的码", "这不是市民码"), ("Invalid code", "Not a citizen code")),
    "wrong_issuer": ("red", ("无效的码", "这不是市民码"), ("Invalid code", "Not a citizen code")),
    "bad_signature": ("red", ("无效的码", "签名不符"), ("Invalid code", "Signature does not match")),
    "key_not_valid": ("red", ("无效的码", "签发密钥已失效"), ("Invalid code", "Issuer key not valid")),
    "expired": ("red", ("码已过期", "请刷新市民码"), ("Code expired", "Refresh it")),
    "not_yet_valid": (
        "red",
        ("码尚未生效", "请校准手机时间"),
        ("Code not yet valid", "Check the phone's clock"),
    ),
    "replayed": ("red", ("此码已使用", "请刷新市民码"), ("Code already used", "Refresh it")),
    "not_entitled": (
        "red",
        ("无此项权限", "此处需要相应权益"),
        ("Not entitled here", "This gate needs an entitlement"),
    ),
    "unknown_code": ("red", ("无效的码", "未知的码"), ("Invalid code", "Unknown code")),
    "account_deleted": ("red", ("账户已注销", ""), ("Account closed", "")),
    "account_blocked": (
        "red",
        ("账户已冻结", "请联系服务台"),
        ("Account blocked", "Contact the service desk"),
    ),
    "device_revoked": ("red", ("设备已退出登录", "请重新登录"), ("Device signed out", "Sign in again")),
    "bad_scan_time": ("red", ("扫码时间异常", ""), ("Scan time out of range", "")),
    "app_unavailable": ("red", ("服务暂不可用", "请稍后再试"), ("Service unavailable", "Try again shortly")),
}
REFUSED = ("red", ("无法通行", ""), ("Refused", ""))


def display_for(reason: str | None, locale: str | None = None) -> dict[str, str]:
    """What the gate shows for a platform outcome, in ``locale`` (the request's language by default)."""
    colour, zh, en = DISPLAY.get(reason or "ok", REFUSED)
    title, subtitle = en if (locale or current_locale()) == "en" else zh
    return {"color": colour, "title": title, "subtitle": subtitle}


def iso(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class EntitlementService:
    def __init__(self, sources: list[EntitlementSource]) -> None:
        self.sources = list(sources)

    def add(self, source: EntitlementSource) -> None:
        self.sources.append(source)

    async def for_citizen(self, citizen_id: str) -> Entitlements:
        merged: dict[str, Any] = {}
        for part in await asyncio.gather(*(s.fetch(citizen_id) for s in self.sources)):
            merged.update(part)
        return Entitlements(**merged)


class CodeKeys:
    """Issuer keys (purpose ``code``) and the root key that signs the trust list (``trust-root``)."""

    def __init__(self, settings: Settings, clock: Clock) -> None:
        kek = settings.secret_bytes("key_encryption_key")
        self.settings = settings
        self.clock = clock
        # A retired issuer key stays published while any code it signed may still be uploaded in a batch.
        # A new one is published a refresh period (plus a worker's key reload) before it signs: by then
        # every worker's trust list holds it and every scanner has fetched such a list, so no scanner
        # meets a code signed by a key it cannot know (docs/citizen-code.md, "Rotation").
        self.issuer = KeyStore(
            "code",
            kek,
            clock,
            default_alg=settings.code_alg,
            publish_overlap=settings.code_validity + settings.code_skew + settings.code_batch_window,
            activation_delay=settings.trust_list_refresh + RELOAD_INTERVAL,
        )
        self.root = KeyStore("trust-root", kek, clock, default_alg="ES256", publish_overlap=30 * 86400)
        self._trust: TrustList | None = None
        self._trust_source: tuple[str, ...] = ()

    async def ensure(self) -> None:
        await self.issuer.ensure()
        await self.root.ensure()

    @staticmethod
    def _trusted(key: LoadedKey) -> TrustedKey:
        return TrustedKey(
            kid=key.kid_bytes,
            alg_id=fmt.ALG_IDS[key.alg],
            public_key=key.public,
            valid_from=int(key.active_from.timestamp()),
            valid_until=int(key.retired_at.timestamp()) if key.retired_at else None,
        )

    async def trust_list(self) -> TrustList:
        """The server's own trust list (rebuilt when the key set changes)."""
        keys = await self.issuer.published()
        ident = tuple(f"{k.kid}:{k.active_from}:{k.retired_at}" for k in keys)
        if self._trust is None or ident != self._trust_source:
            self._trust = TrustList(
                [self._trusted(k) for k in keys],
                issuer=self.settings.code_issuer,
                clock_skew=self.settings.code_skew,
            )
            self._trust_source = ident
        return self._trust

    async def trust_for_kid(self, kid: bytes | None) -> TrustList:
        """As :meth:`trust_list`, reloading once when a code names a kid we do not know yet."""
        trust = await self.trust_list()
        if kid is not None and kid not in trust.keys:
            from backend.crypto import b64u

            if await self.issuer.find(b64u(kid)) is not None:
                return await self.trust_list()
        return trust

    async def signed_trust_list(self) -> tuple[dict[str, str], str]:
        """The published document (flattened JWS) and its weak ETag, which covers everything but the
        server time: a scanner whose keys are current gets 304."""
        keys = await self.issuer.published()
        jwks = []
        for k in keys:
            t = self._trusted(k)
            jwks.append({**k.jwk, "valid_from": t.valid_from, "valid_until": t.valid_until})
        s = self.settings
        doc = build_document(
            jwks,
            issuer=s.code_issuer,
            server_time=int(self.clock.time()),
            code_validity=s.code_validity,
            clock_skew=s.code_skew,
            refresh_after=s.trust_list_refresh,
        )
        root = await self.root.active()
        stable = json.dumps({**doc, "server_time": 0, "root": root.kid}, sort_keys=True).encode()
        etag = 'W/"' + hashlib.sha256(stable).hexdigest()[:32] + '"'
        return sign_document(doc, root_private_key=root.private, root_kid=root.kid, alg=root.alg), etag


class CodeIssuer:
    def __init__(
        self, settings: Settings, clock: Clock, store: Store, keys: CodeKeys, entitlements: EntitlementService
    ) -> None:
        self.s = settings
        self.clock = clock
        self.store = store
        self.keys = keys
        self.entitlements = entitlements
        # the durable copy of every code's mapping, written in batches off the request's path
        self.mappings = BatchWriter(IssuedCode, clock, unique="cti", purge=IssuedCode.expires_at)

    @property
    def mapping_ttl(self) -> int:
        return self.s.code_validity + self.s.code_skew + self.s.code_batch_window

    async def current(self, principal: CitizenPrincipal) -> dict[str, Any]:
        """The citizen's current code: the same one until ``refresh_after``, then a fresh one."""
        cache_key = f"code:current:{principal.session_id}"
        cached = await self.store.get(cache_key)
        if cached is not None:
            issued = dict(json.loads(cached))
            if self.clock.time() < issued["refresh_after"]:
                return issued
        ent = await self.entitlements.for_citizen(principal.citizen_id)
        key = await self.keys.issuer.active()
        now = int(self.clock.time())
        exp = now + self.s.code_validity
        token, cti = fmt.encode(
            private_key=key.private,
            alg=key.alg,
            kid=key.kid_bytes,
            issuer=self.s.code_issuer,
            iat=now,
            exp=exp,
            entitlements=ent,
            cti=secrets.token_bytes(12),
        )
        mapping = {"c": principal.citizen_id, "s": principal.session_id, "d": principal.device_id}
        await self.store.set(f"code:cti:{cti.hex()}", json.dumps(mapping), ttl=self.mapping_ttl)
        self.mappings.add(
            {
                "cti": cti.hex(),
                "citizen_id": principal.citizen_id,
                "session_id": principal.session_id,
                "device_id": principal.device_id[:128],
                "expires_at": iso(now + self.mapping_ttl),
            }
        )
        issued = {
            "token": token,
            "issued_at": now,
            "expires_at": exp,
            "refresh_after": now + self.s.code_refresh_after,
            "entitlements": ent.readable(),
            "kid": key.kid,
        }
        await self.store.set(cache_key, json.dumps(issued), ttl=self.s.code_refresh_after)
        return issued


class Claim(NamedTuple):
    """A scan's hold on a code's single use in one context."""

    key: str  # the single-use key of (context, code)
    value: str  # this attempt's value under it: "<scanner>/<record>#<attempt>"
    retry: bool  # an earlier attempt of the same record held it (this one has taken it over)


class Checked(NamedTuple):
    """A scanned code after verification and the single-use claim."""

    reason: str | None  # the refusal, or None: the scan goes on to the mini-app
    result: Any  # the verifier's result (None when the scan time was refused first)
    mapping: dict[str, Any] | None  # the code's citizen, session and device
    claim: Claim | None  # held when the scan may go on (release it if nothing is decided)


class ScanService:
    """Verification of scanned codes (signature, time window, entitlement, single use, account state) and
    the scan records; deciding a scan is the mini-app router's (``backend.scans``)."""

    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        store: Store,
        keys: CodeKeys,
        revocations: Revocations,
    ) -> None:
        self.s = settings
        self.clock = clock
        self.store = store
        self.keys = keys
        self.revocations = revocations
        self.recorder = BatchWriter(ScanRecord, clock, unique="scanner_record", stamp="received_at")
        # what a scanner's context requires of the code; the mini-app platform replaces this with its
        # manifests' scan contexts
        self.requirement: Callable[[MachinePrincipal], str | None] = lambda m: DEFAULT_REQUIREMENTS.get(
            m.context
        )

    @property
    def replay_ttl(self) -> int:
        # long enough that a code used online is still caught when a terminal uploads it later
        return self.s.code_validity + self.s.code_skew + self.s.code_batch_window

    async def _verify(
        self, token: str, at: float, scanner: MachinePrincipal
    ) -> tuple[str | None, Any, dict[str, Any] | None]:
        """(refusal reason or None, verifier result, the cti mapping)."""
        requirement = self.requirement(scanner)
        res = verify(
            token, await self.keys.trust_list(), now=at, skew=self.s.code_skew, requirement=requirement
        )
        if res.reason == "unknown_kid":  # perhaps another worker rotated: reload once and retry
            trust = await self.keys.trust_for_kid(res.kid)
            res = verify(token, trust, now=at, skew=self.s.code_skew, requirement=requirement)
        if not res.valid:
            return res.reason, res, None
        assert res.cti is not None
        raw = await self.store.get(f"code:cti:{res.cti.hex()}")
        if raw is not None:
            return None, res, dict(json.loads(raw))
        mapping = await self._mapping_from_database(res.cti.hex())
        return (None, res, mapping) if mapping is not None else ("unknown_code", res, None)

    async def _mapping_from_database(self, cti: str) -> dict[str, Any] | None:
        """A code the store does not know: issued before the store lost its data, or not ours. The
        database's copy answers, and the store learns it again."""
        row = (
            await IssuedCode.select()
            .where((IssuedCode.cti == cti) & (IssuedCode.expires_at > self.clock.now()))
            .first()
            .run()
        )
        if row is None:
            return None
        mapping = {"c": row["citizen_id"], "s": row["session_id"], "d": row["device_id"]}
        left = (row["expires_at"] - self.clock.now()).total_seconds()
        await self.store.set(f"code:cti:{cti}", json.dumps(mapping), ttl=max(1.0, left))
        return mapping

    async def _claim(
        self, context: str, cti: bytes, mapping: dict[str, Any], record_key: str, *, offline: bool
    ) -> tuple[str | None, Claim]:
        """Claim the code's single use in this context and read the account's state, in one round trip.
        Returns (the refusal reason or None, the claim). Every attempt writes a value of its own, so an
        attempt that gave up can release its claim without freeing one a retry of its record holds."""
        key = f"code:used:{context}:{cti.hex()}"
        mine = f"{record_key}#{secrets.token_hex(4)}"
        outcome, _, values = await self.store.claim(
            key,
            mine,
            ttl=self.replay_ttl,
            read=self.revocations.keys_for(mapping["c"], mapping["s"]),
            retry_prefix=record_key + "#",
        )
        claim = Claim(key, mine if outcome != "held" else "", outcome == "retry")
        state = await self.revocations.state(mapping["c"], mapping["s"], values)
        if state.deleted:
            return "account_deleted", claim
        if state.blocked:
            return "account_blocked", claim
        if state.session_revoked and not offline:  # an offline scan may predate the sign-out
            return "device_revoked", claim
        if outcome == "held":
            return "replayed", claim
        return None, claim

    async def release(self, claim: Claim) -> None:
        """Give a code's single use back: nothing was decided for the scan that claimed it.

        Only a record's first attempt gives it back, and only while the claim is still its own. A retry
        of the record (which took the claim over) never does: an earlier attempt of the same record may
        still be deciding, and its decision needs the claim; the code then stays held for this record,
        whose next retry may still pass."""
        if claim.value and not claim.retry:
            await self.store.delete_if_equal(claim.key, claim.value)

    async def check(
        self, scanner: MachinePrincipal, token: str, *, at: float, record_id: str, offline: bool
    ) -> Checked:
        """Verify a scanned code at time ``at`` and claim its single use for this record."""
        reason, res, mapping = await self._verify(token, at, scanner)
        if reason is not None:
            return Checked(reason, res, mapping, None)
        assert res.cti is not None and mapping is not None
        reason, claim = await self._claim(
            scanner.context, res.cti, mapping, f"{scanner.client_id}/{record_id}", offline=offline
        )
        return Checked(reason, res, mapping, claim if reason is None else None)

    def decision(
        self, scanner: MachinePrincipal, reason: str | None, *, record_id: str, flagged: bool = False
    ) -> dict[str, Any]:
        return {
            "result": "allow" if reason is None else "deny",
            "reason": reason or "ok",
            "app_id": scanner.app_id,
            "context": scanner.context,
            "record_id": record_id,
            "flagged": flagged,
            "display": display_for(reason),
            "data": {},
        }

    def record(
        self,
        scanner: MachinePrincipal,
        decision: dict[str, Any],
        checked: Checked | None,
        *,
        at: float,
        offline: bool,
        final: bool,
    ) -> dict[str, Any]:
        """The scan record of a decision. A *final* record is the record's answer for good (a mini-app's
        decision, a batch upload's refusal) and holds the record's idempotency key; any other (a refusal
        at the gate, an undecided scan) is history only, under a key of its own, so it never stands in
        for the answer a retry of the record gets."""
        key = f"{scanner.client_id}/{decision['record_id']}"
        res = checked.result if checked is not None else None
        mapping = checked.mapping if checked is not None else None
        return {
            "scanner_id": scanner.client_id,
            "record_id": decision["record_id"],
            "scanner_record": key if final else f"{key}#{secrets.token_hex(4)}",
            "app_id": scanner.app_id,
            "context": scanner.context,
            "place": scanner.place,
            "citizen_id": mapping["c"] if mapping else None,
            "code_id": res.cti.hex() if res is not None and res.cti else "",
            "result": decision["result"],
            "reason": decision["reason"],
            "flagged": decision["flagged"],
            "offline": offline,
            "scanned_at": iso(at),
            "display": {**decision["display"], "data": decision.get("data", {})},
        }

    async def save(self, record: dict[str, Any]) -> bool:
        """Store a scan record; False when this (scanner, record id) was stored already (also by a
        concurrent upload of the same record: the unique key decides, without an error). Inside a
        transaction, a concurrent twin's insert waits here for this one to commit or roll back."""
        inserted = (
            await ScanRecord.insert(ScanRecord(**record, received_at=self.clock.now()))
            .on_conflict(target=ScanRecord.scanner_record, action="DO NOTHING")
            .returning(ScanRecord.id)
            .run()
        )
        return bool(inserted)

    async def decided(self, scanner_record: str, decision: dict[str, Any]) -> None:
        """Write a decision into the record's final row (inserted first in the same transaction)."""
        await (
            ScanRecord.update(
                {
                    ScanRecord.result: decision["result"],
                    ScanRecord.reason: decision["reason"],
                    ScanRecord.display: {**decision["display"], "data": decision.get("data", {})},
                }
            )
            .where(ScanRecord.scanner_record == scanner_record)
            .run()
        )

    async def stored(self, scanner: MachinePrincipal, record_id: str) -> dict[str, Any] | None:
        """The final answer of a record, if it has one."""
        row = (
            await ScanRecord.select()
            .where(ScanRecord.scanner_record == f"{scanner.client_id}/{record_id}")
            .first()
            .run()
        )
        if row is None:
            return None
        return {
            "result": row["result"],
            "reason": row["reason"],
            "app_id": row["app_id"],
            "context": row["context"],
            "record_id": record_id,
            "flagged": row["flagged"],
            **_unpack_display(row["display"]),
        }

    def scan_time_refused(self, at: float, *, offline: bool) -> bool:
        """A scan time from the future, or older than an upload may be (the batch window) or than an
        online scan may have taken to arrive (a code's validity): the time a mini-app charges and
        admits by is the gate's, so it must be one the code could really have been scanned at."""
        now = self.clock.time()
        oldest = self.s.code_batch_window if offline else self.s.code_validity + self.s.code_skew
        return at > now + self.s.code_skew or at < now - oldest


def _unpack_display(stored: Any) -> dict[str, Any]:
    value = dict(stored if isinstance(stored, dict) else json.loads(stored))
    data = value.pop("data", {})
    return {"display": value, "data": data}
