"""A month of 好差评 (issue 18): statistics over 100,000 ratings on PostgreSQL, and ratings submitted by
many citizens at once; each against baselines measured in the same run, and the books read back.

    .venv/bin/python bench/ratings.py [--ratings 100000] [--units 200] [--month 2026-10] [--rounds 30]
                                      [--http-rounds 3] [--seconds 10] [--stats-connections 4]
                                      [--citizens 4000] [--rate-rounds 2] [--twice 0.1]
                                      [--rate-connections 64] [--rate-seconds 30] [--workers 2]
                                      [--explain] [--keep]

Needs wrk (``make bench-tools``): the load comes from a compiled generator, not Python on the same cores.

**The month.** A scratch PostgreSQL database, migrated by the app's own migrations. ``--units`` units across
Shenyang's 13 districts (``auth._profile.DISTRICTS``): car parks, hospitals, attractions and service
halls of the parking, hospital, tourism and civic mini-apps (each rated on the service its manifest
declares) and the payment centre (``platform.payment``, city-wide); units differ in size and in how often they are rated badly.
``--ratings`` ratings in ``--month`` (China time; by default the month before this one), each with its
rated event, ~85 % good (非常满意 / 满意 / 基本满意) and ~15 % bad; every bad rating has its case, in
the states a month leaves them in: answered on time or late (rectified or explained), closed by the
rater's call-back or after the call-back window, still open or rectifying (escalated once overdue, as
the ratings round does), appealed, void (appeal upheld: the rating out of the statistics), some after a
rejected appeal; every transition with its step. Seeded (``--seed``), inserted with COPY, then
``VACUUM ANALYZE`` (what autovacuum does to a month that has stopped changing).

**Statistics in-process.** ``ratings._stats.Stats.compute`` by unit, service, district and month (the
app's services on the scratch database, nothing in the background), ``--rounds`` interleaved rounds
after one warm-up; median and p95 per series. Baselines in the same rounds on an asyncpg connection of
their own: ``SELECT count(*) FROM rating WHERE month = $1`` and the single grouped query
``SELECT unit_id, count(*), sum(level) … GROUP BY unit_id`` (the floor). ``--explain`` prints
``EXPLAIN (ANALYZE, BUFFERS)`` of the queries ``compute`` sent.

**The books of the month.** Every row of every grouping against an independent recount written here in
plain SQL (ratings joined to their cases, keyed by the rating, on-time from the times rather than the
stored flag, rates computed here): ratings, good, bad, average, cases, answered, rectified, on time,
overdue, appeals upheld, call-backs and every rate, and the unit ranking; and the totals against what
the generator made. Then the HTTP answers (JSON and CSV) against ``compute``'s rows.

**Statistics over HTTP.** The app (``backend.asgi:serve_app``, uvicorn, uvloop, httptools, no access
log, ``--workers``) and ``bench/_ratings_base_app.py`` served the same way; wrk, ``--stats-connections``
operators: ``GET /api/v1/admin/ratings/stats?by=unit`` (JSON) and ``/stats.csv``, against **bare** (a bare
Litestar handler answering the same bytes) and **floor** (the same handler running the single grouped
query on an asyncpg pool). ``--http-rounds`` rounds of ``--seconds`` per series.

**Submitting ratings.** Each round: ``--citizens`` new citizens, each with one pending event (a parking
stay, a hospital visit, an attraction, a hall window, a payment) and an access token; each POSTs
``/api/v1/me/ratings`` once (85 % good, 15 % bad, with the channel's indicators), and ``--twice`` of
them a second time at once from another connection (a double tap: one must win). wrk (2 threads,
``--rate-connections``) against the app with ``--workers`` workers on PostgreSQL + Redis, recording
every answer by request id; then the bare handler cycling the same requests. Worker and PostgreSQL CPU
per request from /proc (PostgreSQL: every postgres process, the server is shared; "ours": the scratch
database's backends, without the parallel workers that come and go). After the rounds the app is stopped (SIGTERM) and the books are read: every 201
has exactly one rating row, of its event, with the level sent; no event rated twice and no double tap
answered 201 twice; no rating nobody was told 201 about (a request with no recorded answer may have
either outcome); every bad rating has exactly one case with its opening step, no good one has any.

Exits non-zero when a check fails. The machine is shared: read the ratios, measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import csv
import io
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]
# bench/codes.py must not shadow the codes package: keep this folder off the path
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402

from auth._profile import DISTRICTS  # noqa: E402
from bench.codes import _free_port, _pg, _uvicorn, _wait  # noqa: E402
from bench.gate import Meter, _add_citizens, _stop  # noqa: E402
from messages.templates import CHINA  # noqa: E402
from miniapps.civic import CivicApp  # noqa: E402
from miniapps.hospital import HospitalApp  # noqa: E402
from miniapps.parking import ParkingApp  # noqa: E402
from miniapps.tourism import TourismApp  # noqa: E402
from ratings.calendar import add_working_days  # noqa: E402
from ratings.rules import INDICATORS, LEVEL_NAMES, Rateable  # noqa: E402
from ratings.setup import PLATFORM_SERVICES  # noqa: E402

THREADS = 2  # wrk threads (the machine has 2 cores)
BYS = ("unit", "service", "district", "month")
RECTIFY_DAYS, CALLBACK_DAYS = 15, 7  # the settings' defaults (rating_rectify_days, rating_callback_days)
OPEN = ("open", "rectifying")
# how many units of each district per hundred, roughly as Shenyang's people and services are spread
DISTRICT_WEIGHT = {
    "210102": 9,
    "210103": 10,
    "210104": 8,
    "210105": 9,
    "210106": 12,
    "210111": 5,
    "210112": 10,
    "210113": 6,
    "210114": 7,
    "210115": 4,
    "210123": 3,
    "210124": 3,
    "210181": 4,
}
KINDS = {  # owner: (share of the units, code prefix, Chinese name, English name)
    "parking": (0.38, "p", "停车场", "car park"),
    "hospital": (0.22, "h", "医院", "hospital"),
    "tourism": (0.22, "t", "景区", "attraction"),
    "civic": (0.18, "c", "政务服务大厅", "service hall"),
}
COMPLAINTS = [
    "排队时间太长，窗口只开了一个。",
    "工作人员态度生硬，问了两遍都不耐烦。",
    "出口抬杆很慢，后面的车堵了一长串。",
    "指示牌不清楚，找了半天。",
    "收费和页面上写的不一致。",
    "预约的时间到了还要再等四十分钟。",
    "",
]
PRAISE = ["很方便，刷码就走。", "服务热情，谢谢！", "比以前快多了。", "环境干净，引导清楚。"]
ANSWERS = {
    "rectified": "已对相关人员进行培训，并增设窗口，感谢您的监督。",
    "explained": "经核实，收费符合公示标准，已向您说明计费规则。",
}

# wrk's script. Arguments: get <path> <Authorization or -> | once|cycle <requests prefix> <records prefix>.
# "get": the same GET over and over. "once"/"cycle": thread n sends the lines of <requests prefix><n>.tsv
# ("<request id>\t<Authorization>\t<body>") as POST /api/v1/me/ratings, each once or over and over. With
# "once", every answer goes to <records prefix><n>.txt as "<request id> <status> <rating id or ->" (the
# request id is echoed by the app), and <records prefix><n>.start and .done mark the thread's time.
WRK_LUA = r"""
local threads, counter = {}, 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end
function init(args)
  mode, requests, statuses, sent, answered = args[1], {}, {}, 0, 0
  if mode == "get" then
    local headers = {}
    if args[3] ~= "-" then headers["Authorization"] = args[3] end
    requests[1] = wrk.format("GET", args[2], headers)
  else
    for line in io.lines(args[2] .. id .. ".tsv") do
      local rid, auth, body = line:match("([^\t]*)\t([^\t]*)\t(.+)")
      if body then
        table.insert(requests, wrk.format("POST", "/api/v1/me/ratings", {["Content-Type"] = "application/json",
          ["Authorization"] = auth, ["X-Request-ID"] = rid}, body))
      end
    end
  end
  if mode == "once" then
    out, marks = io.open(args[3] .. id .. ".txt", "w"), args[3] .. id
    out:setvbuf("line")  -- every answer on disk as it comes: wrk may stop the thread at its deadline
    io.open(marks .. ".start", "w"):close()
    if #requests == 0 then io.open(marks .. ".done", "w"):close() end
  end
  checking = id == 0  -- wrk asks thread 0 for one request before the run, to check it: never sent
