"""The server stops when its process manager says so: SIGTERM ends ``shengshi serve`` within seconds,
with Redis configured too (saq's worker must not take the server's signals for itself)."""

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

pytestmark = [pytest.mark.storage, pytest.mark.timeout_sensitive]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_sigterm_stops_the_server_promptly(settings, migrated, tmp_path):
    port = _free_port()
    env = {
        **os.environ,
        "SHENGSHI_DATA_DIR": str(tmp_path),
        "SHENGSHI_DATABASE_URL": settings.database_url,
        "SHENGSHI_REDIS_URL": settings.redis_url,
        "SHENGSHI_STORE_PREFIX": f"{settings.store_prefix}sigterm:",
        "SHENGSHI_SECRET_KEY": settings.secret_key,
        "SHENGSHI_KEY_ENCRYPTION_KEY": settings.key_encryption_key,
        "SHENGSHI_PII_KEYS": settings.pii_keys,
        "SHENGSHI_LOG_LEVEL": "WARNING",
    }
    shengshi = os.path.join(os.path.dirname(sys.executable), "shengshi")
    proc = subprocess.Popen(
        [shengshi, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        # uvicorn shuts the app down, then re-raises the signal so the exit status tells it was SIGTERM
        assert proc.wait(15) in (0, -signal.SIGTERM)
        assert time.monotonic() - started < 10
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
