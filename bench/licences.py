"""E-licences (issue 19): the inspector's offline verifier, the holder's and the issuer's signatures, and the
e-licence centre's hot paths over HTTP on PostgreSQL + Redis; each against a baseline measured in the same
run, and the books read back.

    .venv/bin/python bench/licences.py [--offline-rounds 25] [--batch 200] [--workers 2]
                                       [--connections 32] [--seconds 10] [--read-rounds 3]
                                       [--list-licences 131072] [--revoked 0.01] [--suspended 0.002]
                                       [--issuers 4] [--issue-rounds 2] [--issue-requests 3000]
                                       [--holders 0.5] [--sharers 500] [--share-rounds 2]
                                       [--share-repeats 6] [--revoke-sample 200] [--suspend-sample 50]
                                       [--skip-offline] [--skip-http] [--keep]

Needs wrk for the HTTP part (``make bench-tools``): the load comes from a compiled generator, not Python on
the same cores.

**Offline, in this process.** Twenty citizens' driving licences (11 fields), each an SD-JWT VC minted by
``licences.format.mint`` with an issuer key and bound to the citizen's device key; an issuer trust list
and a full status list (131,072 entries, 1 % revoked) as an inspector's device holds them. Each round,
``--batch`` fresh presentations of 4 fields and of all 11 (``licences.holder.present``, each with its own
nonce), and then each verified once (``licences.verifier.verify_presentation`` with a replay guard, as
the inspector's device does). The floor, on the very same bytes: the two raw ``cryptography`` ECDSA
P-256 verifications a presentation cannot do without (the issuer's JWT and the key-binding JWT), with
both public keys already loaded. The holder's floor is one raw ECDSA signature (random k) over the same
KB-JWT input; the issuer's, one deterministic (RFC 6979) signature over the same JWT input.
``--offline-rounds`` interleaved rounds; median µs per call and the median of each round's ratio.

**Over HTTP.** A scratch PostgreSQL database migrated by the app's own migrations, Redis with a prefix of
its own, and the app served by the real ``shengshi serve --workers N`` (uvicorn: uvloop, httptools, no
access log). Made in-process with the app's services (``bench/_licences_prepare.py``): ``--issuers``
traffic police issuers, a relying party, a full status list of the first issuer (``--list-licences``
licences written as the book writes them, ``--revoked`` and ``--suspended`` of them so), and
``--sharers`` verified citizens each issued a licence the app's way with a standing consent to the
relying party. The baselines (``bench/_licences_base_app.py``) are served by uvicorn with the same
workers, loop and parser:

- **status reads**: ``GET /api/v1/licences/status/sy-traffic/1`` (what every inspector's device
  refreshes; a plain GET, and one with the ETag it holds: 304), against **bare** (a Litestar handler
  answering the very token) and **floor** (the token read from the shared store with the app's own
  store client). ``--read-rounds`` rounds of ``--seconds``.
- **consent shares**: ``POST /api/v1/licences/requests/{id}/presentation`` by the relying party on the
  standing consents, each ``--share-repeats`` times a round in a shuffled order, against a bare handler
  answering the bytes of a real share. ``--share-rounds`` rounds.
- **issuing**: ``POST /api/v1/licences/issued`` with an issuer's credential, ``--issue-requests`` new
  licences a series, each to a distinct ID number (``--holders`` of them verified citizens, who are
  sent the message), once by the first issuer alone and once spread over all ``--issuers``. A licence
  takes its status entry by a conditional UPDATE of its issuer's status-list row and holds that row lock
  to its commit, so one issuer's licences are issued one at a time there: the two series and a sampler
  of ``pg_stat_activity`` (every 50 ms: backends waiting for a lock on the status-list row) say whether
  that row is the limit. Against a bare handler decoding the same bodies. ``--issue-rounds`` rounds.

wrk with 2 threads and ``--connections``; requests/s, p50/p95/p99, answers by status and wrk's socket
errors; CPU per request of the app's processes (``shengshi serve`` and its workers), of PostgreSQL (every
postgres process; "ours": the scratch database's backends) and of Redis, from /proc.

**The books.** After the issuing rounds, the issuers revoke ``--revoke-sample`` and suspend
``--suspend-sample`` of the licences they were just told 201 about (over HTTP). Then every status list
of the bench's issuers is fetched 8 times over fresh connections (any worker) and checked with the
standalone verifier (the trust list verified against the pinned root, each token against its issuer's
key): every licence's entry must read what its row says (every revoked one revoked, every suspended one
suspended, every other valid). Then the app is stopped (SIGTERM) and the database read: every 201 is
exactly one licence row, of the issuer that asked, for the ID number it sent; no licence nobody was told
about (but for requests in flight); every (status_list, status_idx) distinct; each list's ``used`` equal
to its licences, every index inside the list; the revoked and suspended sample so; and every share told
200 is exactly one ``shared`` use in the citizen's log.

Exits non-zero when a check fails. The machine is shared: read the ratios, measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
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
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]
# this file is bench/licences.py: keep its folder off the path so that "licences" is the package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, utils  # noqa: E402

from backend.keystore import LoadedKey, public_jwk  # noqa: E402
from bench._licences_prepare import IdNumbers, driving_fields  # noqa: E402
from bench.codes import _free_port, _pg, _uvicorn, _wait  # noqa: E402
from bench.gate import Meter, _stop  # noqa: E402
from licences import holder, verifier  # noqa: E402
from licences._issuers import LIST_SIZE  # noqa: E402
from licences.format import mint, pack_statuses, status_token  # noqa: E402
from licences.rules import status_index  # noqa: E402

THREADS = 2  # wrk threads (the machine has 2 cores)
INSPECT = "urn:shengshitong:inspect"
STATUS_PATH = "/api/v1/licences/status/sy-traffic/1"  # the full list the inspectors read
SHOWN = ["name", "licence_class", "valid_until", "licence_number"]  # a traffic stop's four fields
ECDSA = ec.ECDSA(hashes.SHA256())
ECDSA_6979 = ec.ECDSA(hashes.SHA256(), deterministic_signing=True)

# wrk's script. Arguments: get <path> <header name or -> <header value> | once|cycle <requests prefix>
# <records prefix>. "get": the same GET over and over. "once"/"cycle": thread n sends the lines of
# <requests prefix><n>.tsv ("<request id>\t<method>\t<path>\t<Authorization>\t<body or ->"), each once or
# over and over. With "once", every answer goes to <records prefix><n>.txt as "<request id> <status>
# <licence id or -> <problem code or ->" (the request id is echoed by the app), and <records prefix><n>.start
# and .done mark the thread's time.
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
    if args[3] ~= "-" then headers[args[3]] = args[4] end
    requests[1] = wrk.format("GET", args[2], headers)
  else
    for line in io.lines(args[2] .. id .. ".tsv") do
      local rid, method, path, auth, body = line:match("([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t(.+)")
      if body then
        local headers = {["Authorization"] = auth, ["X-Request-ID"] = rid}
        if body == "-" then body = nil else headers["Content-Type"] = "application/json" end
        table.insert(requests, wrk.format(method, path, headers, body))
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
  if mode ~= "get" then
    local rid = headers["x-request-id"] or headers["X-Request-ID"] or "?"
    if rid:sub(1, 4) ~= "lic-" then return end  -- a filler
    if out then
      local licence = status == 201 and body:match('^{"id":"([%w%-]+)"') or "-"
      local code = status >= 300 and body:match('"code":"([%w_]+)"') or "-"
      out:write(rid, " ", status, " ", licence, " ", code, "\n")
    end
  end
  answered = answered + 1
  statuses[tostring(status)] = (statuses[tostring(status)] or 0) + 1
  if mode == "once" and answered >= #requests then
    out:flush()
    io.open(marks .. ".done", "w"):close()
    wrk.thread:stop()
  end
end
function done(summary, latency, requests)
  local total, answers = {}, 0
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("statuses")) do total[k] = (total[k] or 0) + v end
    answers = answers + t:get("answered")
  end
  local parts = {}
  for k, v in pairs(total) do table.insert(parts, string.format('"%s": %d', k, v)) end
  io.write("STATUSES {" .. table.concat(parts, ", ") .. "}\n")
  local e = summary.errors
  local sent = {}
  for _, t in ipairs(threads) do table.insert(sent, tostring(t:get("sent"))) end
  io.write(string.format("SUMMARY requests=%d answered=%d duration_us=%d p50_us=%d p95_us=%d p99_us=%d " ..
    "errors=connect:%d,read:%d,write:%d,status:%d,timeout:%d sent=%s\n",
    summary.requests, answers, summary.duration, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), e.connect, e.read, e.write, e.status, e.timeout, table.concat(sent, ",")))
end
"""


