"""The pay code at the till at lunch time (issue 21): a merchant's tills take citizen codes as pay codes
(``POST /api/v1/payments/paycode``) on PostgreSQL + Redis under wrk, against two baselines served the
same way in the same run, and the books read back afterwards.

    .venv/bin/python bench/paycode.py [--rounds 3] [--seconds 10] [--connections 32] [--tills 32]
                                      [--citizens 1000] [--payments 3000] [--workers 2] [--keep]

Needs wrk (``make bench-tools``), like bench/gate.py, whose servers, meters and wrk driving it shares.

Set-up: a scratch PostgreSQL database (migrated) and a Redis key prefix of its own; one merchant with
``--tills`` tills (``till`` credentials in the ``pay`` context); ``--citizens`` citizens who pay by code
through the sandbox's payment agreement (signed at once, as the sandbox does) and as many others who pay
on credit (a deferred order, charged later). Servers, each started the same way (uvicorn, uvloop,
httptools, no access log, ``--workers``, 2 by default): the app (``backend.asgi:serve_app``);
``bench/_bare_app.py`` ("bare", its pay-code route: the body decoded into a msgspec Struct, an answer of
the same shape) and ``bench/_floor_app.py`` ("the floor": the same plus one raw ES256 verification).
The baselines get the agreement series' very requests (same headers, same bodies), over and over.

Each round (``--rounds``, each series at most ``--seconds``, ``--connections`` connections):

- agreement: ``--payments`` payments, payment i by agreement citizen i mod ``--citizens``, each with a
  code of its own minted just before the series (a new session per code: a code pays once), at till
  i mod ``--tills`` with that till's credential and a reference of its own (``r<round>a-<i>``, also sent
  as the request id, which the app echoes: so every answer, refusals too, names its payment). Amounts
  8.00-27.99 yuan, under the per-payment limit: charged at once, no confirmation.
- bare, for the ratios.
- credit: the same with the credit citizens (``r<round>c-<i>``): each payment a deferred order.
- floor, for the ratios.

Per app series (from its start to 11 s after its end, as bench/gate.py: PostgreSQL publishes an idle
backend's counters 10 s late; the baseline runs meanwhile): worker CPU per payment (the uvicorn processes,
from /proc; how much after the last answer), PostgreSQL CPU per payment (all; ours: the scratch
database's backends), Redis CPU per payment, database transactions per payment, and the answers by
``result:reason`` (a refusal: ``http_<status>:<problem code>``). The load average is read at each
series' end.

Then the app is stopped with SIGTERM and the books are read: every ``paid`` answer has exactly one paid
order (the amount sent, not deferred) whose ledger sums to zero and credits the merchant the amount, and
exactly one ``paycode_payment`` (state ``paid``, the sandbox, the citizen whose code it was, the till that
sent it); every ``deferred`` answer one unpaid deferred order with no ledger entry and one payment
(``deferred``, credit); no payment or order for a refusal; no code paid twice (``code_key``); every
order's ledger sums to zero; refusals are counted by reason (expired codes are the only acceptable
ones: a code lives 60 s). Exits non-zero when a check fails. Read ratios and medians: the machine is
shared and noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]
# bench/codes.py must not shadow the codes package: keep this folder off the path
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from bench.codes import _free_port, _pg, _uvicorn, _wait  # noqa: E402
from bench.gate import (  # noqa: E402
    FLUSH,
    PREPARE,
    THREADS,
    Meter,
    Result,
    WrkRun,
    _add_citizens,
    _auth,
    _finish,
    _stop,
)

APP_SERIES = ("agreement", "credit")
PATH = "/api/v1/payments/paycode"
CREDIT_LIMIT = 50000  # payments/paycode.py CREDIT_LIMIT: what a citizen may owe on credit
DESCRIPTIONS = ("午餐 套餐", "饺子 两盘", "锅包肉", "咖啡", "便利店")

# wrk's script. Arguments: <requests prefix> <records prefix or "-"> <once|cycle>. Thread n sends the
# lines of <requests prefix><n>.tsv ("<Authorization>\t<reference>\t<body>"; the reference goes as the
# request id too, which the app echoes on every answer): over and over, or once each; then it waits for
# the answers, stops when every one is in, and says so in <records prefix><n>.done (<n>.start when it
# begins). Every answer is counted by result:reason (a refusal: http_<status>:<problem code>); with a
# records prefix, "<reference> <result> <reason> <order id>" goes to <records prefix><n>.txt.
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
    local auth, ref, body = line:match("([^\t]*)\t([^\t]*)\t(.+)")
    if body then
      table.insert(requests, wrk.format("POST", "/api/v1/payments/paycode",
        {["Content-Type"] = "application/json", ["Authorization"] = auth, ["X-Request-ID"] = ref}, body))
    end
  end
  cycle = args[3] == "cycle"
  if args[2] ~= "-" then
    out, marks = io.open(args[2] .. id .. ".txt", "w"), args[2] .. id
    io.open(marks .. ".start", "w"):close()
    if #requests == 0 then io.open(marks .. ".done", "w"):close() end
  end
  checking = id == 0  -- wrk asks thread 0 for one request before the run, to check it: never sent
end
function delay()
  if not cycle and sent >= #requests then return 3600000 end  -- all sent: wait for the answers
  return 0
end
function request()
  if checking then
    checking = false
    return requests[1] or wrk.format("GET", "/healthz")
  end
  if not cycle and sent >= #requests then return wrk.format("GET", "/healthz") end  -- never twice
  sent = sent + 1
  if cycle then return requests[(sent - 1) % #requests + 1] end
  return requests[sent]
end
function response(status, headers, body)
  if not cycle and body:find('"status":"ok"', 1, true) then return end  -- a /healthz filler
  answered = answered + 1
  local result, reason, key
  if status == 200 then
    result = body:match('"result":"(%a+)"') or "?"
    reason = body:match('"reason":"([%w_]*)"') or "?"
    if reason == "" then reason = "-" end
  else
    result = "http_" .. status
    reason = body:match('"code":"([%w_]+)"') or "?"
  end
  key = result .. ":" .. reason
  answers[key] = (answers[key] or 0) + 1
  if out then
    local ref = "?"
    for k, v in pairs(headers) do
      if k:lower() == "x-request-id" then ref = v end
    end
    out:write(ref, " ", result, " ", reason, " ", body:match('"order_id":"([^"]*)"') or "-", "\n")
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

# The merchant, its tills, and the citizens' choice (the sandbox's agreement, signed at once; credit);
# and the message templates approved, as an operator does in the city (a paid order tells its citizen).
SETUP = r"""
import asyncio, json, sys
from backend.app import create_app, services_of
from messages.setup import MESSAGES
from payments.merchant_plugin import MERCHANTS