end
function delay()
  if mode == "once" and sent >= #requests then return 3600000 end  -- all sent: wait for the answers
  return 0
end
function request()
  if checking then
    checking = false
    return requests[1] or wrk.format("GET", "/healthz")
  end
  if mode == "get" then return requests[1] end
  if mode == "once" and sent >= #requests then return wrk.format("GET", "/healthz") end
  sent = sent + 1
  if mode == "cycle" then return requests[(sent - 1) % #requests + 1] end
  return requests[sent]
end
function response(status, headers, body)
  local rid = headers["x-request-id"] or headers["X-Request-ID"] or "?"
  if mode == "once" and rid:sub(1, 5) ~= "rate-" then return end  -- a filler
  answered = answered + 1
  statuses[tostring(status)] = (statuses[tostring(status)] or 0) + 1
  if out then
    local rating = status == 201 and body:match('^{"id":"([%w%-]+)"') or "-"
    local code = status ~= 201 and body:match('"code":"([%w_]+)"') or "-"
    out:write(rid, " ", status, " ", rating, " ", code, "\n")
  end
  if mode == "once" and answered >= #requests then
    out:flush()
    io.open(marks .. ".done", "w"):close()
    wrk.thread:stop()
  end
end
function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("statuses")) do total[k] = (total[k] or 0) + v end
  end
  local parts = {}
  for k, v in pairs(total) do table.insert(parts, string.format('"%s": %d', k, v)) end
  io.write("STATUSES {" .. table.concat(parts, ", ") .. "}\n")
  local e = summary.errors
  local sent = {}
  for _, t in ipairs(threads) do table.insert(sent, tostring(t:get("sent"))) end
  io.write(string.format("SUMMARY requests=%d duration_us=%d p50_us=%d p99_us=%d " ..
    "errors=connect:%d,read:%d,write:%d,status:%d,timeout:%d sent=%s\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout, table.concat(sent, ",")))
end
"""

# In-process, on the scratch database: an operator credential, or access tokens for citizens.
PREPARE = r"""
import asyncio, json, sys, uuid
from backend.app import create_app, services_of
from backend.runtime import build_runtime
from backend.settings import load_settings

async def main(what, path):
    runtime = build_runtime(load_settings())
    runtime.background = False
    app = create_app(runtime=runtime)
    async with app.lifespan():
        auth = services_of(app).auth
        if what == "operator":
            out = await auth.machines.create("operator", name="好差评办 (bench)")
        else:
            tokens = auth.tokens
            out = [await tokens.issue(citizen_id=c, session_id=str(uuid.uuid4()), device_id="bench")
                   for c in json.loads(open(path).read())]
    print(json.dumps(out))

asyncio.run(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else ""))
"""

# In-process, on the scratch database: Stats.compute by each grouping and the asyncpg floors, interleaved;
# the queries compute sent (captured from Piccolo's Raw), their plans with --explain, and the rows.
STATS = r"""
import asyncio, json, sys, time
import asyncpg
from piccolo.query.methods.raw import Raw
from backend.app import create_app
from backend.runtime import build_runtime
from backend.settings import load_settings
from ratings.setup import RATINGS

sent = []
_run = Raw.run
def run(self, *args, **kwargs):
    sent.append(self.querystring.compile_string(engine_type="postgres"))
    return _run(self, *args, **kwargs)
Raw.run = run

async def main(month, rounds, url, explain, out):
    runtime = build_runtime(load_settings())
    runtime.background = False
    app = create_app(runtime=runtime)
    result = {"times": {}, "cpu": {}, "rows": {}, "plans": {}, "queries": {}}
    async with app.lifespan():
        stats = RATINGS.of(app).stats
        conn = await asyncpg.connect(url)
        series = {
            "floor: count(*) of the month": lambda: conn.fetchval(
                "SELECT count(*) FROM rating WHERE month = $1", month),
            "floor: one GROUP BY unit_id": lambda: conn.fetch(
                "SELECT unit_id, count(*), sum(level) FROM rating WHERE month = $1 GROUP BY unit_id", month),
        }
        for by in ("unit", "service", "district", "month"):
            series[f"compute by {by}"] = lambda by=by: stats.compute(by, month_from=month, month_to=month)
        for name, f in series.items():  # warm-up: connections, prepared statements, caches
            await f()
        times = {name: [] for name in series}
        cpu = {name: [] for name in series}
        for _ in range(rounds):
            for name, f in series.items():
                c, t = time.process_time(), time.perf_counter()
                await f()
                times[name].append((time.perf_counter() - t) * 1000)
                cpu[name].append((time.process_time() - c) * 1000)
        result["times"], result["cpu"] = times, cpu
        for by in ("unit", "service", "district", "month"):
            del sent[:]
            result["rows"][by] = await stats.compute(by, month_from=month, month_to=month)
            result["queries"][by] = [sql for sql, _ in sent]
            if explain:
                plans = []
                for sql, args in sent:
                    rows = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS) " + sql, *args)
                    plans.append("\n".join(r[0] for r in rows))
                result["plans"][by] = plans
        await conn.close()
    open(out, "w").write(json.dumps(result, default=str))

asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4] == "1", sys.argv[5]))
"""


# -- the month -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UnitSpec:
    unit_id: str
    owner: str
    name_zh: str
    name_en: str
    district: str
    service: str
    channel: str
    window_days: int
    weight: float  # how much it is used, relative to the others
    bad_p: float  # how often it is rated badly


@dataclass
class Month:
    """What the generator made (rows to insert) and its own tallies."""

    units: list[UnitSpec]
    events: list[tuple[Any, ...]] = field(default_factory=list)
    ratings: list[tuple[Any, ...]] = field(default_factory=list)
    cases: list[tuple[Any, ...]] = field(default_factory=list)
    steps: list[tuple[Any, ...]] = field(default_factory=list)
    tally: Counter[str] = field(default_factory=Counter)


EVENT_COLUMNS = (
    "id",
    "idempotency",
    "service",
    "unit_id",
    "district",
    "channel",
    "citizen_id",
    "occurred_at",
    "closes_at",
    "rated_at",
)
RATING_COLUMNS = (
    "id",
    "event",
    "service",
    "unit_id",
    "district",
    "channel",
    "citizen_id",
    "level",
    "indicators",
    "comment",
    "month",
    "counted",
    "imported",
    "created_at",
)
CASE_COLUMNS = (
    "id",
    "rating",
    "unit_id",
    "service",
    "district",
    "month",
    "citizen_id",
    "state",
    "opened_at",
    "deadline",
    "deadline_exact",
    "verified_at",
    "answered_at",
    "outcome",
    "answer",
    "on_time",
    "escalated_at",
    "callback_level",
    "callback_comment",
    "closed_at",
    "appeal_reason",
    "appeal_text",
    "appeal_from",
    "appeal_decision",
)
STEP_COLUMNS = (
    "id",
    "case",
    "seq",
    "at",
    "action",
    "from_state",
    "to_state",
    "actor_kind",
    "actor_id",
    "note",
)


def declared() -> dict[str, tuple[str, Rateable]]:
    """owner -> (service id, the service) as the platform and the mini-apps declare them."""
    out = {"platform": ("platform.payment", PLATFORM_SERVICES["payment"])}
    apps = (("parking", ParkingApp), ("hospital", HospitalApp), ("tourism", TourismApp), ("civic", CivicApp))
    for owner, cls in apps:
        name, service = next(iter(cls.manifest.rateable.items()))
        out[owner] = (f"{owner}.{name}", service)
    return out


def make_units(rng: random.Random, n: int) -> list[UnitSpec]:
    """The payment centre (city-wide, ~8 % of the ratings) and n-1 mini-app units; the first 39 of those
    go round the 13 districts (three each at least), the rest where the weights say."""
    services = declared()
    codes = list(DISTRICTS)
    weights = [DISTRICT_WEIGHT[c] for c in codes]
    units: list[UnitSpec] = []
    counts: Counter[str] = Counter()
    kinds = list(KINDS)
    for i in range(n - 1):
        district = codes[i % len(codes)] if i < 3 * len(codes) else rng.choices(codes, weights)[0]
        owner = rng.choices(kinds, [KINDS[k][0] for k in kinds])[0]
        counts[owner] += 1
        _, prefix, zh, en = KINDS[owner]
        k = counts[owner]
        service_id, service = services[owner]
        units.append(
            UnitSpec(
                unit_id=f"{owner}/{prefix}{k:03d}",
                owner=owner,
                name_zh=f"{DISTRICTS[district][0]}第{k}{zh}",
                name_en=f"{DISTRICTS[district][1]} {en} {k}",
                district=district,
                service=service_id,
                channel=service.channel,
                window_days=service.window_days,
                weight=rng.lognormvariate(0, 0.8),
                bad_p=rng.uniform(0.04, 0.26),
            )
        )
    service_id, service = services["platform"]
    units.append(
        UnitSpec(
            unit_id="platform/payments",
            owner="platform",
            name_zh="统一支付中心",
            name_en="Unified payment centre",
            district="",
            service=service_id,
            channel=service.channel,
            window_days=service.window_days,
            weight=sum(u.weight for u in units) * 0.08 / 0.92,
            bad_p=0.10,
        )
    )
    return units


class _Case:
    """One bad rating's case, moved through the workflow as the app would have moved it, with a step for
    every transition; nothing after ``now``; escalated (once) when still waiting at its deadline."""

    def __init__(self, rng: random.Random, now: datetime, rating: tuple[Any, ...], unit: UnitSpec) -> None:
        self.rng, self.now, self.unit = rng, now, unit
        self.id = uuid.UUID(int=rng.getrandbits(128), version=4)
        self.rating_id, self.citizen = rating[0], rating[6]
        self.opened = self.t = rating[13]
        self.deadline, self.exact = _deadline(self.opened)
        self.state = "open"
        self.v: dict[str, Any] = {
            "verified_at": None,
            "answered_at": None,
            "outcome": "",
            "answer": "",
            "on_time": None,
            "escalated_at": None,
            "callback_level": None,
            "callback_comment": "",
            "closed_at": None,
            "appeal_reason": "",
            "appeal_text": "",
            "appeal_from": "",
            "appeal_decision": "",
        }
        self.steps: list[tuple[Any, ...]] = []
        self.counted = True
        self._step("opened", "open", "citizen", "", "", self.opened)

    def _step(self, action: str, to: str, kind: str, actor: str, note: str, at: datetime) -> None:
        self.steps.append(
            (
                uuid.UUID(int=self.rng.getrandbits(128), version=4),
                self.id,
                len(self.steps) + 1,
                at,
                action,
                "" if action == "opened" else self.state,
                to,
                kind,
                actor,
                note,
            )
        )
        self.state, self.t = to, at

    def _when(self, low_hours: float, high_hours: float) -> datetime | None:
        at = self.t + timedelta(hours=self.rng.uniform(low_hours, high_hours))
        return at if at <= self.now else None

    def _advance(self, to: datetime) -> None:
        """The ratings round escalates a case still waiting once its deadline has passed."""
        if self.state in OPEN and self.v["escalated_at"] is None and self.deadline <= to:
            at = min(max(self.t, self.deadline) + timedelta(seconds=self.rng.uniform(0, 60)), to)
            self.v["escalated_at"] = at
            self._step("escalated", self.state, "platform", "ratings", "", at)

    def _move(self, action: str, to: str, kind: str, note: str, at: datetime) -> None:
        self._advance(at)
        actor = {"unit": f"unt_{self.unit.unit_id}", "operator": "opr_bench", "citizen": ""}.get(
            kind, "ratings"
        )
        self._step(action, to, kind, actor, note, at)

    # where a month leaves a case, by share: (plan, cumulative share)
    PLANS = (("void", 0.04), ("appealed", 0.07), ("open", 0.11), ("rectifying", 0.18), ("late", 0.28))

    def play(self) -> None:
        """Verify (most units do), appeal (upheld, pending, or rejected and then answered), answer on
        time or late, and the call-back or the window's end; escalated wherever the deadline passes."""
        rng = self.rng
        r = rng.random()
        plan = next((name for name, share in self.PLANS if r < share), "on_time")
        if plan != "open" and rng.random() < (0.5 if plan in ("void", "appealed") else 0.9):
            if at := self._when(0.5, 72):
                self.v["verified_at"] = at
                self._move("verified", "rectifying", "unit", "已联系评价人核实", at)
        if plan in ("void", "appealed"):
            self._appeal(upheld=plan == "void", decide=plan == "void")
        elif plan in ("on_time", "late") and (
            rng.random() >= 0.08 or self._appeal(upheld=False, decide=True)
        ):
            self._answer(late=plan == "late")
        self._advance(self.now)

    def _appeal(self, *, upheld: bool, decide: bool) -> bool:
        """An appeal, decided (upheld: void) or not; True when the case is back where it was (rejected)."""
        at = self._when(1, 96)
        if at is None:
            return False
        reason = self.rng.choice(["mistaken", "false", "malicious", "not_our_service"])
        self.v |= {"appeal_reason": reason, "appeal_text": "评价内容与事实不符，附监控记录。"}
        self.v["appeal_from"] = self.state
        self.v["appeal_decision"] = ""
        back = self.state
        self._move("appealed", "appealed", "unit", self.v["appeal_text"], at)
        if not decide or (at := self._when(2, 120)) is None:
            return False
        if upheld:
            self.v |= {"appeal_decision": "upheld", "closed_at": at}
            self.counted = False
            self._move("upheld", "void", "operator", "申诉成立", at)
            return False
        self.v["appeal_decision"] = "rejected"
        self._move("rejected", back, "operator", "证据不足，驳回", at)
        return True

    def _answer(self, *, late: bool) -> None:
        rng = self.rng
        if late or self.t + timedelta(hours=1) >= self.deadline:
            at = max(self.t, self.deadline) + timedelta(hours=rng.uniform(1, 192))
        else:
            span = (self.deadline - self.t).total_seconds() - 60
            at = self.t + timedelta(seconds=rng.uniform(3600, max(3601, span)))
        if at > self.now:
            return
        outcome = "rectified" if rng.random() < 0.7 else "explained"
        self.v |= {
            "answered_at": at,
            "outcome": outcome,
            "answer": ANSWERS[outcome],
            "on_time": at < self.deadline,
            "verified_at": self.v["verified_at"] or at,
        }
        self._move("answered", "answered", "unit", ANSWERS[outcome], at)
        window = timedelta(days=CALLBACK_DAYS)
        if rng.random() < 0.6:
            back = at + timedelta(seconds=rng.uniform(3600, window.total_seconds() - 60))
            if back <= self.now:
                level = rng.choices([5, 4, 3, 2, 1], [40, 30, 10, 12, 8])[0]
                comment = "" if level >= 3 else "问题没有解决。"
                self.v |= {"callback_level": level, "callback_comment": comment, "closed_at": back}
                self._move("called_back", "closed", "citizen", comment, back)
                return
        if at + window <= self.now:  # the round closes it: no call-back in time
            closed = at + window + timedelta(seconds=rng.uniform(0, 60))
            closed = min(closed, self.now)
            self.v["closed_at"] = closed
            self._move("closed", "closed", "platform", "no call-back in time", closed)

    def row(self, month: str) -> tuple[Any, ...]:
        times = [step[3] for step in self.steps]
        if times != sorted(times) or self.steps[-1][6] != self.state or times[-1] > self.now:
            raise AssertionError(f"the generator's case {self.id} is not one the app could have made")
        u = self.unit
        v = self.v
        return (
            self.id,
            self.rating_id,
            u.unit_id,
            u.service,
            u.district,
            month,
            self.citizen,
            self.state,
            self.opened,
            self.deadline,
            self.exact,
            *(v[c] for c in CASE_COLUMNS[11:]),
        )


