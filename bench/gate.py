"""The gate at rush hour (issue 15): the whole transit path on PostgreSQL + Redis under wrk, against two
baselines served the same way in the same run, and the books read back afterwards.

    .venv/bin/python bench/gate.py [--rounds 3] [--seconds 10] [--connections 32] [--riders 3000]
                                   [--block 200] [--workers 1] [--crash] [--keep]

Needs wrk (Debian's package: ``apt-get install wrk``, or ``make bench-tools``): a compiled load generator,
so no Python load generator shares the cores with the servers.

Servers, each started the same way (uvicorn, uvloop, httptools, no access log, ``--workers``): the app
(``backend.asgi:serve_app`` on a scratch PostgreSQL database and a Redis key prefix of its own, with the
benchmark mini-app ``benchgate`` enabled next to the built-in ones); ``bench/_bare_app.py``, a bare
Litestar POST decoding the body into a msgspec Struct ("bare"); ``bench/_floor_app.py``, the same plus
one raw ES256 verification of a real signature ("the floor"). The baselines get the very requests the
transit series sends (same headers, same bodies), over and over.

Each round (``--rounds``, each series at most ``--seconds``, ``--connections`` gates):

- transit: ``--riders`` citizens (the same ones in every round) get one fresh code each, issued just
  before the series; each rider uses it three times: bus boarding, metro entry at one station, metro exit
  at another. In each wrk thread the requests come in blocks of riders (bus r1..rB, entry r1..rB, exit
  r1..rB, next block; B = ``--block``, 200), so a rider's entry is sent B requests before its exit. Round 1's
  riders are new to transit (cold); later rounds' riders return (warm).
- platform alone: the same riders' codes (the round's, while they stay valid, else fresh ones), three
  scans each at ``benchgate`` scanners, three contexts of their own: a mini-app that admits everything,
  so the platform's own cost.
- doors (扫码门禁, issue 20): ``--riders`` other citizens, residents of the demo community 万科城 (whose
  offline key exists, so their codes carry its keyed claim), one fresh code each, one scan each at one of
  its four doors (``door`` scanners): an ``on_scan`` mini-app (a transaction per scan: the residence
  read, the entry written), measured alone after the platform series with the same costs.
- bare and floor, for the ratios.

Per app series: worker CPU per scan (the uvicorn processes and their children, from /proc), PostgreSQL
CPU per scan (every postgres process, and the postmaster's reaped children; "ours": the backends of the
scratch database only: the server is shared), Redis CPU per scan, database transactions per scan
(pg_stat_database of the scratch database) and the answers by result:reason. PostgreSQL publishes a
backend's counters at most once a second while it works and 10 s after it went idle, so an app series'
figures are taken from its start to >= 11 s after its end (the baseline series run in between): writes
done behind the answers are counted with the scans that caused them.

Then the app is stopped with SIGTERM (a graceful stop finishes its writes) and the books are read:
every scan the gates were told "allow" has exactly one trip and, where the trip charged anything,
exactly one fare order; no scan told "deny" has any; no trip has two orders; a fare is what the gate was
told; an exit allowed after the rider's allowed entry closed that entry's trip. With ``--crash``, one more transit round: the app's processes are killed with SIGKILL half way
through (wrk stops sending scans just before and stops), the app is started again on the same database
and store, wrk sends the round's remaining requests to it (for ``--seconds`` at most), the app is stopped
with SIGTERM once the books stop changing (5 s at most), and the same checks run over everything wrk
recorded (a scan with no recorded answer may have either outcome, never two trips or fares). Exits
non-zero when a check fails. Read ratios and medians: the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]
# bench/codes.py must not shadow the codes package: keep this folder off the path
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from bench.codes import _free_port, _pg, _uvicorn, _wait  # noqa: E402

THREADS = 2  # wrk threads (the machine has 2 cores)
FLUSH = 11.0  # seconds after an app series before its database counters are read (PostgreSQL's 10 s)
BUS_LINES = ("B113", "B136", "B237")
# the demo network's metro stations (miniapps/transit/demo.py): M1-01..M1-22 and M2-01..M2-19
STATIONS = [f"M1-{i:02d}" for i in range(1, 23)] + [f"M2-{i:02d}" for i in range(1, 20)]
APP_SERIES = ("transit", "platform", "doors")  # the series sent to the app (once each), not a baseline
# the demo community's doors (miniapps/doors/demo.py): the door series' scanners
DOORS = ("WK-GATE-N", "WK-GATE-S", "WK-B1-U1", "WK-B2-U1")
BENCH_CONTEXTS = 64  # bench/_bench_miniapp.py's scan contexts: bench-0 .. bench-63

# wrk's script. Arguments: <requests prefix> <records prefix or "-"> <once|cycle> <halt file or "-">.
# Thread n sends the lines of <requests prefix><n>.tsv ("<Authorization>\t<body>"): over and over, or
# once each; then it waits for the answers, stops when every one is in, and says so in the file
# <records prefix><n>.done (created, like <records prefix><n>.start when the thread begins, for its
# time: wrk itself runs for its whole duration). Every answer is counted by result:reason; with a
# records prefix, "<record_id> <result> <reason> <charged>" goes to <records prefix><n>.txt for each
# answer. The crash round names a halt file: while it exists no scan is sent (a connection to a dead
# server fails and reconnects at once, and would burn one request each time), /healthz instead; and as
# requests lost with the server never get an answer, the thread stops 3 s after the last one.
WRK_LUA = r"""
local threads, counter = {}, 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end
function init(args)
  requests, answers, sent, answered = {}, {}, 0, 0
  for line in io.lines(args[1] .. id .. ".tsv") do
    local auth, body = line:match("([^\t]*)\t(.+)")
    if body then
      table.insert(requests, wrk.format("POST", "/api/v1/scans",
        {["Content-Type"] = "application/json", ["Authorization"] = auth}, body))
    end
  end
  cycle = args[3] == "cycle"
  if args[2] ~= "-" then
    out, marks = io.open(args[2] .. id .. ".txt", "w"), args[2] .. id
    io.open(marks .. ".start", "w"):close()
    if #requests == 0 then io.open(marks .. ".done", "w"):close() end
  end
  if args[4] ~= "-" then halt = args[4] end
  last = os.time()
  checking = id == 0  -- wrk asks thread 0 for one request before the run, to check it: never sent
end
local function halted()
  local f = halt and io.open(halt, "r")
  if f then f:close() return true end
  return false
