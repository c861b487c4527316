"""The live city dashboard (运管中心): what every worker saw, for every viewer.

* Each worker counts the scans it decides in memory (:class:`ScanTally`, a scan observer: no await on
  the gate's path) and every ``dashboard_flush_interval`` adds them to per-minute counters in the
  shared store and publishes a tick on the ``dashboard`` channel (Redis pub/sub when Redis is
  configured, so a tick from any worker reaches the viewers of every worker).
* A viewer's stream (server-sent events) sends a frame at once, then on every tick (at most one frame a
  second) and at least every ``dashboard_push_interval`` for the figures that are not scans: payments
  and refunds per hour (from the database), the webhook backlog, the mini-apps' gauges (free spaces).
* A frame is built once per worker per second (:meth:`Dashboard.frame`) whatever the number of viewers;
  its 好差评 panel (this month's satisfaction, cases open and overdue, the best and worst units) is
  recomputed at most every 30 s (:class:`console.ratings.RatingsPanel`).

Scan latency is the time to decide an online scan (verify, single-use claim, the mini-app's answer),
kept as a histogram per minute; p50/p99 are read from it by interpolating inside the bucket, so they
are as fine as the buckets (1, 2, 5, 10 ... ms).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import math
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from litestar.channels import ChannelsPlugin
from piccolo.query.functions.aggregate import Count, Sum

from backend.runtime import Runtime, ScanSeen
from backend.store import StoreUnavailable
from console.ratings import RatingsPanel
from miniapps.contract import MiniApp
from miniapps.gate import DISPLAY
from payments.tables import OutboxEvent, PaymentOrder, Refund, WebhookDelivery

log = logging.getLogger("shengshitong.dashboard")

MINUTES = 30  # the scans chart's window
LATENCY_MINUTES = 5  # p50/p99 over the last five minutes
HOURS = 24  # the payments chart's window
# upper bounds of the latency buckets, in milliseconds (the last one is open)
BUCKETS_MS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
KEY_TTL = (MINUTES + 5) * 60
SESSION_RECHECK = 30.0  # a viewer's stream outlives its request: their session is checked this often


class ScanTally:
    """This worker's scans since the last flush. Called synchronously for every scan."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def __call__(self, seen: ScanSeen) -> None:
        c = self.counts
        c[f"s|{seen.app_id}|{seen.result}"] += 1
        if seen.result != "allow":
            c[f"r|{seen.reason}"] += 1
        if not seen.offline:
            c[f"l|{bisect.bisect_left(BUCKETS_MS, seen.seconds * 1000)}"] += 1

    def take(self) -> dict[str, int]:
        counts, self.counts = self.counts, Counter()
        return dict(counts)


def _reason(reason: str) -> tuple[str, str]:
    if reason in DISPLAY:
        return DISPLAY[reason][1][0], DISPLAY[reason][2][0]
    return reason, reason


def quantile(buckets: list[int], q: float) -> float | None:
    """The q-quantile in ms from bucket counts (index i counts values <= BUCKETS_MS[i])."""
    total = sum(buckets)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for i, n in enumerate(buckets):
        if n and seen + n >= rank:
            low = 0.0 if i == 0 else float(BUCKETS_MS[i - 1])
            high = float(BUCKETS_MS[i]) if i < len(BUCKETS_MS) else low * 2
            return round(low + (high - low) * (rank - seen) / n, 2)
        seen += n
    return float(BUCKETS_MS[-1])