_DEADLINES: dict[date, tuple[datetime, bool]] = {}


def _deadline(opened: datetime) -> tuple[datetime, bool]:
    """The case's deadline (15 working days, ratings.calendar): the same for every case of a China day."""
    day = opened.astimezone(CHINA).date()
    if day not in _DEADLINES:
        _DEADLINES[day] = add_working_days(opened, RECTIFY_DAYS)
    return _DEADLINES[day]


def month_bounds(month: str, now: datetime) -> tuple[datetime, datetime]:
    first = datetime.strptime(month, "%Y-%m").replace(tzinfo=CHINA)
    after = (first + timedelta(days=32)).replace(day=1)
    return first.astimezone(UTC), min(after.astimezone(UTC), now)


def make_month(rng: random.Random, units: list[UnitSpec], n: int, month: str, now: datetime) -> Month:
    start, end = month_bounds(month, now)
    if end <= start:
        raise SystemExit(f"--month {month} has not begun yet")
    out = Month(units=units)
    citizens = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(max(1, n // 3))]
    cum: list[float] = []
    total = 0.0
    for u in units:
        total += u.weight
        cum.append(total)
    days = (end - start).total_seconds() / 86400
    chosen = rng.choices(units, cum_weights=cum, k=n)
    for i, unit in enumerate(chosen):
        # a day of the month, then a time of day around the afternoon (China time)
        while True:
            day = int(rng.uniform(0, days))
            at = start + timedelta(days=day, hours=rng.triangular(7, 22, 15))
            if at < end:
                break
        bad = rng.random() < unit.bad_p
        level = (2 if rng.random() < 0.6 else 1) if bad else rng.choices([5, 4, 3], [60, 30, 10])[0]
        indicators = {
            k: min(5, max(1, level + rng.choice((-1, 0, 0, 0, 1)))) for k in INDICATORS[unit.channel]
        } | {"overall": level}
        comment = rng.choice(COMPLAINTS) if bad else (rng.choice(PRAISE) if rng.random() < 0.15 else "")
        citizen = citizens[rng.randrange(len(citizens))]
        event = uuid.UUID(int=rng.getrandbits(128), version=4)
        rating_id = uuid.UUID(int=rng.getrandbits(128), version=4)
        occurred = at - timedelta(seconds=rng.uniform(60, 2 * 86400))
        out.events.append(
            (
                event,
                f"{unit.owner}/bench:{month}:{i}",
                unit.service,
                unit.unit_id,
                unit.district,
                unit.channel,
                citizen,
                occurred,
                occurred + timedelta(days=unit.window_days),
                at,
            )
        )
        rating = (
            rating_id,
            event,
            unit.service,
            unit.unit_id,
            unit.district,
            unit.channel,
            citizen,
            level,
            json.dumps(indicators),
            comment,
            month,
            True,
            False,
            at,
        )
        counted = True
        if bad:
            case = _Case(rng, now, rating, unit)
            case.play()
            counted = case.counted
            out.cases.append(case.row(month))
            out.steps.extend(case.steps)
            _tally_case(out.tally, case)
        out.ratings.append((*rating[:11], counted, *rating[12:]))
        if counted:
            out.tally["ratings"] += 1
            out.tally["good" if level >= 3 else "bad"] += 1
            out.tally["points"] += level
    return out


def _tally_case(t: Counter[str], case: _Case) -> None:
    t["states:" + case.state] += 1
    if case.state == "void":
        t["appeals_upheld"] += 1
        return
    t["cases"] += 1
    if case.state in ("answered", "closed"):
        t["answered"] += 1
        t["rectified"] += case.v["outcome"] == "rectified"
        t["on_time"] += bool(case.v["on_time"])
    if case.v["callback_level"] is not None:
        t["callbacks"] += 1
        t["callbacks_good"] += case.v["callback_level"] >= 3


async def insert_month(url: str, m: Month) -> None:
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            await conn.executemany(
                "INSERT INTO rating_unit (unit_id, owner, name_zh, name_en, district, created_at)"
                " VALUES ($1, $2, $3, $4, $5, now()) ON CONFLICT (unit_id) DO UPDATE SET name_zh = excluded.name_zh,"
                " name_en = excluded.name_en, district = excluded.district",
                [(u.unit_id, u.owner, u.name_zh, u.name_en, u.district) for u in m.units],
            )
            await conn.copy_records_to_table("rating_event", records=m.events, columns=EVENT_COLUMNS)
            await conn.copy_records_to_table("rating", records=m.ratings, columns=RATING_COLUMNS)
            await conn.copy_records_to_table("rating_case", records=m.cases, columns=CASE_COLUMNS)
            await conn.copy_records_to_table("rating_case_step", records=m.steps, columns=STEP_COLUMNS)
        for table in ("rating_unit", "rating_event", "rating", "rating_case", "rating_case_step"):
            await conn.execute(f"VACUUM ANALYZE {table}")
    finally:
        await conn.close()


# -- the independent recount ---------------------------------------------------------------------------

RECOUNT = """
SELECT {key} AS k,
  count(*) FILTER (WHERE r.counted) AS ratings,
  count(*) FILTER (WHERE r.counted AND r.level IN (3, 4, 5)) AS good,
  count(*) FILTER (WHERE r.counted AND r.level IN (1, 2)) AS bad,
  coalesce(sum(r.level) FILTER (WHERE r.counted), 0) AS points,
  count(c.id) FILTER (WHERE c.state <> 'void') AS cases,
  count(c.id) FILTER (WHERE c.state IN ('answered', 'closed') AND c.answered_at IS NOT NULL) AS answered,
  count(c.id) FILTER (WHERE c.state IN ('answered', 'closed') AND c.outcome = 'rectified') AS rectified,
  count(c.id) FILTER (WHERE c.state IN ('answered', 'closed') AND c.answered_at < c.deadline) AS on_time,
  count(c.id) FILTER (WHERE c.state IN ('open', 'rectifying') AND c.deadline <= now()) AS overdue,
  count(c.id) FILTER (WHERE c.state = 'void') AS void,
  count(c.id) FILTER (WHERE c.state <> 'void' AND c.callback_level IS NOT NULL) AS callbacks,
  count(c.id) FILTER (WHERE c.state <> 'void' AND c.callback_level >= 3) AS callbacks_good
FROM rating r LEFT JOIN rating_case c ON c.rating = r.id
WHERE r.month = $1
GROUP BY 1
"""
RECOUNT_KEYS = {"unit": "r.unit_id", "service": "r.service", "district": "r.district", "month": "r.month"}
CHECKED = (
    "ratings",
    "good",
    "bad",
    "average",
    "satisfaction_rate",
    "bad_rate",
    "cases",
    "answered",
    "rectified",
    "explained",
    "on_time",
    "overdue",
    "appeals_upheld",
    "feedback_rate",
    "rectification_rate",
    "on_time_rate",
    "callback_satisfaction",
    "rank",
)


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


async def recount(url: str, month: str) -> dict[str, dict[str, dict[str, Any]]]:
    """by -> key -> the row as the statistics should show it, counted here."""
    conn = await asyncpg.connect(url)
    try:
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for by, key in RECOUNT_KEYS.items():
            rows = {}
            for r in await conn.fetch(RECOUNT.format(key=key), month):
                n, answered = r["ratings"], r["answered"]
                rows[r["k"]] = {
                    "ratings": n,
                    "good": r["good"],
                    "bad": r["bad"],
                    "average": round(r["points"] / n, 2) if n else None,
                    "satisfaction_rate": _share(r["good"], n),
                    "bad_rate": _share(r["bad"], n),
                    "cases": r["cases"],
                    "answered": answered,
                    "rectified": r["rectified"],
                    "explained": answered - r["rectified"],
                    "on_time": r["on_time"],
                    "overdue": r["overdue"],
                    "appeals_upheld": r["void"],
                    "feedback_rate": _share(answered, r["cases"]),
                    "rectification_rate": _share(r["rectified"], answered),
                    "on_time_rate": _share(r["on_time"], answered),
                    "callback_satisfaction": _share(r["callbacks_good"], r["callbacks"]),
                    "callbacks": r["callbacks"],
                    "callbacks_good": r["callbacks_good"],
                    "points": r["points"],
                    "rank": None,
                }
            if by == "unit":
                ranked = sorted(
                    rows.items(),
                    key=lambda kv: (-(kv[1]["satisfaction_rate"] or 0), -kv[1]["ratings"], kv[0]),
                )
                for place, (_, row) in enumerate(ranked, start=1):
                    row["rank"] = place
            out[by] = rows
        return out
    finally:
        await conn.close()


def compare(label: str, got: list[dict[str, Any]], want: dict[str, dict[str, Any]]) -> bool:
    """Print OK, or each difference (the first ten)."""
    diffs = []
    got_keys = {r["key"] for r in got}
    for k in sorted(set(want) - got_keys):
        diffs.append(f"{k!r}: missing from the statistics")
    for row in got:
        expect = want.get(row["key"])
        if expect is None:
            diffs.append(f"{row['key']!r}: in the statistics, not in the recount")
            continue
        for col in CHECKED:
            if row[col] != expect[col]:
                diffs.append(f"{row['key']!r} {col}: statistics {row[col]!r}, recount {expect[col]!r}")
    if len(got) != len(got_keys):
        diffs.append(f"{len(got) - len(got_keys)} keys twice")
    if diffs:
        print(f"  {label}: {len(diffs)} DIFFERENCES: " + "; ".join(diffs[:10]))
        return False
    print(f"  {label}: {len(got)} rows, every figure equal to the recount — OK")
    return True


# -- wrk -----------------------------------------------------------------------------------------------


@dataclass
class WrkRun:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    statuses: dict[str, int]
    errors: str
    sent: list[int]  # requests each thread sent ("once")

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def _wrk(port: int, lua: Path, connections: int, seconds: int, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            shutil.which("wrk") or "wrk",
            "-t",
            str(min(THREADS, connections)),
            "-c",
            str(connections),
            "-d",
            f"{seconds}s",
            "--timeout",
            "10s",
            "-s",
            str(lua),
            f"http://127.0.0.1:{port}",
            "--",
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(proc: subprocess.Popen[str], seconds: float) -> WrkRun:
    out, err = proc.communicate(timeout=seconds + 60)
    m = re.search(
        r"SUMMARY requests=(\d+) duration_us=(\d+) p50_us=(\d+) p99_us=(\d+) errors=(\S+) sent=(\S*)", out
    )
    if proc.returncode != 0 or m is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {out[-2000:]} {err[-2000:]}")
    statuses = json.loads(s.group(1)) if (s := re.search(r"STATUSES (\{.*\})", out)) else {}
    return WrkRun(
        requests=int(m.group(1)),
        seconds=int(m.group(2)) / 1e6,
        p50_ms=int(m.group(3)) / 1000,
        p99_ms=int(m.group(4)) / 1000,
        statuses=statuses,
        errors=", ".join(e for e in m.group(5).split(",") if not e.endswith(":0")),
        sent=[int(x) for x in m.group(6).split(",") if x],
    )


# -- the run -------------------------------------------------------------------------------------------


@dataclass
class Series:
    name: str
    round: int
    run: WrkRun
    cost: dict[str, float]


def _median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def _p95(xs: list[float]) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(0.95 * len(s)) - 1))] if s else float("nan")


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.dir = Path(tempfile.mkdtemp(prefix="shengshi-ratings-"))
        self.admin_url = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
        self.dbname = f"shengshi_ratings_{os.getpid()}"
        self.db_url = self.admin_url.rpartition("/")[0] + "/" + self.dbname
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SHENGSHI_")}
        self.env.update(
            {
                "SHENGSHI_DATA_DIR": str(self.dir),
                "SHENGSHI_DATABASE_URL": self.db_url,
                "SHENGSHI_REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
                "SHENGSHI_STORE_PREFIX": f"ratingsbench:{os.getpid()}:",
                "SHENGSHI_LOG_LEVEL": "WARNING",
                "PYTHONPATH": str(ROOT),
                "BENCH_SCRATCH_URL": self.db_url,
                "BENCH_MONTH": args.month,
            }
        )
        self.meter = Meter(self.admin_url, self.dbname)
        self.servers: dict[str, subprocess.Popen[bytes]] = {}
        self.ports = {name: _free_port() for name in ("app", "base")}
        self.logs: list[IO[bytes]] = []
        self.lua = self.dir / "ratings.lua"
        self.lua.write_text(WRK_LUA)
        self.rng = random.Random(args.seed)
        self.failed: list[str] = []
        self.results: list[Series] = []
        self.sent: dict[str, dict[str, Any]] = {}  # request id -> what it was
        self.told: dict[str, tuple[int, str, str]] = {}  # request id -> (status, rating id, problem code)
        self.unsent: set[str] = set()  # request ids wrk never sent
        self.units: list[UnitSpec] = []

    # -- processes
    def _python(self, *args: str) -> str:
        try:
            done = subprocess.run(
                [sys.executable, *args], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=900
            )
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(f"{args[:2]} did not finish in 900 s: {exc.stderr!r:.3000}") from None
        if done.returncode:
            raise RuntimeError(f"{args[:2]} failed ({done.returncode}): {done.stderr[-3000:]}")
        return done.stdout

    def start(self, name: str) -> None:
        target = {"app": "backend.asgi:serve_app", "base": "bench._ratings_base_app:app"}[name]
        log = (self.dir / f"{name}.log").open("ab")
        self.logs.append(log)
        proc = _uvicorn(
            target, self.ports[name], self.env, factory=name == "app", workers=self.args.workers, log=log
        )
        self.servers[name] = proc
        try:
            _wait(self.ports[name], proc)
        except RuntimeError:
            log.flush()
            print((self.dir / f"{name}.log").read_text()[-3000:], file=sys.stderr)
            raise

    def admin(self, sql: str) -> None:
        try:
            asyncio.run(asyncio.wait_for(_pg(self.admin_url, sql), 60))
        except TimeoutError:
            raise RuntimeError(f"{sql!r} did not finish in 60 s (see pg_stat_activity, pg_locks)") from None

    # -- the month
    def setup(self) -> None:
        a = self.args
        started = time.monotonic()
        self.admin(f'CREATE DATABASE "{self.dbname}"')
        self._python("-m", "backend", "migrate")
        now = datetime.now(UTC)
        self.units = make_units(self.rng, a.units)
        t = time.monotonic()
        self.month = make_month(self.rng, self.units, a.ratings, a.month, now)
        made = time.monotonic() - t
        t = time.monotonic()
        asyncio.run(insert_month(self.db_url, self.month))
        tally = self.month.tally
        states = ", ".join(
            f"{s} {tally['states:' + s]:,}"
            for s in ("open", "rectifying", "answered", "closed", "appealed", "void")
        )
        print(
            f"{self.dbname}: migrated; {len(self.units)} units in {len({u.district for u in self.units} - {''})}"
            f" districts (and the payment centre, city-wide); {a.ratings:,} ratings in {a.month}:"
            f" {tally['good']:,} good, {tally['bad'] + tally['appeals_upheld']:,} bad, each with its case"
            f" ({states}; answered on time {tally['on_time']:,}, late {tally['answered'] - tally['on_time']:,};"
            f" {tally['callbacks']:,} call-backs), {len(self.month.steps):,} steps;"
            f" made in {made:.1f} s, inserted (COPY) and analysed in {time.monotonic() - t:.1f} s;"
            f" setup {time.monotonic() - started:.0f} s",
            flush=True,
        )
        op = json.loads(self._python("-c", PREPARE, "operator").strip().splitlines()[-1])
        self.operator = (
            "Basic " + base64.b64encode(f"{op['client_id']}:{op['client_secret']}".encode()).decode()
        )

    # -- statistics, in-process
    def stats_inprocess(self) -> dict[str, Any]:
        out = self.dir / "stats.json"
        self._python(
            "-c",
            STATS,
            self.args.month,
            str(self.args.rounds),
            self.db_url,
            "1" if self.args.explain else "0",
            str(out),
        )
        result = json.loads(out.read_text())
        times, cpu = result["times"], result["cpu"]
        floor = _median(times["floor: one GROUP BY unit_id"])
        print(
            f"\n## Statistics in-process: {self.args.ratings:,} ratings of {self.args.month},"
            f" {self.args.rounds} interleaved rounds after a warm-up (ms)"
        )
        print(f"{'series':<32}{'median':>9}{'p95':>9}{'min':>9}{'÷ floor':>9}{'Python CPU':>12}")
        for name, xs in times.items():
            print(
                f"{name:<32}{_median(xs):9.2f}{_p95(xs):9.2f}{min(xs):9.2f}{_median(xs) / floor:9.2f}"
                f"{_median(cpu[name]):12.2f}"
            )
        for by, plans in result["plans"].items():
            for sql, plan in zip(result["queries"][by], plans, strict=True):
                print(f"\n### EXPLAIN (ANALYZE, BUFFERS), by {by}\n{sql}\n{plan}")
        self.inprocess = result
        return result

    def check_stats(self, rows: dict[str, list[dict[str, Any]]]) -> None:
        print("\n## The statistics against the recount (plain SQL here: ratings joined to their cases)")
        want = asyncio.run(recount(self.db_url, self.args.month))
        ok = True
        for by in BYS:
            ok &= compare(f"by {by}", rows[by], want[by])
        # the totals against what the generator made
        [total] = want["month"].values()
        tally = self.month.tally
        made = {
            "ratings": tally["ratings"],
            "good": tally["good"],
            "bad": tally["bad"],
            "cases": tally["cases"],
            "answered": tally["answered"],
            "rectified": tally["rectified"],
            "on_time": tally["on_time"],
            "appeals_upheld": tally["appeals_upheld"],
            "callbacks": tally["callbacks"],
            "callbacks_good": tally["callbacks_good"],
            "points": tally["points"],
        }
        diff = {k: (v, total[k]) for k, v in made.items() if total[k] != v}
        print(
            "  totals against the generator: "
            + (
                "OK (" + ", ".join(f"{k} {v:,}" for k, v in made.items() if k != "points") + ")"
                if not diff
                else f"DIFFERENCES (made, recounted): {diff}"
            )
        )
        ok &= not diff
        if not ok:
            self.failed.append("stats_recount")

    # -- statistics over HTTP
    def stats_http(self) -> None:
        import httpx

        a = self.args
        query = f"by=unit&month_from={a.month}&month_to={a.month}"
        base = f"http://127.0.0.1:{self.ports['app']}/api/v1/admin/ratings"
        headers = {"Authorization": self.operator}
        print("\n## The answers over HTTP against compute's rows")
        ok = True
        for by in BYS:
            r = httpx.get(
                f"{base}/stats?by={by}&month_from={a.month}&month_to={a.month}", headers=headers, timeout=60
            )
            if r.status_code != 200:
                raise RuntimeError(f"stats by {by}: {r.status_code} {r.text[:500]}")
            got = r.json()["rows"]
            want = json.loads(json.dumps(self.inprocess["rows"][by], default=str))
            same = [{k: row[k] for k in row if k != "name"} for row in got] == [
                {k: row[k] for k in row if k != "name"} for row in want
            ]
            c = httpx.get(
                f"{base}/stats.csv?by={by}&month_from={a.month}&month_to={a.month}",
                headers=headers,
                timeout=60,
            )
            table = list(csv.DictReader(io.StringIO(c.text.lstrip("\ufeff"))))
            csv_same = c.status_code == 200 and [
                (t["key"].lstrip("'"), int(t["ratings"]), int(t["bad"]), int(t["cases"]), int(t["on_time"]))
                for t in table
            ] == [(w["key"], w["ratings"], w["bad"], w["cases"], w["on_time"]) for w in want]
            print(
                f"  by {by}: JSON {len(got)} rows {'equal to compute — OK' if same else 'DIFFER from compute'};"
                f" CSV {len(table)} rows {'agree — OK' if csv_same else 'DISAGREE'} ({len(c.content):,} bytes)"
            )
            ok &= same and csv_same
            if by == "unit":
                body = r.content
        if not ok:
            self.failed.append("stats_http")
        (self.dir / "stats-body.json").write_bytes(body)
        self.env["BENCH_STATS_BODY"] = str(self.dir / "stats-body.json")
        self.start("base")
        print(
            f"\n## Statistics over HTTP: {a.stats_connections} connections, wrk {THREADS} threads, uvicorn"
            f" {a.workers} worker(s) per server, {a.http_rounds} round(s) of {a.seconds} s per series;"
            f" the JSON answer by unit is {len(body):,} bytes"
        )
        paths = {
            "app: stats (JSON)": ("app", f"/api/v1/admin/ratings/stats?{query}", self.operator),
            "bare (same bytes)": ("base", "/bare/stats", "-"),
            "floor (one GROUP BY)": ("base", "/floor/stats", "-"),
            "app: stats.csv": ("app", f"/api/v1/admin/ratings/stats.csv?{query}", self.operator),
        }
        for number in range(1, a.http_rounds + 1):
            print(f"round {number}")
            for name, (server, path, auth) in paths.items():
                s = self.series(name, number, server, a.stats_connections, "get", path, auth)
                print(f"  {name:<22} {_line(s)}", flush=True)

    def series(
        self,
        name: str,
        number: int,
        server: str,
        connections: int,
        *args: str,
        once: bool = False,
        seconds: int | None = None,
    ) -> Series:
        """One wrk run against a server; ``once``: each request once, stopped when every answer is in (its
        rate: requests over the time from the first thread's start to the last answer)."""
        seconds = seconds or self.args.seconds
        proc = self.servers[server]
        before = self.meter.snapshot(proc)
        wrk = _wrk(self.ports[server], self.lua, connections, seconds, *args)
        if once:
            records = args[2]
            done = [Path(f"{records}{t}.done") for t in range(THREADS)]
            while wrk.poll() is None:
                if all(d.exists() for d in done):
                    wrk.send_signal(signal.SIGINT)
                    break
                time.sleep(0.02)
        run = _finish(wrk, seconds)
        if once and all(Path(f"{args[2]}{t}.done").exists() for t in range(THREADS)):
            start = min(Path(f"{args[2]}{t}.start").stat().st_mtime for t in range(THREADS))
            run.seconds = max(Path(f"{args[2]}{t}.done").stat().st_mtime for t in range(THREADS)) - start
        cost = Meter.cost(before, self.meter.snapshot(proc), run.requests)
        s = Series(name, number, run, cost)
        self.results.append(s)
        return s

    # -- submitting ratings
    def rate_round(self, number: int) -> None:
        a = self.args
        rng = self.rng
        citizens = [str(uuid.uuid4()) for _ in range(a.citizens)]
        asyncio.run(_add_citizens(self.db_url, citizens))
        now = datetime.now(UTC)
        cum: list[float] = []
        total = 0.0
        for u in self.units:
            total += u.weight
            cum.append(total)
        events = []
        for c, unit in zip(citizens, rng.choices(self.units, cum_weights=cum, k=len(citizens)), strict=True):
            occurred = now - timedelta(seconds=rng.uniform(60, 3 * 86400))
            events.append(
                (
                    uuid.uuid4(),
                    f"{unit.owner}/bench-rate:{number}:{c}",
                    unit.service,
                    unit.unit_id,
                    unit.district,
                    unit.channel,
                    c,
                    occurred,
                    occurred + timedelta(days=unit.window_days),
                    None,
                )
            )
        asyncio.run(_copy(self.db_url, "rating_event", events, EVENT_COLUMNS))
        who = self.dir / f"citizens-{number}.json"
        who.write_text(json.dumps(citizens))
        t = time.monotonic()
        tokens = json.loads(self._python("-c", PREPARE, "tokens", str(who)).strip().splitlines()[-1])
        issued = time.monotonic() - t
        lines: list[list[str]] = [[] for _ in range(THREADS)]
        twice = 0
        for i, (event, token) in enumerate(zip(events, tokens, strict=True)):
            bad = rng.random() < 0.15
            level = (2 if rng.random() < 0.6 else 1) if bad else rng.choices([5, 4, 3], [60, 30, 10])[0]
            indicators = {
                k: LEVEL_NAMES[min(5, max(1, level + rng.choice((-1, 0, 0, 1))))]
                for k in INDICATORS[event[5]]
                if k != "overall" and rng.random() < 0.7
            }
            body = {"event_id": str(event[0]), "level": LEVEL_NAMES[level], "indicators": indicators}
            if bad or rng.random() < 0.1:
                body["comment"] = rng.choice(COMPLAINTS) if bad else rng.choice(PRAISE)
            text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
            copies = 2 if rng.random() < a.twice else 1
            twice += copies == 2
            for k in range(copies):
                rid = f"rate-{number}-{i}-{'ab'[k]}"
                self.sent[rid] = {
                    "event": str(event[0]),
                    "level": level,
                    "citizen": event[6],
                    "copies": copies,
                }
                lines[(i + k) % THREADS].append(f"{rid}\tBearer {token}\t{text}")
        prefix = self.dir / f"req-{number}-"
        for t_, ls in enumerate(lines):
            Path(f"{prefix}{t_}.tsv").write_text("".join(x + "\n" for x in ls))
        print(
            f"round {number}: {a.citizens:,} citizens with a pending event each ({twice:,} of them tapping twice);"
            f" {sum(map(len, lines)):,} requests; tokens issued in {issued:.1f} s"
        )
        records = str(self.dir / f"told-{number}-")
        app = self.series(
            "app: POST /me/ratings",
            number,
            "app",
            a.rate_connections,
            "once",
            str(prefix),
            records,
            once=True,
            seconds=a.rate_seconds,
        )
        for t_, ls in enumerate(lines):
            self.unsent.update(x.split("\t", 1)[0] for x in ls[app.run.sent[t_] :])
        for t_ in range(THREADS):
            path = Path(f"{records}{t_}.txt")
            for line in path.read_text().splitlines() if path.exists() else []:
                rid, status, rating, code = line.split(" ")
                self.told[rid] = (int(status), rating, code)
        bare = self.series("bare: POST", number, "base", a.rate_connections, "cycle", str(prefix), "-")
        print(f"  {'app':<6} {_line(app, bare.run.rps)}")
        print(f"  {'bare':<6} {_line(bare)}", flush=True)

    def books(self) -> None:
        """Each request is told (an answer recorded), in flight (sent, no answer: the series' time ran out
        or wrk stopped with it on the wire; either outcome is right) or never sent (no rating may come of
        it). An event is settled when none of its requests is in flight."""
        print("\n## The books of the submitted ratings (the app stopped with SIGTERM)")
        by_event: dict[str, list[str]] = defaultdict(list)
        for rid, s in self.sent.items():
            by_event[s["event"]].append(rid)
        events = [uuid.UUID(e) for e in by_event]
        db = asyncio.run(_read_books(self.db_url, events))
        ratings_of: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in db["ratings"]:
            ratings_of[str(r["event"])].append(r)
        cases_of: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for c in db["cases"]:
            cases_of[str(c["rating"])].append(c)
        rated_at = {str(e["id"]): e["rated_at"] for e in db["events"]}
        n: Counter[str] = Counter()
        answers: Counter[str] = Counter()
        for event, rids in by_event.items():
            told = [self.told.get(rid) for rid in rids]
            in_flight = sum(t is None and rid not in self.unsent for rid, t in zip(rids, told, strict=True))
            for rid, t in zip(rids, told, strict=True):
                if t is not None:
                    answers[f"{t[0]} {t[2] if t[0] != 201 else ''}".strip()] += 1
                else:
                    answers["never sent" if rid in self.unsent else "in flight (no answer)"] += 1
            created = [t for t in told if t is not None and t[0] == 201]
            mine = ratings_of.get(event, [])
            n["events"] += 1
            n["twice"] += len(rids) == 2
            n["created"] += len(created)
            n["rating_rows"] += len(mine)
            n["rows_of_requests_in_flight"] += bool(mine) and not created
            n["event_created_twice"] += len(created) > 1
            n["event_rated_twice"] += len(mine) > 1
            if all(rid in self.unsent for rid in rids):
                n["never_sent"] += 1
                n["never_sent_but_rated"] += bool(mine) or rated_at.get(event) is not None
                continue
            if (
                len(rids) == 2
                and not in_flight
                and len(created) != 1
                and not any(r in self.unsent for r in rids)
            ):
                n["double_tap_not_exactly_one_201"] += 1
            row = None
            if created:
                rows = [r for r in mine if str(r["id"]) == created[0][1]]
                n["created_without_its_row"] += len(rows) != 1
                row = rows[0] if len(rows) == 1 else None
            elif mine and not in_flight:
                n["rated_but_nobody_told"] += 1
            elif not mine and not in_flight:
                n["unrated_but_marked"] += rated_at.get(event) is not None
            if row is None and len(mine) == 1 and in_flight:
                row = mine[0]  # rated by a request in flight: its books are checked all the same
            if row is not None:
                sent = self.sent[rids[0]]
                n["level_not_as_sent"] += row["level"] != sent["level"]
                n["citizen_not_the_rater"] += row["citizen_id"] != sent["citizen"]
                n["event_not_marked_rated"] += rated_at.get(event) is None
                cases = cases_of.get(str(row["id"]), [])
                if row["level"] <= 2:
                    n["bad"] += 1
                    n["bad_without_one_case"] += len(cases) != 1
                    n["case_without_opening_step"] += len(cases) == 1 and cases[0]["opened_steps"] != 1
                else:
                    n["good_with_a_case"] += bool(cases)
        expected = ("201", "409 already_rated", "never sent", "in flight (no answer)")
        others = {k: v for k, v in answers.items() if k not in expected}
        print(
            f"  {n['events']:,} events ({n['twice']:,} tapped twice at once; {n['never_sent']:,} never sent);"
            " requests: " + ", ".join(f"{k} {v:,}" for k, v in answers.most_common())
        )
        print(
            f"  {n['rating_rows']:,} rating rows of these events: {n['created']:,} told 201 and"
            f" {n['rows_of_requests_in_flight']:,} of requests in flight; {n['bad']:,} bad ratings"
        )
        checks = (
            "created_without_its_row",
            "event_created_twice",
            "event_rated_twice",
            "double_tap_not_exactly_one_201",
            "rated_but_nobody_told",
            "never_sent_but_rated",
            "level_not_as_sent",
            "citizen_not_the_rater",
            "event_not_marked_rated",
            "unrated_but_marked",
            "bad_without_one_case",
            "case_without_opening_step",
            "good_with_a_case",
        )
        print("  " + ", ".join(f"{k.replace('_', ' ')} {n[k]}" for k in checks))
        failed = [k for k in checks if n[k]]
        if others:
            failed.append("unexpected_answers")
            print(f"  unexpected answers: {others}")
        print("  books: " + ("every check holds" if not failed else "FAILED: " + ", ".join(failed)))
        self.failed += failed

    def summary(self) -> None:
        by: dict[str, list[Series]] = defaultdict(list)
        for s in self.results:
            by[s.name].append(s)
        rounds = {s.round for s in self.results}

        def ratio(name: str, base: str) -> float:
            xs = []
            for n in rounds:
                a = [s for s in by.get(name, []) if s.round == n]
                b = [s for s in by.get(base, []) if s.round == n]
                if a and b and b[0].run.rps:
                    xs.append(a[0].run.rps / b[0].run.rps)
            return _median(xs)

        print("\n## Medians over the rounds (ratios: the median of each round's ratio)")
        print(
            f"{'series':<24}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'÷ bare':>8}{'÷ floor':>9}"
            f"{'worker':>9}{'PG':>7}{'PG ours':>9}   (CPU ms per request)"
        )
        for name, ss in by.items():
            bare = "bare: POST" if name.startswith(("app: POST", "bare: POST")) else "bare (same bytes)"
            floor = None if "POST" in name else "floor (one GROUP BY)"
            print(
                f"{name:<24}{_median([s.run.rps for s in ss]):9,.1f}{_median([s.run.p50_ms for s in ss]):9.2f}"
                f"{_median([s.run.p99_ms for s in ss]):9.2f}{ratio(name, bare):8.3f}"
                f"{ratio(name, floor) if floor else float('nan'):9.3f}"
                f"{_median([s.cost['worker_ms'] for s in ss]):9.3f}{_median([s.cost['pg_ms'] for s in ss]):7.2f}"
                f"{_median([s.cost['pg_ours_ms'] for s in ss]):9.2f}"
            )

    def cleanup(self) -> None:
        for proc in self.servers.values():
            _stop(proc, 60)
        for log in self.logs:
            log.close()
        self.meter.close()
        if self.args.keep:
            print(f"(kept the database {self.dbname} and the folder {self.dir})")
            return
        try:
            self.admin(f'DROP DATABASE IF EXISTS "{self.dbname}" WITH (FORCE)')
        except Exception as exc:  # the rest of the clean-up still runs
            print(f"(could not drop {self.dbname}: {exc})", file=sys.stderr)
        import redis

        r = redis.Redis.from_url(self.env["SHENGSHI_REDIS_URL"])
        keys = list(r.scan_iter(match=self.env["SHENGSHI_STORE_PREFIX"] + "*", count=1000))
        for i in range(0, len(keys), 1000):
            r.delete(*keys[i : i + 1000])
        shutil.rmtree(self.dir, ignore_errors=True)


