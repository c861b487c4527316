"""Scan routing: every verified scan goes to the mini-app that owns the scanner, within a time budget.

The codes package verifies (signature, time, entitlement, single use, account state); the router hands
an allowed scan to the scanner's mini-app as a :class:`ScanEvent` with the citizen's pairwise id, and
the mini-app's decision goes back to the gate. A mini-app that raises or overruns its budget yields
``deny`` / ``app_unavailable`` for that scan only.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from prometheus_client import Counter, Histogram

from auth.guards import citizen_only, scanner_only
from auth.principals import CitizenPrincipal, MachinePrincipal
from backend import db
from backend.i18n import current_locale
from backend.pagination import DEFAULT_LIMIT, Limit, Offset, page_parts
from backend.runtime import ScanObserver, ScanSeen
from codes.schemas import BatchRequest, BatchResult, ScanRequest, ScanResult
from codes.services import Checked, ScanService, display_for
from codes.tables import ScanRecord
from miniapps.contract import MiniApp, ScanDecision, ScanEvent, Scanner
from miniapps.services import Pairwise

log = logging.getLogger("shengshitong.scans")
SCANS = Counter("shengshitong_scans", "Scan decisions", ["app_id", "result", "reason"])
APP_LATENCY = Histogram(
    "shengshitong_miniapp_scan_seconds",
    "Time a mini-app took to decide a scan",
    ["app_id"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0),
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


class ScanRouter:
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
        budget: float,
        observers: list[ScanObserver] | None = None,
    ) -> None:
        self.scans = scans
        self.observers = observers if observers is not None else []
        self.apps = apps
        self.pairwise = pairwise
        self.budget = budget
        self.grace = min(10.0, max(1.0, 10 * budget))
        self._abandoned: set[asyncio.Task[dict[str, Any]]] = set()
        scans.requirement = self.requirement

    def requirement(self, scanner: MachinePrincipal) -> str | None:
        app = self.apps.get(scanner.app_id)
        return None if app is None else app.manifest.scan_contexts.get(scanner.context)

    def _unavailable(self, decision: dict[str, Any]) -> dict[str, Any]:
        return {
            **decision,
            "result": "deny",
            "reason": "app_unavailable",
            "display": display_for("app_unavailable"),
        }

    @staticmethod
    def _answer(decision: dict[str, Any], answer: ScanDecision) -> dict[str, Any]:
        reason = "ok" if answer.allow and answer.reason == "ok" else answer.reason or "denied"
        display = (
            msgspec.to_builtins(answer.display)
            if answer.display is not None
            else display_for(None if answer.allow else reason)
        )
        return {
            **decision,
            "result": "allow" if answer.allow else "deny",
            "reason": "ok" if answer.allow else reason,
            "display": display,
            "data": answer.data,
        }

    async def decide(
        self,
        scanner: MachinePrincipal,
        decision: dict[str, Any],
        checked: Checked,
        at: float,
        *,
        offline: bool,
        budget: float,
    ) -> tuple[dict[str, Any], bool]:
        """Decide a claimed scan with the scanner's mini-app: (the decision, whether it is the record's
        final answer, stored with the mini-app's writes). Whenever nothing is decided (the mini-app
        failed or overran, the platform failed on the way, the request was cancelled before the decision
        committed) the code's single use is given back."""
        assert checked.claim is not None and checked.mapping is not None
        claim = checked.claim
        app = self.apps.get(scanner.app_id)
        if app is None or scanner.context not in app.manifest.scan_contexts:
            log.warning(
                "scan at a scanner whose mini-app or context is not enabled",
                extra={"scanner": scanner.client_id, "app_id": scanner.app_id, "context": scanner.context},
            )
            await self.scans.release(claim)
            return self._unavailable(decision), False
        app_id = app.manifest.id
        try:
            openid = await self.pairwise.issue(app_id, checked.mapping["c"])
        except BaseException:
            await self.scans.release(claim)
            raise
        event = ScanEvent(
            openid=openid,
            entitlements=checked.result.entitlements.readable() if checked.result.entitlements else {},
            scanner=Scanner(client_id=scanner.client_id, place=scanner.place, context=scanner.context),
            scanned_at=datetime.fromtimestamp(at, UTC),
            meta=decision.get("meta") or {},
            record_id=decision["record_id"],
            offline=offline,
            locale=current_locale(),  # the gate's language: its request's Accept-Language
        )

        # the record's final row, written first in the transaction: a concurrent attempt of the same
        # record waits at its own insert for this one to commit (then answers from it) or roll back
        record = self.scans.record(scanner, decision, checked, at=at, offline=offline, final=True)
        run = _Run()
        task = asyncio.create_task(
            self._in_transaction(app, event, decision, record, run), name=f"scan:{app_id}"
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
            return self._unavailable(decision), False
        try:
            return task.result(), True
        except _DecidedElsewhere:  # a concurrent attempt of this record decided first: its answer
            stored = await self.scans.stored(scanner, decision["record_id"])
            assert stored is not None
            return stored, True
        except Exception:
            if run.started.is_set():
                log.exception("mini-app scan handler failed", extra={"app_id": app_id})
            else:
                log.exception("the scan's transaction could not begin", extra={"app_id": app_id})
            await self.scans.release(claim)
            return self._unavailable(decision), False

    @staticmethod
    async def _wait(task: asyncio.Task[dict[str, Any]], run: _Run, budget: float) -> bool:
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
        self, app: MiniApp, event: ScanEvent, decision: dict[str, Any], record: dict[str, Any], run: _Run
    ) -> dict[str, Any]:
        async with db.transaction():
            run.started.set()
            if not await self.scans.save(record):  # another attempt of this record has decided
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
            decision = self._answer(decision, answer)
            await self.scans.decided(record["scanner_record"], decision)
        return decision

    def _abandon(self, task: asyncio.Task[dict[str, Any]], app_id: str) -> None:
        """Let an abandoned decision finish (it rolls back), and cancel it if it has not after the grace."""
        self._abandoned.add(task)
        timer = asyncio.get_running_loop().call_later(self.grace, task.cancel)

        def done(t: asyncio.Task[dict[str, Any]]) -> None:
            timer.cancel()
            self._abandoned.discard(t)
            if not t.cancelled() and not isinstance(t.exception(), _Abandoned | _DecidedElsewhere):
                log.error(
                    "an abandoned scan decision failed while rolling back",
                    exc_info=t.exception(),
                    extra={"app_id": app_id},
                )

        task.add_done_callback(done)

    async def settle(self) -> None:
        """Wait until every abandoned decision has rolled back (at shutdown, before the pool closes)."""
        while self._abandoned:
            await asyncio.gather(*self._abandoned, return_exceptions=True)

    def _observe(self, app_id: str, decision: dict[str, Any], seconds: float, offline: bool) -> None:
        seen = ScanSeen(app_id, decision["result"], decision["reason"], seconds, offline)
        for observe in self.observers:
            try:
                observe(seen)
            except Exception:  # an observer never costs a gate its answer
                log.exception("scan observer failed")

    async def scan(self, scanner: MachinePrincipal, request: ScanRequest) -> dict[str, Any]:
        started = time.perf_counter()
        now = self.scans.clock.time()
        at = request.scanned_at or now
        record_id = request.record_id or uuid.uuid4().hex
        checked = (
            Checked("bad_scan_time", None, None, None)
            if self.scans.scan_time_refused(at, offline=False)
            else await self.scans.check(scanner, request.token, at=now, record_id=record_id, offline=False)
        )
        decision: dict[str, Any] | None = None
        if checked.claim is not None and checked.claim.retry:
            decision = await self.scans.stored(scanner, record_id)  # a retry gets the record's answer
        if decision is None:
            decision = self.scans.decision(scanner, checked.reason, record_id=record_id)
            final = False
            if checked.reason is None:
                decision["meta"] = request.meta or {}
                decision, final = await self.decide(
                    scanner, decision, checked, at, offline=False, budget=self.budget
                )
            if not final:  # history only, written in the next batch, off the gate's critical path
                self.scans.recorder.add(
                    self.scans.record(scanner, decision, checked, at=at, offline=False, final=False)
                )
        SCANS.labels(scanner.app_id, decision["result"], decision["reason"]).inc()
        self._observe(scanner.app_id, decision, time.perf_counter() - started, False)
        return decision

    async def batch(self, scanner: MachinePrincipal, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Offline uploads: each record decided once (idempotent per scanner and record id); a code that
        another scanner (or an online scan) already used is flagged as a replay, not accepted twice. A
        record the mini-app could not decide is answered ``app_unavailable`` and not stored: the terminal
        uploads it again later."""
        # decided in scan-time order (fares, caps and transfers as the rides happened), answered in the
        # order the terminal sent them
        order = sorted(range(len(records)), key=lambda i: (records[i]["scanned_at"], i))
        answers: dict[int, dict[str, Any]] = {}
        for index in order:
            answers[index] = await self._upload(scanner, records[index])
        results = [answers[i] for i in range(len(records))]
        for r in results:
            SCANS.labels(scanner.app_id, r["result"], r["reason"]).inc()
            self._observe(scanner.app_id, r, 0.0, True)
        return results

    async def _upload(self, scanner: MachinePrincipal, rec: dict[str, Any]) -> dict[str, Any]:
        record_id = rec["record_id"]
        previous = await self.scans.stored(scanner, record_id)
        if previous is not None:
            return previous
        at = float(rec["scanned_at"])
        checked = (
            Checked("bad_scan_time", None, None, None)
            if self.scans.scan_time_refused(at, offline=True)
            else await self.scans.check(scanner, rec["token"], at=at, record_id=record_id, offline=True)
        )
        flagged = checked.reason == "replayed"
        if flagged:
            log.warning("code replay flagged", extra={"scanner": scanner.client_id, "record_id": record_id})
        decision = self.scans.decision(scanner, checked.reason, record_id=record_id, flagged=flagged)
        if checked.reason is None:
            decision["meta"] = rec.get("meta") or {}
            decision, final = await self.decide(
                scanner, decision, checked, at, offline=True, budget=BATCH_BUDGET
            )
            if not final:
                self.scans.recorder.add(
                    self.scans.record(scanner, decision, checked, at=at, offline=True, final=False)
                )
            return decision
        # a refusal of an uploaded scan is its answer for good
        if not await self.scans.save(
            self.scans.record(scanner, decision, checked, at=at, offline=True, final=True)
        ):
            decision = await self.scans.stored(scanner, record_id) or decision
        return decision


class ScansController(Controller):
    path = "/api/v1/scans"
    tags = ["scanners"]
    guards = [scanner_only]

    @post("", status_code=200, summary="Verify a scanned code online and route it to the scanner's mini-app")
    async def scan(
        self,
        data: JSONBody[ScanRequest],
        machine: NamedDependency[MachinePrincipal],
        scan_router: NamedDependency[ScanRouter],
    ) -> ScanResult:
        return msgspec.convert(await scan_router.scan(machine, data), ScanResult)

    @post("/batch", status_code=200, summary="Upload scans from an offline terminal (idempotent per record)")
    async def batch(
        self,
        data: JSONBody[BatchRequest],
        machine: NamedDependency[MachinePrincipal],
        scan_router: NamedDependency[ScanRouter],
    ) -> BatchResult:
        results = await scan_router.batch(machine, [msgspec.structs.asdict(r) for r in data.records])
        return BatchResult(results=[msgspec.convert(r, ScanResult) for r in results])


class ScanHistoryItem(msgspec.Struct):
    scanned_at: datetime
    app_id: str
    app_name_zh: str
    app_name_en: str
    place: str
    context: str
    result: str
    reason: str
    offline: bool


class ScanHistoryPage(msgspec.Struct):
    items: list[ScanHistoryItem]
    next_offset: int | None
    next: str | None = None  # the next page's URL (backend/pagination.py)


class MyScansController(Controller):
    path = "/api/v1/me/scans"
    tags = ["citizens: profile"]
    guards = [citizen_only]

    @get("", summary="The citizen's scan history: what was scanned, where, by which service, and the result")
    async def my_scans(
        self,
        request: Request[Any, Any, Any],
        citizen: NamedDependency[CitizenPrincipal],
        scan_router: NamedDependency[ScanRouter],
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
    ) -> Response[ScanHistoryPage]:
        rows = (
            await ScanRecord.select(
                ScanRecord.scanned_at,
                ScanRecord.app_id,
                ScanRecord.place,
                ScanRecord.context,
                ScanRecord.result,
                ScanRecord.reason,
                ScanRecord.offline,
            )
            .where(ScanRecord.citizen_id == citizen.citizen_id)
            .order_by(ScanRecord.scanned_at, ascending=False)
            .order_by(ScanRecord.id)
            .limit(limit + 1)
            .offset(offset)
            .run()
        )
        items = []
        for r in rows[:limit]:
            app = scan_router.apps.get(r["app_id"])
            items.append(
                ScanHistoryItem(
                    **r,
                    app_name_zh=app.manifest.name_zh if app else r["app_id"],
                    app_name_en=app.manifest.name_en if app else r["app_id"],
                )
            )
        _, after, link = page_parts(request, rows, limit=limit, offset=offset)
        return Response(
            ScanHistoryPage(items=items, next_offset=after, next=link),
            headers={"Cache-Control": "no-store"},
        )
