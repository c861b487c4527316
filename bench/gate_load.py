"""The transit gate under load, and the books read back afterwards (PostgreSQL + Redis).

    .venv/bin/python bench/gate_load.py [--connections 32] [--seconds 10] [--codes 8000] [--workers 1]

wrk (Debian's package; a compiled generator, so Python does not share the cores with the load) drives
bus boardings, each with a fresh citizen code, at ``--connections`` gates against ``shengshi serve`` on
PostgreSQL + Redis, and the same load against a bare Litestar POST handler served the same way (the
baseline, measured in the same run). Every answer is counted by result and reason. Then the server is
stopped and the database is read: every boarding a gate was told ``allow`` must have exactly one trip
and one fare order, and a refused boarding none (the failure found from outside: under 32 gates half the
riders were refused ``app_unavailable`` and billed anyway). Prints figures and the ratio to the baseline;
read ratios and medians, the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from bench.codes import _free_port, _pg, _uvicorn, _wait  # noqa: E402

WRK_SCRIPT = r"""
-- each thread sends its own slice of the prepared boardings; answers are counted per thread
local threads = {}
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end
function init(args)
  local nthreads = tonumber(args[2])
  requests, answers, i = {}, {}, 0
  local n = 0
  for line in io.lines(args[1]) do
    if n % nthreads == id then
      local auth, body = line:match("([^\t]+)\t(.+)")
      table.insert(requests, wrk.format("POST", "/api/v1/scans",
        {["Content-Type"] = "application/json", ["Authorization"] = auth}, body))
    end
    n = n + 1
  end
  spent = 0
end
function request()
  i = i + 1
  if i > #requests then
    spent = spent + 1
    return wrk.format("GET", "/healthz")
  end
  return requests[i]
end
function response(status, headers, body)
  local key
  if status ~= 200 then key = "http_" .. status
  else
    local result = body:match('"result":"(%a+)"') or "?"
    local reason = body:match('"reason":"([%w_]+)"') or "?"
    if result == "ok" then key = "healthz" else key = result .. ":" .. reason end
  end
  answers[key] = (answers[key] or 0) + 1
