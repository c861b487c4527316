"""What the live dashboard costs: on the gate's path, and per frame.

    .venv/bin/python bench/dashboard.py [--backend sqlite|postgres] [--rounds 15]

1. The scan observer (every scan, synchronous, in memory) against a bare Python call of the same
   shape: nanoseconds per scan, and their ratio. This is all the dashboard adds to a scan.
2. A worker's flush (the second's counts into the store's per-minute hash, plus the channel tick)
   against one plain store ``set``: how many round trips' worth a flush is.
3. Building a frame (30 minutes of counts, 24 hours of payments, backlog, gauges) cold and warm
   (complete hours cached), against one ``get_counts`` of the 30 minute keys alone.
Medians of interleaved rounds, same run, same machine; the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))


def observer(rounds: int) -> tuple[float, float]:
    from backend.runtime import ScanSeen
    from console.dashboard import ScanTally

    tally = ScanTally()
    seen = [
        ScanSeen("transit", "allow", "ok", 0.004, False),
        ScanSeen("parking", "deny", "replayed", 0.012, False),
        ScanSeen("transit", "allow", "ok", 0.0, True),
    ]

    def bare(s: ScanSeen) -> None:
        return None

    n = 200_000
    ours, base = [], []
    for _ in range(rounds):
        ours.append(min(timeit.repeat(lambda: [tally(s) for s in seen], number=n // 3, repeat=3)) / n * 1e9)
        base.append(min(timeit.repeat(lambda: [bare(s) for s in seen], number=n // 3, repeat=3)) / n * 1e9)
        tally.take()
    return statistics.median(ours), statistics.median(base)


async def store_and_frames(backend: str, rounds: int) -> dict[str, float]:
    tmp = Path(tempfile.mkdtemp(prefix="shengshi-dashbench-"))
    os.environ["SHENGSHI_DATA_DIR"] = str(tmp)
    os.environ["SHENGSHI_LOG_LEVEL"] = "WARNING"
    if backend == "postgres":
        os.environ["SHENGSHI_DATABASE_URL"] = os.environ.get(
            "SHENGSHI_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
        )
        os.environ["SHENGSHI_REDIS_URL"] = os.environ.get(
            "SHENGSHI_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"
        )
        os.environ["SHENGSHI_STORE_PREFIX"] = f"dashbench:{os.getpid()}:"
    from backend import db
    from backend.app import create_app, services_of
    from backend.runtime import ScanSeen
    from backend.settings import load_settings
    from miniapps.parking.demo import seed as seed_parking

    settings = load_settings()
    await db.migrate(db.create_engine(settings), quiet=True)
    app = create_app(settings)
    runtime = app.state.runtime
    runtime.background = False
    async with app.lifespan():
        await seed_parking()
        dash = services_of(app).console.dashboard
        store = runtime.store
        now_minute = int(runtime.clock.time() // 60)
        # 30 minutes of a busy city: 4 mini-apps, a few refusal reasons, latency buckets
        for m in range(now_minute - 29, now_minute + 1):
            await store.add_counts(
                f"dash:m:{m}",
                {f"s|{a}|allow": 900 for a in ("transit", "parking", "hospital", "tourism")}
                | {"r|replayed": 12, "r|unpaid_fares": 3, "l|3": 3000, "l|4": 500, "l|6": 20},
                ttl=3600,
            )
        keys = [f"dash:m:{m}" for m in range(now_minute - 29, now_minute + 1)]
        flush, plain, cold, warm, raw = [], [], [], [], []
        for _ in range(rounds):
            for _ in range(200):
                dash.tally(ScanSeen("transit", "allow", "ok", 0.004, False))
            t = time.perf_counter()
            await dash.flush()
            flush.append(time.perf_counter() - t)
            t = time.perf_counter()
            await store.set("dashbench:x", b"1", ttl=60)
            plain.append(time.perf_counter() - t)
            dash._hours.clear()
            dash._frame = None
            t = time.perf_counter()
            await dash.frame()
            cold.append(time.perf_counter() - t)
            dash._frame = None
            t = time.perf_counter()
            await dash.frame()
            warm.append(time.perf_counter() - t)
            t = time.perf_counter()
            await store.get_counts(*keys)
            raw.append(time.perf_counter() - t)
        if hasattr(store, "delete_prefix"):
            await store.delete_prefix()
    med = statistics.median
    return {
        "flush_ms": med(flush) * 1e3,
        "set_ms": med(plain) * 1e3,
        "frame_cold_ms": med(cold) * 1e3,
        "frame_warm_ms": med(warm) * 1e3,
        "get_counts_ms": med(raw) * 1e3,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()

    ours, base = observer(args.rounds)
    print(f"scan observer: {ours:.0f} ns per scan vs a bare call {base:.0f} ns (ratio {ours / base:.1f})")
    f = asyncio.run(store_and_frames(args.backend, args.rounds))
    print(
        f"flush (200 scans' counts + tick): {f['flush_ms']:.3f} ms vs one store set {f['set_ms']:.3f} ms "
        f"(ratio {f['flush_ms'] / f['set_ms']:.1f}), once a second per worker"
    )
    print(
        f"frame: cold {f['frame_cold_ms']:.1f} ms, warm {f['frame_warm_ms']:.1f} ms vs reading the 30 minute "
        f"counters alone {f['get_counts_ms']:.2f} ms (ratio warm {f['frame_warm_ms'] / f['get_counts_ms']:.1f}); "
        "at most one frame per worker per second"
    )


if __name__ == "__main__":
    main()
