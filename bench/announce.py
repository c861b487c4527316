"""An announcement to 200,000 citizens: throughput, memory, and a kill -9 mid-send.

    python -m bench.announce [--citizens 200000] [--crash]

On PostgreSQL + Redis (a scratch database made and dropped here), the real server (``shengshi serve``, one
worker) with ``SHENGSHI_MESSAGE_*`` settings. The citizens are inserted directly (one
``INSERT … SELECT FROM generate_series``); an operator credential is made with the real CLI; through the
operators' API the bench approves ``platform.city_notice`` and sends it to everyone at a high rate (the
throttle out of the way), then follows its progress and samples the server's resident memory every
0.5 s. Measured in the same run, before and after: **floor**, the same 200,000 message rows (the same
columns, the same content) inserted by asyncpg into a scratch copy of the message table (same indexes)
in batches of the announcement's size, one transaction each, and nothing else (the database's cost).

``--crash``: a second announcement to everyone, the server SIGKILLed at ~40 %, started again on the same
database and store, and finished. Then the books are read: exactly one message per citizen and
announcement, no citizen without one, and the counts on each announcement row equal its rows.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx

from bench.codes import _free_port
from bench.entitlements import _rss_kb
from messages.setup import PLATFORM_TEMPLATES
from messages.templates import content

ROOT = Path(__file__).resolve().parent.parent
DATA = {
    "headline": "沈阳市防汛预警",
    "headline_en": "Flood warning for Shenyang",
    "text": "今晚至明日沈阳市有强降雨，请减少外出，远离河道与低洼地带。如遇险情请拨打 119。",
    "text_en": "Heavy rain in Shenyang from tonight to tomorrow: stay in if you can, away from rivers and "
    "low ground. In danger, call 119.",
}


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.dir = Path(tempfile.mkdtemp(prefix="shengshi-announce-"))
        self.admin_url = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
        self.dbname = f"shengshi_announce_{os.getpid()}"
        self.db_url = self.admin_url.rpartition("/")[0] + "/" + self.dbname
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SHENGSHI_")}
        self.env.update(
            {
                "SHENGSHI_DATA_DIR": str(self.dir),
                "SHENGSHI_DATABASE_URL": self.db_url,
                "SHENGSHI_REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
                "SHENGSHI_STORE_PREFIX": f"announcebench:{os.getpid()}:",
                "SHENGSHI_SECRET_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("="),
                "SHENGSHI_LOG_LEVEL": "WARNING",
                "SHENGSHI_MESSAGE_ANNOUNCE_BATCH": str(args.batch),
                "SHENGSHI_MESSAGE_ANNOUNCE_LEASE": "5",  # the restarted server takes over 5 s after the kill
                "SHENGSHI_MESSAGE_INTERVAL": "0.2",
                "PYTHONPATH": str(ROOT),
            }
        )
        self.op: dict[str, str] = {}

    def _cli(self, *args: str) -> str:
        shengshi = os.path.join(os.path.dirname(sys.executable), "shengshi")
        done = subprocess.run([shengshi, *args], env=self.env, capture_output=True, text=True, timeout=600)
        if done.returncode:
            raise RuntimeError(f"shengshi {args[0]} failed: {done.stderr[-2000:]}")
        return done.stdout

    def _serve(self, port: int) -> subprocess.Popen[bytes]:
        shengshi = os.path.join(os.path.dirname(sys.executable), "shengshi")
        log = (self.dir / "server.log").open("ab")
        proc = subprocess.Popen(
            [shengshi, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=self.env,
            stdout=log,
            stderr=log,
        )
        log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    return proc
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                break
            time.sleep(0.2)
        proc.kill()
        raise RuntimeError("the server did not start: " + (self.dir / "server.log").read_text()[-2000:])

    async def setup(self) -> None:
        admin = await asyncpg.connect(self.admin_url)
        await admin.execute(f'CREATE DATABASE "{self.dbname}"')
        await admin.close()
        self._cli("migrate")
        cred = json.loads(self._cli("operators", "add", "bench desk", "--json"))
        auth = base64.b64encode(f"{cred['client_id']}:{cred['client_secret']}".encode()).decode()
        self.op = {"Authorization": "Basic " + auth}
        conn = await asyncpg.connect(self.db_url)
        started = time.perf_counter()
        await conn.execute(
            "INSERT INTO citizen (id, status, created_at, updated_at)"
            " SELECT gen_random_uuid(), 'active', now(), now() FROM generate_series(1, $1)",
            self.args.citizens,
        )
        await conn.execute("ANALYZE citizen")
        # the floor's table: the message table's columns and indexes, nothing else
        await conn.execute("CREATE TABLE floor_message (LIKE message INCLUDING DEFAULTS INCLUDING INDEXES)")
        await conn.close()
        print(f"{self.args.citizens:,} active citizens inserted in {time.perf_counter() - started:.1f} s")

    async def floor(self) -> float:
        """The same message rows, prepared beforehand, inserted in the announcement's batches."""
        conn = await asyncpg.connect(self.db_url)
        await conn.execute("TRUNCATE floor_message")
        citizens = [str(r["id"]) for r in await conn.fetch("SELECT id FROM citizen ORDER BY id")]
        body = json.dumps(content(PLATFORM_TEMPLATES["city_notice"], DATA), ensure_ascii=False)
        now = datetime.now(UTC)
        announcement = str(uuid.uuid4())
        sql = (
            "INSERT INTO floor_message (id, citizen_id, sender, template_id, category, urgent, content, link,"
            " idempotency, announcement, created_at, visible_at, notified_at)"
            " SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bool[],"
            " $7::json[], $8::text[], $9::text[], $10::text[], $11::timestamptz[], $12::timestamptz[],"
            " $13::timestamptz[]) ON CONFLICT (idempotency) DO NOTHING RETURNING idempotency"
        )
        batches = []
        for start in range(0, len(citizens), self.args.batch):
            part = citizens[start : start + self.args.batch]
            k = len(part)
            batches.append(
                (
                    [uuid.uuid4() for _ in part],
                    part,
                    ["platform"] * k,
                    ["platform.city_notice"] * k,
                    ["announcement"] * k,
                    [False] * k,
                    [body] * k,
                    [""] * k,
                    [f"platform/announcement:{announcement}:{c}" for c in part],
                    [announcement] * k,
                    [now] * k,
                    [now] * k,
                    [now] * k,
                )
            )
        started = time.perf_counter()
        for b in batches:
            async with conn.transaction():
                await conn.fetch(sql, *b)
        seconds = time.perf_counter() - started
        await conn.execute("TRUNCATE floor_message")
        await conn.close()
        return len(citizens) / seconds

    async def announce(
        self, port: int, proc: subprocess.Popen[bytes], *, kill_at: float | None = None
    ) -> tuple[str, float, list[int], subprocess.Popen[bytes]]:
        """Send to everyone and follow it to the end (killing and restarting the server at ``kill_at``):
        its id, the seconds it took, the server's RSS samples (kB)."""
        base = f"http://127.0.0.1:{port}"
        samples: list[int] = []
        async with httpx.AsyncClient(base_url=base, timeout=30, headers=self.op) as http:
            r = await http.post(
                "/api/v1/admin/announcements",
                json={
                    "template": "platform.city_notice",
                    "data": DATA,
                    "segment": {"kind": "everyone"},
                    "rate": 100_000,
                },
            )
            if r.status_code != 202:
                raise RuntimeError(f"announcement refused: {r.status_code} {r.text[:500]}")
            ident = r.json()["id"]
            started = time.perf_counter()
            while True:
                await asyncio.sleep(0.5)
                samples.append(_rss_kb(proc.pid))
                try:
                    view = (await http.get(f"/api/v1/admin/announcements/{ident}")).json()
                except httpx.HTTPError:
                    continue
                if view["state"] != "sending":
                    break
                if kill_at is not None and view["scanned"] >= kill_at * self.args.citizens:
                    print(f"  SIGKILL at {view['scanned']:,} scanned, {view['sent']:,} sent")
                    proc.send_signal(signal.SIGKILL)
                    proc.wait(30)
                    kill_at = None
                    restart = time.perf_counter()
                    proc = self._serve(port)
                    print(f"  restarted in {time.perf_counter() - restart:.1f} s")
            seconds = time.perf_counter() - started
        if view["state"] != "done":
            raise RuntimeError(f"the announcement ended {view}")
        return ident, seconds, samples, proc

    async def books(self, idents: list[str]) -> bool:
        conn = await asyncpg.connect(self.db_url)
        ok = True
        n = self.args.citizens
        for ident in idents:
            row = await conn.fetchrow(
                "SELECT state, scanned, sent, skipped FROM announcement WHERE id = $1", uuid.UUID(ident)
            )
            rows = await conn.fetchval("SELECT count(*) FROM message WHERE announcement = $1", ident)
            twice = await conn.fetchval(
                "SELECT count(*) FROM (SELECT citizen_id FROM message WHERE announcement = $1"
                " GROUP BY citizen_id HAVING count(*) > 1) t",
                ident,
            )
            missing = await conn.fetchval(
                "SELECT count(*) FROM citizen c WHERE NOT EXISTS (SELECT 1 FROM message m"
                " WHERE m.announcement = $1 AND m.citizen_id = c.id::text)",
                ident,
            )
            good = (
                row["state"] == "done"
                and row["scanned"] == row["sent"] == rows == n
                and row["skipped"] == 0
                and twice == 0
                and missing == 0
            )
            ok &= good
            print(
                f"books of {ident[:8]}: {dict(row)}, {rows:,} message rows, {twice} citizens twice,"
                f" {missing} citizens without one — {'agree' if good else 'DISAGREE'}"
            )
        await conn.close()
        return ok

    async def run(self) -> None:
        await self.setup()
        n = self.args.citizens
        floors = [await self.floor()]
        port = _free_port()
        proc = self._serve(port)
        idents = []
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=self.op) as http:
                r = await http.post(
                    "/api/v1/admin/message-templates/platform.city_notice/decision",
                    json={"decision": "approve", "note": "bench"},
                )
                assert r.status_code == 200, r.text
            idle = _rss_kb(proc.pid)
            ident, seconds, rss, proc = await self.announce(port, proc)
            idents.append(ident)
            crash: tuple[float, list[int]] | None = None
            if self.args.crash:
                ident2, seconds2, rss2, proc = await self.announce(port, proc, kill_at=0.4)
                idents.append(ident2)
                crash = (seconds2, rss2)
        finally:
            proc.terminate()
            proc.wait(60)
        floors.append(await self.floor())
        floor = statistics.median(floors)
        rate = n / seconds
        print()
        print(f"{'run':<44}{'messages/s':>12}{'÷ floor':>9}{'wall':>9}")
        print(f"{'floor (asyncpg unnest, prepared rows)':<44}{floor:>12,.0f}{1:>9.2f}{n / floor:>8.1f}s")
        print(f"{'announcement to everyone':<44}{rate:>12,.0f}{rate / floor:>9.2f}{seconds:>8.1f}s")
        if crash:
            print(
                f"{'announcement, SIGKILL at 40 %, restarted':<44}{n / crash[0]:>12,.0f}"
                f"{n / crash[0] / floor:>9.2f}{crash[0]:>8.1f}s"
            )
        print(f"floor per round: {[round(f) for f in floors]}")
        for name, samples in (("announcement", rss), *((("crash run", crash[1]),) if crash else ())):
            s = sorted(samples)
            if s:
                q = [samples[int(len(samples) * f)] for f in (0.1, 0.5, 0.9)]
                print(
                    f"server RSS during the {name} (MB): idle {idle / 1024:.0f}, at 10/50/90 % of the way"
                    f" {q[0] / 1024:.0f}/{q[1] / 1024:.0f}/{q[2] / 1024:.0f}, max {s[-1] / 1024:.0f}"
                    f" ({len(s)} samples)"
                )
        if not await self.books(idents):
            raise SystemExit(1)

    async def cleanup(self) -> None:
        admin = await asyncpg.connect(self.admin_url)
        await admin.execute(f'DROP DATABASE IF EXISTS "{self.dbname}" WITH (FORCE)')
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--citizens", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=1000, help="SHENGSHI_MESSAGE_ANNOUNCE_BATCH")
    parser.add_argument("--crash", action="store_true", help="also a run killed at 40 % and restarted")
    args = parser.parse_args()
    bench = Bench(args)
    try:
        asyncio.run(bench.run())
    finally:
        asyncio.run(bench.cleanup())


if __name__ == "__main__":
    main()