end
function delay()
  if not cycle and sent >= #requests then
    if halt then return 500 end  -- the crash round: look again, some answers will never come
    return 3600000  -- all sent: wait for the answers
  end
  return 0
end
function request()
  if checking then
    checking = false
    return requests[1] or wrk.format("GET", "/healthz")
  end
  if not cycle and (sent >= #requests or halted()) then  -- never a scan twice, none while halted
    if halt and sent >= #requests and os.time() - last >= 3 then wrk.thread:stop() end
    return wrk.format("GET", "/healthz")
  end
  sent = sent + 1
  if cycle then return requests[(sent - 1) % #requests + 1] end
  return requests[sent]
end
function response(status, headers, body)
  if not cycle and body:find('"status":"ok"', 1, true) then  -- a /healthz filler: no scan
    answers["healthz"] = (answers["healthz"] or 0) + 1
    return
  end
  answered, last = answered + 1, os.time()
  local key, result, reason = nil, nil, nil
  if status == 200 then
    result = body:match('"result":"(%a+)"') or "?"
    reason = body:match('"reason":"([%w_]+)"') or "?"
    key = result .. ":" .. reason
  else
    key = "http_" .. status
  end
  answers[key] = (answers[key] or 0) + 1
  if out then
    out:write(body:match('"record_id":"([^"]*)"') or "?", " ", result or key, " ", reason or "-", " ",
              body:match('"charged":(%-?%d+)') or "-", "\n")
  end
  if not cycle and answered >= #requests then
    if out then
      out:flush()
      io.open(marks .. ".done", "w"):close()
    end
    wrk.thread:stop()
  end
end
function done(summary, latency, requests)
  local total, sent = {}, {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("answers")) do total[k] = (total[k] or 0) + v end
    table.insert(sent, tostring(t:get("sent")))
  end
  local parts = {}
  for k, v in pairs(total) do table.insert(parts, string.format('"%s": %d', k, v)) end
  io.write("ANSWERS {" .. table.concat(parts, ", ") .. "}\n")
  local e = summary.errors
  io.write(string.format("SUMMARY requests=%d duration_us=%d p50_us=%d p99_us=%d " ..
    "errors=connect:%d,read:%d,write:%d,status:%d,timeout:%d sent=%s\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout, table.concat(sent, ",")))
end
"""

# Enrols the gates: (bus lines, metro entry stations, metro exit stations, benchgate contexts, doors).
ENROL = r"""
import asyncio, json, sys
from backend.app import create_app, services_of

async def main(bus, entry, exit_, bench, doors):
    app = create_app()
    async with app.lifespan():
        m = services_of(app).auth.machines
        async def make(app_id, place, context, name):
            return await m.create("scanner", app_id=app_id, place=place, context=context, name=name)
        gates = {
            "bus": [await make("transit", p, "bus", f"bench bus {i}") for i, p in enumerate(bus)],
            "entry": [await make("transit", p, "metro-entry", f"bench in {i}") for i, p in enumerate(entry)],
            "exit": [await make("transit", p, "metro-exit", f"bench out {i}") for i, p in enumerate(exit_)],
            "bench": [await make("benchgate", f"gate {c}", c, f"bench {c}") for c in bench],
            "door": [await make("doors", p, "door", f"bench door {i}") for i, p in enumerate(doors)],
        }
    print(json.dumps(gates))

asyncio.run(main(*json.loads(sys.argv[1])))
"""

# Makes the door series' citizens residents of 万科城 (no building: every door) and gives the place its
# offline key, as a door's first sync does.
RESIDENTS = r"""
import asyncio, json, sys
from backend.app import create_app, services_of
from miniapps.doors.services import new_handle
from miniapps.doors.tables import Place, Resident

async def main(residents_file):
    citizens = json.loads(open(residents_file).read())
    app = create_app()
    async with app.lifespan():
        services = services_of(app)
        doors = services.miniapps.apps["doors"]
        place = await Place.select().where(Place.code == "WANKE-CITY").first().run()
        await doors.keys.ensure(place)
        now = doors.platform.now()
        for i in range(0, len(citizens), 500):
            openids = [await services.auth.pairwise.issue("doors", c) for c in citizens[i:i + 500]]
            await Resident.insert(*(
                Resident(key=f"{place['id']}:{o}", place=place["id"], openid=o, state="active",
                         source="manager", handle=new_handle(), created_at=now, decided_at=now)
                for o in openids
            )).run()

asyncio.run(main(sys.argv[1]))
"""

# Issues every rider one fresh code (a new session each time, so never the cached current code).
PREPARE = r"""
import asyncio, json, sys, uuid
from auth.principals import CitizenPrincipal
from backend.app import create_app, services_of

async def main(riders_file, out_file):
    citizens = json.loads(open(riders_file).read())
    app = create_app()
    async with app.lifespan():
        issuer = services_of(app).codes.issuer
        async def issue(citizen):
            p = CitizenPrincipal(citizen_id=citizen, session_id=str(uuid.uuid4()), device_id="bench", token_id="")
            return (await issuer.current(p))["token"]
        tokens = []
        for i in range(0, len(citizens), 100):
            tokens += await asyncio.gather(*(issue(c) for c in citizens[i:i + 100]))
    open(out_file, "w").write(json.dumps(tokens))

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


@dataclass(frozen=True)
class Gate:
    client_id: str
    auth: str  # the Authorization header
    place: str


@dataclass(frozen=True)
class Sent:
    """One scan request: where it went and where it stands in its wrk thread's file."""

    key: str  # "<scanner client id>/<record id>", as a trip records it
    series: str  # transit | platform | doors
    kind: str  # bus | in | out | gate | door
    round: str
    rider: int
    thread: int
    index: int


@dataclass(frozen=True)
class Answer:
    result: str  # allow | deny | http_<status>
    reason: str
    charged: int | None  # what the gate was told the ride costs (bus boarding, metro exit)


@dataclass
class WrkRun:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    answers: dict[str, int]
    errors: str
    sent: list[int]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


@dataclass
class Result:
    series: str
    round: int
    run: WrkRun
    cost: dict[str, float] = field(default_factory=dict)  # per request: worker/pg/pg_ours/redis ms, xacts


# -- processes and counters --------------------------------------------------------------------------

TICK = os.sysconf("SC_CLK_TCK")


def _procs() -> dict[int, tuple[str, int, float]]:
    """pid -> (command name, parent pid, CPU seconds incl. its reaped children)."""
    out = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            raw = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1 : raw.rindex(")")]
        f = raw[raw.rindex(")") + 2 :].split()
        out[int(entry.name)] = (comm, int(f[1]), sum(int(x) for x in f[11:15]) / TICK)
    return out


def _tree(root: int, procs: dict[int, tuple[str, int, float]]) -> set[int]:
    pids, grew = {root}, True
    while grew:
        more = {pid for pid, (_, ppid, _) in procs.items() if ppid in pids} - pids
        pids |= more
        grew = bool(more)
    return pids & procs.keys()


class Meter:
    """CPU of the app's processes, PostgreSQL and Redis, and the scratch database's transactions."""

    def __init__(self, admin_url: str, dbname: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.admin_url, self.dbname = admin_url, dbname
        self.conn: Any = None

    async def _fetch(self, sql: str, *args: Any) -> list[Any]:
        import asyncpg

        if self.conn is None or self.conn.is_closed():
            self.conn = await asyncpg.connect(self.admin_url)  # not the scratch database: not counted
        return list(await self.conn.fetch(sql, *args))

    def fetch(self, sql: str, *args: Any) -> list[Any]:
        return self.loop.run_until_complete(self._fetch(sql, *args))

    def xacts(self) -> int:
        rows = self.fetch(
            "SELECT xact_commit + xact_rollback AS n FROM pg_stat_database WHERE datname = $1", self.dbname
        )
        return int(rows[0]["n"]) if rows else 0

    def snapshot(self, server: subprocess.Popen[bytes] | None) -> dict[str, Any]:
        procs = _procs()
        ours = [
            r["pid"] for r in self.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1", self.dbname)
        ]
        return {
            "server": sum(procs[p][2] for p in _tree(server.pid, procs)) if server else 0.0,
            "pg": sum(c for comm, _, c in procs.values() if comm == "postgres"),
            "pg_ours": {p: procs[p][2] for p in ours if p in procs},
            "redis": sum(c for comm, _, c in procs.values() if comm.startswith("redis-server")),
            "xacts": self.xacts(),
        }

    @staticmethod
    def cost(before: dict[str, Any], after: dict[str, Any], n: int) -> dict[str, float]:
        """Per request: worker, PostgreSQL (all; our backends) and Redis CPU in ms, transactions."""
        n = max(n, 1)
        ours = sum(c - before["pg_ours"].get(p, 0.0) for p, c in after["pg_ours"].items())
        return {
            "worker_ms": (after["server"] - before["server"]) * 1000 / n,
            "pg_ms": (after["pg"] - before["pg"]) * 1000 / n,
            "pg_ours_ms": ours * 1000 / n,
            "redis_ms": (after["redis"] - before["redis"]) * 1000 / n,
            "xacts": (after["xacts"] - before["xacts"]) / n,
        }

    def close(self) -> None:
        if self.conn is not None:
            self.loop.run_until_complete(self.conn.close())
        self.loop.close()


def _kill_tree(proc: subprocess.Popen[bytes]) -> int:
    """kill -9 a server: its parent first (so nothing restarts the workers), then every process under it."""
    pids = _tree(proc.pid, _procs())
    for pid in [proc.pid, *sorted(pids - {proc.pid})]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(30)
    return len(pids)


def _stop(proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    """A graceful stop (SIGTERM), waited for: the app finishes the writes it holds before it exits."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            print(f"(server {proc.pid} did not stop within {timeout:.0f} s of SIGTERM: killed)", flush=True)
            proc.kill()
            proc.wait(30)


# -- requests ------------------------------------------------------------------------------------------


def _auth(scanner: dict[str, str]) -> Gate:
    basic = base64.b64encode(f"{scanner['client_id']}:{scanner['client_secret']}".encode()).decode()
    return Gate(scanner["client_id"], "Basic " + basic, scanner["place"])


Scan = tuple[str, Gate, str, str]  # (kind, gate, record id, token)


def _write(
    prefix: Path, per_rider: list[list[Scan]], threads: int, block: int, series: str, tag: str
) -> dict[str, Sent]:
    """One request file per wrk thread: rider r goes to thread r % threads, in blocks of ``block`` riders
    whose scans are sent step by step (every rider's first scan of the block, then every second, ...).
    Returns record id -> Sent."""
    sent: dict[str, Sent] = {}
    for t in range(threads):
        riders = [(r, scans) for r, scans in enumerate(per_rider) if r % threads == t]
        lines: list[str] = []
        for start in range(0, len(riders), block):
            chunk = riders[start : start + block]
            for step in range(len(chunk[0][1]) if chunk else 0):
                for rider, scans in chunk:
                    kind, gate, record_id, token = scans[step]
                    key = f"{gate.client_id}/{record_id}"
                    sent[record_id] = Sent(key, series, kind, tag, rider, t, len(lines))
                    body = json.dumps({"token": token, "record_id": record_id}, separators=(",", ":"))
                    lines.append(f"{gate.auth}\t{body}")
        Path(f"{prefix}{t}.tsv").write_text("".join(line + "\n" for line in lines))
    return sent


def _transit(tokens: list[str], gates: dict[str, list[Gate]], tag: str) -> list[list[Scan]]:
    """Each rider: a bus boarding, a metro entry at one station, an exit at another, with one code."""
    bus, entry, exit_ = gates["bus"], gates["entry"], gates["exit"]
    out = []
    for r, token in enumerate(tokens):
        g_in = entry[r % len(entry)]
        i = (r * 7 + 3) % len(exit_)
        while exit_[i].place == g_in.place:
            i = (i + 1) % len(exit_)
        out.append(
            [
                ("bus", bus[r % len(bus)], f"{tag}-{r}-bus", token),
                ("in", g_in, f"{tag}-{r}-in", token),
                ("out", exit_[i], f"{tag}-{r}-out", token),
            ]
        )
    return out


def _doors(tokens: list[str], gates: list[Gate], tag: str) -> list[list[Scan]]:
    """Each resident's code at one of the community's doors (a resident's one scan of the series)."""
    return [[("door", gates[r % len(gates)], f"{tag}-{r}-d", token)] for r, token in enumerate(tokens)]


def _platform(tokens: list[str], gates: list[Gate], tag: str) -> list[list[Scan]]:
    """Each rider's code at three benchgate scanners (three contexts: three first uses)."""
    return [
        [("gate", gates[(r + k) % len(gates)], f"{tag}-{r}-g{k}", token) for k in range(3)]
        for r, token in enumerate(tokens)
    ]


# -- wrk -----------------------------------------------------------------------------------------------


def _wrk(
    port: int,
    lua: Path,
    requests: str,
    records: str,
    mode: str,
    connections: int,
    seconds: int,
    halt: str = "-",
) -> subprocess.Popen[str]:
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
            requests,
            records,
            mode,
            halt,
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
    answers = json.loads(a.group(1)) if (a := re.search(r"ANSWERS (\{.*\})", out)) else {}
    errors = ", ".join(e for e in m.group(5).split(",") if not e.endswith(":0"))
    return WrkRun(
        requests=int(m.group(1)),
        seconds=int(m.group(2)) / 1e6,
        p50_ms=int(m.group(3)) / 1000,
        p99_ms=int(m.group(4)) / 1000,
        answers=answers,
        errors=errors,
        sent=[int(x) for x in m.group(6).split(",") if x],
    )


def _recorded(prefix: str, threads: int) -> tuple[dict[str, Answer], int]:
    """What wrk recorded the gates were told: record id -> answer (and how many answers named no record)."""
    told: dict[str, Answer] = {}
    unnamed = 0
    for t in range(threads):
        path = Path(f"{prefix}{t}.txt")
        for line in path.read_text().splitlines() if path.exists() else []:
            record_id, result, reason, charged = line.split(" ")
            if record_id == "?":
                unnamed += 1
                continue
            told[record_id] = Answer(result, reason, None if charged == "-" else int(charged))
    return told, unnamed


# -- the books -----------------------------------------------------------------------------------------


async def _read_books(url: str) -> dict[str, list[Any]]:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        return {
            "trips": list(
                await conn.fetch(
                    "SELECT id::text AS id, kind, entry_record, exit_record, charged, rule, state "
                    "FROM transit_trip"
                )
            ),
            "orders": list(
                await conn.fetch(
                    "SELECT id::text AS id, reference, amount FROM payment_order WHERE app_id = 'transit'"
                )
            ),
            # the rider's message of each deferred fare (keyed by the trip): "transit/fare-<trip id>"
            "fare_messages": list(
                await conn.fetch(
                    "SELECT idempotency, content->'zh-CN'->>'body' AS body FROM message "
                    "WHERE template_id = 'transit.fare_deferred'"
                )
            ),
            "door_entries": list(
                await conn.fetch("SELECT allowed, reason, count(*) AS n FROM doors_entry GROUP BY 1, 2")
            ),
            "records": list(
                await conn.fetch(
                    "SELECT app_id, result, reason, count(*) AS n FROM scan_record "
                    "WHERE position('#' IN scanner_record) = 0 GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
                )
            ),
        }
    finally:
        await conn.close()


async def _add_citizens(url: str, ids: list[str]) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "INSERT INTO citizen (id, status, phone_masked, created_at, updated_at, real_name_provider,"
            " real_name_level, real_name_reference, district)"
            " SELECT u, 'active', '', now(), now(), '', '', '', '' FROM unnest($1::uuid[]) AS u",
            [uuid.UUID(i) for i in ids],
        )
    finally:
        await conn.close()


def _book_counts(url: str) -> tuple[int, int]:
    async def count() -> tuple[int, int]:
        import asyncpg

        conn = await asyncpg.connect(url)
        try:
            trips = await conn.fetchval("SELECT count(*) FROM transit_trip")
            orders = await conn.fetchval("SELECT count(*) FROM payment_order WHERE app_id = 'transit'")
            return int(trips), int(orders)
        finally:
            await conn.close()

    return asyncio.run(count())


def check_books(
    books: dict[str, list[Any]],
    sent: dict[str, Sent],
    told: dict[str, Answer],
    reached: dict[tuple[str, int], int],
) -> tuple[list[str], list[str]]:
    """The books against what the gates were told. ``reached``: per (round, thread), how many of its
    requests wrk sent (the rest were never sent). Returns (lines to print, failed checks)."""
    trips = {t["id"]: t for t in books["trips"]}
    by_key: dict[str, set[str]] = {}
    for t in books["trips"]:
        for key in {t["entry_record"], t["exit_record"]} - {None}:
            by_key.setdefault(key, set()).add(t["id"])
    orders: dict[str, list[Any]] = {}
    for o in books["orders"]:
        orders.setdefault(o["reference"], []).append(o)

    n: Counter[str] = Counter()
    denied: Counter[str] = Counter()
    platform: Counter[str] = Counter()
    doors: Counter[str] = Counter()
    for record_id, s in sent.items():
        answer = told.get(record_id)
        unsent = s.index >= reached.get((s.round, s.thread), 0)
        if s.series == "doors":
            if not unsent:
                doors[f"{answer.result}:{answer.reason}" if answer else "no answer"] += 1
            continue
        if s.series != "transit":
            if not unsent:
                platform[f"{answer.result}:{answer.reason}" if answer else "no answer"] += 1
            continue
        n["transit"] += 1
        found = by_key.get(s.key, set())
        if unsent:
            n["unsent"] += 1
            n["unsent_booked"] += bool(found)
        elif answer is None or answer.result not in ("allow", "deny"):
            n["unanswered"] += 1
            n["unanswered_two_trips"] += len(found) > 1
        elif answer.result == "allow":
            n["allowed"] += 1
            if len(found) != 1:
                n["allowed_without_books" if not found else "allowed_two_trips"] += 1
                continue
            trip = trips[next(iter(found))]
            n["allowed_" + s.kind] += 1
            if answer.charged is not None and answer.charged != trip["charged"]:
                n["fare_not_as_told"] += 1
        else:
            denied[answer.reason] += 1
            if found:
                n["refused_but_booked"] += 1
                billed = any(trips[t]["charged"] or orders.get(f"trip-{t}") for t in found)
                n["refused_but_billed"] += billed
    # a rider whose entry and exit were both told "allow" rode one trip: the exit closed the entry's
    allowed_metro: dict[tuple[str, int], dict[str, set[str]]] = {}
    for record_id, s in sent.items():
        answer = told.get(record_id)
        if s.kind in ("in", "out") and answer is not None and answer.result == "allow":
            allowed_metro.setdefault((s.round, s.rider), {})[s.kind] = by_key.get(s.key, set())
    for pair in allowed_metro.values():
        if "in" in pair and "out" in pair:
            n["exit_not_on_entry_trip"] += pair["in"] != pair["out"] or len(pair["in"]) != 1
    keys = {s.key for s in sent.values()}
    for t in books["trips"]:
        n["trips_no_gate_asked_for"] += not {t["entry_record"], t["exit_record"]} & keys
        mine = orders.get(f"trip-{t['id']}", [])
        n["double_fares"] += len(mine) > 1
        n["charged_without_order"] += t["charged"] > 0 and not mine
        n["order_not_the_fare"] += any(o["amount"] != t["charged"] for o in mine)
        n["open_trips"] += t["state"] == "open"
        n[f"rule_{t['rule']}"] += bool(t["rule"])
    # each charged ride's message, once, with the fare the gate showed (messages are keyed by the trip)
    told_by_message = {
        m["idempotency"].removeprefix("transit/fare-"): m["body"] or ""
        for m in books.get("fare_messages", [])
    }
    for t in books["trips"]:
        body = told_by_message.get(t["id"])
        if t["state"] == "done" and t["charged"] > 0:
            yuan = f"{t['charged'] // 100}.{t['charged'] % 100:02d} 元"
            n["charged_without_message"] += body is None
            n["message_not_the_fare"] += body is not None and yuan not in body
        else:
            n["message_without_fare"] += body is not None
    n["fare_messages"] = len(told_by_message)
    n["orders_without_trip"] = sum(
        len(v) for ref, v in orders.items() if ref.removeprefix("trip-") not in trips
    )
    answered = n["allowed"] + sum(denied.values())
    rate = n["allowed"] / answered if answered else 0.0
    platform_answered = sum(v for k, v in platform.items() if k.startswith(("allow:", "deny:")))
    platform_rate = platform["allow:ok"] / platform_answered if platform_answered else 0.0
    doors_answered = sum(v for k, v in doors.items() if k.startswith(("allow:", "deny:")))
    doors_rate = doors["allow:ok"] / doors_answered if doors_answered else 0.0
    entries = {(r["allowed"], r["reason"]): r["n"] for r in books["door_entries"]}
    n["door_entries_not_as_told"] = abs(entries.get((True, "ok"), 0) - doors["allow:ok"])
    lines = [
        f"doors: allow rate {doors_rate:.2%} {dict(doors.most_common())}; door entries logged "
        f"{sum(entries.values()):,} (allowed {entries.get((True, 'ok'), 0):,}, not as told "
        f"{n['door_entries_not_as_told']})",
        f"transit scans sent {n['transit'] - n['unsent']:,} (never sent {n['unsent']:,}); "
        f"answered {answered:,}: allowed {n['allowed']:,} (bus {n['allowed_bus']:,}, metro entry "
        f"{n['allowed_in']:,}, metro exit {n['allowed_out']:,}), denied {sum(denied.values()):,} "
        f"{dict(denied.most_common()) or ''}; no recorded answer {n['unanswered']:,}",
        f"allow rate of valid first scans: {rate:.2%} (every scan is a code's first use in its context); "
        f"platform alone: {platform_rate:.2%} {dict(platform.most_common())}",
        f"books: {len(books['trips']):,} trips ({n['open_trips']:,} still open; priced as an exit without entry "
        f"{n['rule_no_entry']:,}, as an entry without exit {n['rule_no_exit']:,}), "
        f"{len(books['orders']):,} transit fare orders",
        f"allowed without books {n['allowed_without_books']}, allowed with two trips {n['allowed_two_trips']}, "
        f"refused-but-billed {n['refused_but_billed']} (refused with a trip {n['refused_but_booked']}), "
        f"double fares {n['double_fares']}, fare not as told {n['fare_not_as_told']}, charged without order "
        f"{n['charged_without_order']}, order amount not the fare {n['order_not_the_fare']}, orders without "
        f"trip {n['orders_without_trip']}, trips no gate asked for {n['trips_no_gate_asked_for']}, exits "
        f"allowed after an allowed entry but not on its trip {n['exit_not_on_entry_trip']}, unanswered "
        f"with two trips {n['unanswered_two_trips']}, never sent but booked {n['unsent_booked']}",
        f"fare messages {n['fare_messages']:,}: charged rides without one {n['charged_without_message']}, "
        f"with another fare {n['message_not_the_fare']}, for rides not charged {n['message_without_fare']}",
        "scan_record final rows: "
        + ", ".join(f"{r['app_id']} {r['result']}:{r['reason']} {r['n']:,}" for r in books["records"]),
    ]
    failed = [
        k
        for k in (
            "allowed_without_books",
            "allowed_two_trips",
            "refused_but_booked",
            "double_fares",
            "fare_not_as_told",
            "charged_without_order",
            "order_not_the_fare",
            "orders_without_trip",
            "trips_no_gate_asked_for",
            "exit_not_on_entry_trip",
            "unanswered_two_trips",
            "unsent_booked",
            "charged_without_message",
            "message_not_the_fare",
            "message_without_fare",
            "door_entries_not_as_told",
        )
        if n[k]
    ]
    if answered and rate < 1:
        failed.append("allow_rate")
    if platform_answered and platform_rate < 1:
        failed.append("platform_allow_rate")
    if doors_answered and doors_rate < 1:
        failed.append("doors_allow_rate")
    return lines, failed


# -- the run -------------------------------------------------------------------------------------------


def _median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def _line(r: Result, floor: float | None, bare: float | None) -> str:
    run = r.run
    text = f"{run.rps:8,.0f} req/s  p50 {run.p50_ms:7.2f} ms  p99 {run.p99_ms:7.2f} ms"
    if floor:
        text += f"  /floor {run.rps / floor:5.3f}"
    if bare:
        text += f"  /bare {run.rps / bare:5.3f}"
    c = r.cost
    if r.series in APP_SERIES:
        text += (
            f" | per scan: worker {c['worker_ms']:.2f} ms ({c['worker_after_ms']:.2f} after the last answer), "
            f"PostgreSQL {c['pg_ms']:.2f} ms (ours "
            f"{c['pg_ours_ms']:.2f}), Redis {c['redis_ms']:.2f} ms, {c['xacts']:.1f} xacts"
        )
    else:
        text += f" | worker {c['worker_ms']:.3f} ms/req"
    if run.errors:
        text += f" | wrk errors {run.errors}"
    return text


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.dir = Path(tempfile.mkdtemp(prefix="shengshi-gate-"))
        self.admin_url = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
        self.dbname = f"shengshi_gate_{os.getpid()}"
        self.db_url = self.admin_url.rpartition("/")[0] + "/" + self.dbname
        self.env = self._env()
        self.meter = Meter(self.admin_url, self.dbname)
        self.servers: dict[str, subprocess.Popen[bytes]] = {}
        self.ports = {name: _free_port() for name in ("app", "bare", "floor")}
        self.logs: list[IO[bytes]] = []
        self.wrk: subprocess.Popen[str] | None = None
        self.lua = self.dir / "gate.lua"
        self.lua.write_text(WRK_LUA)
        self.threads = min(THREADS, args.connections)
        self.sent: dict[str, Sent] = {}
        self.told: dict[str, Answer] = {}
        self.reached: dict[tuple[str, int], int] = {}
        # the scratch database's transactions, by where they were counted
        self.xacts: Counter[str] = Counter()

    def _env(self) -> dict[str, str]:
        # the bench mini-app, installed as far as discovery goes (a dist-info with its entry point), as
        # bench/codes.py does
        dist = self.dir / "plugins" / "benchgate-1.0.dist-info"
        dist.mkdir(parents=True)
        (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: benchgate\nVersion: 1.0\n")
        (dist / "entry_points.txt").write_text(
            "[shengshitong.miniapps]\nbenchgate = bench._bench_miniapp:BenchGate\n"
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("SHENGSHI_")}
        env.update(
            {
                "SHENGSHI_DATA_DIR": str(self.dir),
                "SHENGSHI_DATABASE_URL": self.db_url,
                "SHENGSHI_REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
                "SHENGSHI_STORE_PREFIX": f"gatebench:{os.getpid()}:",
                "SHENGSHI_LOG_LEVEL": "WARNING",
                "SHENGSHI_MINIAPPS": "transit,parking,hospital,tourism,doors,benchgate",
                # riders ride every round with fares deferred: none may reach the unpaid-fares limit
                "SHENGSHI_MINIAPP_TRANSIT": json.dumps({"unpaid_limit": 10**9}),
                "PYTHONPATH": os.pathsep.join([str(dist.parent), str(ROOT)]),
            }
        )
        return env

    def _python(self, *args: str) -> str:
        try:
            done = subprocess.run(
                [sys.executable, *args], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=300
            )
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(f"{args[:2]} did not finish in 300 s: {exc.stderr!r:.3000}") from None
        if done.returncode:
            raise RuntimeError(f"{args[:2]} failed ({done.returncode}): {done.stderr[-3000:]}")
        return done.stdout

    def start(self, name: str) -> subprocess.Popen[bytes]:
        target = {
            "app": "backend.asgi:serve_app",
            "bare": "bench._bare_app:app",
            "floor": "bench._floor_app:app",
        }
        log = (self.dir / f"{name}.log").open("ab")
        self.logs.append(log)
        proc = _uvicorn(
            target[name],
            self.ports[name],
            self.env,
            factory=name == "app",
            workers=self.args.workers,
            log=log,
        )
        self.servers[name] = proc
        try:
            _wait(self.ports[name], proc)
        except RuntimeError:
            log.flush()
            print((self.dir / f"{name}.log").read_text()[-3000:], file=sys.stderr)
            raise
        return proc

    def admin(self, sql: str) -> None:
        """A statement on the admin database, bounded: on a shared server another session can hold
        CREATE DATABASE up (e.g. one connected to template1)."""
        try:
            asyncio.run(asyncio.wait_for(_pg(self.admin_url, sql), 60))
        except TimeoutError:
            raise RuntimeError(f"{sql!r} did not finish in 60 s (see pg_stat_activity, pg_locks)") from None

    def setup(self) -> None:
        started = time.monotonic()
        print(f"setting up {self.dbname}: migrations, demo data, gates, servers", end="", flush=True)
        self.admin(f'CREATE DATABASE "{self.dbname}"')
        self._python("-m", "backend", "migrate")
        self._python("-m", "backend", "seed-demo")
        c = self.args.connections
        n_bench = max(3, min(c, BENCH_CONTEXTS))
        plan = [
            [BUS_LINES[i % len(BUS_LINES)] for i in range(c)],
            [STATIONS[i % len(STATIONS)] for i in range(c)],
            [STATIONS[(i + len(STATIONS) // 2) % len(STATIONS)] for i in range(c)],
            [f"bench-{i}" for i in range(n_bench)],
            [DOORS[i % len(DOORS)] for i in range(c)],
        ]
        enrolled = json.loads(self._python("-c", ENROL, json.dumps(plan)).strip().splitlines()[-1])
        self.gates = {kind: [_auth(s) for s in scanners] for kind, scanners in enrolled.items()}
        self.riders = self.dir / "riders.json"
        riders = [str(uuid.uuid4()) for _ in range(self.args.riders)]
        self.riders.write_text(json.dumps(riders))
        asyncio.run(
            _add_citizens(self.db_url, riders)
        )  # accounts of their own: the fare's message reaches them
        self.residents = self.dir / "residents.json"
        residents = [str(uuid.uuid4()) for _ in range(self.args.riders)]
        self.residents.write_text(json.dumps(residents))
        asyncio.run(_add_citizens(self.db_url, residents))
        self._python("-c", RESIDENTS, str(self.residents))
        for name in ("app", "bare", "floor"):
            self.start(name)
        self.xacts_at_start = self.meter.xacts()
        print(f" ({time.monotonic() - started:.0f} s)", flush=True)

    def xacts_accounted(self) -> str:
        """Once the app has stopped (its backends exited: every counter published), where the scratch
        database's transactions since the first round were counted: a check of the windows."""
        total = self.meter.xacts() - self.xacts_at_start
        rest = total - sum(self.xacts.values())
        parts = [f"{k} {v:,}" for k, v in self.xacts.items()] + [f"outside them (idle, stopping) {rest:,}"]
        return f"database transactions since round 1: {total:,}: " + ", ".join(parts)

    def prepare(self, tag: str, who: Path | None = None) -> list[str]:
        out = self.dir / f"tokens-{tag}.json"
        before = self.meter.xacts()
        self._python("-c", PREPARE, str(who or self.riders), str(out))
        self.xacts["issuing codes"] += self.meter.xacts() - before  # its backends exited: all counted
        return list(json.loads(out.read_text()))

    def series(
        self, name: str, tag: str, requests: str, *, part: str = "", crash_after: float | None = None
    ) -> WrkRun:
        """One wrk run: the app series send each request once and record every answer; the baselines
        cycle through the same requests. ``crash_after``: kill -9 the app that many seconds in, and stop
        wrk (against a dead server each connection fails and reconnects at once: a storm that takes the
        cores the restart needs)."""
        port = self.ports["app" if name in APP_SERIES else name]
        once = name in APP_SERIES
        records = str(self.dir / f"told-{tag}{part}-") if once else "-"
        halt = self.dir / "halt"
        halt.unlink(missing_ok=True)
        self.wrk = _wrk(
            port,
            self.lua,
            requests,
            records,
            "once" if once else "cycle",
            self.args.connections,
            self.args.seconds,
            halt=str(halt) if crash_after is not None else "-",
        )
        if crash_after is not None:
            time.sleep(crash_after)
            halt.touch()  # no more scans: those in flight die with the app, no new one is lost
            killed = _kill_tree(self.servers["app"])
            self.wrk.send_signal(signal.SIGINT)  # wrk stops, reports and writes its records
            print(
                f"  kill -9 of the app's {killed} process(es) {crash_after:.1f} s into the round", flush=True
            )
        done = [Path(f"{records}{t}.done") for t in range(self.threads)]
        while once and self.wrk.poll() is None:  # every answer in: stop wrk, it would sleep on
            if all(d.exists() for d in done):
                self.wrk.send_signal(signal.SIGINT)
                break
            time.sleep(0.02)
        run = _finish(self.wrk, self.args.seconds)
        self.wrk = None
        if once and all(d.exists() for d in done):  # the series' own time, first thread start to last answer
            start = min(Path(f"{records}{t}.start").stat().st_mtime for t in range(self.threads))
            run.seconds = max(d.stat().st_mtime for d in done) - start
        if once:
            told, unnamed = _recorded(records, self.threads)
            self.told.update(told)
            for t, n in enumerate(run.sent):
                self.reached[(tag, t)] = self.reached.get((tag, t), 0) + n
            if unnamed:
                print(f"  ({unnamed} answers named no record)", flush=True)
        return run

    def round(self, number: int) -> list[Result]:
        """bare and floor run while the app's writes behind settle and PostgreSQL publishes its counters
        (see FLUSH): transit, then bare; platform alone, then floor. The platform series uses the transit
        series' codes (other contexts: first uses again) when they are still valid for all of it (60 s
        from issue; issuing 3,000 takes ~10 s here), else fresh ones."""
        tokens = self.prepare(f"r{number}")
        transit_requests = self._requests("transit", f"r{number}", tokens)
        transit, bare = self._measured(
            "transit", number, f"r{number}", transit_requests, "bare", transit_requests
        )
        s = self.args.seconds
        if max(2 * s, s + FLUSH) + s > 50:
            tokens = self.prepare(f"g{number}")
        platform_requests = self._requests("platform", f"g{number}", tokens)
        platform, floor = self._measured(
            "platform", number, f"g{number}", platform_requests, "floor", transit_requests
        )
        door_tokens = self.prepare(f"d{number}", self.residents)
        doors = self._alone("doors", number, f"d{number}", self._requests("doors", f"d{number}", door_tokens))
        return [bare, floor, transit, platform, doors]

    def _requests(self, series: str, tag: str, tokens: list[str]) -> str:
        """Write the series' request files; returns their prefix."""
        prefix = str(self.dir / f"req-{tag}-")
        if series == "transit":
            scans = _transit(tokens, self.gates, tag)
        elif series == "doors":
            scans = _doors(tokens, self.gates["door"], tag)
        else:
            scans = _platform(tokens, self.gates["bench"], tag)
        self.sent.update(_write(Path(prefix), scans, self.threads, self.args.block, series, tag))
        return prefix

    def _measured(
        self, series: str, number: int, tag: str, requests: str, baseline: str, baseline_requests: str
    ) -> tuple[Result, Result]:
        """An app series and the baseline after it; the app's costs run from the start of its series to
        FLUSH seconds after its end (what it does behind its answers counts with the scans)."""
        app = self.servers["app"]
        before = self.meter.snapshot(app)
        run = self.series(series, tag, requests)
        answered = self.meter.snapshot(app)
        ended = time.monotonic()
        base = self._baseline(baseline, number, baseline_requests)
        time.sleep(max(0.0, FLUSH - (time.monotonic() - ended)))
        after = self.meter.snapshot(app)
        self.xacts[f"{series} windows"] += after["xacts"] - before["xacts"]
        cost = Meter.cost(before, after, run.requests)
        cost["worker_after_ms"] = Meter.cost(answered, after, run.requests)["worker_ms"]
        return Result(series, number, run, cost), base

    def _alone(self, series: str, number: int, tag: str, requests: str) -> Result:
        """An app series with no baseline after it: its costs run to FLUSH seconds after its end."""
        app = self.servers["app"]
        before = self.meter.snapshot(app)
        run = self.series(series, tag, requests)
        answered = self.meter.snapshot(app)
        time.sleep(FLUSH)
        after = self.meter.snapshot(app)
        self.xacts[f"{series} windows"] += after["xacts"] - before["xacts"]
        cost = Meter.cost(before, after, run.requests)
        cost["worker_after_ms"] = Meter.cost(answered, after, run.requests)["worker_ms"]
        return Result(series, number, run, cost)

    def _baseline(self, name: str, number: int, requests: str) -> Result:
        server = self.servers[name]
        before = self.meter.snapshot(server)
        run = self.series(name, f"{name}{number}", requests)
        return Result(name, number, run, Meter.cost(before, self.meter.snapshot(server), run.requests))

    def crash_round(self, expected_seconds: float) -> None:
        tag = "crash"
        self.start("app")
        requests = self._requests("transit", tag, self.prepare(tag))
        crash_after = max(1.0, min(self.args.seconds, expected_seconds) / 2)
        run = self.series("transit", tag, requests, crash_after=crash_after)
        print(
            f"  before the kill: {run.requests:,} answers {run.answers} | wrk errors {run.errors or 'none'}"
        )
        started = time.monotonic()
        self.start("app")
        print(f"  the app started again on the same database and store in {time.monotonic() - started:.1f} s")
        rest, left = str(self.dir / f"req-{tag}-rest-"), 0
        for t in range(self.threads):  # the round's requests wrk had not sent yet, for the rest of its time
            lines = Path(f"{requests}{t}.tsv").read_text().splitlines()[self.reached.get((tag, t), 0) :]
            Path(f"{rest}{t}.tsv").write_text("".join(line + "\n" for line in lines))
            left += len(lines)
        if left:
            run = self.series("transit", tag, rest, part="-rest")
            print(
                f"  after the restart: {run.requests:,} answers {run.answers} | wrk errors {run.errors or 'none'}"
            )
        last, stable, deadline = None, time.monotonic(), time.monotonic() + 5
        while time.monotonic() < deadline:
            counts = _book_counts(self.db_url)
            if counts != last:
                last, stable = counts, time.monotonic()
            elif time.monotonic() - stable >= 1.0:
                break
            time.sleep(0.25)
        print(
            f"  books {'stopped changing' if time.monotonic() < deadline else 'still changing after 5 s'}: "
            f"{last[0] if last else 0:,} trips, {last[1] if last else 0:,} fare orders; stopping the app (SIGTERM)"
        )
        _stop(self.servers["app"])

    def books(self, title: str) -> list[str]:
        books = asyncio.run(_read_books(self.db_url))
        lines, failed = check_books(books, self.sent, self.told, self.reached)
        print(f"\n## {title}")
        for line in lines:
            print(line)
        print("books: " + ("every check holds" if not failed else "FAILED: " + ", ".join(failed)), flush=True)
        return failed

    def app_log(self) -> None:
        path = self.dir / "app.log"
        for log in self.logs:
            log.flush()
        text = path.read_text(errors="replace") if path.exists() else ""
        messages: Counter[str] = Counter()
        for line in text.splitlines():
            try:
                record = json.loads(line)
                messages[
                    f"{record.get('level', '?')}: {record.get('message', record.get('msg', line))[:100]}"
                ] += 1
            except (ValueError, AttributeError):
                messages[line[:110]] += 1
        if messages:
            print(
                "\napp log (warnings and errors, by message): "
                + "; ".join(f"{m} ×{k}" for m, k in messages.most_common(8))
            )

    def cleanup(self) -> None:
        if self.wrk is not None and self.wrk.poll() is None:
            self.wrk.kill()
            self.wrk.wait(10)
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


def _summary(results: list[Result], rounds: int) -> None:
    by = {(r.series, r.round): r for r in results}
    floor = {n: by[("floor", n)].run.rps for n in range(1, rounds + 1)}
    bare = {n: by[("bare", n)].run.rps for n in range(1, rounds + 1)}
    warm = list(range(2, rounds + 1))
    print(
        f"\n## Medians of {rounds} round(s): bare and floor over every round; transit and platform alone over "
        f"the warm rounds{f' 2–{rounds}' if rounds > 1 else ' (none)'}, the cold round 1 apart; a ratio is "
        "the median of each round's ratio"
    )
    print(
        f"{'series':<18}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'/floor':>8}{'/bare':>8}"
        f"{'worker':>9}{'PG':>7}{'PG ours':>9}{'Redis':>7}{'xacts':>7}   (CPU in ms per request)"
    )

    def row(label: str, series: str, numbers: list[int]) -> None:
        rs = [by[(series, n)] for n in numbers]
        if not rs:
            print(f"{label:<18}(no warm round: --rounds 1)")
            return
        med = {k: _median([r.cost[k] for r in rs]) for k in rs[0].cost}
        print(
            f"{label:<18}{_median([r.run.rps for r in rs]):9,.0f}{_median([r.run.p50_ms for r in rs]):9.2f}"
            f"{_median([r.run.p99_ms for r in rs]):9.2f}"
            f"{_median([r.run.rps / floor[r.round] for r in rs]):8.3f}"
            f"{_median([r.run.rps / bare[r.round] for r in rs]):8.3f}"
            f"{med['worker_ms']:9.3f}{med['pg_ms']:7.2f}{med['pg_ours_ms']:9.2f}{med['redis_ms']:7.2f}"
            f"{med['xacts']:7.1f}"
        )

    everything = list(range(1, rounds + 1))
    row("bare", "bare", everything)
    row("floor", "floor", everything)
    row("transit warm", "transit", warm)
    row("transit cold (r1)", "transit", [1])
    row("platform warm", "platform", warm)
    row("platform cold (r1)", "platform", [1])
    row("doors warm", "doors", warm)
    row("doors cold (r1)", "doors", [1])
    print(
        "goal (issue 15): transit >= 0.5 of the floor (aim 0.6), p99 < 25 ms; platform alone >= 0.7 of the floor"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10, help="at most, per series and round")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--riders", type=int, default=3000)
    parser.add_argument(
        "--block",
        type=int,
        default=200,
        help="riders per block in a wrk thread: a rider's metro entry is sent this many requests before its exit",
    )
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers of every server")
    parser.add_argument("--crash", action="store_true", help="then a transit round with kill -9 half way")
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the database, the store's keys and the scratch folder (logs, wrk records)",
    )
    args = parser.parse_args()
    if min(args.rounds, args.riders, args.connections, args.block, args.workers, args.seconds) < 1:
        parser.error("--rounds, --riders, --connections, --block, --workers and --seconds must be at least 1")
    if shutil.which("wrk") is None:
        sys.exit(
            "wrk is missing: install Debian's package (apt-get install wrk, or `make bench-tools`); "
            "this benchmark drives the load with a compiled generator, never Python on the same cores"
        )

    # stopped from outside (timeout, kill): still stop the servers and drop the scratch database
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped by SIGTERM"))
    bench = Bench(args)
    failed: list[str] = []
    results: list[Result] = []
    try:
        bench.setup()
        print(
            f"## The gate at rush hour: PostgreSQL + Redis, uvicorn {args.workers} worker(s) per server, "
            f"{args.connections} connections, wrk {bench.threads} threads, {args.rounds} rounds of at most "
            f"{args.seconds:g} s per series, {args.riders:,} riders ({3 * args.riders:,} scans a round)",
            flush=True,
        )
        for number in range(1, args.rounds + 1):
            rs = bench.round(number)
            results += rs
            by = {r.series: r for r in rs}
            floor, bare = by["floor"].run.rps, by["bare"].run.rps
            print(f"round {number}{' (cold: riders new to transit)' if number == 1 else ''}")
            for name in ("bare", "floor", "transit", "platform", "doors"):
                r = by[name]
                print(
                    f"  {name:<9}: {_line(r, floor if name != 'floor' else None, bare if name != 'bare' else None)}"
                )
                if name in APP_SERIES:
                    print(
                        f"             answers {dict(sorted(r.run.answers.items(), key=lambda kv: -kv[1]))}"
                    )
            sys.stdout.flush()
        _summary(results, args.rounds)
        _stop(bench.servers["app"])
        print(bench.xacts_accounted())
        failed += bench.books("Books after the rounds (the app stopped with SIGTERM)")
        if args.crash:
            print("\n## Crash round: kill -9 the app half way through a transit round")
            warm = [r.run.rps for r in results if r.series == "transit" and r.round > 1] or [
                r.run.rps for r in results if r.series == "transit"
            ]
            expected = 3 * args.riders / max(_median(warm), 1.0)
            bench.crash_round(expected)
            failed += bench.books("Books after the crash round (everything wrk recorded, all rounds)")
        bench.app_log()
    finally:
        bench.cleanup()
    if failed:
        sys.exit(f"checks failed: {', '.join(sorted(set(failed)))}")


if __name__ == "__main__":
    main()
