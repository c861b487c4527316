"""Issuing codes, publishing the trust list, and verifying scans online and in batches."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import secrets
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from auth._tokens import revoked_session_key
from auth.principals import CitizenPrincipal, MachinePrincipal
from backend import db
from backend.clock import Clock
from backend.i18n import current_locale
from backend.keystore import KeyStore, LoadedKey
from backend.settings import Settings
from backend.store import Store
from codes import format as fmt
from codes.entitlements import Entitlements
from codes.sources import EntitlementSource
from codes.tables import ScanRecord
from codes.trustlist import TrustedKey, TrustList, build_document, sign_document
from codes.verifier import verify

log = logging.getLogger("shengshitong.codes")

# A hook that turns a verified, claimed scan into the final decision (the mini-app platform's router):
# (scanner, decision so far, verifier result, cti mapping, scan time, offline) -> decision
Decide = Callable[
    [MachinePrincipal, dict[str, Any], Any, dict[str, Any], float, bool], Awaitable[dict[str, Any]]
]

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
        # a retired issuer key stays published while any code it signed may still be uploaded in a batch
        self.issuer = KeyStore(
            "code",
            kek,
            clock,
            default_alg=settings.code_alg,
            publish_overlap=settings.code_validity + settings.code_skew + settings.code_batch_window,
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
            valid_from=int(key.created_at.timestamp()),
            valid_until=int(key.retired_at.timestamp()) if key.retired_at else None,
        )

    async def trust_list(self) -> TrustList:
        """The server's own trust list (rebuilt when the key set changes)."""
        keys = await self.issuer.published()
        ident = tuple(f"{k.kid}:{k.retired_at}" for k in keys)
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


class ScanRecorder:
    """Writes online scan records in batches, off the scan path: the gate has its answer already, and one
    multi-row insert every ``interval`` seconds costs far less than a transaction per scan. Records still
    queued are written at shutdown; a crash can lose at most one interval of history (never a decision,
    which the store holds, and never a batch upload, which is written before it is answered)."""

    def __init__(self, clock: Clock, *, interval: float = 0.2, max_batch: int = 500) -> None:
        self.clock = clock
        self.interval = interval
        self.max_batch = max_batch
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=50_000)
        self._task: asyncio.Task[None] | None = None

    def add(self, record: dict[str, Any]) -> None:
        try:
            self._queue.put_nowait(record)
        except asyncio.QueueFull:
            log.error(
                "scan history queue full: a record was dropped", extra={"scanner": record["scanner_id"]}
            )

    async def start(self) -> None:
        self._queue = asyncio.Queue(maxsize=50_000)  # bound to the running loop
        self._task = asyncio.create_task(self._run(), name="scan-recorder")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.flush()
            except Exception:  # keep recording; the failed batch is logged and retried next time
                log.exception("writing scan history failed")

    async def flush(self) -> int:
        written = 0
        while not self._queue.empty():
            batch = [self._queue.get_nowait() for _ in range(min(self.max_batch, self._queue.qsize()))]
            now = self.clock.now()
            rows = [{**r, "received_at": now} for r in batch]
            try:
                await db.bulk_insert(ScanRecord, rows, on_conflict_do_nothing="scanner_record")
            except Exception:
                for r in batch:  # put them back for the next round
                    self.add(r)
                raise
            written += len(rows)
        return written