def _line(s: Series, bare: float | None = None) -> str:
    run = s.run
    text = f"{run.rps:8,.1f} req/s  p50 {run.p50_ms:7.2f} ms  p99 {run.p99_ms:7.2f} ms"
    if bare:
        text += f"  ÷ bare {run.rps / bare:5.3f}"
    text += (
        f" | CPU per request: worker {s.cost['worker_ms']:.3f} ms, PostgreSQL {s.cost['pg_ms']:.3f} ms"
        f" (ours {s.cost['pg_ours_ms']:.3f})"
    )
    text += f" | {dict(sorted(run.statuses.items()))}"
    errors = ", ".join(e for e in run.errors.split(", ") if e and not e.startswith("status:"))
    if errors:  # answers other than 2xx are counted by status above (409: the second of a double tap)
        text += f" | wrk errors {errors}"
    return text


async def _copy(url: str, table: str, records: list[tuple[Any, ...]], columns: tuple[str, ...]) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.copy_records_to_table(table, records=records, columns=columns)
    finally:
        await conn.close()


async def _read_books(url: str, events: list[uuid.UUID]) -> dict[str, list[Any]]:
    conn = await asyncpg.connect(url)
    try:
        return {
            "events": list(
                await conn.fetch("SELECT id, rated_at FROM rating_event WHERE id = ANY($1)", events)
            ),
            "ratings": list(
                await conn.fetch(
                    "SELECT id, event, level, citizen_id FROM rating WHERE event = ANY($1)", events
                )
            ),
            "cases": list(
                await conn.fetch(
                    "SELECT c.rating, (SELECT count(*) FROM rating_case_step s WHERE s.case = c.id"
                    " AND s.action = 'opened') AS opened_steps FROM rating_case c"
                    " WHERE c.rating IN (SELECT id FROM rating WHERE event = ANY($1))",
                    events,
                )
            ),
        }
    finally:
        await conn.close()