async def main(tills, agreement_file, credit_file):
    app = create_app()
    async with app.lifespan():
        templates = MESSAGES.of(app).templates
        await templates.sync()
        for row in await templates.all():
            if not row["usable"]:
                await templates.decide(row["template_id"], "approve", operator="bench", note="bench/paycode.py")
        merchant = await services_of(app).auth.machines.create("merchant", name="bench 老边饺子馆")
        m = MERCHANTS.of(app)
        made = [await m.merchants.add_till(merchant["client_id"], place=f"counter {i + 1}", name="")
                for i in range(tills)]
        for path, method in ((agreement_file, "sandbox"), (credit_file, "credit")):
            citizens = json.loads(open(path).read())
            for i in range(0, len(citizens), 50):
                await asyncio.gather(*(m.paycode.update(c, enabled=True, method=method, limit=None)
                                       for c in citizens[i:i + 50]))
    print(json.dumps({"merchant": merchant["client_id"], "tills": made}))

asyncio.run(main(int(sys.argv[1]), sys.argv[2], sys.argv[3]))
"""


@dataclass(frozen=True)
class Pay:
    """One pay-code request: whose code, which till, what amount, where it stands in its wrk file."""

    reference: str
    series: str  # agreement | credit
    round: str
    citizen: str
    till: str  # the till's client id
    amount: int
    thread: int
    index: int


@dataclass(frozen=True)
class Told:
    result: str  # paid | deferred | ... | http_<status>
    reason: str
    order_id: str


def _amount(i: int) -> int:
    return 800 + (i * 37) % 2000  # 8.00 to 27.99 yuan: a lunch, under the per-payment limit


MAX_AMOUNT = 2799


def _write(
    prefix: str,
    series: str,
    tag: str,
    payers: list[str],
    tokens: list[str],
    tills: list[Any],
    threads: int,
) -> dict[str, Pay]:
    """One request file per wrk thread (payment i to thread i mod threads); returns reference -> Pay."""
    pays: dict[str, Pay] = {}
    lines: list[list[str]] = [[] for _ in range(threads)]
    for i, (citizen, token) in enumerate(zip(payers, tokens, strict=True)):
        t, till = i % threads, tills[i % len(tills)]
        reference = f"{tag}-{i:06d}"
        body = {
            "code": token,
            "amount": _amount(i),
            "reference": reference,
            "description": DESCRIPTIONS[i % len(DESCRIPTIONS)],
        }
        pays[reference] = Pay(reference, series, tag, citizen, till.client_id, _amount(i), t, len(lines[t]))
        text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
        lines[t].append(f"{till.auth}\t{reference}\t{text}")
    for t in range(threads):
        Path(f"{prefix}{t}.tsv").write_text("".join(line + "\n" for line in lines[t]))
    return pays


def _wrk(port: int, lua: Path, requests: str, records: str, mode: str, connections: int, seconds: int) -> Any:
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
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _recorded(prefix: str, threads: int) -> tuple[dict[str, Told], int]:
    """What the tills were told: reference -> answer (and how many answers named no reference)."""
    told: dict[str, Told] = {}
    unnamed = 0
    for t in range(threads):
        path = Path(f"{prefix}{t}.txt")
        for line in path.read_text().splitlines() if path.exists() else []:
            reference, result, reason, order_id = line.split(" ")
            if reference == "?":
                unnamed += 1
                continue
            told[reference] = Told(result, reason, order_id)
    return told, unnamed


# -- the books -----------------------------------------------------------------------------------------


async def _read_books(url: str, merchant: str) -> dict[str, list[Any]]:
    import asyncpg

    conn = await asyncpg.connect(url)
    owner = f"merchant:{merchant}"
    try:
        return {
            "orders": list(
                await conn.fetch(
                    "SELECT id::text AS id, reference, amount, state, deferred, citizen_id "
                    "FROM payment_order WHERE owner = $1",
                    owner,
                )
            ),
            "payments": list(
                await conn.fetch(
                    'SELECT "order"::text AS order_id, code_key, state, method, citizen_id, till, reason '
                    "FROM paycode_payment WHERE merchant = $1",
                    owner,
                )
            ),
            # every order's ledger (all of them: the merchant's, and any other), summed
            "ledger": list(
                await conn.fetch(
                    'SELECT "order"::text AS order_id, count(*) AS n, sum(amount) AS total, '
                    "coalesce(sum(amount) FILTER (WHERE account = $1), 0) AS merchant, "
                    "count(*) FILTER (WHERE kind = 'payment') AS payment_entries "
                    'FROM ledger_entry GROUP BY "order"',
                    f"payable:{owner}",
                )
            ),
            # the citizen's message of each paid order ("order-event:<event id>" keys, one per order.paid)
            "paid_messages": list(
                await conn.fetch(
                    "SELECT count(*) AS n FROM message WHERE template_id = 'platform.payment_paid'"
                )
            ),
            "deliveries": list(
                await conn.fetch(
                    "SELECT target, state, count(*) AS n FROM webhook_delivery GROUP BY 1, 2 ORDER BY 1, 2"
                )
            ),
            "codes_twice": list(
                await conn.fetch(
                    "SELECT code_key, count(*) AS n FROM paycode_payment GROUP BY 1 HAVING count(*) > 1"
                )
            ),
        }
    finally:
        await conn.close()


def _table_rows(url: str) -> dict[str, tuple[int, int, int]]:
    """Rows inserted, updated and deleted so far, by table (published as the transaction counters are)."""

    async def read() -> dict[str, tuple[int, int, int]]:
        import asyncpg

        conn = await asyncpg.connect(url)
        try:
            rows = await conn.fetch(
                "SELECT relname, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables"
            )
            return {r["relname"]: (r["n_tup_ins"], r["n_tup_upd"], r["n_tup_del"]) for r in rows}
        finally:
            await conn.close()

    return asyncio.run(read())


def _rows_line(rows: dict[str, tuple[float, ...]]) -> str:
    parts = []
    for table, (ins, upd, dele) in sorted(rows.items(), key=lambda kv: -sum(kv[1])):
        if ins + upd + dele >= 0.05:
            counts = " ".join(
                f"{sign}{v:.1f}" for sign, v in (("+", ins), ("~", upd), ("-", dele)) if v >= 0.05
            )
            parts.append(f"{table} {counts}")
    return ", ".join(parts) or "none"


def check_books(
    books: dict[str, list[Any]],
    pays: dict[str, Pay],
    told: dict[str, Told],
    reached: dict[tuple[str, int], int],
) -> tuple[list[str], list[str]]:
    """The books against what the tills were told. ``reached``: per (round tag, thread), how many of its
    requests wrk sent. Returns (lines to print, failed checks)."""
    orders = {o["reference"]: o for o in books["orders"]}
    payments = {p["order_id"]: p for p in books["payments"]}
    ledger = {row["order_id"]: row for row in books["ledger"]}
    n: Counter[str] = Counter()
    answers: dict[str, Counter[str]] = {s: Counter() for s in APP_SERIES}
    refusals: Counter[str] = Counter()
    paid_total = 0
    for ref, p in pays.items():
        answer = told.get(ref)
        order = orders.get(ref)
        unsent = p.index >= reached.get((p.round, p.thread), 0)
        if unsent:
            n["unsent"] += 1
            n["unsent_booked"] += order is not None
            continue
        n["sent"] += 1
        if answer is None:
            n["unanswered"] += 1
            n["unanswered_booked"] += order is not None
            continue
        answers[p.series][f"{answer.result}:{answer.reason}"] += 1
        payment = payments.get(order["id"]) if order else None
        if answer.result.startswith("http_"):
            refusals[f"{answer.result}:{answer.reason}"] += 1
            n["refused_but_booked"] += order is not None
            continue
        expected = "paid" if p.series == "agreement" else "deferred"
        if answer.result != expected:
            n["not_" + expected] += 1
            continue
        n[expected] += 1
        if order is None or payment is None:
            n[f"{expected}_without_books"] += 1
            continue
        n["order_id_not_as_told"] += order["id"] != answer.order_id
        n["amount_not_as_sent"] += order["amount"] != p.amount
        n["paid_by_another_citizen"] += payment["citizen_id"] != p.citizen or order["citizen_id"] != p.citizen
        n["paid_at_another_till"] += payment["till"] != p.till
        n["payment_state_not_as_told"] += payment["state"] != expected
        entries = ledger.get(order["id"])
        if expected == "paid":
            paid_total += p.amount
            n["order_not_paid"] += order["state"] != "paid" or order["deferred"]
            n["paid_not_by_agreement"] += payment["method"] != "sandbox"
            if entries is None:
                n["paid_without_ledger"] += 1
            else:
                n["merchant_not_credited_the_amount"] += entries["merchant"] != -p.amount
                n["paid_twice"] += entries["payment_entries"] != 2
        else:
            n["deferred_order_not_open"] += (
                order["state"] not in ("created", "paying") or not order["deferred"]
            )
            n["deferred_not_on_credit"] += payment["method"] != "credit"
            n["deferred_with_ledger"] += entries is not None
    refs = set(pays)
    n["orders_no_till_sent"] = sum(o["reference"] not in refs for o in books["orders"])
    n["payments_without_order"] = sum(
        p["order_id"] not in {o["id"] for o in books["orders"]} for p in books["payments"]
    )
    n["orders_without_payment"] = sum(o["id"] not in payments for o in books["orders"])
    n["ledgers_not_zero"] = sum(row["total"] != 0 for row in books["ledger"])
    n["codes_paid_twice"] = len(books["codes_twice"])
    n["refused_not_expired"] = sum(v for k, v in refusals.items() if not k.endswith(":paycode_code_expired"))
    credited = -sum(int(row["merchant"]) for row in books["ledger"])
    # what the merchant was credited is what its paid orders amount to (those answered, and those whose
    # answer wrk did not record: in flight when a series' time ran out)
    paid_orders = sum(o["amount"] for o in books["orders"] if o["state"] == "paid")
    n["merchant_total_not_its_paid_orders"] = credited != paid_orders
    lines = [
        f"payments sent {n['sent']:,} (never sent {n['unsent']:,}); answered {n['sent'] - n['unanswered']:,}, "
        f"no recorded answer {n['unanswered']:,} (booked {n['unanswered_booked']:,})",
        *(f"{s}: {dict(answers[s].most_common())}" for s in APP_SERIES),
        f"refusals by reason: {dict(refusals.most_common()) or 'none'}",
        f"books: {len(books['orders']):,} orders of the merchant, {len(books['payments']):,} pay-code payments, "
        f"{len(books['ledger']):,} orders with ledger entries; the merchant credited {credited / 100:,.2f} yuan "
        f"(its paid orders {paid_orders / 100:,.2f}, of which answered paid {paid_total / 100:,.2f})",
        f"paid {n['paid']:,}: without books {n['paid_without_books']}, order not paid {n['order_not_paid']}, "
        f"without ledger {n['paid_without_ledger']}, merchant not credited the amount "
        f"{n['merchant_not_credited_the_amount']}, paid twice {n['paid_twice']}, not by the agreement "
        f"{n['paid_not_by_agreement']}",
        f"deferred {n['deferred']:,}: without books {n['deferred_without_books']}, order not an open deferred one "
        f"{n['deferred_order_not_open']}, not on credit {n['deferred_not_on_credit']}, with ledger entries "
        f"{n['deferred_with_ledger']}",
        f"every answer: amount not as sent {n['amount_not_as_sent']}, order not as told "
        f"{n['order_id_not_as_told']}, payment state not as told {n['payment_state_not_as_told']}, paid by "
        f"another citizen {n['paid_by_another_citizen']}, at another till {n['paid_at_another_till']}; other "
        f"results {n['not_paid'] + n['not_deferred']}",
        f"behind the answers: the citizens' payment messages {books['paid_messages'][0]['n']:,} (paid answers "
        f"{n['paid']:,}); the order events' deliveries by target and state: "
        + (", ".join(f"{d['target']} {d['state']} {d['n']:,}" for d in books["deliveries"]) or "none"),
        f"refused but booked {n['refused_but_booked']}, never sent but booked {n['unsent_booked']}, orders no till "
        f"sent {n['orders_no_till_sent']}, orders without payment {n['orders_without_payment']}, payments "
        f"without order {n['payments_without_order']}, codes paid twice {n['codes_paid_twice']}, ledgers not "
        f"summing to zero {n['ledgers_not_zero']}",
    ]
    failed = [
        k
        for k in (
            "not_paid",
            "not_deferred",
            "paid_without_books",
            "deferred_without_books",
            "order_id_not_as_told",
            "amount_not_as_sent",
            "paid_by_another_citizen",
            "paid_at_another_till",
            "payment_state_not_as_told",
            "order_not_paid",
            "paid_not_by_agreement",
            "paid_without_ledger",
            "merchant_not_credited_the_amount",
            "paid_twice",
            "deferred_order_not_open",
            "deferred_not_on_credit",
            "deferred_with_ledger",
            "refused_but_booked",
            "unsent_booked",
            "orders_no_till_sent",
            "orders_without_payment",
            "payments_without_order",
            "codes_paid_twice",
            "ledgers_not_zero",
            "refused_not_expired",
            "merchant_total_not_its_paid_orders",
        )
        if n[k]
    ]
    return lines, failed


# -- the run -------------------------------------------------------------------------------------------


def _median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def _load() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


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
            f" | per payment: worker {c['worker_ms']:.2f} ms ({c['worker_after_ms']:.2f} after the last "
            f"answer), PostgreSQL {c['pg_ms']:.2f} ms (ours {c['pg_ours_ms']:.2f}), Redis {c['redis_ms']:.2f} "
            f"ms, {c['xacts']:.1f} xacts"
        )
    else:
        text += f" | worker {c['worker_ms']:.3f} ms/req"
    text += f" | load {c['load']:.2f}"
    if run.errors:
        text += f" | wrk errors {run.errors}"
    return text


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.dir = Path(tempfile.mkdtemp(prefix="shengshi-paycode-"))
        self.admin_url = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
        self.dbname = f"shengshi_paycode_{os.getpid()}"
        self.db_url = self.admin_url.rpartition("/")[0] + "/" + self.dbname
        self.env = self._env()
        self.meter = Meter(self.admin_url, self.dbname)
        self.servers: dict[str, subprocess.Popen[bytes]] = {}
        self.ports = {name: _free_port() for name in ("app", "bare", "floor")}
        self.logs: list[IO[bytes]] = []
        self.wrk: subprocess.Popen[str] | None = None
        self.lua = self.dir / "paycode.lua"
        self.lua.write_text(WRK_LUA)
        self.threads = min(THREADS, args.connections)
        self.pays: dict[str, Pay] = {}
        self.told: dict[str, Told] = {}
        self.reached: dict[tuple[str, int], int] = {}
        self.merchant = ""
        self.created = False
        # per (series, round): table -> rows inserted, updated, deleted per payment (pg_stat_user_tables)
        self.rows: dict[tuple[str, int], dict[str, tuple[float, ...]]] = {}

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SHENGSHI_")}
        env.update(
            {
                "SHENGSHI_DATA_DIR": str(self.dir),
                "SHENGSHI_DATABASE_URL": self.db_url,
                "SHENGSHI_REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
                "SHENGSHI_STORE_PREFIX": f"paybench:{os.getpid()}:",
                "SHENGSHI_LOG_LEVEL": "WARNING",
                "PYTHONPATH": str(ROOT),
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

    def start(self, name: str) -> None:
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

    def admin(self, sql: str) -> None:
        try:
            asyncio.run(asyncio.wait_for(_pg(self.admin_url, sql), 60))
        except TimeoutError:
            raise RuntimeError(f"{sql!r} did not finish in 60 s (see pg_stat_activity, pg_locks)") from None

    def setup(self) -> None:
        started = time.monotonic()
        print(
            f"setting up {self.dbname}: migrations, the merchant, tills, citizens, servers",
            end="",
            flush=True,
        )
        self.admin(f'CREATE DATABASE "{self.dbname}"')
        self.created = True
        self._python("-m", "backend", "migrate")
        self.citizens = {s: [str(uuid.uuid4()) for _ in range(self.args.citizens)] for s in APP_SERIES}
        files = {}
        for series, ids in self.citizens.items():
            asyncio.run(_add_citizens(self.db_url, ids))
            files[series] = self.dir / f"citizens-{series}.json"
            files[series].write_text(json.dumps(ids))
        made = json.loads(
            self._python("-c", SETUP, str(self.args.tills), str(files["agreement"]), str(files["credit"]))
            .strip()
            .splitlines()[-1]
        )
        self.merchant = made["merchant"]
        self.tills = [_auth(t) for t in made["tills"]]
        for name in ("app", "bare", "floor"):
            self.start(name)
        print(f" ({time.monotonic() - started:.0f} s)", flush=True)

    def prepare(self, series: str, tag: str) -> tuple[list[str], list[str]]:
        """One fresh code per payment (payment i by citizen i mod --citizens), minted now: (payers, codes)."""
        citizens = self.citizens[series]
        payers = [citizens[i % len(citizens)] for i in range(self.args.payments)]
        who, out = self.dir / f"payers-{tag}.json", self.dir / f"tokens-{tag}.json"
        who.write_text(json.dumps(payers))
        self._python("-c", PREPARE, str(who), str(out))
        return payers, list(json.loads(out.read_text()))

    def series(self, name: str, tag: str, requests: str) -> WrkRun:
        """One wrk run: an app series sends each payment once and records every answer; a baseline
        cycles through the same requests."""
        once = name in APP_SERIES
        records = str(self.dir / f"told-{tag}-") if once else "-"
        self.wrk = _wrk(
            self.ports["app" if once else name],
            self.lua,
            requests,
            records,
            "once" if once else "cycle",
            self.args.connections,
            self.args.seconds,
        )
        done = [Path(f"{records}{t}.done") for t in range(self.threads)]
        while once and self.wrk.poll() is None:  # every answer in: stop wrk, it would sleep on
            if all(d.exists() for d in done):
                self.wrk.send_signal(signal.SIGINT)
                break
            time.sleep(0.02)
        run = _finish(self.wrk, self.args.seconds)
        self.wrk = None
        if once and all(d.exists() for d in done):  # the series' own time: first thread start to last answer
            start = min(Path(f"{records}{t}.start").stat().st_mtime for t in range(self.threads))
            run.seconds = max(d.stat().st_mtime for d in done) - start
        if once:
            told, unnamed = _recorded(records, self.threads)
            self.told.update(told)
            for t, k in enumerate(run.sent):
                self.reached[(tag, t)] = self.reached.get((tag, t), 0) + k
            if unnamed:
                print(f"  ({unnamed} answers named no reference)", flush=True)
        return run

    def measured(self, series: str, number: int, baseline: str) -> tuple[Result, Result, str]:
        """An app series and a baseline after it (on the same requests); the app's costs run from the
        start of its series to FLUSH seconds after its end."""
        tag = f"r{number}{series[0]}"
        payers, tokens = self.prepare(series, tag)
        requests = str(self.dir / f"req-{tag}-")
        self.pays.update(_write(requests, series, tag, payers, tokens, self.tills, self.threads))
        app = self.servers["app"]
        before, rows_before = self.meter.snapshot(app), _table_rows(self.db_url)
        run = self.series(series, tag, requests)
        load = _load()
        answered = self.meter.snapshot(app)
        ended = time.monotonic()
        base = self._baseline(baseline, number, requests)
        time.sleep(max(0.0, FLUSH - (time.monotonic() - ended)))
        after = self.meter.snapshot(app)
        rows_after = _table_rows(self.db_url)
        self.rows[(series, number)] = {
            table: tuple(
                (a - b) / max(run.requests, 1)
                for a, b in zip(counts, rows_before.get(table, (0, 0, 0)), strict=True)
            )
            for table, counts in rows_after.items()
            if counts != rows_before.get(table, (0, 0, 0))
        }
        cost = Meter.cost(before, after, run.requests)
        cost["worker_after_ms"] = Meter.cost(answered, after, run.requests)["worker_ms"]
        cost["load"] = load
        return Result(series, number, run, cost), base, requests

    def _baseline(self, name: str, number: int, requests: str) -> Result:
        server = self.servers[name]
        before = self.meter.snapshot(server)
        run = self.series(name, f"{name}{number}", requests)
        cost = Meter.cost(before, self.meter.snapshot(server), run.requests)
        cost["load"] = _load()
        return Result(name, number, run, cost)

    def round(self, number: int) -> list[Result]:
        agreement, bare, _ = self.measured("agreement", number, "bare")
        credit, floor, _ = self.measured("credit", number, "floor")
        return [bare, floor, agreement, credit]

    def books(self) -> list[str]:
        books = asyncio.run(_read_books(self.db_url, self.merchant))
        lines, failed = check_books(books, self.pays, self.told, self.reached)
        print("\n## Books after the rounds (the app stopped with SIGTERM)")
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
        if self.created:
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
    everything = list(range(1, rounds + 1))
    floor = {n: by[("floor", n)].run.rps for n in everything}
    bare = {n: by[("bare", n)].run.rps for n in everything}
    print(f"\n## Medians of {rounds} round(s); a ratio is the median of each round's ratio")
    print(
        f"{'series':<12}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'/floor':>8}{'/bare':>8}"
        f"{'worker':>9}{'after':>7}{'PG':>7}{'PG ours':>9}{'Redis':>7}{'xacts':>7}{'load':>7}"
        "   (CPU in ms per request)"
    )
    for series in ("bare", "floor", *APP_SERIES):
        rs = [by[(series, n)] for n in everything]
        med = {k: _median([r.cost[k] for r in rs]) for k in rs[0].cost}
        app = series in APP_SERIES
        print(
            f"{series:<12}{_median([r.run.rps for r in rs]):9,.0f}{_median([r.run.p50_ms for r in rs]):9.2f}"
            f"{_median([r.run.p99_ms for r in rs]):9.2f}"
            f"{_median([r.run.rps / floor[r.round] for r in rs]):8.3f}"
            f"{_median([r.run.rps / bare[r.round] for r in rs]):8.3f}"
            f"{med['worker_ms']:9.3f}"
            + (f"{med['worker_after_ms']:7.2f}" if app else f"{'':7}")
            + f"{med['pg_ms']:7.2f}{med['pg_ours_ms']:9.2f}{med['redis_ms']:7.2f}{med['xacts']:7.1f}"
            f"{med['load']:7.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10, help="at most, per series and round")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--tills", type=int, default=32)
    parser.add_argument("--citizens", type=int, default=1000, help="per series (agreement, credit)")
    parser.add_argument(
        "--payments", type=int, default=3000, help="per series and round, one fresh code each"
    )
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers of every server")
    parser.add_argument(
        "--keep", action="store_true", help="keep the database, the store's keys and the scratch folder"
    )
    args = parser.parse_args()
    if (
        min(
            args.rounds,
            args.seconds,
            args.connections,
            args.tills,
            args.citizens,
            args.payments,
            args.workers,
        )
        < 1
    ):
        parser.error("every number must be at least 1")
    per_citizen = -(-args.payments // args.citizens) * args.rounds
    if per_citizen * MAX_AMOUNT > CREDIT_LIMIT:
        parser.error(
            f"a credit citizen would owe up to {per_citizen} payments of up to 27.99 yuan, over the credit "
            f"limit ({CREDIT_LIMIT // 100} yuan): more --citizens, fewer --payments or --rounds"
        )
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: install Debian's package (apt-get install wrk, or `make bench-tools`)")

    signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped by SIGTERM"))
    bench = Bench(args)
    failed: list[str] = []
    results: list[Result] = []
    try:
        print(
            f"machine: {os.cpu_count()} cores, {platform.machine()} {_cpu_model()}; load average at start "
            f"{Path('/proc/loadavg').read_text().split()[:3]}"
        )
        bench.setup()
        print(
            f"## The pay code at the till: PostgreSQL + Redis, uvicorn {args.workers} worker(s) per server, "
            f"{args.connections} connections, wrk {bench.threads} threads, {args.tills} tills, {args.rounds} "
            f"rounds of at most {args.seconds} s per series, {args.payments:,} payments per series "
            f"({args.citizens:,} citizens each by agreement and on credit)",
            flush=True,
        )
        for number in range(1, args.rounds + 1):
            rs = bench.round(number)
            results += rs
            by = {r.series: r for r in rs}
            floor, bare = by["floor"].run.rps, by["bare"].run.rps
            print(f"round {number}")
            for name in ("bare", "floor", *APP_SERIES):
                r = by[name]
                print(
                    f"  {name:<9}: {_line(r, floor if name != 'floor' else None, bare if name != 'bare' else None)}"
                )
                if name in APP_SERIES:
                    print(
                        f"             answers {dict(sorted(r.run.answers.items(), key=lambda kv: -kv[1]))}"
                    )
                    print(
                        "             rows per payment (+ inserted, ~ updated, - deleted): "
                        + _rows_line(bench.rows.get((name, number), {}))
                    )
            sys.stdout.flush()
        _summary(results, args.rounds)
        _stop(bench.servers["app"])
        failed += bench.books()
        bench.app_log()
    finally:
        bench.cleanup()
    if failed:
        sys.exit(f"checks failed: {', '.join(sorted(set(failed)))}")


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.partition(":")[2].strip()
    return ""


if __name__ == "__main__":
    main()
