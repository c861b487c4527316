"""Bulk upload of entitlement changes: a day's changes for a million people in one streamed NDJSON upload.

    python -m bench.entitlements [--records 1000000] [--registered 0.3]

On PostgreSQL + Redis (a scratch database made and dropped here), the real server (``backend.asgi``,
uvicorn, one worker) receives the file from a medical-insurance source credential made with the real
CLI. A share of the people in the file are registered, real-name-verified citizens (inserted directly),
so the upload also drops their codes and tells their apps, as it would in the city. Measured in the same
run, alternately:

- **bare**: a bare Litestar handler that streams the same body and counts its lines (receiving costs);
- **floor**: the same number of fact rows, prepared beforehand, inserted into a copy of the table by
  asyncpg with the same ``unnest`` batches and nothing else (the database's cost alone);
- **upload**: the real upload (parse, validate, HMAC, insert, progress, freshness of registered codes);
- **again**: the same file a second time, which must change nothing.

It prints changes per second, ratios against both baselines, the server's resident memory sampled
through the upload (it must stay flat while the file streams), and reads the books back: the facts in
the table are exactly the records of the file, once.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench.codes import _free_port, _uvicorn, _wait

ROOT = Path(__file__).resolve().parent.parent
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def id_number(i: int) -> str:
    """The i-th of a million distinct valid Shenyang ID numbers (GB 11643 check digit)."""
    year, rest = 1940 + i % 60, i // 60
    month, rest = 1 + rest % 12, rest // 12
    day, seq = 1 + rest % 28, rest // 28
    first = f"210102{year}{month:02d}{day:02d}{seq:03d}"
    return first + "10X98765432"[sum(int(c) * w for c, w in zip(first, _WEIGHTS, strict=True)) % 11]


def subject(key: bytes, number: str) -> str:
    return hmac.new(key, b"id_number\x00" + number.encode(), hashlib.sha256).hexdigest()


def _rss_kb(pid: int) -> int:
    total = 0
    for p in [pid, *_children(pid)]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def _children(pid: int) -> list[int]:
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if int((p / "stat").read_text().split(") ")[1].split()[1]) == pid:
                    out.append(int(p.name))
            except (OSError, IndexError, ValueError):
                pass
    return out


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.dir = Path(tempfile.mkdtemp(prefix="shengshi-ent-"))
        self.admin_url = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
        self.dbname = f"shengshi_ent_{os.getpid()}"
        self.db_url = self.admin_url.rpartition("/")[0] + "/" + self.dbname
        self.secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SHENGSHI_")}
        self.env.update(
            {
                "SHENGSHI_DATA_DIR": str(self.dir),
                "SHENGSHI_DATABASE_URL": self.db_url,
                "SHENGSHI_REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
                "SHENGSHI_STORE_PREFIX": f"entbench:{os.getpid()}:",
                "SHENGSHI_SECRET_KEY": self.secret,
                "SHENGSHI_LOG_LEVEL": "WARNING",
                "PYTHONPATH": str(ROOT),
            }
        )
        self.file = self.dir / "changes.ndjson"

    def _cli(self, *args: str) -> str:
        shengshi = os.path.join(os.path.dirname(sys.executable), "shengshi")
        done = subprocess.run([shengshi, *args], env=self.env, capture_output=True, text=True, timeout=600)
        if done.returncode:
            raise RuntimeError(f"shengshi {args[0]} failed: {done.stderr[-2000:]}")
        return done.stdout

    async def setup(self) -> dict[str, str]:
        admin = await asyncpg.connect(self.admin_url)
        await admin.execute(f'CREATE DATABASE "{self.dbname}"')
        await admin.close()
        self._cli("migrate")
        cred = json.loads(
            self._cli("sources", "add", "--kind", "medical", "--name", "bench bureau", "--json")
        )
        n, key = self.args.records, base64.urlsafe_b64decode(self.secret + "=" * (-len(self.secret) % 4))
        effective = datetime(2026, 11, 28, tzinfo=UTC).isoformat()
        started = time.perf_counter()
        with self.file.open("w") as f:
            for i in range(n):
                f.write(
                    json.dumps(
                        {
                            "record_id": f"mi-{i:07d}",
                            "id_number": id_number(i),
                            "effective_at": effective,
                            "value": {"insured": True, "region": "210102", "type": "employee"},
                        },
                        separators=(",", ":"),
                    )
                    + "\n"
                )
        print(
            f"file: {n:,} records, {self.file.stat().st_size / 1e6:.0f} MB, written in "
            f"{time.perf_counter() - started:.1f} s"
        )
        registered = int(n * self.args.registered)
        conn = await asyncpg.connect(self.db_url)
        now = datetime.now(UTC)
        rows = [
            (uuid.uuid4(), "active", subject(key, id_number(i * (n // max(1, registered)))), now)
            for i in range(registered)
        ]
        await conn.copy_records_to_table(
            "citizen",
            records=rows,
            columns=["id", "status", "id_number_index", "real_name_verified_at"],
        )
        # the floor's table: the same columns and indexes, nothing else
        await conn.execute(
            "CREATE TABLE floor_fact (LIKE entitlement_fact INCLUDING DEFAULTS INCLUDING INDEXES)"
        )
        await conn.close()
        print(f"registered, verified citizens among them: {registered:,}")
        return {"client_id": cred["client_id"], "client_secret": cred["client_secret"]}

    async def floor(self) -> float:
        """The same number of rows, prepared, inserted in the upload's batches: the database alone."""
        conn = await asyncpg.connect(self.db_url)
        await conn.execute("TRUNCATE floor_fact")
        n, batch = self.args.records, 2000
        now = datetime.now(UTC)
        value = json.dumps({"insured": True, "region": "210102", "type": "employee"})
        sql = (
            "INSERT INTO floor_fact (fact_key, kind, subject, effective_at, valid_until, value, source, upload,"
            " record_id, received_at) SELECT * FROM unnest($1::text[], $2::text[], $3::text[],"
            " $4::timestamptz[], $5::timestamptz[], $6::json[], $7::text[], $8::text[], $9::text[],"
            " $10::timestamptz[]) ON CONFLICT (fact_key) DO NOTHING RETURNING fact_key"
        )
        batches = []
        for start in range(0, n, batch):
            k = min(batch, n - start)
            keys = [secrets.token_hex(16) for _ in range(k)]
            batches.append(
                (
                    keys,
                    ["medical"] * k,
                    [secrets.token_hex(32) for _ in range(k)],
                    [now] * k,
                    [None] * k,
                    [value] * k,
                    ["src"] * k,
                    [""] * k,
                    [f"mi-{start + j}" for j in range(k)],
                    [now] * k,
                )
            )
        started = time.perf_counter()
        for b in batches:
            async with conn.transaction():
                await conn.fetch(sql, *b)
        seconds = time.perf_counter() - started
        await conn.close()
        return n / seconds

    async def _stream(
        self, port: int, headers: dict[str, str], sample: int | None
    ) -> tuple[dict[str, Any], float, list[int]]:
        async def body() -> Any:
            with self.file.open("rb") as f:
                while chunk := f.read(256 * 1024):
                    yield chunk

        samples: list[int] = []
        done = asyncio.Event()

        async def sampler() -> None:
            while not done.is_set() and sample is not None:
                samples.append(_rss_kb(sample))
                await asyncio.sleep(0.25)

        task = asyncio.create_task(sampler())
        started = time.perf_counter()
        async with httpx.AsyncClient(timeout=3600) as client:
            r = await client.post(
                f"http://127.0.0.1:{port}/api/v1/entitlements/uploads",
                content=body(),
                headers={**headers, "Content-Type": "application/x-ndjson"},
            )
        seconds = time.perf_counter() - started
        done.set()
        await task
        if r.status_code != 200:
            raise RuntimeError(f"upload answered {r.status_code}: {r.text[:500]}")
        return r.json(), seconds, samples

    async def run(self) -> None:
        cred = await self.setup()
        auth = base64.b64encode(f"{cred['client_id']}:{cred['client_secret']}".encode()).decode()
        headers = {"Authorization": "Basic " + auth}
        n = self.args.records
        results: dict[str, list[float]] = {"bare": [], "floor": []}
        bare_port, app_port = _free_port(), _free_port()
        bare_log = (self.dir / "bare.log").open("ab")
        bare = _uvicorn("bench._bare_upload_app:app", bare_port, self.env, log=bare_log)
        _wait(bare_port, bare)
        app_log = (self.dir / "app.log").open("ab")
        app = _uvicorn("backend.asgi:serve_app", app_port, self.env, factory=True, log=app_log)
        _wait(app_port, app)
        try:
            idle_kb = _rss_kb(app.pid)
            for _ in range(self.args.baseline_rounds):
                answer, seconds, _ = await self._stream(bare_port, {}, None)
                assert answer["lines"] == n, answer
                results["bare"].append(n / seconds)
                results["floor"].append(await self.floor())
            first, first_s, first_rss = await self._stream(app_port, headers, app.pid)
            again, again_s, again_rss = await self._stream(app_port, headers, app.pid)
            for _ in range(self.args.baseline_rounds):  # the baselines again after, for the noise
                answer, seconds, _ = await self._stream(bare_port, {}, None)
                results["bare"].append(n / seconds)
                results["floor"].append(await self.floor())
        finally:
            for proc in (bare, app):
                proc.terminate()
                proc.wait(timeout=60)
            bare_log.close()
            app_log.close()
        conn = await asyncpg.connect(self.db_url)
        facts = await conn.fetchval("SELECT count(*) FROM entitlement_fact")
        distinct = await conn.fetchval("SELECT count(DISTINCT record_id) FROM entitlement_fact")
        upload_rows = await conn.fetch(
            "SELECT applied, unchanged, rejected, status FROM entitlement_upload ORDER BY started_at"
        )
        await conn.close()
        bare_rate, floor_rate = statistics.median(results["bare"]), statistics.median(results["floor"])
        rate1, rate2 = n / first_s, n / again_s
        print()
        print(f"{'run':<34}{'changes/s':>12}{'÷ bare':>9}{'÷ floor':>9}")
        print(f"{'bare (stream, count lines)':<34}{bare_rate:>12,.0f}{1:>9.2f}{bare_rate / floor_rate:>9.2f}")
        print(
            f"{'floor (asyncpg unnest, prepared)':<34}{floor_rate:>12,.0f}{floor_rate / bare_rate:>9.2f}{1:>9.2f}"
        )
        print(
            f"{'upload (first: all applied)':<34}{rate1:>12,.0f}{rate1 / bare_rate:>9.3f}{rate1 / floor_rate:>9.2f}"
        )
        print(
            f"{'upload again (all unchanged)':<34}{rate2:>12,.0f}{rate2 / bare_rate:>9.3f}{rate2 / floor_rate:>9.2f}"
        )
        print(
            f"baselines per round: bare {[round(x) for x in results['bare']]}, floor {[round(x) for x in results['floor']]}"
        )
        print(f"first upload {first_s:.1f} s: {first}")
        print(f"second upload {again_s:.1f} s: {again}")
        for name, rss in (("first", first_rss), ("again", again_rss)):
            if rss:
                q = [rss[int(len(rss) * f)] for f in (0.1, 0.5, 0.9)] + [max(rss)]
                print(
                    f"server RSS during {name} upload (MB): idle {idle_kb / 1024:.0f}, at 10/50/90 % "
                    f"{q[0] / 1024:.0f}/{q[1] / 1024:.0f}/{q[2] / 1024:.0f}, max {q[3] / 1024:.0f} "
                    f"({len(rss)} samples)"
                )
        print(
            f"books: {facts:,} facts for {distinct:,} distinct records; uploads {[dict(r) for r in upload_rows]}"
        )
        ok = (
            facts == n
            and distinct == n
            and first["applied"] == n
            and again["applied"] == 0
            and again["unchanged"] == n
            and first["rejected"] == again["rejected"] == 0
        )
        print("books agree with what the source was told" if ok else "BOOKS DISAGREE")
        if not ok:
            raise SystemExit(1)

    async def cleanup(self) -> None:
        admin = await asyncpg.connect(self.admin_url)
        await admin.execute(f'DROP DATABASE IF EXISTS "{self.dbname}" WITH (FORCE)')
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--registered", type=float, default=0.3, help="share of the people who are citizens")
    parser.add_argument("--baseline-rounds", type=int, default=1, help="baseline runs before and after")
    args = parser.parse_args()
    bench = Bench(args)
    try:
        asyncio.run(bench.run())
    finally:
        asyncio.run(bench.cleanup())


if __name__ == "__main__":
    main()