def _last_month() -> str:
    first = datetime.now(CHINA).replace(day=1)
    return (first - timedelta(days=1)).strftime("%Y-%m")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ratings", type=int, default=100_000, help="ratings in the month")
    parser.add_argument("--units", type=int, default=200)
    parser.add_argument(
        "--month", default=_last_month(), help="YYYY-MM (China time); the month before this one"
    )
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--rounds", type=int, default=30, help="in-process rounds of Stats.compute")
    parser.add_argument("--explain", action="store_true", help="print the plans of compute's queries")
    parser.add_argument("--http-rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10, help="at most, per wrk series")
    parser.add_argument("--stats-connections", type=int, default=4, help="operators reading at once")
    parser.add_argument("--citizens", type=int, default=4000, help="citizens rating, per round")
    parser.add_argument("--rate-rounds", type=int, default=2)
    parser.add_argument("--rate-seconds", type=int, default=30, help="at most, per round of submissions")
    parser.add_argument("--twice", type=float, default=0.1, help="share of citizens who tap twice at once")
    parser.add_argument("--rate-connections", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers of every server")
    parser.add_argument("--keep", action="store_true", help="keep the database, keys and scratch folder")
    args = parser.parse_args()
    try:
        datetime.strptime(args.month, "%Y-%m")
    except ValueError:
        parser.error("--month is YYYY-MM")
    if (
        min(args.ratings, args.units, args.rounds, args.seconds, args.workers, args.stats_connections) < 1
        or args.units < 2
    ):
        parser.error("--ratings, --rounds, --seconds, --workers, --stats-connections: at least 1; --units: 2")
    if shutil.which("wrk") is None:
        sys.exit(
            "wrk is missing: install Debian's package (apt-get install wrk, or `make bench-tools`); "
            "this benchmark drives the load with a compiled generator, never Python on the same cores"
        )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped by SIGTERM"))
    bench = Bench(args)
    print(
        f"load average at the start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} cores)"
    )
    try:
        bench.setup()
        result = bench.stats_inprocess()
        bench.check_stats(result["rows"])
        bench.start("app")
        bench.stats_http()
        if args.rate_rounds:
            print(
                f"\n## Submitting ratings: PostgreSQL + Redis, uvicorn {args.workers} worker(s) per server,"
                f" wrk {THREADS} threads, {args.rate_connections} connections, each request once (at most"
                f" {args.rate_seconds} s), then the bare handler for {args.seconds} s"
            )
            for number in range(1, args.rate_rounds + 1):
                bench.rate_round(number)
        bench.summary()
        print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        _stop(bench.servers["app"])
        if args.rate_rounds:
            bench.books()
    finally:
        bench.cleanup()
    if bench.failed:
        sys.exit(f"checks failed: {', '.join(sorted(set(bench.failed)))}")


if __name__ == "__main__":
    main()
