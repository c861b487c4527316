"""A message reaches the citizen's open app whichever worker sent it: real servers (two on PostgreSQL +
Redis, one with the in-process store), the demo data seeded by the real command (which approves the
templates outside production), a bus scanner enrolled by the CLI; the rider's app listens on
``/api/v1/me/events`` on one worker while the bus scans at the other, and the fare's message arrives."""

from __future__ import annotations

import base64
import json
import re
import threading
import time

import httpx
import pytest

from tests.integration.codes.test_live_code import _env

pytestmark = [pytest.mark.storage, pytest.mark.timeout_sensitive]


def test_a_deferred_fare_reaches_the_riders_open_app_from_another_worker(
    settings, migrated, tmp_path, shengshi_cli, free_port, serve, new_phone
):
    env = _env(settings, tmp_path)
    seeded = shengshi_cli("seed-demo", env=env)
    assert seeded.returncode == 0, seeded.stderr
    made = shengshi_cli(
        "scanners", "add", "--app", "transit", "--place", "B113", "--context", "bus", "--json", env=env
    )
    assert made.returncode == 0, made.stderr
    cred = json.loads(made.stdout)
    bus = {
        "Authorization": "Basic "
        + base64.b64encode(f"{cred['client_id']}:{cred['client_secret']}".encode()).decode()
    }
    ports = [free_port(), free_port()] if settings.redis_url else [free_port()]
    procs = [serve(env, port, log=tmp_path / f"serve-{port}.log") for port in ports]
    try:
        app_base, gate_base = f"http://127.0.0.1:{ports[0]}", f"http://127.0.0.1:{ports[-1]}"
        phone = new_phone()
        with httpx.Client(base_url=app_base, timeout=10) as c:
            assert c.post("/api/v1/auth/otp", json={"phone": phone}).status_code == 202
            code = re.search(r"\b(\d{6})\b", c.get("/api/v1/dev/sms", params={"phone": phone}).json()["text"])
            pair = c.post(
                "/api/v1/auth/login", json={"phone": phone, "code": code.group(1), "device_id": "p"}
            )
        me = {"Authorization": f"Bearer {pair.json()['access_token']}"}

        events: list[tuple[str, str, float]] = []
        ready = threading.Event()

        def listen() -> None:
            with httpx.stream("GET", f"{app_base}/api/v1/me/events", headers=me, timeout=20) as r:
                name = ""
                for line in r.iter_lines():
                    if line.startswith("event:"):
                        name = line.split(":", 1)[1].strip()
                    elif line.startswith("data:"):
                        events.append((name, line.split(":", 1)[1].strip(), time.monotonic()))
                        if name == "ready":
                            ready.set()
                        if name == "message":
                            return

        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        assert ready.wait(10), events
        time.sleep(0.2)
        token = httpx.get(f"{app_base}/api/v1/codes/current", headers=me, timeout=10).json()["token"]
        scanned_at = time.monotonic()
        r = httpx.post(f"{gate_base}/api/v1/scans", json={"token": token}, headers=bus, timeout=10)
        assert r.status_code == 200 and r.json()["result"] == "allow", r.text
        charged = r.json()["data"]["charged"]
        listener.join(10)
        arrived = [e for e in events if e[0] == "message"]
        assert arrived, events
        data = json.loads(arrived[0][1])
        assert data["sender"] == "transit" and data["title"]["zh-CN"] == "乘车费用待支付"
        # behind the gate's answer (the journal's batch, every worker's round): seconds at most
        assert arrived[0][2] - scanned_at < 3.0
        inbox = httpx.get(f"{app_base}/api/v1/me/messages", headers=me, timeout=10).json()
        assert (
            inbox["unread"] == 1 and f"{charged // 100}.{charged % 100:02d} 元" in inbox["items"][0]["body"]
        )
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=20)
