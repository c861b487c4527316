"""The pipelined Redis connection of the gate's hot path, on asyncio's and uvloop's event loops, against
the Redis server of the PostgreSQL + Redis pass (skipped on the other pass: it needs a Redis)."""

import asyncio
import contextlib
import os
import secrets

import pytest
import uvloop

from backend.store.resp import PipelinedRedis, RespError

REDIS_URL = os.environ.get("SHENGSHI_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
pytestmark = [
    pytest.mark.storage,
    pytest.mark.skipif(
        os.environ.get("SHENGSHI_TEST_BACKEND", "sqlite") != "postgres",
        reason="needs the Redis of the postgres pass",
    ),
]


async def _exercise() -> None:
    r = PipelinedRedis(REDIS_URL, timeout=2.0)
    prefix = f"test:resp:{secrets.token_hex(4)}:"
    try:
        # many commands in flight on one connection come back each to its own caller
        await asyncio.gather(*(r.execute("SET", f"{prefix}{i}", str(i), "PX", 60_000) for i in range(300)))
        values = await asyncio.gather(*(r.execute("GET", f"{prefix}{i}") for i in range(300)))
        assert values == [str(i).encode() for i in range(300)]
        assert await r.execute("GET", f"{prefix}missing") is None
        with pytest.raises(RespError, match=r"WRONGTYPE"):
            await r.execute("LPUSH", f"{prefix}1", "x")
        # a script the server forgot is loaded again
        source = f"return {{KEYS[1], ARGV[1], '{secrets.token_hex(4)}'}}"
        assert (await r.script(source, [f"{prefix}k"], ["v"]))[:2] == [f"{prefix}k".encode(), b"v"]
        await r.execute("SCRIPT", "FLUSH")
        assert (await r.script(source, [f"{prefix}k"], ["w"]))[1] == b"w"
        # the connection dropped by the server: the next command opens another
        own = await r.execute("CLIENT", "ID")
        with contextlib.suppress(RespError):  # its answer may not come back: the connection is gone
            await r.execute("CLIENT", "KILL", "ID", own, "SKIPME", "no")
        for _ in range(20):
            try:
                assert await r.execute("GET", f"{prefix}7") == b"7"
                break
            except RespError:
                await asyncio.sleep(0.05)
        else:
            raise AssertionError("no new connection after the server dropped it")
    finally:
        await r.execute("DEL", *(f"{prefix}{i}" for i in range(300)))
        await r.close()


def test_pipelined_commands_on_asyncio():
    asyncio.run(_exercise())


def test_pipelined_commands_on_uvloop():
    uvloop.run(_exercise())


def test_an_unreachable_server_is_a_clear_error():
    async def go():
        r = PipelinedRedis("redis://127.0.0.1:1/0", timeout=0.5)
        with pytest.raises(RespError, match="cannot connect"):
            await r.execute("PING")

    asyncio.run(go())
