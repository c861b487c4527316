"""/readyz names the store when Redis stops answering, and recovers when it comes back."""

import shutil
import socket
import subprocess
import time

import pytest


def _start_redis(port: int) -> subprocess.Popen:
    binary = shutil.which("redis-server")
    assert binary, "redis-server must be installed (the project's .ci/run installs it)"
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("temporary redis-server did not start")


async def test_readyz_names_an_unreachable_store(make_client, free_port):
    async with make_client(redis_url=f"redis://127.0.0.1:{free_port()}/0") as client:
        r = await client.get("/readyz")
    assert r.status_code == 503
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["failed"] == ["store"]
    assert body["checks"] == {"database": "ok", "store": "failed"}


@pytest.mark.timeout_sensitive
async def test_readyz_follows_a_real_redis_going_down_and_up(make_client, free_port):
    port = free_port()
    proc = _start_redis(port)
    try:
        async with make_client(redis_url=f"redis://127.0.0.1:{port}/0") as client:
            assert (await client.get("/readyz")).status_code == 200
            proc.terminate()
            proc.wait(10)
            down = await client.get("/readyz")
            assert down.status_code == 503 and down.json()["failed"] == ["store"]
            proc = _start_redis(port)
            up = await client.get("/readyz")
            assert up.status_code == 200, up.text
    finally:
        proc.kill()
        proc.wait(10)
