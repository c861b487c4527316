"""A change an owner pushes reaches the citizen's open app within a second, whichever worker either of
them reached: real servers (two on PostgreSQL + Redis, one with the in-process store), a real source
credential made by the CLI, the app listening on ``/api/v1/me/events`` with a streaming HTTP client."""

from __future__ import annotations

import base64
import json
import os
import re
import threading
import time
from datetime import UTC, datetime

import httpx
import pytest

pytestmark = [pytest.mark.storage, pytest.mark.timeout_sensitive]


def _env(settings, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHENGSHI_")}
    return {
        **env,
        "SHENGSHI_ENV": "test",
        "SHENGSHI_DATA_DIR": str(tmp_path),
        "SHENGSHI_DATABASE_URL": settings.database_url,
        "SHENGSHI_REDIS_URL": settings.redis_url,
        "SHENGSHI_STORE_PREFIX": f"{settings.store_prefix}live:",
        "SHENGSHI_SECRET_KEY": settings.secret_key,
        "SHENGSHI_KEY_ENCRYPTION_KEY": settings.key_encryption_key,
        "SHENGSHI_PII_KEYS": settings.pii_keys,
        "SHENGSHI_LOG_LEVEL": "WARNING",
    }


def _citizen(base: str, phone: str, id_number: str) -> dict[str, str]:
    with httpx.Client(base_url=base, timeout=10) as c:
        assert c.post("/api/v1/auth/otp", json={"phone": phone}).status_code == 202
        code = re.search(r"\b(\d{6})\b", c.get("/api/v1/dev/sms", params={"phone": phone}).json()["text"])
        assert code
        pair = c.post("/api/v1/auth/login", json={"phone": phone, "code": code.group(1), "device_id": "p"})
        me = {"Authorization": f"Bearer {pair.json()['access_token']}"}
        verified = c.patch("/api/v1/me", json={"real_name": "沈一", "id_number": id_number}, headers=me)
        assert verified.status_code == 200 and verified.json()["real_name_verified"], verified.text
        return me


def test_a_pushed_change_reaches_the_open_app_and_its_next_code(
    settings, migrated, tmp_path, shengshi_cli, free_port, serve, new_phone, new_id_number
):
    env = _env(settings, tmp_path)
    shared = bool(settings.redis_url)  # with Redis: the app and the owner reach different workers
    ports = [free_port(), free_port()] if shared else [free_port()]
    procs = [serve(env, port) for port in ports]
    try:
        app_base, owner_base = f"http://127.0.0.1:{ports[0]}", f"http://127.0.0.1:{ports[-1]}"
        number = new_id_number()
        me = _citizen(app_base, new_phone(), number)
        made = shengshi_cli("sources", "add", "--kind", "health", "--name", "沈阳市卫健委", "--json")
        assert made.returncode == 0, made.stderr
        cred = json.loads(made.stdout)
        basic = base64.b64encode(f"{cred['client_id']}:{cred['client_secret']}".encode()).decode()
        before = httpx.get(f"{app_base}/api/v1/codes/current", headers=me, timeout=10).json()
        assert before["entitlements"]["health"] == {"status": "unknown"}

        events: list[tuple[str, str, float]] = []
        ready = threading.Event()

        def listen() -> None:
            with httpx.stream("GET", f"{app_base}/api/v1/me/events", headers=me, timeout=15) as r:
                assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
                name = ""
                for line in r.iter_lines():
                    if line.startswith("event:"):
                        name = line.split(":", 1)[1].strip()
                    elif line.startswith("data:"):
                        events.append((name, line.split(":", 1)[1].strip(), time.monotonic()))
                        if name == "ready":
                            ready.set()
                        if name == "code":
                            return

        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        assert ready.wait(10), events
        time.sleep(0.2)  # the subscription is in place once "ready" is sent; give the store a moment
        change = {
            "record_id": "h-1",
            "id_number": number,
            "effective_at": datetime.now(UTC).isoformat(),
            "value": {"status": "yellow", "reason": "密接"},
        }
        pushed_at = time.monotonic()
        r = httpx.post(
            f"{owner_base}/api/v1/entitlements/changes",
            json=change,
            headers={"Authorization": f"Basic {basic}"},
            timeout=10,
        )
        assert r.status_code == 200 and r.json()["outcome"] == "applied", r.text
        listener.join(5)
        code_events = [e for e in events if e[0] == "code"]
        assert code_events, events
        assert code_events[0][2] - pushed_at < 1.0
        after = httpx.get(f"{app_base}/api/v1/codes/current", headers=me, timeout=10).json()
        assert after["token"] != before["token"]
        assert after["entitlements"]["health"] == {"status": "yellow"}
        wallet = httpx.get(f"{app_base}/api/v1/me/entitlements", headers=me, timeout=10).json()
        health = next(e for e in wallet["entitlements"] if e["name"] == "health")
        assert health["status"] == "yellow" and health["reason"] == "health_yellow"
        assert health["detail"] == {"reason": "密接"} and health["source"]["name_zh"] == "沈阳市卫健委"
        # the stream refuses a caller with no token
        assert httpx.get(f"{app_base}/api/v1/me/events", timeout=5).status_code == 401

        # signed out: an open stream ends and carries nothing more of the citizen's
        later: list[str] = []
        opened = threading.Event()

        def listen_until_closed() -> None:
            with httpx.stream("GET", f"{app_base}/api/v1/me/events", headers=me, timeout=15) as r:
                for line in r.iter_lines():
                    later.append(line)
                    if line.startswith("event: ready"):
                        opened.set()

        second = threading.Thread(target=listen_until_closed, daemon=True)
        second.start()
        assert opened.wait(10), later
        time.sleep(0.2)
        assert httpx.post(f"{app_base}/api/v1/auth/logout", headers=me, timeout=10).status_code == 204
        r = httpx.post(
            f"{owner_base}/api/v1/entitlements/changes",
            json={**change, "record_id": "h-2", "value": {"status": "red"}},
            headers={"Authorization": f"Basic {basic}"},
            timeout=10,
        )
        assert r.status_code == 200 and r.json()["outcome"] == "applied", r.text
        second.join(5)
        assert not second.is_alive(), "the stream outlived the sign-out"
        assert not any(line.startswith("event: code") for line in later), later
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(20)
