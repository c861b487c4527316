"""Citizen-code benchmarks: offline verification, issuance, and the online scan endpoint.

    .venv/bin/python bench/codes.py [--citizens 200] [--contexts 20] [--connections 8]

Every figure is printed next to a baseline measured in the same run on the same machine: raw
`cryptography` ECDSA verification and signing for the codec, and a bare Litestar POST handler served by
the same server (uvicorn, one worker) for the endpoint. The machine is shared and noisy: read the
ratios and medians, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[1]
# this file is bench/codes.py: keep its folder off the path so that "codes" is the package, not this file
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, utils  # noqa: E402

from bench import _load  # noqa: E402
from codes import format as fmt  # noqa: E402
from codes.entitlements import Entitlements  # noqa: E402
from codes.trustlist import TrustedKey, TrustList  # noqa: E402
from codes.verifier import verify  # noqa: E402


def _best(fn, number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=3)) / number


def offline(rounds: int = 25) -> dict[str, float]:
    key = ec.generate_private_key(ec.SECP256R1())
    kid = os.urandom(6)
    now = int(time.time())
    ent = Entitlements(medical_region="210100", transit=True, tickets=True, social_security=True)
    token, _ = fmt.encode(
        private_key=key, alg="ES256", kid=kid, issuer="SST", iat=now, exp=now + 60, entitlements=ent
    )
    trust = TrustList([TrustedKey(kid, fmt.ALG_ES256, key.public_key(), None, None)], issuer="SST")
    d = fmt.decode(token)
    message = fmt.sig_structure(d.protected, d.payload)
    der = utils.encode_dss_signature(
        int.from_bytes(d.signature[:32], "big"), int.from_bytes(d.signature[32:], "big")
    )
    public, algorithm = key.public_key(), ec.ECDSA(hashes.SHA256())
    assert verify(token, trust, now=now, requirement="transit").valid
    raw, ours, raw_sign, issue = [], [], [], []
    for _ in range(rounds):
        # short interleaved batches: both sides of a ratio see the same moment of a noisy machine
        raw.append(_best(lambda: public.verify(der, message, algorithm), 200))
        ours.append(_best(lambda: verify(token, trust, now=now, requirement="transit"), 200))
        raw_sign.append(
            _best(lambda: key.sign(message, ec.ECDSA(hashes.SHA256(), deterministic_signing=True)), 100)
        )
        issue.append(
            _best(
                lambda: fmt.encode(
                    private_key=key,
                    alg="ES256",
                    kid=kid,
                    issuer="SST",
                    iat=now,
                    exp=now + 60,
                    entitlements=ent,
                ),
                100,
            )
        )
    ratios = [r / o for r, o in zip(raw, ours, strict=True)]
    return {
        "raw_verify_per_s": 1 / statistics.median(raw),
        "verify_per_s": 1 / statistics.median(ours),
        "verify_ratio_median": statistics.median(ratios),
        "verify_ratio_min": min(ratios),
        "verify_ratio_max": max(ratios),
        "raw_sign_per_s": 1 / statistics.median(raw_sign),
        "issue_per_s": 1 / statistics.median(issue),
        "issue_ratio": statistics.median(raw_sign) / statistics.median(issue),
        "token_chars": len(token),
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(port: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"server exited: {proc.stderr.read().decode()[-2000:] if proc.stderr else '(see its log)'}"
            )
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError("server did not start")


def _uvicorn(
    app: str,
    port: int,
    env: dict[str, str],
    factory: bool = False,
    *,
    workers: int = 1,
    log: IO[bytes] | None = None,
) -> subprocess.Popen:
    """The server every benchmark serves with: uvicorn, uvloop, httptools, no access log. ``log``: a file
    for its output (a pipe nobody reads blocks a server that logs a lot under load)."""
    args = [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
        "--log-level",
        "warning",
        "--loop",
        os.environ.get("BENCH_LOOP", "uvloop"),
        "--http",
        "httptools",
    ]
    if factory:
        args.append("--factory")
    return subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log if log is not None else subprocess.PIPE
    )


async def _prepare(port: int, citizens: int, scanners: list[dict[str, str]]) -> list[bytes]:
    """Log citizens in through the API, fetch one fresh code each, and build one request per (code,
    scanner context): each is a first use, so every scan goes the whole way to 'allow'."""
    import base64

    import httpx

    tokens = []
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        for i in range(citizens):
            phone = f"139{i:08d}"
            await client.post("/api/v1/auth/otp", json={"phone": phone})
            sms = (await client.get("/api/v1/dev/sms", params={"phone": phone})).json()["text"]
            code = re.search(r"\d{6}", sms).group(0)  # type: ignore[union-attr]
            pair = (
                await client.post(
                    "/api/v1/auth/login", json={"phone": phone, "code": code, "device_id": f"bench-{i}"}
                )
            ).json()
            r = await client.get(
                "/api/v1/codes/current", headers={"Authorization": f"Bearer {pair['access_token']}"}
            )
            tokens.append(r.json()["token"])
    requests = []
    for scanner in scanners:
        auth = (
            "Basic "
            + base64.b64encode(f"{scanner['client_id']}:{scanner['client_secret']}".encode()).decode()
        )
        for token in tokens:
            requests.append(
                _load.post_request(
                    "/api/v1/scans", json.dumps({"token": token}).encode(), {"Authorization": auth}
                )
            )
    return requests


def _enrol_scanners(env: dict[str, str], contexts: int) -> list[dict[str, str]]:
    code = (
        "import asyncio, json\n"
        "from backend.app import create_app, services_of\n"
        "async def main():\n"
        "    app = create_app()\n"
        "    out = []\n"
        "    async with app.lifespan():\n"
        "        m = services_of(app).auth.machines\n"
        f"        for i in range({contexts}):\n"
        "            out.append(await m.create('scanner', app_id='benchgate', place=f'gate {i}', context=f'bench-{i}'))\n"
        "    print(json.dumps(out))\n"
        "asyncio.run(main())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return list(json.loads(out.stdout.strip().splitlines()[-1]))


async def _pg(admin_url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def online(citizens: int, contexts: int, connections: int, backend: str) -> dict[str, dict[str, float]]:
    data_dir = tempfile.mkdtemp(prefix="shengshi-bench-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHENGSHI_")}
    # the bench mini-app, installed as far as discovery goes (a dist-info with its entry point)
    dist = Path(data_dir) / "plugins" / "benchgate-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: benchgate\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[shengshitong.miniapps]\nbenchgate = bench._bench_miniapp:BenchGate\n"
    )
    env["PYTHONPATH"] = os.pathsep.join([str(dist.parent), str(ROOT)])
    env["SHENGSHI_MINIAPPS"] = "benchgate"
    env.update(
        {
            "SHENGSHI_DATA_DIR": data_dir,
            "SHENGSHI_OTP_RESEND_INTERVAL": "0",
            "SHENGSHI_OTP_PER_PHONE_PER_HOUR": "100000",
            "SHENGSHI_OTP_PER_IP_PER_HOUR": "100000",
            "SHENGSHI_LOG_LEVEL": "WARNING",
        }
    )
    admin_url = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    dbname = f"shengshi_bench_{os.getpid()}"
    if backend == "postgres":
        asyncio.run(_pg(admin_url, f'CREATE DATABASE "{dbname}"'))
        env["SHENGSHI_DATABASE_URL"] = admin_url.rpartition("/")[0] + "/" + dbname
        env["SHENGSHI_REDIS_URL"] = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
        env["SHENGSHI_STORE_PREFIX"] = f"bench:{os.getpid()}:"
    try:
        subprocess.run(
            [sys.executable, "-m", "backend", "migrate"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )
        scanners = _enrol_scanners(env, contexts)
        port_app, port_bare = _free_port(), _free_port()
        app = _uvicorn("backend.asgi:serve_app", port_app, env, factory=True)
        bare = _uvicorn("bench._bare_app:app", port_bare, env)
        try:
            _wait(port_app, app)
            _wait(port_bare, bare)
            requests = asyncio.run(_prepare(port_app, citizens, scanners))
            bare_body = _load.post_request(
                "/api/v1/scans", json.dumps({"token": "SC1:" + "A" * 207}).encode(), {}
            )
            # warm both up, then measure the same number of requests against each
            warm = iter([bare_body] * 200)
            asyncio.run(
                _load.run(
                    "127.0.0.1", port_bare, lambda: next(warm, None), connections=connections, seconds=10
                )
            )
            n = len(requests)
            bare_iter = iter([bare_body] * n)
            bare_result = asyncio.run(
                _load.run(
                    "127.0.0.1",
                    port_bare,
                    lambda: next(bare_iter, None),
                    connections=connections,
                    seconds=120,
                )
            )
            if os.environ.get("BENCH_PROFILE_CMD"):  # e.g. "py-spy record -d 4 -o prof.txt -f raw -p {pid}"
                subprocess.Popen(os.environ["BENCH_PROFILE_CMD"].format(pid=app.pid).split())
            scan_iter = iter(requests)
            app_result = asyncio.run(
                _load.run(
                    "127.0.0.1", port_app, lambda: next(scan_iter, None), connections=connections, seconds=120
                )
            )
        finally:
            for proc in (app, bare):
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
        if backend == "postgres":
            asyncio.run(_pg(admin_url, f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)'))
            import redis

            r = redis.Redis.from_url(env["SHENGSHI_REDIS_URL"])
            keys = list(r.scan_iter(match=env["SHENGSHI_STORE_PREFIX"] + "*", count=1000))
            for i in range(0, len(keys), 1000):
                r.delete(*keys[i : i + 1000])
    return {"bare": bare_result, "scan": app_result}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--citizens", type=int, default=200)
    parser.add_argument("--contexts", type=int, default=20)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--skip-online", action="store_true")
    parser.add_argument(
        "--backend",
        choices=["sqlite", "postgres", "both"],
        default="both",
        help="storage for the online run: SQLite + in-process store, PostgreSQL + Redis, or both",
    )
    args = parser.parse_args()

    off = offline()
    print("## Offline verification and issuance (ES256, one core)")
    print(f"raw cryptography ECDSA verify : {off['raw_verify_per_s']:9.0f} /s")
    print(
        f"codes.verifier.verify         : {off['verify_per_s']:9.0f} /s   ratio {off['verify_ratio_median']:.2f} "
        f"(median of 25 rounds; min {off['verify_ratio_min']:.2f}, max {off['verify_ratio_max']:.2f}; target >= 0.70)"
    )
    print(f"raw cryptography ECDSA sign   : {off['raw_sign_per_s']:9.0f} /s")
    print(f"codes.format.encode (issue)   : {off['issue_per_s']:9.0f} /s   ratio {off['issue_ratio']:.2f}")
    print(f"token length                  : {off['token_chars']} characters (QR version 8-M holds 221)")
    if args.skip_online:
        return
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    for backend in backends:
        res = online(args.citizens, args.contexts, args.connections, backend)
        bare, scan = res["bare"], res["scan"]
        storage = "SQLite + in-process store" if backend == "sqlite" else "PostgreSQL + Redis"
        print(
            f"\n## Online POST /api/v1/scans: {storage} ({scan['requests']} first-use scans, "
            f"{args.connections} connections, uvicorn 1 worker)"
        )
        print(
            f"bare Litestar POST handler : {bare['rps']:8.0f} req/s  p50 {bare['p50_ms']:6.2f} ms  "
            f"p99 {bare['p99_ms']:6.2f} ms  {bare['statuses']}"
        )
        print(
            f"POST /api/v1/scans         : {scan['rps']:8.0f} req/s  p50 {scan['p50_ms']:6.2f} ms  "
            f"p99 {scan['p99_ms']:6.2f} ms  {scan['statuses']}"
        )
        print(f"throughput ratio scan/bare : {scan['rps'] / bare['rps']:.2f}")


if __name__ == "__main__":
    main()
