"""Issuing codes, publishing the trust list, and verifying scans online and in batches."""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from auth.principals import CitizenPrincipal, MachinePrincipal
from auth.revocations import Revocations
from backend import db
from backend.batch import BatchWriter
from backend.clock import Clock
from backend.crypto import b64u
from backend.keystore import RELOAD_INTERVAL, KeyStore, LoadedKey
from backend.live import Live
from backend.runtime import Runtime, Slot
from backend.settings import Settings
from backend.store import Store
from codes import format as fmt
from codes.owners import Facts
from codes.sources import EntitlementService
from codes.tables import IssuedCode
from codes.trustlist import TrustedKey, TrustList, build_document, sign_document
from codes.verifier import Result, verify

log = logging.getLogger("shengshitong.codes")


def iso(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class CodeFreshness:
    """A citizen's current code follows the state it claims: when an entitlement changes, the cached
    code is dropped (its marker moves on, in the shared store, so every worker sees it at the next
    fetch) and the citizen's open apps are told on the live channel to fetch a new one."""

    def __init__(self, settings: Settings, store: Store, live: Live) -> None:
        self._store = store
        self._live = live
        # longer than any cached code lives (a marker that expired reads as "" and the cache then
        # agrees with it only if it was written after the change)
        self._ttl = float(max(3600, settings.code_validity * 4))

    @staticmethod
    def key(citizen_id: str) -> str:
        return f"code:ver:{citizen_id}"

    async def real_name_changed(self, citizen_id: str) -> None:
        await self.changed([citizen_id], "real_name")

    async def changed(self, citizen_ids: list[str], reason: str) -> None:
        """Drop these citizens' codes and tell their apps: now, and again after the surrounding
        transaction commits if one is open (a fetch in between would build a code from the old rows
        and keep it under the new marker)."""
        if not citizen_ids:
            return
        await self._changed(citizen_ids, reason)
        ids = list(citizen_ids)
        db.after_commit(lambda: self._changed(ids, reason))

    async def _changed(self, citizen_ids: list[str], reason: str) -> None:
        for start in range(0, len(citizen_ids), 1000):
            part = citizen_ids[start : start + 1000]
            marker = secrets.token_hex(6)
            await self._store.set_many(
                {self.key(c): marker for c in part}, dict.fromkeys(map(self.key, part), self._ttl)
            )
            await self._live.publish((f"citizen:{c}", "code", {"reason": reason}) for c in part)


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
        self,
        settings: Settings,
        clock: Clock,
        store: Store,
        keys: CodeKeys,
        entitlements: EntitlementService,
        freshness: CodeFreshness,
    ) -> None:
        self.s = settings
        self.clock = clock
        self.store = store
        self.keys = keys
        self.entitlements = entitlements
        self.freshness = freshness
        # the durable copy of every code's mapping, written in batches off the request's path
        self.mappings = BatchWriter(IssuedCode, clock, unique="cti", purge=IssuedCode.expires_at)

    @property
    def mapping_ttl(self) -> int:
        return self.s.code_validity + self.s.code_skew + self.s.code_batch_window

    async def current(self, principal: CitizenPrincipal) -> dict[str, Any]:
        """The citizen's current code: the same one until ``refresh_after`` (or until what it claims
        changes: an entitlement's owner said so, a validity ended), then a fresh one."""
        cache_key = f"code:current:{principal.session_id}"
        cached, marker = await self.store.mget(cache_key, self.freshness.key(principal.citizen_id))
        version = marker.decode() if marker else ""
        if cached is not None:
            issued = dict(json.loads(cached))
            if self.clock.time() < issued["refresh_after"] and issued.get("v", "") == version:
                return issued
        standing = await self.entitlements.standing(principal.citizen_id)
        ent = standing.entitlements
        key = await self.keys.issuer.active()
        now = int(self.clock.time())
        exp = now + self.s.code_validity
        cti = secrets.token_bytes(12)
        keyed = await self.entitlements.keyed(principal.citizen_id, cti)
        token, cti = fmt.encode(
            private_key=key.private,
            alg=key.alg,
            kid=key.kid_bytes,
            issuer=self.s.code_issuer,
            iat=now,
            exp=exp,
            entitlements=ent,
            cti=cti,
            keyed=keyed,
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
        refresh = now + self.s.code_refresh_after
        if standing.changes_at is not None:  # an entitlement ends or starts by itself before then
            refresh = max(now + 1, min(refresh, int(standing.changes_at.timestamp()) + 1))
        issued = {
            "token": token,
            "issued_at": now,
            "expires_at": exp,
            "refresh_after": refresh,
            "entitlements": ent.readable(),
            "verified": standing.verified,
            "kid": key.kid,
            "v": version,
        }
        await self.store.set(cache_key, json.dumps(issued, default=str), ttl=max(1, refresh - now))
        return issued


class Claim(NamedTuple):
    """A scan's hold on a code's single use in one context."""

    key: str  # the single-use key of (context, code)
    value: str  # this attempt's value under it: "<scanner>/<record>#<attempt>"
    retry: bool  # an earlier attempt of the same record held it (this one has taken it over)


class CodeHolder(NamedTuple):
    """Whom a verified code stands for: the citizen, the session (sign-in) and the device it was issued to."""

    citizen_id: str
    session_id: str
    device_id: str

    @classmethod
    def from_mapping(cls, mapping: dict[str, Any]) -> CodeHolder:
        return cls(str(mapping["c"]), str(mapping["s"]), str(mapping.get("d") or ""))


class Checked(NamedTuple):
    """A scanned code after verification and the single-use claim."""

    reason: str | None  # the refusal, or None: the scan goes on to the mini-app
    result: Result | None  # the verifier's result (None when the scan time was refused first)
    holder: CodeHolder | None  # the code's citizen, session and device
    claim: Claim | None  # held when the scan may go on (release it if nothing is decided)
    extra: list[bytes | None] = []  # the values of the extra keys the caller asked to read with it

    @property
    def code_id(self) -> str:
        """Hex of the code's cti (never the token itself), or "" before verification."""
        return self.result.cti.hex() if self.result is not None and self.result.cti else ""


REFUSED_SCAN_TIME = Checked("bad_scan_time", None, None, None)


class ScanService:
    """Verification of scanned codes: signature, time window, entitlement, single use, account state.
    Deciding a scan and keeping its record is the gate's (``miniapps.gate``)."""

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

    @property
    def replay_ttl(self) -> int:
        # long enough that a code used online is still caught when a terminal uploads it later
        return self.s.code_validity + self.s.code_skew + self.s.code_batch_window

    def _verify(self, token: str, at: float, requirement: str | None, trust: TrustList) -> Result:
        return verify(token, trust, now=at, skew=self.s.code_skew, requirement=requirement)

    async def _verified(self, token: str, at: float, requirement: str | None) -> Result:
        res = self._verify(token, at, requirement, await self.keys.trust_list())
        if res.reason == "unknown_kid":  # perhaps another worker rotated: reload once and retry
            res = self._verify(token, at, requirement, await self.keys.trust_for_kid(res.kid))
        return res

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
        self, context: str, cti: bytes, record_key: str, extra: tuple[str, ...]
    ) -> tuple[str, dict[str, Any] | None, Claim, list[bytes | None]]:
        """Look the code's holder up, claim the code's single use in this context, and read the
        holder's account markers and the ``extra`` keys (``{c}``: the citizen id, ``{s}``: the session)
        in one round trip. Returns (the claim's outcome — ``unknown`` for a code the store does not
        know —, the holder's mapping, the claim, the values read). Every attempt writes a value of its
        own, so an attempt that gave up can release its claim without freeing one a retry of its
        record holds."""
        key = f"code:used:{context}:{cti.hex()}"
        mine = f"{record_key}#{secrets.token_hex(4)}"
        lookup = f"code:cti:{cti.hex()}"
        read = (*self.revocations.keys_for("{c}", "{s}"), *extra)
        outcome, found, values = await self.store.claim_through(
            lookup, key, mine, ttl=self.replay_ttl, read=read, retry_prefix=record_key + "#"
        )
        mapping = None if found is None else dict(json.loads(found))
        if outcome == "unknown":  # not in the store: the database's copy, then the same claim
            mapping = await self._mapping_from_database(cti.hex())
            if mapping is None:
                return outcome, None, Claim(key, "", False), []
            outcome, _, values = await self.store.claim(
                key,
                mine,
                ttl=self.replay_ttl,
                read=tuple(k.replace("{c}", mapping["c"]).replace("{s}", mapping["s"]) for k in read),
                retry_prefix=record_key + "#",
            )
        return outcome, mapping, Claim(key, mine if outcome != "held" else "", outcome == "retry"), values

    async def release(self, claim: Claim) -> None:
        """Give a code's single use back: nothing was decided for the scan that claimed it.

        Only a record's first attempt gives it back, and only while the claim is still its own. A retry
        of the record (which took the claim over) never does: an earlier attempt of the same record may
        still be deciding, and its decision needs the claim; the code then stays held for this record,
        whose next retry may still pass."""
        if claim.value and not claim.retry:
            await self.store.delete_if_equal(claim.key, claim.value)

    async def check(
        self,
        scanner: MachinePrincipal,
        token: str,
        *,
        at: float,
        record_id: str,
        offline: bool,
        requirement: str | None,
        extra: tuple[str, ...] = (),
    ) -> Checked:
        """Verify a scanned code at time ``at`` (it must carry the entitlement ``requirement`` names, if
        any), claim its single use for this record in the scanner's context, and read the ``extra``
        store keys (templates with ``{c}`` for the citizen id), in one store round trip."""
        res = await self._verified(token, at, requirement)
        if not res.valid:
            return Checked(res.reason, res, None, None)
        assert res.cti is not None
        outcome, mapping, claim, values = await self._claim(
            scanner.context, res.cti, f"{scanner.client_id}/{record_id}", extra
        )
        if mapping is None:
            return Checked("unknown_code", res, None, None)
        holder = CodeHolder.from_mapping(mapping)
        markers, read = values[:4], values[4:]
        state = await self.revocations.state(holder.citizen_id, holder.session_id, markers)
        if state.deleted:
            reason: str | None = "account_deleted"
        elif state.blocked:
            reason = "account_blocked"
        elif state.session_revoked and not offline:  # an offline scan may predate the sign-out
            reason = "device_revoked"
        elif outcome == "held":
            reason = "replayed"
        else:
            reason = None
        return Checked(reason, res, holder, claim if reason is None else None, read)

    def scan_time_refused(self, at: float, *, offline: bool) -> bool:
        """A scan time from the future, or older than an upload may be (the batch window) or than an
        online scan may have taken to arrive (a code's validity): the time a mini-app charges and
        admits by is the gate's, so it must be one the code could really have been scanned at."""
        now = self.clock.time()
        oldest = self.s.code_batch_window if offline else self.s.code_validity + self.s.code_skew
        return at > now + self.s.code_skew or at < now - oldest


@dataclass(frozen=True)
class CodeServices:
    keys: CodeKeys
    facts: Facts
    freshness: CodeFreshness
    entitlements: EntitlementService
    issuer: CodeIssuer
    scans: ScanService


CODES = Slot[CodeServices]("codes")


def build_code_services(
    runtime: Runtime, revocations: Revocations, realname_observers: list[Callable[[str], Awaitable[None]]]
) -> CodeServices:
    """``realname_observers``: identity's list of those told when a citizen's real name is verified or
    cleared; the code's freshness subscribes to it here (what the code may claim changes with it)."""
    s = runtime.settings
    keys = CodeKeys(s, runtime.clock)
    freshness = CodeFreshness(s, runtime.store, runtime.live)
    realname_observers.append(freshness.real_name_changed)
    facts = Facts(s, runtime.clock, freshness.changed)
    entitlements = EntitlementService(facts, runtime.clock)
    return CodeServices(
        keys=keys,
        facts=facts,
        freshness=freshness,
        entitlements=entitlements,
        issuer=CodeIssuer(s, runtime.clock, runtime.store, keys, entitlements, freshness),
        scans=ScanService(s, runtime.clock, runtime.store, keys, revocations),
    )
