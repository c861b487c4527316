"""Payment notifications processed per second for each channel, and the share spent verifying them.

    .venv/bin/python bench/payments.py [--n 300] [--backend sqlite|postgres]

Each notification is genuine and for its own order, posted through the ASGI app in-process (the whole
path: routing, raw-body verification, decryption, the exactly-once transaction with ledger and outbox).
The same notifications are then verified alone with the channel adapter; the ratio is the share of the
processing time that signature work (and for WeChat, AES-GCM decryption) takes. Same run, same machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "integration" / "payments"))


async def run(n: int, backend: str) -> None:
    import httpx
    from conftest import AlipayPlayer, WeChatPlayer  # the test suite's channel players

    tmp = Path(tempfile.mkdtemp(prefix="shengshi-paybench-"))
    (tmp / "wechat").mkdir()
    wechat, alipay = WeChatPlayer(tmp / "wechat"), AlipayPlayer(tmp)
    os.environ.update(
        {
            "SHENGSHI_DATA_DIR": str(tmp),
            "SHENGSHI_LOG_LEVEL": "WARNING",
            "SHENGSHI_PAYMENT_CHANNELS": "sandbox,wechatpay,alipay",
            "SHENGSHI_WECHATPAY_MCHID": "1900000001",
            "SHENGSHI_WECHATPAY_APPID": "wxd678efh567hg6787",
            "SHENGSHI_WECHATPAY_APIV3_KEY": wechat.apiv3_key,
            "SHENGSHI_WECHATPAY_PLATFORM_KEYS_DIR": str(tmp / "wechat"),
            "SHENGSHI_ALIPAY_APP_ID": alipay.app_id,
            "SHENGSHI_ALIPAY_SELLER_ID": alipay.seller_id,
            "SHENGSHI_ALIPAY_PUBLIC_KEY_FILE": str(alipay.public_file),
        }
    )
    dbname = f"shengshi_paybench_{os.getpid()}"
    if backend == "postgres":
        import asyncpg

        conn = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/test")
        await conn.execute(f'CREATE DATABASE "{dbname}"')
        await conn.close()
        os.environ["SHENGSHI_DATABASE_URL"] = f"postgresql://postgres@127.0.0.1:5432/{dbname}"
        os.environ["SHENGSHI_REDIS_URL"] = "redis://127.0.0.1:6379/0"
        os.environ["SHENGSHI_STORE_PREFIX"] = f"paybench:{os.getpid()}:"
    from backend import db
    from backend.app import build_runtime, create_app, services_of
    from backend.settings import load_settings

    settings = load_settings()
    await db.migrate(db.create_engine(settings), quiet=True)
    runtime = build_runtime(settings)
    runtime.background = False  # measure the callbacks, not the webhook sender
    app = create_app(runtime=runtime)
    try:
        async with app.lifespan():
            payments = services_of(app).payments
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://bench"
            ) as client:
                print(f"## Payment notifications ({backend}; {n} per channel, one order each, sequential)")
                print(f"{'channel':<10} {'notif/s':>9} {'verify-only/s':>14} {'verify share':>13}")
                for name, make in (
                    ("wechatpay", lambda oid: wechat.paid(oid, 1000)),
                    ("alipay", lambda oid: alipay.notify(oid, "10.00")),
                ):
                    requests = []
                    for i in range(n):
                        order, _ = await payments.orders.create(
                            owner="merchant:bench",
                            app_id="",
                            amount=1000,
                            reference=f"{name}-{i}-{time.time_ns()}",
                            citizen_id=None,
                            description="",
                            deferred=False,
                        )
                        requests.append(make(order["order_id"]))
                    started = time.perf_counter()
                    for headers, body in requests:
                        r = await client.post(
                            f"/api/v1/payments/notify/{name}", content=body, headers=headers
                        )
                        assert r.status_code in (200, 204), r.text
                    total = time.perf_counter() - started
                    channel = payments.channels[name]
                    now = time.time()
                    started = time.perf_counter()
                    for headers, body in requests:
                        channel.verify(headers, body, now)
                    verify = time.perf_counter() - started
                    print(f"{name:<10} {n / total:9.0f} {n / verify:14.0f} {verify / total:12.0%}")
    finally:
        if backend == "postgres":
            import asyncpg

            conn = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/test")
            await conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
            await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    args = parser.parse_args()
    asyncio.run(run(args.n, args.backend))


if __name__ == "__main__":
    main()