def _median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def _p95(xs: list[float]) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(0.95 * len(s)) - 1))] if s else float("nan")


def _b64u_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# -- offline -------------------------------------------------------------------------------------------


def _raw(compact: str) -> tuple[bytes, bytes]:
    """A compact ES256 JWS as cryptography verifies it: (DER signature, signing input)."""
    head, body, sig = compact.split(".")
    raw = _b64u_decode(sig)
    der = utils.encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    return der, f"{head}.{body}".encode("ascii")


def _per_call(fn: Callable[[Any], object], items: list[Any]) -> float:
    """µs per call of ``fn`` over ``items`` (each once), the garbage collector off (as timeit does)."""
    gc.collect()
    gc.disable()
    try:
        started = time.perf_counter()
        for item in items:
            fn(item)
        return (time.perf_counter() - started) / len(items) * 1e6
    finally:
        gc.enable()


def offline(rounds: int, batch: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    now = int(time.time())
    when = datetime.fromtimestamp(now, UTC)
    private = ec.generate_private_key(ec.SECP256R1())
    kid = "bench-issuer-1"
    key = LoadedKey(
        kid=kid,
        alg="ES256",
        private=private,
        public=private.public_key(),
        jwk=public_jwk(private.public_key(), kid, "ES256"),
        created_at=when,
        active_from=when,
        retired_at=None,
        publish_until=None,
    )
    base = "http://127.0.0.1:8000"
    iss = f"{base}/licences/issuers/sy-traffic"
    uri = f"{base}/api/v1/licences/status/sy-traffic/1"
    trust = verifier.IssuerTrustList.from_document(
        {
            "type": verifier.TRUST_LIST_TYPE,
            "format": 1,
            "server_time": now,
            "refresh_after": 3600,
            "issuers": [
                {
                    "iss": iss,
                    "code": "sy-traffic",
                    "name_zh": "沈阳市公安局交通警察支队",
                    "name_en": "Shenyang Traffic Police",
                    "types": ["driving_licence", "vehicle_licence"],
                    "keys": [key.jwk],
                }
            ],
        }
    )
    # a full list as an issuer's first year leaves it: 1 % of its licences revoked
    revoked = {status_index(i, LIST_SIZE): 1 for i in rng.sample(range(LIST_SIZE), LIST_SIZE // 100)}
    token = status_token(
        key,
        iss=iss,
        uri=uri,
        data=pack_statuses(revoked, LIST_SIZE),
        bits=2,
        iat=now,
        ttl=300,
        exp_after=86400,
    )
    lists = {uri: verifier.StatusList.from_token(token, trust)}
    ids = IdNumbers(rng)
    valid = [i for i in range(LIST_SIZE) if status_index(i, LIST_SIZE) not in revoked]
    holders = []
    for _ in range(20):
        device = holder.device_key()
        number = ids.next()
        credential = mint(
            key,
            iss=iss,
            vct=verifier.vct_of("driving_licence"),
            fields=driving_fields(rng, number),
            holder_jwk=holder.public_jwk(device),
            status_uri=uri,
            status_idx=status_index(rng.choice(valid), LIST_SIZE),
            iat=now,
            exp=now + 30 * 86400,
        )
        holders.append((credential, device))
    every = list(holder.disclosures_of(holders[0][0]))
    issuer_inputs = {c: _raw(c.split("~")[0]) for c, _ in holders}

    def make(fields: list[str]) -> list[tuple[str, Any, str]]:
        """``batch`` presentations (text, device key, credential) round the holders."""
        out = []
        for i in range(batch):
            credential, device = holders[i % len(holders)]
            out.append(
                (holder.present(credential, fields, device, audience=INSPECT, iat=now), device, credential)
            )
        return out

    def floor_items(shown: list[tuple[str, Any, str]]) -> list[tuple[bytes, bytes, Any, bytes, bytes, Any]]:
        items = []
        for text, device, credential in shown:
            i_der, i_input = issuer_inputs[credential]
            kb_der, kb_input = _raw(text.rsplit("~", 1)[1])
            items.append((i_der, i_input, key.public, kb_der, kb_input, device.public_key()))
        return items

    def floor(item: tuple[bytes, bytes, Any, bytes, bytes, Any]) -> None:
        item[2].verify(item[0], item[1], ECDSA)
        item[5].verify(item[3], item[4], ECDSA)

    def floor_jwk(item: tuple[bytes, bytes, Any, bytes, bytes, Any]) -> None:
        """The floor, and the device key read from its JWK as the verifier must (its ``cnf``)."""
        item[2].verify(item[0], item[1], ECDSA)
        numbers = item[5].public_numbers()
        device = ec.EllipticCurvePublicNumbers(numbers.x, numbers.y, ec.SECP256R1()).public_key()
        device.verify(item[3], item[4], ECDSA)

    def parse_jwt(item: tuple[str, Any, str]) -> None:
        """What reading the issuer JWT's header and payload costs (the verifier reads them twice: for
        the issuer and key, and in the signature check)."""
        head, body, _ = item[0].split("~", 1)[0].split(".")
        json.loads(_b64u_decode(head))
        json.loads(_b64u_decode(body))

    def parse_disclosures(item: tuple[str, Any, str]) -> None:
        for disclosure in item[0].split("~")[1:-1]:
            json.loads(_b64u_decode(disclosure))
            verifier.digest(disclosure)

    def fill(job: tuple[list[str], list[tuple[str, Any, str]]]) -> None:
        job[1].extend(make(job[0]))

    # what the holder and the issuer sign, for their floors
    kb_inputs = [_raw(text.rsplit("~", 1)[1])[1] for text, _, _ in make(SHOWN)]
    jwt_input = issuer_inputs[holders[0][0]][1]
    mint_args = [
        {
            "fields": driving_fields(rng, n),
            "holder_jwk": holder.public_jwk(device),
        }
        for n, (_, device) in zip([ids.next() for _ in holders], holders, strict=True)
    ]

    def do_mint(args: dict[str, Any]) -> None:
        mint(
            key,
            iss=iss,
            vct=verifier.vct_of("driving_licence"),
            fields=args["fields"],
            holder_jwk=args["holder_jwk"],
            status_uri=uri,
            status_idx=48213,
            iat=now,
            exp=now + 30 * 86400,
        )

    names = {
        "present4": "holder.present, 4 fields",
        "present11": "holder.present, all 11 fields",
        "sign": "floor: 1 raw ECDSA sign (random k)",
        "mint": "format.mint, 11 fields, bound",
        "sign6979": "floor: 1 raw ECDSA sign (RFC 6979)",
        "floor4": "floor: 2 raw ECDSA verifies, 4 fields",
        "jwk4": "floor + the cnf key from its JWK, 4 fields",
        "parse_jwt": "part: the issuer JWT read (base64url, JSON)",
        "parse_disclosures": "part: 4 disclosures read and hashed",
        "verify4": "verify_presentation, 4 fields",
        "floor11": "floor: 2 raw ECDSA verifies, all 11",
        "verify11": "verify_presentation, all 11",
    }
    times: dict[str, list[float]] = {k: [] for k in names}
    checked: Counter[str] = Counter()
    for _ in range(rounds):
        shown4: list[tuple[str, Any, str]] = []
        shown11: list[tuple[str, Any, str]] = []
        # the holder's side, timed while the presentations are made
        for fields, target, name in ((SHOWN, shown4, "present4"), (every, shown11, "present11")):
            times[name].append(_per_call(fill, [(fields, target)]) / batch)
        times["sign"].append(_per_call(lambda m: private.sign(m, ECDSA), kb_inputs[:batch]))
        times["mint"].append(_per_call(do_mint, [mint_args[i % len(mint_args)] for i in range(batch)]))
        times["sign6979"].append(_per_call(lambda _: private.sign(jwt_input, ECDSA_6979), list(range(batch))))
        for shown, n in ((shown4, "4"), (shown11, "11")):
            items = floor_items(shown)
            times[f"floor{n}"].append(_per_call(floor, items))
            if n == "4":
                times["jwk4"].append(_per_call(floor_jwk, items))
                times["parse_jwt"].append(_per_call(parse_jwt, shown))
                times["parse_disclosures"].append(_per_call(parse_disclosures, shown))
            guard = verifier.ReplayGuard()  # the inspector's device, over this batch

            def check(item: tuple[str, Any, str], guard: verifier.ReplayGuard = guard) -> None:
                verifier.verify_presentation(item[0], trust, lists, now=now, audience=INSPECT, replay=guard)

            times[f"verify{n}"].append(_per_call(check, shown))
        # outside the timing: every presentation verifies to its fields, and a replay is refused
        for text, _, _ in shown4[:5]:
            result = verifier.verify_presentation(text, trust, lists, now=now, audience=INSPECT)
            checked["ok"] += sorted(result.fields) == sorted(SHOWN) and result.status == "valid"
            try:
                verifier.verify_presentation(text, trust, lists, now=now, audience=INSPECT, replay=guard)
                verifier.verify_presentation(text, trust, lists, now=now, audience=INSPECT, replay=guard)
            except verifier.PresentationError as exc:
                checked["replay refused"] += exc.code == "replayed"
    sizes = {
        "4": len(make(SHOWN)[0][0]),
        "11": len(make(every)[0][0]),
        "credential": len(holders[0][0]),
        "status token": len(token),
    }
    return {"names": names, "times": times, "sizes": sizes, "checked": checked, "rounds": rounds}


def print_offline(off: dict[str, Any]) -> list[str]:
    times, names = off["times"], off["names"]
    floors = {
        "verify4": "floor4",
        "jwk4": "floor4",
        "verify11": "floor11",
        "present4": "sign",
        "present11": "sign",
        "mint": "sign6979",
        "parse_jwt": "floor4",
        "parse_disclosures": "floor4",
    }
    print(
        f"\n## Offline: per call, {off['rounds']} interleaved rounds (median µs; ratio: the median of each"
        " round's ratio to its floor)"
    )
    print(f"{'series':<46}{'median µs':>11}{'p95 µs':>9}{'min µs':>9}{'÷ floor':>9}{'per s':>9}")
    for k, name in names.items():
        xs = times[k]
        ratio = _median([a / b for a, b in zip(xs, times[floors[k]], strict=True)]) if k in floors else 1.0
        print(
            f"{name:<46}{_median(xs):11.1f}{_p95(xs):9.1f}{min(xs):9.1f}{ratio:9.2f}{1e6 / _median(xs):9.0f}"
        )
    s = off["sizes"]
    print(
        f"sizes: presentation of 4 fields {s['4']:,} characters, of all 11 {s['11']:,}; credential"
        f" {s['credential']:,}; the full list's status token (1 % revoked) {s['status token']:,}"
    )
    c = off["checked"]
    want = 5 * off["rounds"]
    failed = []
    if c["ok"] != want or c["replay refused"] != want:
        failed.append("offline_checks")
    print(
        f"checks: {c['ok']}/{want} presentations verify to the 4 fields shown, valid;"
        f" {c['replay refused']}/{want} shown twice refused as replayed"
    )
    return failed


# -- wrk -----------------------------------------------------------------------------------------------


@dataclass
class WrkRun:
    requests: int
    answered: int
    seconds: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    statuses: dict[str, int]
    errors: str
    sent: list[int]  # requests each thread sent ("once")

    @property
    def rps(self) -> float:
        return self.answered / self.seconds if self.seconds else 0.0


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
        r"SUMMARY requests=(\d+) answered=(\d+) duration_us=(\d+) p50_us=(\d+) p95_us=(\d+) p99_us=(\d+)"
        r" errors=(\S+) sent=(\S*)",
        out,
    )
    if proc.returncode != 0 or m is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {out[-2000:]} {err[-2000:]}")
    statuses = json.loads(s.group(1)) if (s := re.search(r"STATUSES (\{.*\})", out)) else {}
    return WrkRun(
        requests=int(m.group(1)),
        answered=int(m.group(2)),
        seconds=int(m.group(3)) / 1e6,
        p50_ms=int(m.group(4)) / 1000,
        p95_ms=int(m.group(5)) / 1000,
        p99_ms=int(m.group(6)) / 1000,
        statuses=statuses,
        errors=", ".join(e for e in m.group(7).split(",") if not e.endswith(":0")),
        sent=[int(x) for x in m.group(8).split(",") if x],
    )


@dataclass
class Series:
    name: str
    round: int
    run: WrkRun
    cost: dict[str, float]
    locks: dict[str, float] | None = None


class LockSampler(threading.Thread):
    """Every ``interval`` s, the scratch database's backends: how many are running a statement, how many
    wait for a lock and on what (the status-list row, or anything else), how many wait on WAL."""

    def __init__(self, admin_url: str, dbname: str, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.admin_url, self.dbname, self.interval = admin_url, dbname, interval
        self.halt = threading.Event()
        self.tally: Counter[str] = Counter()

    def run(self) -> None:
        asyncio.run(self._run())

    async def _run(self) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.admin_url)  # not the scratch database: not counted
        try:
            while not self.halt.is_set():
                rows = await conn.fetch(
                    "SELECT state, wait_event_type, wait_event, query FROM pg_stat_activity"
                    " WHERE datname = $1 AND backend_type = 'client backend'",
                    self.dbname,
                )
                t = self.tally
                t["samples"] += 1
                waiting = 0
                for r in rows:
                    state, kind, event, query = r["state"], r["wait_event_type"], r["wait_event"], r["query"]
                    t["in transaction"] += state in ("active", "idle in transaction")
                    t["active"] += state == "active"
                    if state != "active":
                        continue
                    if kind == "Lock":
                        row = "licence_status_list" in query
                        t["lock: status list" if row else "lock: other"] += 1
                        waiting += row
                    elif "WAL" in (event or ""):  # IO: WALSync, WALWrite; LWLock: WALWrite, WALInsert
                        t["WAL"] += 1
                t["row busy"] += waiting > 0  # someone waits: the row is held at that moment
                await asyncio.sleep(self.interval)
        finally:
            await conn.close()

    def result(self) -> dict[str, float]:
        n = max(self.tally["samples"], 1)
        return {k: v / n for k, v in self.tally.items() if k != "samples"} | {
            "samples": self.tally["samples"]
        }


# -- the run -------------------------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.dir = Path(tempfile.mkdtemp(prefix="shengshi-licences-"))
        self.admin_url = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
        self.dbname = f"shengshi_licences_{os.getpid()}"
        self.db_url = self.admin_url.rpartition("/")[0] + "/" + self.dbname
        self.ports = {name: _free_port() for name in ("app", "base")}
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SHENGSHI_")}
        self.env.update(
            {
                "SHENGSHI_DATA_DIR": str(self.dir),
                "SHENGSHI_DATABASE_URL": self.db_url,
                "SHENGSHI_REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
                "SHENGSHI_STORE_PREFIX": f"licencesbench:{os.getpid()}:",
                "SHENGSHI_LOG_LEVEL": "WARNING",
                "SHENGSHI_PUBLIC_URL": f"http://127.0.0.1:{self.ports['app']}",
                "PYTHONPATH": str(ROOT),
            }
        )
        self.base_url = self.env["SHENGSHI_PUBLIC_URL"]
        self.meter = Meter(self.admin_url, self.dbname)
        self.servers: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: list[IO[bytes]] = []
        self.lua = self.dir / "licences.lua"
        self.lua.write_text(WRK_LUA)
        self.rng = random.Random(args.seed)
        self.ids = IdNumbers(self.rng)
        self.failed: list[str] = []
        self.results: list[Series] = []
        self.cast: dict[str, Any] = {}
        self.sent: dict[str, dict[str, Any]] = {}  # request id -> what it was
        self.told: dict[str, tuple[int, str, str]] = {}  # request id -> (status, licence id, problem code)
        self.unsent: set[str] = set()  # request ids wrk never sent
        self.changed: dict[str, str] = {}  # licence id -> the status the bench set over HTTP
        self.setup_licences: set[str] = set()

    # -- processes
    def _python(self, *args: str) -> str:
        try:
            done = subprocess.run(
                [sys.executable, *args], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=1800
            )
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(f"{args[:2]} did not finish in 1800 s: {exc.stderr!r:.3000}") from None
        if done.returncode:
            raise RuntimeError(f"{args[:2]} failed ({done.returncode}): {done.stderr[-3000:]}")
        return done.stdout

    def prepare(self, command: str, spec: dict[str, Any]) -> dict[str, Any]:
        given, answer = self.dir / f"{command}-in.json", self.dir / f"{command}-out.json"
        given.write_text(json.dumps(spec))
        self._python("-m", "bench._licences_prepare", command, str(given), str(answer))
        return dict(json.loads(answer.read_text()))

    def start(self, name: str) -> None:
        log = (self.dir / f"{name}.log").open("ab")
        self.logs.append(log)
        port = self.ports[name]
        if name == "app":  # the real command line: shengshi serve
            serve = ["serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(self.args.workers)]
            proc = subprocess.Popen(
                [sys.executable, "-m", "backend", *serve],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=log,
            )
        else:
            proc = _uvicorn(
                "bench._licences_base_app:app", port, self.env, workers=self.args.workers, log=log
            )
        self.servers[name] = proc
        try:
            _wait(port, proc)
        except RuntimeError:
            log.flush()
            print((self.dir / f"{name}.log").read_text()[-3000:], file=sys.stderr)
            raise

    def admin(self, sql: str) -> None:
        try:
            asyncio.run(asyncio.wait_for(_pg(self.admin_url, sql), 60))
        except TimeoutError:
            raise RuntimeError(f"{sql!r} did not finish in 60 s (see pg_stat_activity, pg_locks)") from None

    def auth(self, who: dict[str, str]) -> str:
        return "Basic " + base64.b64encode(f"{who['client_id']}:{who['client_secret']}".encode()).decode()

    # -- setup
    def setup(self) -> None:
        a = self.args
        started = time.monotonic()
        self.admin(f'CREATE DATABASE "{self.dbname}"')
        self._python("-m", "backend", "migrate")
        # the ID numbers every issuing series will send, decided now: some are verified citizens' already
        self.issue_numbers = [
            [[self.ids.next() for _ in range(a.issue_requests)] for _ in ("one", "all")]
            for _ in range(a.issue_rounds)
        ]
        every = [n for per_round in self.issue_numbers for series in per_round for n in series]
        holders = [n for n in every if self.rng.random() < a.holders]
        self.cast = self.prepare(
            "setup",
            {
                "seed": a.seed,
                "reserved": every,
                "issuers": a.issuers,
                "holders": holders,
                "sharers": a.sharers,
                "list_licences": a.list_licences,
                "revoked": a.revoked,
                "suspended": a.suspended,
            },
        )
        lst = self.cast["list"]
        self.setup_licences = asyncio.run(_licence_ids(self.db_url))
        print(
            f"{self.dbname}: migrated; {a.issuers} issuers; a relying party; {len(holders):,} of the"
            f" {len(every):,} ID numbers the issuing rounds send are verified citizens'; status list"
            f" {lst['issuer']}/1: {lst['licences']:,} licences ({lst['revoked']:,} revoked,"
            f" {lst['suspended']:,} suspended); {a.sharers} citizens with a licence and a standing consent;"
            f" cast made in {self.cast['_seconds']:.0f} s, setup {time.monotonic() - started:.0f} s",
            flush=True,
        )

    # -- what an inspector's device fetches
    def inspector_trust(self) -> verifier.IssuerTrustList:
        import httpx

        root = httpx.get(f"{self.base_url}/api/v1/licences/trust-root", timeout=30).json()["keys"][0]
        signed = httpx.get(f"{self.base_url}/api/v1/licences/trust-list", timeout=30).json()
        doc = verifier.verify_trust_list(signed, verifier.public_key_from_jwk(root))
        return verifier.IssuerTrustList.from_document(doc)

    def series(
        self,
        name: str,
        number: int,
        server: str,
        *args: str,
        once: bool = False,
        seconds: int | None = None,
        locks: bool = False,
    ) -> Series:
        """One wrk run against a server; ``once``: each request once, stopped when every answer is in (its
        rate: answers over the time from the first thread's start to the last answer)."""
        seconds = seconds or self.args.seconds
        proc = self.servers[server]
        sampler = LockSampler(self.admin_url, self.dbname) if locks else None
        if once:
            for t in range(THREADS):
                for suffix in (".start", ".done", ".txt"):
                    Path(f"{args[2]}{t}{suffix}").unlink(missing_ok=True)
        before = self.meter.snapshot(proc)
        if sampler:
            sampler.start()
        wrk = _wrk(self.ports[server], self.lua, self.args.connections, seconds, *args)
        if once:
            done = [Path(f"{args[2]}{t}.done") for t in range(THREADS)]
            while wrk.poll() is None:
                if all(d.exists() for d in done):
                    wrk.send_signal(signal.SIGINT)
                    break
                time.sleep(0.02)
        run = _finish(wrk, seconds)
        if once and all(Path(f"{args[2]}{t}.done").exists() for t in range(THREADS)):
            start = min(Path(f"{args[2]}{t}.start").stat().st_mtime for t in range(THREADS))
            run.seconds = max(Path(f"{args[2]}{t}.done").stat().st_mtime for t in range(THREADS)) - start
        cost = Meter.cost(before, self.meter.snapshot(proc), run.answered)
        lock_result = None
        if sampler:
            sampler.halt.set()
            sampler.join(10)
            lock_result = sampler.result()
        s = Series(name, number, run, cost, lock_result)
        self.results.append(s)
        return s

    def _write(self, prefix: Path, lines: list[str]) -> str:
        per: list[list[str]] = [[] for _ in range(THREADS)]
        for i, line in enumerate(lines):
            per[i % THREADS].append(line)
        for t, ls in enumerate(per):
            Path(f"{prefix}{t}.tsv").write_text("".join(x + "\n" for x in ls))
        return str(prefix)

    def _record(self, records: str, run: WrkRun, lines_by_thread: list[list[str]]) -> None:
        for t, ls in enumerate(lines_by_thread):
            self.unsent.update(x.split("\t", 1)[0] for x in ls[run.sent[t] :] if t < len(run.sent))
        for t in range(THREADS):
            path = Path(f"{records}{t}.txt")
            for line in path.read_text().splitlines() if path.exists() else []:
                rid, status, licence, code = line.split(" ")
                self.told[rid] = (int(status), licence, code)

    # -- status reads
    def first_status(self) -> None:
        """The token the inspectors read, checked with the verifier: the bare handler's body."""
        import httpx

        trust = self.inspector_trust()
        r = httpx.get(self.base_url + STATUS_PATH, timeout=30)
        if r.status_code != 200:
            raise RuntimeError(f"status list: {r.status_code} {r.text[:300]}")
        self.status_token = r.text
        self.status_bytes = len(verifier.StatusList.from_token(r.text, trust).data)
        (self.dir / "status.jwt").write_text(r.text)
        self.env["BENCH_STATUS_TOKEN"] = str(self.dir / "status.jwt")
        self.env["BENCH_STATUS_KEY"] = "licences:status:sy-traffic:1"

    def status_reads(self) -> None:
        import httpx

        a = self.args
        path = STATUS_PATH
        print(
            f"\n## Status reads: GET {path}: a {len(self.status_token):,}-character token"
            f" ({self.status_bytes:,} bytes of statuses); {a.connections} connections, wrk {THREADS} threads,"
            f" {a.workers} worker(s) per server, {a.read_rounds} round(s) of {a.seconds} s per series"
        )
        self.status_series = {
            "bare: GET (the same token)": ("base", "get", "/bare/status", "-", "-"),
            "floor: one store GET": ("base", "get", "/floor/status", "-", "-"),
            "app: GET status": ("app", "get", path, "-", "-"),
            "app: GET status, ETag held (304)": ("app", "get", path, "If-None-Match", "?"),
        }
        for number in range(1, a.read_rounds + 1):
            print(f"round {number}")
            bare = None
            for name, (server, *wrk_args) in self.status_series.items():
                # the floor reads the app's cache entry: the app keeps it fresh; the 304s send the ETag
                # the app gives now (it changes when the token is rebuilt, every ttl/2)
                fresh = httpx.get(self.base_url + path, timeout=30)
                if wrk_args[2] == "If-None-Match":
                    wrk_args[3] = fresh.headers["etag"]
                s = self.series(name, number, server, *wrk_args)
                if name.startswith("bare"):
                    bare = s.run.rps
                print(f"  {name:<34} {_line(s, bare if not name.startswith('bare') else None)}", flush=True)

    # -- consent shares
    def first_share(self) -> None:
        """One share before the load: its answer, checked with the verifier, is the bare handler's body."""
        import httpx

        trust = self.inspector_trust()
        rp = self.auth(self.cast["relying_party"])
        request = self.cast["requests"][0]
        rid = f"lic-share-0-{request}"
        r = httpx.post(
            f"{self.base_url}/api/v1/licences/requests/{request}/presentation",
            headers={"Authorization": rp, "X-Request-ID": rid},
            timeout=30,
        )
        if r.status_code != 200:
            raise RuntimeError(f"share: {r.status_code} {r.text[:300]}")
        self.sent[rid] = {"kind": "share", "request": request}
        self.told[rid] = (200, "-", "-")
        body = r.json()
        claims = json.loads(_b64u_decode(body["presentation"].split("~")[0].split(".")[1]))
        uri = claims["status"]["status_list"]["uri"]
        token = httpx.get(uri, timeout=30).text
        lists = {uri: verifier.StatusList.from_token(token, trust)}
        result = verifier.verify_presentation(
            body["presentation"], trust, lists, now=int(time.time()), audience=INSPECT, key_binding=False
        )
        from bench._licences_prepare import SHARED_FIELDS

        ok = sorted(result.fields) == sorted(SHARED_FIELDS) and result.status == "valid"
        print(
            f"a share checked with the standalone verifier: {len(body['presentation']):,} characters,"
            f" fields {sorted(result.fields)}, {result.status} — {'OK' if ok else 'WRONG'}"
        )
        if not ok:
            self.failed.append("share_presentation")
        (self.dir / "shared.json").write_bytes(r.content)
        self.env["BENCH_SHARED_BODY"] = str(self.dir / "shared.json")

    def shares(self) -> None:
        a = self.args
        rp = self.auth(self.cast["relying_party"])
        print(
            f"\n## Consent shares: POST /api/v1/licences/requests/{{id}}/presentation, {len(self.cast['requests'])}"
            f" standing consents × {a.share_repeats} a round, shuffled; {a.connections} connections, each request"
            f" once, then the bare handler for {a.seconds} s"
        )
        for number in range(1, a.share_rounds + 1):
            lines, bare_lines = [], []
            order = [r for r in self.cast["requests"] for _ in range(a.share_repeats)]
            self.rng.shuffle(order)
            for i, request in enumerate(order):
                rid = f"lic-share-{number}-{i}"
                self.sent[rid] = {"kind": "share", "request": request}
                path = f"/api/v1/licences/requests/{request}/presentation"
                lines.append(f"{rid}\tPOST\t{path}\t{rp}\t-")
                bare_lines.append(f"{rid}\tPOST\t/bare/shared/{request}\t{rp}\t-")
            prefix = self._write(self.dir / f"share-{number}-", lines)
            records = str(self.dir / f"share-told-{number}-")
            app = self.series(
                "app: POST …/presentation", number, "app", "once", prefix, records, once=True, seconds=300
            )
            self._record(records, app.run, [lines[t::THREADS] for t in range(THREADS)])
            bare_prefix = self._write(self.dir / f"bare-share-{number}-", bare_lines)
            bare = self.series("bare: POST (a share's bytes)", number, "base", "cycle", bare_prefix, "-")
            print(f"round {number}: {len(lines):,} shares")
            print(f"  {'app':<6} {_line(app, bare.run.rps)}")
            print(f"  {'bare':<6} {_line(bare)}", flush=True)

    # -- issuing
    def issuing(self) -> None:
        a = self.args
        issuers = self.cast["issuers"]
        print(
            f"\n## Issuing: POST /api/v1/licences/issued, {a.issue_requests:,} new licences a series (distinct"
            f" ID numbers), by the first issuer alone and spread over all {len(issuers)}; {a.connections}"
            f" connections, each request once; then the bare handler for {a.seconds} s; pg_stat_activity"
            " sampled every 50 ms"
        )
        for number in range(1, a.issue_rounds + 1):
            for label, numbers in zip(("one", "all"), self.issue_numbers[number - 1], strict=True):
                use = issuers[:1] if label == "one" else issuers
                lines = []
                for i, id_number in enumerate(numbers):
                    issuer = use[i % len(use)]
                    rid = f"lic-issue-{number}-{label}-{i}"
                    body = json.dumps(
                        {
                            "type": "driving_licence",
                            "id_number": id_number,
                            "fields": driving_fields(self.rng, id_number),
                        },
                        ensure_ascii=False,
                        separators=(",", ":"),
                    )
                    self.sent[rid] = {"kind": "issue", "issuer": issuer["code"], "id_number": id_number}
                    lines.append(f"{rid}\tPOST\t/api/v1/licences/issued\t{self.auth(issuer)}\t{body}")
                prefix = self._write(self.dir / f"issue-{number}-{label}-", lines)
                records = str(self.dir / f"issue-told-{number}-{label}-")
                name = "app: issue, 1 issuer" if label == "one" else f"app: issue, {len(issuers)} issuers"
                s = self.series(
                    name, number, "app", "once", prefix, records, once=True, seconds=600, locks=True
                )
                self._record(records, s.run, [lines[t::THREADS] for t in range(THREADS)])
                if label == "one":
                    bare_lines = [x.replace("/api/v1/licences/issued", "/bare/issued") for x in lines]
                    bare_prefix = self._write(self.dir / f"bare-issue-{number}-", bare_lines)
            bare = self.series("bare: POST (decode, 201)", number, "base", "cycle", bare_prefix, "-")
            print(f"round {number}")
            for s in self.results[-3:-1]:
                print(f"  {s.name:<24} {_line(s, bare.run.rps)}")
                print(f"  {'':<24} {_locks(s)}")
            print(f"  {bare.name:<24} {_line(bare)}", flush=True)

    # -- statuses changed, and read back by an inspector
    def change_sample(self) -> None:
        import httpx

        a = self.args
        created = [
            (rid, t[1]) for rid, t in self.told.items() if t[0] == 201 and self.sent[rid]["kind"] == "issue"
        ]
        picked = self.rng.sample(created, min(len(created), a.revoke_sample + a.suspend_sample))
        by_code = {i["code"]: i for i in self.cast["issuers"]}

        async def change() -> Counter[str]:
            answers: Counter[str] = Counter()
            sem = asyncio.Semaphore(8)
            async with httpx.AsyncClient(base_url=self.base_url, timeout=60) as client:

                async def one(k: int, rid: str, licence: str) -> None:
                    action = "revoke" if k < a.revoke_sample else "suspend"
                    issuer = by_code[self.sent[rid]["issuer"]]
                    async with sem:
                        r = await client.post(
                            f"/api/v1/licences/issued/{licence}/{action}",
                            json={"reason": "驾驶证被吊销" if action == "revoke" else "记满12分，暂扣"},
                            headers={"Authorization": self.auth(issuer)},
                        )
                    answers[f"{action} {r.status_code}"] += 1
                    if r.status_code == 200:
                        self.changed[licence] = r.json()["status"]

                await asyncio.gather(*(one(k, rid, lic) for k, (rid, lic) in enumerate(picked)))
            return answers

        answers = asyncio.run(change())
        print(f"\n## Statuses changed by the issuers over HTTP: {dict(answers)}")
        if sum(answers.values()) != answers.get("revoke 200", 0) + answers.get("suspend 200", 0):
            self.failed.append("status_changes")

    def read_back_statuses(self, fetches: int = 8) -> None:
        """Every status list of the bench's issuers, fetched ``fetches`` times over fresh connections and
        checked with the standalone verifier, against every licence's row."""
        import httpx

        trust = self.inspector_trust()
        rows = asyncio.run(_licences(self.db_url, [i["code"] for i in self.cast["issuers"]]))
        by_list: dict[tuple[str, int], list[Any]] = defaultdict(list)
        for r in rows:
            by_list[(r["issuer"], r["number"])].append(r)
        values = {"valid": 0, "revoked": 1, "suspended": 2}
        n: Counter[str] = Counter()
        tokens: set[str] = set()
        for (code, number), licences in sorted(by_list.items()):
            uri = f"{self.base_url}/api/v1/licences/status/{code}/{number}"
            for _ in range(fetches):
                with httpx.Client(timeout=30) as client:  # a fresh connection: any worker answers
                    r = client.get(uri)
                n["fetched"] += 1
                if r.status_code != 200:
                    n["fetch_failed"] += 1
                    continue
                tokens.add(r.text)
                try:
                    status = verifier.StatusList.from_token(r.text, trust)
                except verifier.PresentationError:
                    n["token_does_not_verify"] += 1
                    continue
                n["token_for_another_list"] += status.uri != uri
                for lic in licences:
                    got = status.status(lic["status_idx"])
                    n["entries_read"] += 1
                    if got != values[lic["status"]]:
                        n[f"{lic['status']}_read_as_{verifier.STATUS_NAMES.get(got, got)}"] += 1
            for lic in licences:
                n[lic["status"]] += 1
        changed_rows = {str(r["id"]): r["status"] for r in rows if str(r["id"]) in self.changed}
        n["changed_not_so_in_the_row"] = sum(
            changed_rows.get(lic) != status for lic, status in self.changed.items()
        )
        wrong = {
            k: v for k, v in n.items() if "_read_as_" in k or k.endswith(("failed", "verify", "list", "row"))
        }
        wrong = {k: v for k, v in wrong.items() if v}
        print(
            f"\n## Status lists read back as an inspector's device reads them: {len(by_list)} list(s), each"
            f" fetched {fetches} times over fresh connections ({len(tokens)} distinct tokens), checked with the"
            f" standalone verifier against {len(rows):,} licences ({n['valid']:,} valid, {n['revoked']:,}"
            f" revoked, {n['suspended']:,} suspended; {len(self.changed)} changed by the bench over HTTP):"
            f" {n['entries_read']:,} entries read — "
            + ("every one as its row says" if not wrong else f"WRONG: {wrong}")
        )
        if wrong:
            self.failed.append("status_read_back")

    # -- the books
    def books(self) -> None:
        print("\n## The books (the app stopped with SIGTERM)")
        issue = {rid: s for rid, s in self.sent.items() if s["kind"] == "issue"}
        index_of = self.prepare("indexes", {"id_numbers": [s["id_number"] for s in issue.values()]})
        db = asyncio.run(_read_books(self.db_url, [i["code"] for i in self.cast["issuers"]]))
        rows = {str(r["id"]): r for r in db["licences"]}
        by_holder: dict[tuple[str, str], list[Any]] = defaultdict(list)
        for r in db["licences"]:
            by_holder[(r["issuer"], r["holder_index"])].append(r)
        n: Counter[str] = Counter()
        answers: Counter[str] = Counter()
        accounted: set[str] = set()
        for rid, s in issue.items():
            t = self.told.get(rid)
            mine = by_holder.get((s["issuer"], index_of[s["id_number"]]), [])
            accounted.update(str(r["id"]) for r in mine)
            if t is None:
                answers["never sent" if rid in self.unsent else "in flight (no answer)"] += 1
                n["never_sent_but_issued"] += rid in self.unsent and bool(mine)
                continue
            answers[f"{t[0]} {t[2] if t[0] >= 300 else ''}".strip()] += 1
            if t[0] == 201:
                n["told_201"] += 1
                row = rows.get(t[1])
                n["201_without_its_row"] += row is None
                n["201_rows_not_one"] += len(mine) != 1
                if row is not None:
                    n["row_of_another_issuer"] += row["issuer"] != s["issuer"]
                    n["row_for_another_id_number"] += row["holder_index"] != index_of[s["id_number"]]
            else:
                n["refused_but_issued"] += bool(mine)
        setup = self.setup_licences
        n["licences_nobody_was_told_of"] = len(set(rows) - accounted - setup)
        n["entries_twice"] = len(db["duplicates"])
        for lst in db["lists"]:
            n["lists"] += 1
            n["list_used_not_its_licences"] += lst["used"] != lst["licences"]
            n["index_outside_its_list"] += lst["max_idx"] is not None and lst["max_idx"] >= lst["size"]
        for lic, status in self.changed.items():
            n["changed_not_so"] += rows.get(lic, {}).get("status") != status
        shares = {rid: s for rid, s in self.sent.items() if s["kind"] == "share"}
        told_200: Counter[str] = Counter()
        in_flight: Counter[str] = Counter()
        share_answers: Counter[str] = Counter()
        for rid, s in shares.items():
            t = self.told.get(rid)
            if t is None:
                share_answers["never sent" if rid in self.unsent else "in flight (no answer)"] += 1
                in_flight[s["request"]] += rid not in self.unsent
                continue
            share_answers[f"{t[0]} {t[2] if t[0] >= 300 else ''}".strip()] += 1
            told_200[s["request"]] += t[0] == 200
        uses = {str(r["request"]): r["n"] for r in db["uses"]}
        for request in {s["request"] for s in shares.values()}:
            got = uses.get(request, 0)
            if not told_200[request] <= got <= told_200[request] + in_flight[request]:
                n["share_uses_not_as_told"] += 1
            n["shared_uses"] += got
        print(
            f"  issuing: {len(issue):,} requests: "
            + ", ".join(f"{k} {v:,}" for k, v in answers.most_common())
        )
        print(
            f"  {len(rows):,} licence rows of the bench's issuers ({len(setup):,} made at setup);"
            f" {n['lists']} status lists"
        )
        print(
            f"  shares: {len(shares):,} requests: "
            + ", ".join(f"{k} {v:,}" for k, v in share_answers.most_common())
            + f"; {n['shared_uses']:,} 'shared' uses in the citizens' logs"
        )
        checks = (
            "201_without_its_row",
            "201_rows_not_one",
            "row_of_another_issuer",
            "row_for_another_id_number",
            "refused_but_issued",
            "never_sent_but_issued",
            "licences_nobody_was_told_of",
            "entries_twice",
            "list_used_not_its_licences",
            "index_outside_its_list",
            "changed_not_so",
            "share_uses_not_as_told",
        )
        print("  " + ", ".join(f"{k.replace('_', ' ')} {n[k]}" for k in checks))
        failed = [k for k in checks if n[k]]
        others = {k: v for k, v in answers.items() if k not in ("201", "never sent", "in flight (no answer)")}
        others |= {
            f"share {k}": v
            for k, v in share_answers.items()
            if k not in ("200", "never sent", "in flight (no answer)")
        }
        if others:
            failed.append("unexpected_answers")
            print(f"  unexpected answers: {others}")
        print("  books: " + ("every check holds" if not failed else "FAILED: " + ", ".join(failed)))
        self.failed += failed

    def summary(self) -> None:
        by: dict[str, list[Series]] = defaultdict(list)
        for s in self.results:
            by[s.name].append(s)

        def ratio(name: str, base: str) -> float:
            xs = []
            for s in by.get(name, []):
                b = [x for x in by.get(base, []) if x.round == s.round]
                if b and b[0].run.rps:
                    xs.append(s.run.rps / b[0].run.rps)
            return _median(xs)

        def base_of(name: str) -> str:
            if "status" in name or "GET" in name:
                return "bare: GET (the same token)"
            if "presentation" in name or "share" in name:
                return "bare: POST (a share's bytes)"
            return "bare: POST (decode, 201)"

        print("\n## Medians over the rounds (÷ bare: the median of each round's ratio)")
        print(
            f"{'series':<36}{'req/s':>9}{'p50 ms':>8}{'p95 ms':>8}{'p99 ms':>8}{'÷ bare':>8}"
            f"{'worker':>8}{'PG':>7}{'PG ours':>8}{'Redis':>7}{'xacts':>6}   (CPU ms per request)"
        )
        for name, ss in by.items():
            c = {k: _median([s.cost[k] for s in ss]) for k in ss[0].cost}
            print(
                f"{name:<36}{_median([s.run.rps for s in ss]):9,.0f}{_median([s.run.p50_ms for s in ss]):8.2f}"
                f"{_median([s.run.p95_ms for s in ss]):8.2f}{_median([s.run.p99_ms for s in ss]):8.2f}"
                f"{ratio(name, base_of(name)):8.3f}{c['worker_ms']:8.3f}{c['pg_ms']:7.2f}{c['pg_ours_ms']:8.2f}"
                f"{c['redis_ms']:7.3f}{c['xacts']:6.1f}"
            )

        locked = [(name, ss) for name, ss in by.items() if ss[0].locks]
        if locked:
            print(
                "\nThe scratch database's backends while issuing (medians over the rounds of 50 ms samples):"
            )
            for name, ss in locked:
                m = {k: _median([(s.locks or {}).get(k, 0.0) for s in ss]) for k in ss[0].locks or {}}
                print(
                    f"  {name:<24} {m.get('in transaction', 0):5.1f} in a transaction,"
                    f" {m.get('active', 0):5.1f} running a statement,"
                    f" {m.get('lock: status list', 0):5.2f} waiting for a status-list row,"
                    f" {m.get('lock: other', 0):4.2f} for another lock, {m.get('WAL', 0):4.2f} on WAL;"
                    f" someone waiting for a status-list row in {m.get('row busy', 0):.0%} of the samples"
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
    text = f"{run.rps:8,.1f} req/s  p50 {run.p50_ms:6.2f}  p95 {run.p95_ms:6.2f}  p99 {run.p99_ms:6.2f} ms"
    if bare:
        text += f"  ÷ bare {run.rps / bare:5.3f}"
    c = s.cost
    text += (
        f" | CPU/req: worker {c['worker_ms']:.3f} ms, PostgreSQL {c['pg_ms']:.3f} (ours {c['pg_ours_ms']:.3f}),"
        f" Redis {c['redis_ms']:.3f}"
    )
    text += f" | {dict(sorted(run.statuses.items()))}"
    if run.errors:
        text += f" | wrk errors {run.errors}"
    return text


def _locks(s: Series) -> str:
    lk = s.locks or {}
    return (
        f"backends on average: {lk.get('in transaction', 0):.1f} in a transaction, {lk.get('active', 0):.1f}"
        f" running a statement, {lk.get('lock: status list', 0):.2f} waiting for the status-list row,"
        f" {lk.get('lock: other', 0):.2f} for another lock, {lk.get('WAL', 0):.2f} on WAL"
        f"; a status-list row waited for in {lk.get('row busy', 0):.0%} of the samples"
        f" ({int(lk.get('samples', 0))} samples); {s.cost['xacts']:.1f} transactions a request"
    )


async def _licences(url: str, issuers: list[str]) -> list[Any]:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        return list(
            await conn.fetch(
                "SELECT c.id, c.issuer, l.number, c.status_idx, c.status FROM licence c"
                " JOIN licence_status_list l ON l.id = c.status_list WHERE c.issuer = ANY($1)",
                issuers,
            )
        )
    finally:
        await conn.close()


async def _licence_ids(url: str) -> set[str]:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        return {str(r["id"]) for r in await conn.fetch("SELECT id FROM licence")}
    finally:
        await conn.close()


async def _read_books(url: str, issuers: list[str]) -> dict[str, Any]:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        return {
            "licences": list(
                await conn.fetch(
                    "SELECT id, issuer, holder_index, status, status_list, status_idx, issued_at FROM licence"
                    " WHERE issuer = ANY($1)",
                    issuers,
                )
            ),
            "duplicates": list(
                await conn.fetch(
                    "SELECT status_list, status_idx FROM licence GROUP BY 1, 2 HAVING count(*) > 1"
                )
            ),
            "lists": list(
                await conn.fetch(
                    "SELECT l.id, l.issuer, l.number, l.used, l.size, count(c.id) AS licences,"
                    " max(c.status_idx) AS max_idx FROM licence_status_list l"
                    " LEFT JOIN licence c ON c.status_list = l.id GROUP BY l.id"
                )
            ),
            "uses": list(
                await conn.fetch(
                    "SELECT request, count(*) AS n FROM licence_use WHERE kind = 'shared' GROUP BY request"
                )
            ),
        }
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--offline-rounds", type=int, default=25)
    parser.add_argument("--batch", type=int, default=200, help="presentations per offline round")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers of every server")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--seconds", type=int, default=10, help="per wrk series of reads and of bare handlers"
    )
    parser.add_argument("--read-rounds", type=int, default=3)
    parser.add_argument("--list-licences", type=int, default=LIST_SIZE, help="licences in the read list")
    parser.add_argument("--revoked", type=float, default=0.01, help="share of them revoked")
    parser.add_argument("--suspended", type=float, default=0.002, help="share of them suspended")
    parser.add_argument("--issuers", type=int, default=4)
    parser.add_argument("--issue-rounds", type=int, default=2)
    parser.add_argument("--issue-requests", type=int, default=3000, help="new licences per issuing series")
    parser.add_argument("--holders", type=float, default=0.5, help="share of them verified citizens'")
    parser.add_argument("--sharers", type=int, default=500, help="citizens with a standing consent")
    parser.add_argument("--share-rounds", type=int, default=2)
    parser.add_argument("--share-repeats", type=int, default=6, help="shares of each consent a round")
    parser.add_argument("--revoke-sample", type=int, default=200)
    parser.add_argument("--suspend-sample", type=int, default=50)
    parser.add_argument("--skip-offline", action="store_true")
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the database, keys and scratch folder")
    args = parser.parse_args()
    if min(args.offline_rounds, args.batch, args.workers, args.connections, args.seconds, args.issuers) < 1:
        parser.error("--offline-rounds, --batch, --workers, --connections, --seconds, --issuers: at least 1")
    if not 0 < args.list_licences <= LIST_SIZE or args.sharers < 1:
        parser.error(f"--list-licences: 1 to {LIST_SIZE}; --sharers: at least 1")
    if not args.skip_http and shutil.which("wrk") is None:
        sys.exit(
            "wrk is missing: install Debian's package (apt-get install wrk, or `make bench-tools`); "
            "this benchmark drives the load with a compiled generator, never Python on the same cores"
        )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped by SIGTERM"))
    print(
        f"load average at the start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} cores)"
    )
    failed: list[str] = []
    if not args.skip_offline:
        failed += print_offline(offline(args.offline_rounds, args.batch, args.seed))
    if not args.skip_http:
        bench = Bench(args)
        try:
            bench.setup()
            bench.start("app")
            bench.first_share()
            bench.first_status()
            bench.start("base")
            bench.status_reads()
            bench.shares()
            bench.issuing()
            bench.summary()
            bench.change_sample()
            bench.read_back_statuses()
            _stop(bench.servers["app"])
            bench.books()
        finally:
            bench.cleanup()
        failed += bench.failed
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if failed:
        sys.exit(f"checks failed: {', '.join(sorted(set(failed)))}")


if __name__ == "__main__":
    main()
