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
from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from prometheus_client import Counter, Histogram

from auth.guards import citizen_only, scanner_only
from auth.principals import CitizenPrincipal, MachinePrincipal
from backend.pagination import DEFAULT_LIMIT, Limit, Offset, page_parts
from backend.runtime import ScanObserver, ScanSeen
from codes.schemas import BatchRequest, BatchResult, ScanRequest, ScanResult
from codes.services import ScanService, display_for
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


class ScanRouter:
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
        scans.requirement = self.requirement

    def requirement(self, scanner: MachinePrincipal) -> str | None:
        app = self.apps.get(scanner.app_id)
        return None if app is None else app.manifest.scan_contexts.get(scanner.context)

    def _unavailable(self, decision: dict[str, Any]) -> dict[str, Any]:
        return {
            **decision,
            "result": "deny",
            "reason": "app_unavailable",
            "display": {
                "color": "red",
                "title": "服务暂不可用，请稍后再试",
                "subtitle": "Service unavailable",
            },
        }

    async def decide(
        self,
        scanner: MachinePrincipal,
        decision: dict[str, Any],
        res: Any,
        mapping: dict[str, Any],
        at: float,
        offline: bool,
    ) -> dict[str, Any]:
        app = self.apps.get(scanner.app_id)
        if app is None or scanner.context not in app.manifest.scan_contexts:
            log.warning(
                "scan at a scanner whose mini-app or context is not enabled",
                extra={"scanner": scanner.client_id, "app_id": scanner.app_id, "context": scanner.context},
            )
            return self._unavailable(decision)
        event = ScanEvent(
            openid=await self.pairwise.issue(app.manifest.id, mapping["c"]),
            entitlements=res.entitlements.readable() if res.entitlements else {},
            scanner=Scanner(client_id=scanner.client_id, place=scanner.place, context=scanner.context),
            scanned_at=datetime.fromtimestamp(at, UTC),
            meta=decision.get("meta") or {},
            record_id=decision["record_id"],
            offline=offline,
        )
        started = time.perf_counter()
        try:
            answer = await asyncio.wait_for(app.on_scan(event), self.budget)
            if not isinstance(answer, ScanDecision):
                raise TypeError(f"on_scan returned {type(answer).__name__}, not ScanDecision")
        except TimeoutError:
            log.error(
                "mini-app overran its scan budget", extra={"app_id": app.manifest.id, "budget_s": self.budget}
            )
            return self._unavailable(decision)
        except Exception:
            log.exception("mini-app scan handler failed", extra={"app_id": app.manifest.id})
            return self._unavailable(decision)
        finally:
            APP_LATENCY.labels(app.manifest.id).observe(time.perf_counter() - started)
        reason = "ok" if answer.allow and answer.reason == "ok" else answer.reason or "denied"
        display = (
            msgspec.to_builtins(answer.display)
            if answer.display is not None
            else display_for(None if answer.allow else reason)
        )
        if not answer.allow and answer.display is None:
            display = {"color": "red", "title": "无法通行", "subtitle": reason}
        return {
            **decision,
            "result": "allow" if answer.allow else "deny",
            "reason": "ok" if answer.allow else reason,
            "display": display,
            "data": answer.data,
        }

    def _observe(self, app_id: str, decision: dict[str, Any], seconds: float, offline: bool) -> None:
        seen = ScanSeen(app_id, decision["result"], decision["reason"], seconds, offline)
        for observe in self.observers:
            try:
                observe(seen)
            except Exception:  # an observer never costs a gate its answer
                log.exception("scan observer failed")

    async def scan(self, scanner: MachinePrincipal, request: ScanRequest) -> dict[str, Any]:
        started = time.perf_counter()
        decision, record = await self.scans.scan(
            scanner,
            request.token,
            record_id=request.record_id,
            meta=request.meta,
            scanned_at=request.scanned_at,
            decide=self.decide,
        )
        self.scans.recorder.add(record)  # written in the next batch, off the gate's critical path
        SCANS.labels(scanner.app_id, decision["result"], decision["reason"]).inc()
        self._observe(scanner.app_id, decision, time.perf_counter() - started, False)
        return decision

    async def batch(self, scanner: MachinePrincipal, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        results = await self.scans.batch(scanner, records, decide=self.decide)
        for r in results:
            SCANS.labels(scanner.app_id, r["result"], r["reason"]).inc()
            self._observe(scanner.app_id, r, 0.0, True)
        return results


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
