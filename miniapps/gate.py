"""The gate: every scan of a citizen code, verified by the codes package and decided by the mini-app
that owns the scanner, within a time budget.

The codes package verifies (signature, time, entitlement, single use, account state); the gate hands an
allowed scan to the scanner's mini-app as a :class:`ScanEvent` with the citizen's pairwise id, and the
mini-app's :class:`ScanDecision` goes back to the scanner as a :class:`ScanResult`, built one way for
every outcome (:func:`result_for`). A mini-app that raises or overruns its budget yields ``deny`` /
``app_unavailable`` for that scan only.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec
from prometheus_client import Counter, Histogram

from auth.pairwise import Pairwise
from auth.principals import MachinePrincipal
from backend import db
from backend.batch import BatchWriter
from backend.clock import Clock
from backend.i18n import current_locale
from backend.runtime import ScanObserver, ScanSeen
from backend.store import Store
from codes.entitlements import Entitlements
from codes.services import REFUSED_SCAN_TIME, Checked, ScanService
from miniapps.contract import Display, MiniApp, ScanDecision, ScanEvent, Scanner
from miniapps.journal import Entry, Journal, answer_key, state_key
from miniapps.schemas import BatchRecord, ScanRequest, ScanResult
from miniapps.tables import ScanRecord
from payments import unpaid as unpaid_counts
from payments.unpaid import UnpaidCounts

log = logging.getLogger("shengshitong.scans")
SCANS = Counter("shengshitong_scans", "Scan decisions", ["app_id", "result", "reason"])
APP_LATENCY = Histogram(
    "shengshitong_miniapp_scan_seconds",
    "Time a mini-app took to decide a scan",
    ["app_id"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0),
)

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

# What a gate shows when the code lacks what its context requires, by requirement (and for the health
# status by colour): the citizen learns at the gate what is missing, not only that something is.
_UNMET: dict[str, tuple[tuple[str, str], tuple[str, str]]] = {
    "medical": (
        ("未参加医保", "此处需要医保"),
        ("No medical insurance", "This desk needs medical insurance"),
    ),
    "social_security": (
        ("未参加社保", "此处需要社保"),
        ("No social security", "This hall needs social security"),
    ),
    "tickets": (("无今日门票", "请先购票"), ("No ticket for today", "Buy a ticket first")),
    "transit": (("乘车受限", "请先补缴欠费"), ("Riding refused", "Pay the unpaid fares first")),
    "health:yellow": (
        ("健康码黄码", "请按卫健部门要求处理"),
        ("Health code yellow", "Follow the health authority's advice"),
    ),
    "health:red": (
        ("健康码红码", "请按卫健部门要求处理"),
        ("Health code red", "Follow the health authority's advice"),
    ),
    "health:unknown": (
        ("无健康码状态", "请完成实名认证"),
        ("No health status", "Verify your real name first"),
    ),
}


def unmet(requirement: str, ent: Entitlements) -> tuple[str, str]:
    """Which part of ``_UNMET`` says why ``ent`` does not meet ``requirement``, and the state found."""
    if requirement == "health" or (requirement == "transit" and ent.health == "red"):
        return f"health:{ent.health}", ent.health
    if requirement == "transit":
        return "transit", "refused"
    return requirement, "missing"


def display_for(reason: str | None, locale: str | None = None) -> Display:
    """What the gate shows for a platform outcome, in ``locale`` (the request's language by default)."""
    colour, zh, en = DISPLAY.get(reason or "ok", REFUSED)
    title, subtitle = en if (locale or current_locale()) == "en" else zh
    return Display(title=title, subtitle=subtitle, color=colour)  # type: ignore[arg-type]


def result_for(
    scanner: MachinePrincipal,
    record_id: str,
    *,
    refusal: str | None = None,
    answer: ScanDecision | None = None,
    flagged: bool = False,
    lacking: tuple[str, Entitlements] | None = None,
) -> ScanResult:
    """The scanner's answer: a platform refusal (``refusal``; for ``not_entitled`` what the code lacks,
    ``lacking`` = (the requirement, the code's entitlements)), or the mini-app's decision (``answer``)."""
    if answer is None:
        allow, reason, display, data = refusal is None, refusal or "ok", display_for(refusal), {}
        if refusal == "not_entitled" and lacking is not None:
            which, state = unmet(*lacking)
            zh, en = _UNMET.get(which, (DISPLAY["not_entitled"][1], DISPLAY["not_entitled"][2]))
            title, subtitle = en if current_locale() == "en" else zh
            display = Display(title=title, subtitle=subtitle, color="red")
            data = {"required": lacking[0], "status": state}
    else:
        allow = answer.allow
        reason = "ok" if allow else (answer.reason if answer.reason != "ok" else "") or "denied"
        display = answer.display or display_for(None if allow else reason)
        data = answer.data
    return ScanResult(
        result="allow" if allow else "deny",
        reason=reason,
        app_id=scanner.app_id,
        context=scanner.context,
        record_id=record_id,
        flagged=flagged,
        display=display,
        data=data,
    )


def unavailable(result: ScanResult) -> ScanResult:
    return msgspec.structs.replace(
        result, result="deny", reason="app_unavailable", display=display_for("app_unavailable"), data={}
    )


class ScanRecords:
    """The gate's records: a decided scan's *final* row is the record's answer for good (a mini-app's
    decision, a batch upload's refusal) and holds the record's idempotency key (scanner, record id);
    any other (a refusal at the gate, an undecided scan) is history only, written in batches behind the
    answer under a key of its own, so it never stands in for the answer a retry of the record gets."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.history = BatchWriter(ScanRecord, clock, unique="scanner_record", stamp="received_at")

    @staticmethod
    def key(scanner: MachinePrincipal, record_id: str) -> str:
        return f"{scanner.client_id}/{record_id}"

    def row(
        self,
        scanner: MachinePrincipal,
        result: ScanResult,
        checked: Checked,
        *,
        at: float,
        offline: bool,
        final: bool,
    ) -> dict[str, Any]:
        key = self.key(scanner, result.record_id)
        return {
            "scanner_id": scanner.client_id,
            "record_id": result.record_id,
            "scanner_record": key if final else f"{key}#{secrets.token_hex(4)}",
            "app_id": scanner.app_id,
            "context": scanner.context,
            "place": scanner.place,
            "citizen_id": checked.holder.citizen_id if checked.holder else None,
            "code_id": checked.code_id,
            "result": result.result,
            "reason": result.reason,
            "flagged": result.flagged,
            "offline": offline,
            "scanned_at": datetime.fromtimestamp(at, UTC),
            "display": _shown(result),
        }

    def keep(self, row: dict[str, Any]) -> None:
        """History only: written in the next batch, off the gate's critical path."""
        self.history.add(row)

    async def save(self, row: dict[str, Any]) -> bool:
        """Store a final row; False when this (scanner, record id) was stored already (also by a
        concurrent attempt of the same record: the unique key decides, without an error). Inside a
        transaction, a concurrent twin's insert waits here for this one to commit or roll back."""
        inserted = (
            await ScanRecord.insert(ScanRecord(**row, received_at=self.clock.now()))
            .on_conflict(target=ScanRecord.scanner_record, action="DO NOTHING")
            .returning(ScanRecord.id)
            .run()
        )
        return bool(inserted)

    async def decided(self, scanner_record: str, result: ScanResult) -> None:
        """Write a decision into the record's final row (inserted first in the same transaction)."""
        await (
            ScanRecord.update(
                {
                    ScanRecord.result: result.result,
                    ScanRecord.reason: result.reason,
                    ScanRecord.display: _shown(result),
                }
            )
            .where(ScanRecord.scanner_record == scanner_record)
            .run()
        )

    async def stored(self, scanner: MachinePrincipal, record_id: str) -> ScanResult | None:
        """The final answer of a record, if it has one."""
        row = (
            await ScanRecord.select(
                ScanRecord.result, ScanRecord.reason, ScanRecord.flagged, ScanRecord.display
            )
            .where(ScanRecord.scanner_record == self.key(scanner, record_id))
            .first()
            .run()
        )
        if row is None:
            return None
        shown = row["display"]
        shown = dict(shown) if isinstance(shown, dict) else msgspec.json.decode(shown)
        data = shown.pop("data", {})
        return ScanResult(
            result=row["result"],
            reason=row["reason"],
            app_id=scanner.app_id,
            context=scanner.context,
            record_id=record_id,
            flagged=row["flagged"],
            display=msgspec.convert(shown, Display),
            data=data,
        )


def _shown(result: ScanResult) -> dict[str, Any]:
    """What a record keeps of the answer: the screen and the data shown with it."""
    return {**msgspec.to_builtins(result.display), "data": result.data}


def _event(
    openid: str,
    scanner: MachinePrincipal,
    checked: Checked,
    at: float,
    meta: dict[str, str],
    record_id: str,
    offline: bool,
    unpaid: int | None = None,
) -> ScanEvent:
    """What a mini-app is told of a verified scan (either way it decides)."""
    entitlements = checked.result.entitlements if checked.result is not None else None
    return ScanEvent(
        openid=openid,
        entitlements=entitlements.readable() if entitlements else {},
        scanner=Scanner(client_id=scanner.client_id, place=scanner.place, context=scanner.context),
        scanned_at=datetime.fromtimestamp(at, UTC),
        meta=meta,
        record_id=record_id,
        offline=offline,
        locale=current_locale(),  # the gate's language: its request's Accept-Language
        unpaid=unpaid,
    )


class _DecidedElsewhere(Exception):
    """A concurrent attempt of the same record committed its decision first."""


class _Abandoned(Exception):
    """The gate was answered ``app_unavailable`` before the mini-app decided: its writes are undone."""


class _Run:
    """The life of one mini-app decision: running → committing (the gate waits for the commit), or
    running → abandoned (the gate was answered; the decision and its writes are rolled back)."""

    __slots__ = ("started", "state")

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.state = "running"

    def commit(self) -> bool:
        if self.state != "running":
            return False
        self.state = "committing"
        return True

    def abandon(self) -> bool:
        if self.state != "running":
            return False
        self.state = "abandoned"
        return True


# An offline upload is under no gate's time pressure: a mini-app gets this long per record.
BATCH_BUDGET = 30.0
# How long a fast decision's answer is kept in the store for retries of its record (afterwards its
# final record in the database answers them)
ANSWER_TTL = 300.0
# Fast decisions a concurrent change of the rider's state may send back to decide again
FAST_ATTEMPTS = 3
_result_decoder = msgspec.json.Decoder(ScanResult)


class Gate:
    """Decides verified scans with the scanner's mini-app.

    A mini-app's decision and every write it makes run in one database transaction, together with the
    scan's final record (the record's idempotency key): so a decision the gate did not receive leaves no
    effect, a retry of a record returns its stored answer without asking the mini-app again, and two
    concurrent attempts of one record cannot both take effect. The budget is the mini-app's own time:
    the clock starts once its transaction has begun (waiting for a database connection or SQLite's write
    lock is the platform's, not the mini-app's). A mini-app that overruns it is not cut off half-way:
    the gate gets ``app_unavailable`` at once, the mini-app's transaction is rolled back when it finishes
    (or when it is cancelled, ten budgets later at the least a second, if it never does), and the code's
    single use is given back, so the gate's next try can pass.
    """

    def __init__(
        self,
        scans: ScanService,
        apps: dict[str, MiniApp],
        pairwise: Pairwise,
        *,
        clock: Clock,
        budget: float,
        observers: list[ScanObserver],
        store: Store,
        unpaid: UnpaidCounts,
        writes: str = "behind",
    ) -> None:
        self.scans = scans
        self.apps = apps
        self.pairwise = pairwise
        self.store = store
        self.unpaid = unpaid
        self.journal = Journal(store, clock, apps, pairwise, inline=writes == "inline")
        self.records = ScanRecords(clock)
        self.budget = budget
        self.grace = min(10.0, max(1.0, 10 * budget))
        self.observers = observers
        self._abandoned: set[asyncio.Task[ScanResult]] = set()

    async def start(self) -> None:
        await self.records.history.start()
        await self.journal.start()

    async def stop(self) -> None:
        """At shutdown, before the pool closes: let abandoned decisions roll back, write the journal and
        the history still held."""
        await self.settle()
        await self.journal.stop()
        await self.records.history.stop()

    async def settle(self) -> None:
        """Wait until every abandoned decision has rolled back."""
        while self._abandoned:
            await asyncio.gather(*self._abandoned, return_exceptions=True)

    def requirement(self, scanner: MachinePrincipal) -> str | None:
        """The entitlement the scanner's context requires of the code (its mini-app's manifest)."""
        app = self.apps.get(scanner.app_id)
        return None if app is None else app.manifest.scan_contexts.get(scanner.context)

    def _lacking(self, scanner: MachinePrincipal, checked: Checked) -> tuple[str, Entitlements] | None:
        requirement = self.requirement(scanner)
        if checked.reason != "not_entitled" or requirement is None or checked.result is None:
            return None
        ent = checked.result.entitlements
        return None if ent is None else (requirement, ent)

    def _fast_app(self, scanner: MachinePrincipal) -> MiniApp | None:
        app = self.apps.get(scanner.app_id)
        return app if app is not None and app.decides_fast() else None

    async def _check(
        self, scanner: MachinePrincipal, token: str, at: float, *, now: float, record_id: str, offline: bool
    ) -> Checked:
        if self.scans.scan_time_refused(at, offline=offline):
            return REFUSED_SCAN_TIME
        fast = self._fast_app(scanner)
        return await self.scans.check(
            scanner,
            token,
            at=now,
            record_id=record_id,
            offline=offline,
            requirement=self.requirement(scanner),
            # a fast decision's inputs, read with the claim: the rider's state at the mini-app, what the
            # citizen owes, and the answer of an earlier attempt of this record
            extra=()
            if fast is None
            else (
                state_key(fast.manifest.id),
                unpaid_counts.TEMPLATE,
                answer_key(self.records.key(scanner, record_id)),
            ),
        )

    @staticmethod
    def _answered(checked: Checked) -> ScanResult | None:
        """The answer an earlier attempt of this record was given on the fast path, if any."""
        if checked.claim is None or not checked.claim.retry or len(checked.extra) < 3:
            return None
        raw = checked.extra[2]
        return None if raw is None else _result_decoder.decode(raw)

    async def _decide_fast(
        self,
        app: MiniApp,
        scanner: MachinePrincipal,
        result: ScanResult,
        checked: Checked,
        at: float,
        meta: dict[str, str],
        *,
        offline: bool,
        budget: float,
    ) -> tuple[ScanResult, bool]:
        """Decide a claimed scan from the rider's state at the mini-app (no database on the way unless
        the store has no state of the rider or no count of what the citizen owes) and commit the answer,
        the new state and the effect to the journal in one atomic step; the gate is answered after it."""
        assert checked.claim is not None and checked.holder is not None and checked.result is not None
        app_id, citizen = app.manifest.id, checked.holder.citizen_id
        openid = self.pairwise.openid(app_id, citizen)
        raw_state, raw_unpaid, _ = checked.extra
        key = state_key(app_id, citizen)
        try:
            # the database only for what the store does not hold (a rider new here, a count expired)
            if raw_unpaid is not None:
                owed = int(raw_unpaid)
            else:
                owed = await asyncio.wait_for(self.unpaid.total(citizen), budget)
            expected, state = raw_state, raw_state
            if state is None:
                state = await asyncio.wait_for(app.load_state(openid), budget)
            for _ in range(FAST_ATTEMPTS):
                event = _event(openid, scanner, checked, at, meta, result.record_id, offline, owed)
                fast = await app.decide(event, state)
                answer = result_for(scanner, result.record_id, answer=fast.decision)
                row = self.records.row(scanner, answer, checked, at=at, offline=offline, final=True)
                out = await self.journal.commit(
                    Entry(app_id=app_id, citizen_id=citizen, openid=openid, record=row, effect=fast.effect),
                    state_key=key,
                    expected=expected,
                    state=fast.state,
                    state_ttl=app.state_ttl,
                    once_key=answer_key(row["scanner_record"]),
                    once_value=msgspec.json.encode(answer),
                    once_ttl=ANSWER_TTL,
                    add_key=unpaid_counts.key(citizen),
                    add=fast.owes,
                )
                if out == "decided":  # a concurrent attempt of this record committed first: its answer
                    stored = await self.store.get(answer_key(row["scanner_record"]))
                    if stored is not None:
                        return _result_decoder.decode(stored), True
                    return await self.records.stored(scanner, result.record_id) or unavailable(result), True
                if out != "changed":
                    return answer, True
                # the rider's state changed since it was read (a scan of theirs at another gate): again
                expected = state = await self.store.get(key)
                if state is None:
                    state = await asyncio.wait_for(app.load_state(openid), budget)
            log.error("a rider's state kept changing under a fast decision", extra={"app_id": app_id})
        except Exception:
            log.exception("fast scan decision failed", extra={"app_id": app_id})
        # (a cancelled request keeps its claim: whether its commit reached the store is unknown, and a
        # code given back after a committed decision could admit twice; a retry of the record passes)
        await self.scans.release(checked.claim)
        return unavailable(result), False

    async def decide(
        self,
        scanner: MachinePrincipal,
        result: ScanResult,
        checked: Checked,
        at: float,
        meta: dict[str, str],
        *,
        offline: bool,
        budget: float,
    ) -> tuple[ScanResult, bool]:
        """Decide a claimed scan with the scanner's mini-app: (the answer, whether it is the record's
        final answer, stored with the mini-app's writes). Whenever nothing is decided (the mini-app
        failed or overran, the platform failed on the way, the request was cancelled before the decision
        committed) the code's single use is given back."""
        assert checked.claim is not None and checked.holder is not None and checked.result is not None
        claim = checked.claim
        app = self.apps.get(scanner.app_id)
        if app is None or scanner.context not in app.manifest.scan_contexts:
            log.warning(
                "scan at a scanner whose mini-app or context is not enabled",
                extra={"scanner": scanner.client_id, "app_id": scanner.app_id, "context": scanner.context},
            )
            await self.scans.release(claim)
            return unavailable(result), False
        if app.decides_fast():
            return await self._decide_fast(
                app, scanner, result, checked, at, meta, offline=offline, budget=budget
            )
        app_id = app.manifest.id
        try:
            openid = await self.pairwise.issue(app_id, checked.holder.citizen_id)
        except BaseException:
            await self.scans.release(claim)
            raise
        event = _event(openid, scanner, checked, at, meta, result.record_id, offline)

        # the record's final row, written first in the transaction: a concurrent attempt of the same
        # record waits at its own insert for this one to commit (then answers from it) or roll back
        row = self.records.row(scanner, result, checked, at=at, offline=offline, final=True)
        run = _Run()
        task = asyncio.create_task(
            self._in_transaction(app, event, scanner, result.record_id, row, run), name=f"scan:{app_id}"
        )
        try:
            over = await self._wait(task, run, budget)
        except asyncio.CancelledError:
            if run.abandon():  # nobody will read this decision: undo it
                self._abandon(task, app_id)
                await self.scans.release(claim)
            raise  # (a decision already committing stands, with its claim)
        if not over:
            log.error("mini-app overran its scan budget", extra={"app_id": app_id, "budget_s": budget})
            self._abandon(task, app_id)
            await self.scans.release(claim)
            return unavailable(result), False
        try:
            return task.result(), True
        except _DecidedElsewhere:  # a concurrent attempt of this record decided first: its answer
            stored = await self.records.stored(scanner, result.record_id)
            assert stored is not None
            return stored, True
        except Exception:
            if run.started.is_set():
                log.exception("mini-app scan handler failed", extra={"app_id": app_id})
            else:
                log.exception("the scan's transaction could not begin", extra={"app_id": app_id})
            await self.scans.release(claim)
            return unavailable(result), False

    @staticmethod
    async def _wait(task: asyncio.Task[ScanResult], run: _Run, budget: float) -> bool:
        """Wait for a run: its transaction to begin (not counted), then the budget. True when it is over
        (decided, failed, or committing, which the gate waits for); False when it has been abandoned."""
        started = asyncio.create_task(run.started.wait())
        try:
            await asyncio.wait({task, started}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            started.cancel()
        if not task.done():
            await asyncio.wait({task}, timeout=budget)
        if not task.done():
            if run.abandon():
                return False
            await asyncio.wait({task})
        return True

    async def _in_transaction(
        self,
        app: MiniApp,
        event: ScanEvent,
        scanner: MachinePrincipal,
        record_id: str,
        row: dict[str, Any],
        run: _Run,
    ) -> ScanResult:
        async with db.transaction():
            run.started.set()
            if not await self.records.save(row):  # another attempt of this record has decided
                raise _DecidedElsewhere
            started = time.perf_counter()
            try:
                answer = await app.on_scan(event)
            finally:
                APP_LATENCY.labels(app.manifest.id).observe(time.perf_counter() - started)
            if not isinstance(answer, ScanDecision):
                raise TypeError(f"on_scan returned {type(answer).__name__}, not ScanDecision")
            if not run.commit():
                raise _Abandoned
            result = result_for(scanner, record_id, answer=answer)
            await self.records.decided(row["scanner_record"], result)
        return result

    def _abandon(self, task: asyncio.Task[ScanResult], app_id: str) -> None:
        """Let an abandoned decision finish (it rolls back), and cancel it if it has not after the grace."""
        self._abandoned.add(task)
        timer = asyncio.get_running_loop().call_later(self.grace, task.cancel)

        def done(t: asyncio.Task[ScanResult]) -> None:
            timer.cancel()
            self._abandoned.discard(t)
            if not t.cancelled() and not isinstance(t.exception(), _Abandoned | _DecidedElsewhere):
                log.error(
                    "an abandoned scan decision failed while rolling back",
                    exc_info=t.exception(),
                    extra={"app_id": app_id},
                )

        task.add_done_callback(done)

    def _observe(self, app_id: str, result: ScanResult, seconds: float, offline: bool) -> None:
        SCANS.labels(app_id, result.result, result.reason).inc()
        seen = ScanSeen(app_id, result.result, result.reason, seconds, offline)
        for observe in self.observers:
            try:
                observe(seen)
            except Exception:  # an observer never costs a gate its answer
                log.exception("scan observer failed")

    async def scan(self, scanner: MachinePrincipal, request: ScanRequest) -> ScanResult:
        started = time.perf_counter()
        now = self.scans.clock.time()
        at = request.scanned_at or now
        record_id = request.record_id or uuid.uuid4().hex
        checked = await self._check(scanner, request.token, at, now=now, record_id=record_id, offline=False)
        result: ScanResult | None = None
        if checked.claim is not None and checked.claim.retry:  # a retry gets the record's answer
            result = self._answered(checked) or await self.records.stored(scanner, record_id)
        if result is None:
            result = result_for(
                scanner, record_id, refusal=checked.reason, lacking=self._lacking(scanner, checked)
            )
            final = False
            if checked.reason is None:
                result, final = await self.decide(
                    scanner, result, checked, at, request.meta or {}, offline=False, budget=self.budget
                )
            if not final:
                self.records.keep(
                    self.records.row(scanner, result, checked, at=at, offline=False, final=False)
                )
        self._observe(scanner.app_id, result, time.perf_counter() - started, False)
        return result

    # ---- a code read by a mini-app's own protocol server (一码借阅) -------------
    async def identify(self, scanner: MachinePrincipal, token: str) -> tuple[ScanResult, str]:
        """A code scanned at a terminal that speaks the mini-app's own protocol (a library's SIP2
        self-check kiosk): verified and claimed exactly as a scan is (signature, time window, the
        context's entitlement, single use in the scanner's context, account state) and kept in the
        citizen's scan history, but the mini-app is not asked to decide: it gets the citizen's openid
        for itself. (The answer, the openid or "" when refused.)"""
        started = time.perf_counter()
        now = self.scans.clock.time()
        record_id = uuid.uuid4().hex
        checked = await self._check(scanner, token, now, now=now, record_id=record_id, offline=False)
        openid = ""
        if checked.reason is None and checked.holder is not None:
            try:
                openid = await self.pairwise.issue(scanner.app_id, checked.holder.citizen_id)
            except BaseException:
                if checked.claim is not None:
                    await self.scans.release(checked.claim)
                raise
            result = result_for(
                scanner,
                record_id,
                answer=ScanDecision(allow=True, reason="ok", display=display_for("ok")),
            )
        else:
            result = result_for(
                scanner,
                record_id,
                refusal=checked.reason or "unknown_code",
                lacking=self._lacking(scanner, checked),
            )
        row = self.records.row(scanner, result, checked, at=now, offline=False, final=bool(openid))
        if openid:  # the citizen sees at once where their code was used
            await self.records.save(row)
        else:
            self.records.keep(row)
        self._observe(scanner.app_id, result, time.perf_counter() - started, False)
        return result, openid

    async def batch(self, scanner: MachinePrincipal, records: list[BatchRecord]) -> list[ScanResult]:
        """Offline uploads: each record decided once (idempotent per scanner and record id); a code that
        another scanner (or an online scan) already used is flagged as a replay, not accepted twice. A
        record the mini-app could not decide is answered ``app_unavailable`` and not stored: the terminal
        uploads it again later."""
        # decided in scan-time order (fares, caps and transfers as the rides happened), answered in the
        # order the terminal sent them
        order = sorted(range(len(records)), key=lambda i: (records[i].scanned_at, i))
        answers: dict[int, ScanResult] = {}
        for index in order:
            answers[index] = await self._upload(scanner, records[index])
        results = [answers[i] for i in range(len(records))]
        for r in results:
            self._observe(scanner.app_id, r, 0.0, True)
        return results

    async def _upload(self, scanner: MachinePrincipal, rec: BatchRecord) -> ScanResult:
        record_id = rec.record_id
        previous = await self.records.stored(scanner, record_id)
        if previous is not None:
            return previous
        at = float(rec.scanned_at)
        checked = await self._check(scanner, rec.token, at, now=at, record_id=record_id, offline=True)
        if (answered := self._answered(checked)) is not None:  # decided, not yet in the database
            return answered
        flagged = checked.reason == "replayed"
        if flagged:
            log.warning("code replay flagged", extra={"scanner": scanner.client_id, "record_id": record_id})
        result = result_for(
            scanner,
            record_id,
            refusal=checked.reason,
            flagged=flagged,
            lacking=self._lacking(scanner, checked),
        )
        if checked.reason is None:
            result, final = await self.decide(
                scanner, result, checked, at, rec.meta or {}, offline=True, budget=BATCH_BUDGET
            )
            if not final:
                self.records.keep(
                    self.records.row(scanner, result, checked, at=at, offline=True, final=False)
                )
            return result
        # a refusal of an uploaded scan is its answer for good
        if not await self.records.save(
            self.records.row(scanner, result, checked, at=at, offline=True, final=True)
        ):
            result = await self.records.stored(scanner, record_id) or result
        return result