class Dashboard:
    def __init__(
        self,
        runtime: Runtime,
        channels: ChannelsPlugin,
        channel: str,
        apps: dict[str, MiniApp],
        ratings: RatingsPanel,
    ) -> None:
        self.runtime = runtime
        self.apps = apps
        self.ratings = ratings
        self.channels = channels
        self.channel = channel
        self.tally = ScanTally()
        runtime.scan_observers.append(self.tally)
        self._task: asyncio.Task[None] | None = None
        self._frame: tuple[float, dict[str, Any]] | None = None
        self._frame_lock = asyncio.Lock()
        self._hours: dict[tuple[str, datetime], tuple[int, int]] = {}  # complete hours never change

    # ---- this worker's counts to the shared store --------------------------------------------------
    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="dashboard-flush")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush(publish=False)  # the channel may be closed by now; the counts are what matter

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.runtime.settings.dashboard_flush_interval)
            try:
                await self.flush()
            except StoreUnavailable as exc:
                log.warning("dashboard counts not flushed: store unavailable", extra={"error": str(exc)})
            except Exception:
                log.exception("dashboard flush failed")

    async def flush(self, *, publish: bool = True) -> int:
        counts = self.tally.take()
        if not counts:
            return 0
        minute = int(self.runtime.clock.time() // 60)
        try:
            await self.runtime.store.add_counts(f"dash:m:{minute}", counts, ttl=KEY_TTL)
        except StoreUnavailable:
            for k, n in counts.items():  # keep them for the next flush
                self.tally.counts[k] += n
            raise
        if publish:
            self.channels.publish(
                {"minute": minute, "scans": sum(v for k, v in counts.items() if k[0] == "s")}, self.channel
            )
        return len(counts)

    # ---- frames for viewers ------------------------------------------------------------------------
    async def stream(
        self, still_signed_in: Callable[[], Awaitable[bool]]
    ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """A viewer's events: ("frame", figures) now, on every tick (at most two a second) and every push
        interval; ("signed-out", {}) and the end when their session ends (signed out, disabled, expired).
        A frame that cannot be built (the database busy or away) is skipped, the stream goes on."""
        push = self.runtime.settings.dashboard_push_interval
        checked = time.monotonic()
        ticked = asyncio.Event()

        async def on_tick(_: bytes) -> None:
            ticked.set()

        yield "frame", await self.frame()
        async with (
            self.channels.start_subscription([self.channel]) as subscriber,
            subscriber.run_in_background(on_tick),
        ):
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(ticked.wait(), push)
                ticked.clear()
                if time.monotonic() - checked > SESSION_RECHECK:
                    if not await still_signed_in():
                        yield "signed-out", {}
                        return
                    checked = time.monotonic()
                try:
                    frame = await self.frame()
                except Exception:
                    log.warning("dashboard frame skipped", exc_info=True)
                else:
                    yield "frame", frame
                await asyncio.sleep(0.5)

    async def frame(self, max_age: float = 1.0) -> dict[str, Any]:
        async with self._frame_lock:
            now = time.monotonic()
            if self._frame is None or now - self._frame[0] >= max_age:
                self._frame = (now, await self._build())
            return self._frame[1]

    async def _build(self) -> dict[str, Any]:
        now = self.runtime.clock.time()
        minute = int(now // 60)
        minutes = list(range(minute - MINUTES + 1, minute + 1))
        per_minute = await self.runtime.store.get_counts(*(f"dash:m:{m}" for m in minutes))
        apps: dict[str, list[int]] = {}
        refusals: Counter[str] = Counter()
        latency = [0] * (len(BUCKETS_MS) + 1)
        allowed = denied = 0
        for i, counts in enumerate(per_minute):
            for key, n in counts.items():
                kind, _, rest = key.partition("|")
                if kind == "s":
                    app_id, _, result = rest.rpartition("|")
                    apps.setdefault(app_id, [0] * MINUTES)[i] += n
                    if result == "allow":
                        allowed += n
                    else:
                        denied += n
                elif kind == "r":
                    refusals[rest] += n
                elif kind == "l" and i >= MINUTES - LATENCY_MINUTES:
                    latency[min(int(rest), len(latency) - 1)] += n
        names = self._app_names()
        return {
            "at": int(now),
            "scans": {
                "minutes": [m * 60 for m in minutes],  # epoch seconds: the browser shows its local time
                "per_app": [
                    {
                        "app_id": a,
                        "name_zh": names.get(a, (a, a))[0],
                        "name_en": names.get(a, (a, a))[1],
                        "counts": c,
                    }
                    for a, c in sorted(apps.items())
                ],
                "total": allowed + denied,
                "allowed": allowed,
                "denied": denied,
                "last_minute": sum(c[-1] for c in apps.values()),
            },
            "refusals": [
                # the platform's reasons by name in both languages; a mini-app's own by their code
                {"reason": r, "label_zh": _reason(r)[0], "label_en": _reason(r)[1], "count": n}
                for r, n in refusals.most_common()
            ],
            "latency_ms": {
                "p50": quantile(latency, 0.50),
                "p99": quantile(latency, 0.99),
                "samples": sum(latency),
                "window_minutes": LATENCY_MINUTES,
            },
            "payments": await self._hourly(now),
            "webhooks": await self._webhooks(),
            "gauges": await self._gauges(),
            "ratings": await self.ratings.figures(),  # 好差评: recomputed every 30 s, not per frame
        }

    def _app_names(self) -> dict[str, tuple[str, str]]:
        return {a: (app.manifest.name_zh, app.manifest.name_en) for a, app in self.apps.items()}

    async def _hourly(self, now: float) -> dict[str, Any]:
        current = datetime.fromtimestamp(now - now % 3600).astimezone()
        hours = [current - timedelta(hours=h) for h in range(HOURS - 1, -1, -1)]
        paid, refunded = [], []
        for start in hours:
            paid.append(await self._hour("paid", start, start == current))
            refunded.append(await self._hour("refunded", start, start == current))
        for key in [k for k in self._hours if k[1] < hours[0]]:
            del self._hours[key]
        return {
            "hours": [int(h.timestamp()) for h in hours],
            "paid_count": [p[0] for p in paid],
            "paid_fen": [p[1] for p in paid],
            "refund_count": [r[0] for r in refunded],
            "refund_fen": [r[1] for r in refunded],
        }

    async def _hour(self, what: str, start: datetime, current: bool) -> tuple[int, int]:
        key = (what, start)
        if not current and key in self._hours:
            return self._hours[key]
        end = start + timedelta(hours=1)
        if what == "paid":
            q = PaymentOrder.select(Count(), Sum(PaymentOrder.amount)).where(
                (PaymentOrder.paid_at >= start) & (PaymentOrder.paid_at < end)
            )
        else:
            q = Refund.select(Count(), Sum(Refund.amount)).where(
                (Refund.succeeded_at >= start) & (Refund.succeeded_at < end)
            )
        row = (await q.run())[0]
        value = (int(row["count"] or 0), int(row["sum"] or 0))
        if not current:
            self._hours[key] = value
        return value

    async def _webhooks(self) -> dict[str, int]:
        pending = await WebhookDelivery.count().where(WebhookDelivery.state == "pending")
        dead = await WebhookDelivery.count().where(WebhookDelivery.state == "dead")
        undispatched = await OutboxEvent.count().where(OutboxEvent.dispatched_at.is_null())
        return {"pending": pending, "dead": dead, "outbox": undispatched}

    async def _gauges(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for app_id, app in self.apps.items():
            try:
                gauges = await asyncio.wait_for(app.gauges(), 1.0)
            except Exception:  # a slow or failing mini-app leaves a gap, not a broken dashboard
                log.warning("mini-app gauges unavailable", extra={"app_id": app_id})
                continue
            for g in gauges:
                if not (isinstance(g.value, int | float) and math.isfinite(g.value)):
                    continue
                out.append(
                    {
                        "app_id": app_id,
                        "name": g.name,
                        "label_zh": g.label_zh,
                        "label_en": g.label_en,
                        "value": g.value,
                        "of": g.of,
                    }
                )
        return out
