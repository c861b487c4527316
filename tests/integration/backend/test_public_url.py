"""Links the server hands out (the sandbox's pay_url) follow the host and port it is started on, as
``make run HOST=... PORT=...`` starts it, unless SHENGSHI_PUBLIC_URL says otherwise."""

import os
import re

import httpx
import pytest

from backend.cli import public_url_for

pytestmark = [pytest.mark.storage, pytest.mark.timeout_sensitive]


def test_the_public_url_of_a_host_and_port():
    assert public_url_for("127.0.0.1", 8765) == "http://127.0.0.1:8765"
    assert public_url_for("0.0.0.0", 9000) == "http://127.0.0.1:9000"  # noqa: S104 - all interfaces
    assert public_url_for("::", 9000) == "http://[::1]:9000"
    assert public_url_for("shengshi.local", 80) == "http://shengshi.local:80"


def _env(settings, tmp_path, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHENGSHI_")}
    return {
        **env,
        "SHENGSHI_ENV": "test",
        "SHENGSHI_DATA_DIR": str(tmp_path),
        "SHENGSHI_DATABASE_URL": settings.database_url,
        "SHENGSHI_REDIS_URL": settings.redis_url,
        "SHENGSHI_STORE_PREFIX": f"{settings.store_prefix}publicurl:",
        "SHENGSHI_SECRET_KEY": settings.secret_key,
        "SHENGSHI_KEY_ENCRYPTION_KEY": settings.key_encryption_key,
        "SHENGSHI_PII_KEYS": settings.pii_keys,
        "SHENGSHI_LOG_LEVEL": "WARNING",
        **extra,
    }


def _ticket_order(base: str, phone: str) -> tuple[dict[str, str], str]:
    """A citizen buys a ticket of the demo city: (their bearer header, the order id)."""
    with httpx.Client(base_url=base, timeout=10) as c:
        assert c.post("/api/v1/auth/otp", json={"phone": phone}).status_code == 202
        code = re.search(r"\b(\d{6})\b", c.get("/api/v1/dev/sms", params={"phone": phone}).json()["text"])
        pair = c.post("/api/v1/auth/login", json={"phone": phone, "code": code.group(1), "device_id": "p"})
        me = {"Authorization": f"Bearer {pair.json()['access_token']}"}
        sessions = c.get("/api/v1/apps/tourism/sessions", params={"attraction": "A-MUKDEN"}).json()["items"]
        bought = c.post(
            "/api/v1/apps/tourism/tickets",
            json={"session_id": sessions[0]["session_id"], "holders": ["褚一"]},
            headers=me,
        )
        assert bought.status_code == 201, bought.text
        return me, bought.json()["order_id"]


@pytest.mark.parametrize("configured", [None, "https://pay.shengshi.example"])
def test_pay_url_follows_the_port_the_server_runs_on(
    configured, settings, migrated, tmp_path, shengshi_cli, free_port, serve, new_phone
):
    assert shengshi_cli("seed-demo").returncode == 0
    port = free_port()
    extra = {"SHENGSHI_PUBLIC_URL": configured} if configured else {}
    proc = serve(_env(settings, tmp_path, **extra), port)
    try:
        base = f"http://127.0.0.1:{port}"
        me, order_id = _ticket_order(base, new_phone())
        url = f"{base}/api/v1/payments/orders/{order_id}/pay"
        pay = httpx.post(url, json={"channel": "sandbox"}, headers=me, timeout=10)
        assert pay.status_code == 200, pay.text
        assert pay.json()["pay"]["pay_url"] == f"{configured or base}/sandbox/pay/{order_id}"
        page = httpx.get(f"{base}/sandbox/pay/{order_id}", timeout=10)
        assert page.status_code == 200 and "沙箱支付" in page.text
    finally:
        proc.terminate()
        proc.wait(20)
