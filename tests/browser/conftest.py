"""Browser tests: Debian's chromium driven by Playwright, headless, against a real server.

The server is the real ``shengshi serve`` in a subprocess, on this pass's backend but with a database
(SQLite file, or a scratch PostgreSQL database) and a Redis namespace of its own, migrated and seeded
like ``make run`` does, with a short code refresh so the wallet's rotation can be watched. Chromium is
installed by the project's set-up (``make browser``, called by ``make test``); a missing browser is a
failure, not a skip.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from backend.settings import new_key
from tests.conftest import ServedApp

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CODE_REFRESH = 6  # seconds: the wallet must fetch a new code this often
PASSWORDS = {"watcher": "watcher-password-1", "chief": "chief-password-1"}


def chromium_path() -> str:
    path = os.environ.get("SHENGSHI_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.fail(
            "chromium is not installed: `make browser` installs Debian's chromium (make test runs it)"
        )
    return path


class WebServer(ServedApp):
    def scanner(self, app_id: str, place: str, context: str, name: str = "") -> dict[str, Any]:
        """Enrol a scanner with the real command; its credential (the secret shown once)."""
        return dict(
            self.cli(
                "scanners",
                "add",
                "--app",
                app_id,
                "--place",
                place,
                "--context",
                context,
                "--name",
                name or place,
                "--json",
            )
        )

    def citizen(self, phone: str) -> dict[str, str]:
        """A citizen logged in through the API (not the browser): their bearer header."""
        with httpx.Client(base_url=self.url, timeout=10) as c:
            assert c.post("/api/v1/auth/otp", json={"phone": phone}).status_code == 202
            text = c.get("/api/v1/dev/sms", params={"phone": phone}).json()["text"]
            code = re.search(r"(?<!\d)(\d{6})(?!\d)", text).group(1)  # type: ignore[union-attr]
            pair = c.post(
                "/api/v1/auth/login", json={"phone": phone, "code": code, "device_id": "phone-1"}
            ).json()
        return {"Authorization": f"Bearer {pair['access_token']}"}

    def scan(self, scanner: dict[str, Any], token: str) -> dict[str, Any]:
        r = httpx.post(
            f"{self.url}/api/v1/scans",
            json={"token": token},
            auth=(scanner["client_id"], scanner["client_secret"]),
            timeout=10,
        )
        assert r.status_code == 200, r.text
        return dict(r.json())


def _channel_keys(where: Path) -> dict[str, str]:
    """WeChat Pay and Alipay enabled next to the sandbox, with keys made for this server: the wallet
    offers every enabled channel, and the browser sees what each one answers (no notice is sent)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    wechat = where / "wechat"
    wechat.mkdir()
    (wechat / "5157F09EFDC096DE15EBE81A47057A7232F1B8E1.pem").write_bytes(public)
    (where / "alipay_public.pem").write_bytes(public)
    (where / "app_private.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return {
        "SHENGSHI_PAYMENT_CHANNELS": "sandbox,wechatpay,alipay",
        "SHENGSHI_WECHATPAY_MCHID": "1900000001",
        "SHENGSHI_WECHATPAY_APPID": "wxd678efh567hg6787",
        "SHENGSHI_WECHATPAY_APIV3_KEY": "0123456789abcdef0123456789abcdef",
        "SHENGSHI_WECHATPAY_PLATFORM_KEYS_DIR": str(wechat),
        "SHENGSHI_ALIPAY_APP_ID": "2021000000000001",
        "SHENGSHI_ALIPAY_SELLER_ID": "2088101122136241",
        "SHENGSHI_ALIPAY_PUBLIC_KEY_FILE": str(where / "alipay_public.pem"),
        "SHENGSHI_ALIPAY_APP_PRIVATE_KEY_FILE": str(where / "app_private.pem"),
    }


async def _pg(sql: str, admin_url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def web(settings: Any, free_port: Any, serve: Any) -> Iterator[WebServer]:
    data_dir = Path(tempfile.mkdtemp(prefix="shengshi-web-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHENGSHI_")}
    db_name = f"shengshi_web_{uuid.uuid4().hex[:8]}"
    admin_url = settings.database_url.rsplit("/", 1)[0] + "/postgres"
    if settings.uses_postgres:
        asyncio.run(_pg(f'CREATE DATABASE "{db_name}"', admin_url))
        database_url = settings.database_url.rsplit("/", 1)[0] + "/" + db_name
    else:
        database_url = f"sqlite:///{data_dir / 'web.sqlite3'}"
    port = free_port()
    env.update(
        {
            "SHENGSHI_ENV": "test",
            "SHENGSHI_DATA_DIR": str(data_dir),
            "SHENGSHI_DATABASE_URL": database_url,
            "SHENGSHI_REDIS_URL": settings.redis_url,
            # a namespace per module, like its database: rate limits (30 SMS codes an hour from one
            # address) and caches of one module's server do not reach the next one's
            "SHENGSHI_STORE_PREFIX": f"{settings.store_prefix}{db_name}:",
            "SHENGSHI_SECRET_KEY": new_key(),
            "SHENGSHI_KEY_ENCRYPTION_KEY": new_key(),
            "SHENGSHI_PII_KEYS": f"w1:{new_key()}",
            "SHENGSHI_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "SHENGSHI_CODE_VALIDITY": "30",
            "SHENGSHI_CODE_REFRESH_AFTER": str(CODE_REFRESH),
            "SHENGSHI_DASHBOARD_PUSH_INTERVAL": "1",
            "SHENGSHI_OTP_RESEND_INTERVAL": "0",  # a citizen signs in through the API, then on a page
            "SHENGSHI_LOG_LEVEL": "WARNING",
            **_channel_keys(data_dir),
        }
    )
    server = WebServer(f"http://127.0.0.1:{port}", env)
    server.cli("migrate")
    server.cli("seed-demo")
    for name, role in (("watcher", "readonly"), ("chief", "admin")):
        server.cli(
            "console", "add-operator", name, "--role", role, "--password-stdin", input=PASSWORDS[name] + "\n"
        )
    proc = None
    try:
        proc = serve(env, port, log=data_dir / "server.log")
        yield server
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if settings.uses_postgres:
            asyncio.run(_pg(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)', admin_url))
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def screenshots() -> Path | None:
    """Where to keep screenshots for the docs (``make screenshots`` sets it), or None."""
    where = os.environ.get("SHENGSHI_TEST_SCREENSHOT_DIR")
    if not where:
        return None
    path = Path(where)
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def console_sign_in(web: WebServer) -> Any:
    """``console_sign_in(page, "watcher")``: sign in through piccolo-admin's login form."""

    def sign_in(page: Any, username: str) -> None:
        page.goto(f"{web.url}/admin/")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", PASSWORDS[username])
        page.keyboard.press("Enter")
        page.wait_for_selector(f"text={username}", timeout=15000)

    return sign_in