end
function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    local a = t:get("answers")
    for k, v in pairs(a) do total[k] = (total[k] or 0) + v end
  end
  local parts = {}
  for k, v in pairs(total) do table.insert(parts, string.format('"%s": %d', k, v)) end
  io.write("ANSWERS {" .. table.concat(parts, ", ") .. "}\n")
  io.write(string.format("LATENCY p50=%.3f p99=%.3f\n", latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
"""

BARE_SCRIPT = r"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"token": "SC1:%s"}'
function done(summary, latency, requests)
  io.write(string.format("LATENCY p50=%%.3f p99=%%.3f\n", latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
""" % ("A" * 207)

PREPARE = r"""
import asyncio, json, sys, uuid
from backend.app import create_app, services_of
from auth.principals import CitizenPrincipal
from miniapps.transit.tables import TransitLine

async def main(gates, codes):
    app = create_app()
    async with app.lifespan():
        rt = app.state.runtime
        line = await TransitLine.select(TransitLine.code).where(TransitLine.kind == "bus").first().run()
        machines = services_of(app).auth.machines
        scanners = [
            await machines.create("scanner", app_id="transit", place=line["code"], context="bus", name=f"bus gate {i}")
            for i in range(gates)
        ]
        issuer = services_of(app).codes.issuer
        tokens = []
        for i in range(codes):
            p = CitizenPrincipal(citizen_id=str(uuid.uuid4()), session_id=str(uuid.uuid4()), device_id="bench", token_id="")
            tokens.append((await issuer.current(p))["token"])
    print(json.dumps({"scanners": scanners, "tokens": tokens}))

asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
"""

BOOKS = r"""
import asyncio, json
from backend import db
from backend.settings import load_settings
from miniapps.tables import ScanRecord
from miniapps.transit.tables import TransitTrip
from payments.tables import PaymentOrder

async def main():
    engine = db.create_engine(load_settings())
    db.bind_engine(engine)
    told = await ScanRecord.count().where((ScanRecord.app_id == "transit") & (ScanRecord.result == "allow")).run()
    trips = await TransitTrip.count().run()
    orders = await PaymentOrder.count().where(PaymentOrder.app_id == "transit").run()
    rows = await TransitTrip.raw(
        "SELECT count(*) AS n FROM transit_trip t JOIN scan_record s ON s.scanner_record = t.entry_record "
        "JOIN payment_order o ON o.id::text = t.order_id WHERE s.result = 'allow'"
    ).run()
    print(json.dumps({"told_allow": told, "trips": trips, "orders": orders, "matched": rows[0]["n"]}))

asyncio.run(main())
"""


def _wrk(port: int, script: Path, connections: int, seconds: int, args: list[str]) -> dict[str, object]:
    threads = min(connections, 2)
    out = subprocess.run(
        [
            shutil.which("wrk") or "wrk",
            "-t",
            str(threads),
            "-c",
            str(connections),
            "-d",
            f"{seconds}s",
            "--latency",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}",
            "--",
            *args,
            str(threads),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50, p99 = (float(x) for x in re.search(r"LATENCY p50=([\d.]+) p99=([\d.]+)", out).groups())  # type: ignore[union-attr]
    answers = json.loads(m.group(1)) if (m := re.search(r"ANSWERS (\{.*\})", out)) else {}
    return {"rps": rps, "p50_ms": p50, "p99_ms": p99, "answers": answers}


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--codes", type=int, default=8000)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")

    data_dir = Path(tempfile.mkdtemp(prefix="shengshi-gate-"))
    admin_url = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    dbname = f"shengshi_gate_{os.getpid()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHENGSHI_")}
    env.update(
        {
            "SHENGSHI_DATA_DIR": str(data_dir),
            "SHENGSHI_DATABASE_URL": admin_url.rpartition("/")[0] + "/" + dbname,
            "SHENGSHI_REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
            "SHENGSHI_STORE_PREFIX": f"gatebench:{os.getpid()}:",
            "SHENGSHI_LOG_LEVEL": "WARNING",
            # every rider boards once with a fresh code: no citizen reaches the unpaid-fares limit
            "SHENGSHI_MINIAPP_TRANSIT": json.dumps({"unpaid_limit": 10**9}),
            "PYTHONPATH": str(ROOT),
        }
    )
    asyncio.run(_pg(admin_url, f'CREATE DATABASE "{dbname}"'))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for cmd in (["migrate"], ["seed-demo"]):
            subprocess.run(
                [sys.executable, "-m", "backend", *cmd],
                cwd=ROOT,
                env=env,
                check=True,
                capture_output=True,
            )
        prepared = json.loads(
            subprocess.run(
                [sys.executable, "-c", PREPARE, str(args.connections), str(args.codes)],
                cwd=ROOT,
                env=env,
                check=True,
                capture_output=True,
                text=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        import base64

        lines = []
        for i, token in enumerate(prepared["tokens"]):
            s = prepared["scanners"][i % len(prepared["scanners"])]
            auth = "Basic " + base64.b64encode(f"{s['client_id']}:{s['client_secret']}".encode()).decode()
            lines.append(f"{auth}\t{json.dumps({'token': token})}")
        boardings = data_dir / "boardings.tsv"
        boardings.write_text("\n".join(lines) + "\n")
        scan_lua, bare_lua = data_dir / "scan.lua", data_dir / "bare.lua"
        scan_lua.write_text(WRK_SCRIPT)
        bare_lua.write_text(BARE_SCRIPT)

        port_app, port_bare = _free_port(), _free_port()
        app = _uvicorn("backend.asgi:serve_app", port_app, env, factory=True)
        bare = _uvicorn("bench._bare_app:app", port_bare, env)
        procs += [app, bare]
        _wait(port_app, app)
        _wait(port_bare, bare)
        _wrk(port_bare, bare_lua, args.connections, 3, [])  # warm-up
        base = _wrk(port_bare, bare_lua, args.connections, args.seconds, [])
        cpu0 = _cpu_seconds(app.pid)
        scan = _wrk(port_app, scan_lua, args.connections, args.seconds, [str(boardings)])
        cpu = _cpu_seconds(app.pid) - cpu0
        app.terminate()  # a graceful stop: abandoned decisions settle before the pool closes
        app.wait(30)
        books = json.loads(
            subprocess.run(
                [sys.executable, "-c", BOOKS], cwd=ROOT, env=env, check=True, capture_output=True, text=True
            )
            .stdout.strip()
            .splitlines()[-1]
        )
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                p.wait(30)
        asyncio.run(_pg(admin_url, f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)'))
        import redis

        r = redis.Redis.from_url(env["SHENGSHI_REDIS_URL"])
        for key in r.scan_iter(match=env["SHENGSHI_STORE_PREFIX"] + "*", count=1000):
            r.delete(key)
        shutil.rmtree(data_dir, ignore_errors=True)

    answers: dict[str, int] = scan["answers"]  # type: ignore[assignment]
    scans = sum(v for k, v in answers.items() if k != "healthz")
    allowed = answers.get("allow:ok", 0)
    print(
        f"## Transit bus gate under load: PostgreSQL + Redis, uvicorn 1 worker, {args.connections} connections, "
        f"{args.seconds} s, wrk"
    )
    print(
        f"bare Litestar POST (baseline) : {base['rps']:8.0f} req/s  p50 {base['p50_ms']:7.2f} ms  "
        f"p99 {base['p99_ms']:7.2f} ms"
    )
    print(
        f"POST /api/v1/scans (bus)      : {scans / args.seconds:8.0f} req/s  p50 {scan['p50_ms']:7.2f} ms  "
        f"p99 {scan['p99_ms']:7.2f} ms  (ratio to baseline {scans / args.seconds / base['rps']:.3f})"
    )
    print(f"worker CPU per scan           : {cpu / max(scans, 1) * 1000:8.2f} ms")
    print(f"answers                       : {answers}")
    if answers.get("healthz"):
        print(f"  (ran out of prepared codes: {answers['healthz']} /healthz fillers; raise --codes)")
    print(f"books                         : {books}")
    # the server's final records are what it told the gates; wrk stops with up to one answer per
    # connection still on its way, so it may have read up to that many fewer than the server sent
    ok = (
        books["told_allow"] == books["trips"] == books["orders"] == books["matched"]
        and 0 <= books["told_allow"] - allowed <= args.connections
    )
    refused = answers.get("deny:app_unavailable", 0)
    print(
        f"every 'allow' the server told has one trip and one fare order, and nothing else does: "
        f"{'yes' if ok else 'NO'}; refused app_unavailable: {refused} ({refused / max(scans, 1):.1%})"
    )
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