class ScanService:
    """Online and batch verification of scanned codes (routing into mini-apps comes on top of this)."""

    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        store: Store,
        keys: CodeKeys,
    ) -> None:
        self.s = settings
        self.clock = clock
        self.store = store
        self.keys = keys
        self.recorder = ScanRecorder(clock)
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
        if raw is None:
            return "unknown_code", res, None
        return None, res, dict(json.loads(raw))

    async def _claim(
        self, context: str, cti: bytes, mapping: dict[str, Any], mine: str, *, offline: bool = False
    ) -> str | None:
        """Claim the code's single use in this context and read the account's markers, in one round trip.
        Returns the refusal reason, or None when this scan may pass."""
        claimed, holder, (revoked, deleted, blocked) = await self.store.claim(
            f"code:used:{context}:{cti.hex()}",
            mine,
            ttl=self.replay_ttl,
            read=(
                revoked_session_key(mapping["s"]),
                f"auth:deleted-citizen:{mapping['c']}",
                f"auth:blocked-citizen:{mapping['c']}",
            ),
        )
        if deleted is not None:
            return "account_deleted"
        if blocked is not None:
            return "account_blocked"
        if revoked is not None and not offline:  # an offline scan may predate the sign-out
            return "device_revoked"
        if not claimed and (
            holder is None or holder.decode() != mine
        ):  # a retry of this record keeps its answer
            return "replayed"
        return None

    def _decision(
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

    async def scan(
        self,
        scanner: MachinePrincipal,
        token: str,
        *,
        record_id: str | None = None,
        scanned_at: float | None = None,
        decide: Decide | None = None,
        meta: dict[str, str] | None = None,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Online scan: verify, single use per context across all workers. Returns (decision, record)."""
        now = self.clock.time()
        record_id = record_id or uuid.uuid4().hex
        reason, res, mapping = await self._verify(token, now, scanner)
        if reason is None:
            assert res.cti is not None and mapping is not None
            reason = await self._claim(scanner.context, res.cti, mapping, f"{scanner.client_id}/{record_id}")
        decision = self._decision(scanner, reason, record_id=record_id)
        if reason is None and decide is not None:
            assert mapping is not None
            decision["meta"] = meta or {}
            decision = await decide(scanner, decision, res, mapping, scanned_at or now, False)
        record = self._record(scanner, decision, res, mapping, at=scanned_at or now, offline=False)
        return decision, record

    def _record(
        self,
        scanner: MachinePrincipal,
        decision: dict[str, Any],
        res: Any,
        mapping: dict[str, Any] | None,
        *,
        at: float,
        offline: bool,
    ) -> dict[str, Any]:
        return {
            "scanner_id": scanner.client_id,
            "record_id": decision["record_id"],
            "scanner_record": f"{scanner.client_id}/{decision['record_id']}",
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
        concurrent upload of the same record: the unique key decides, without an error)."""
        inserted = (
            await ScanRecord.insert(ScanRecord(**record, received_at=self.clock.now()))
            .on_conflict(target=ScanRecord.scanner_record, action="DO NOTHING")
            .returning(ScanRecord.id)
            .run()
        )
        return bool(inserted)

    async def stored(self, scanner: MachinePrincipal, record_id: str) -> dict[str, Any] | None:
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

    async def batch(
        self, scanner: MachinePrincipal, records: list[dict[str, Any]], *, decide: Decide | None = None
    ) -> list[dict[str, Any]]:
        """Offline uploads: each record decided once (idempotent per scanner and record id); a code that
        another scanner (or an online scan) already used is flagged as a replay, not accepted twice."""
        now = self.clock.time()
        # decided in scan-time order (fares, caps and transfers as the rides happened), answered in the
        # order the terminal sent them
        order = sorted(range(len(records)), key=lambda i: (records[i]["scanned_at"], i))
        answers: dict[int, dict[str, Any]] = {}
        for index in order:
            rec = records[index]
            record_id = rec["record_id"]
            previous = await self.stored(scanner, record_id)
            if previous is not None:
                answers[index] = previous
                continue
            at = float(rec["scanned_at"])
            flagged = False
            reason: str | None
            if at > now + self.s.code_skew or at < now - self.s.code_batch_window:
                reason, res, mapping = "bad_scan_time", None, None
            else:
                reason, res, mapping = await self._verify(rec["token"], at, scanner)
                if reason is None:
                    assert res is not None and res.cti is not None and mapping is not None
                    reason = await self._claim(
                        scanner.context, res.cti, mapping, f"{scanner.client_id}/{record_id}", offline=True
                    )
                    flagged = reason == "replayed"
            decision = self._decision(scanner, reason, record_id=record_id, flagged=flagged)
            if reason is None and decide is not None:
                assert mapping is not None
                decision["meta"] = rec.get("meta") or {}
                decision = await decide(scanner, decision, res, mapping, at, True)
            if not await self.save(self._record(scanner, decision, res, mapping, at=at, offline=True)):
                decision = await self.stored(scanner, record_id) or decision
            if flagged:
                log.warning(
                    "code replay flagged", extra={"scanner": scanner.client_id, "record_id": record_id}
                )
            answers[index] = decision
        return [answers[i] for i in range(len(records))]


def _unpack_display(stored: Any) -> dict[str, Any]:
    value = dict(stored if isinstance(stored, dict) else json.loads(stored))
    data = value.pop("data", {})
    return {"display": value, "data": data}
