"""The server stops when its process manager says so: SIGTERM ends ``shengshi serve`` within seconds,
with Redis configured too (saq's worker must not take the server's signals for itself)."""

import os
import signal
import time

import httpx
import pytest

pytestmark = [pytest.mark.storage, pytest.mark.timeout_sensitive]


def _env(settings, tmp_path, **extra):
    return {
        **os.environ,
        "SHENGSHI_DATA_DIR": str(tmp_path),
        "SHENGSHI_DATABASE_URL": settings.database_url,
        "SHENGSHI_REDIS_URL": settings.redis_url,
        "SHENGSHI_STORE_PREFIX": f"{settings.store_prefix}sigterm:",
        "SHENGSHI_SECRET_KEY": settings.secret_key,
        "SHENGSHI_KEY_ENCRYPTION_KEY": settings.key_encryption_key,
        "SHENGSHI_PII_KEYS": settings.pii_keys,
        "SHENGSHI_LOG_LEVEL": "WARNING",
        **extra,
    }


def test_an_open_dashboard_stream_does_not_hold_the_shutdown(
    settings, migrated, tmp_path, shengshi_cli, free_port, serve
):
    import threading

    r = shengshi_cli("console", "add-operator", "night", "--password-stdin", input="night-shift-password\n")
    assert r.returncode == 0, r.stderr
    port = free_port()
    proc = serve(_env(settings, tmp_path, SHENGSHI_SHUTDOWN_GRACE="2"), port)
    try:
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}")
        client.get("/admin/")
        csrf = {"X-CSRFToken": client.cookies.get("csrftoken")}
        login = {"username": "night", "password": "night-shift-password"}
        assert client.post("/admin/public/login/", json=login, headers=csrf).status_code == 200
        opened = threading.Event()

        def watch() -> None:
            try:
                with client.stream("GET", "/admin/dashboard/stream", timeout=60) as stream:
                    for line in stream.iter_lines():
                        if line.startswith("data:"):
                            opened.set()
            except httpx.HTTPError:
                pass

        threading.Thread(target=watch, daemon=True).start()
        assert opened.wait(15)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) in (0, -signal.SIGTERM)
        assert time.monotonic() - started < 10  # the 2 s grace, then the stream is cut
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_sigterm_stops_the_server_promptly(settings, migrated, tmp_path, free_port, serve):
    proc = serve(_env(settings, tmp_path), free_port())
    try:
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        # uvicorn shuts the app down, then re-raises the signal so the exit status tells it was SIGTERM
        assert proc.wait(15) in (0, -signal.SIGTERM)
        assert time.monotonic() - started < 10
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
