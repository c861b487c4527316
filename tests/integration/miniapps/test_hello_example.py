"""The example mini-app (examples/hello-miniapp) is a package of its own with a table, a migration,
settings and demo data. Installed (``make install``) and named in ``SHENGSHI_MINIAPPS``, it works end to
end with the real commands and server: ``shengshi migrate`` makes its table, ``shengshi seed-demo``
seeds its doors and a scanner, a scan at its door writes a visit, and the citizen sees it through its
route and its login. No file of the platform names it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from piccolo.querystring import QueryString

from backend import db
from backend.settings import Settings, new_key

pytestmark = [pytest.mark.storage, pytest.mark.timeout_sensitive]

ROOT = Path(__file__).resolve().parents[3]
# the platform: its packages, its migrations and its project file (examples/, tests/ and docs/ are not)
PLATFORM = ["backend", "auth", "codes", "payments", "miniapps", "console", "migrations", "pyproject.toml"]
ENABLED = "transit,parking,hospital,tourism,hello"


def test_no_platform_file_names_the_example():
    files = [
        p for top in PLATFORM for p in ([ROOT / top] if top.endswith(".toml") else (ROOT / top).rglob("*"))
    ]
    sources = [p for p in files if p.is_file() and p.suffix in (".py", ".toml", ".js", ".html", ".css")]
    assert len(sources) > 100
    naming = [str(p.relative_to(ROOT)) for p in sources if re.search("hello", p.read_text(), re.IGNORECASE)]
    assert naming == []


def _shengshi(env: dict[str, str], *args: str) -> str:
    command = os.path.join(os.path.dirname(sys.executable), "shengshi")
    out = subprocess.run([command, *args], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, (out.stdout, out.stderr)
    return out.stdout


async def _citizen(c: httpx.AsyncClient, phone: str) -> dict[str, str]:
    assert (await c.post("/api/v1/auth/otp", json={"phone": phone})).status_code == 202
    sms = (await c.get("/api/v1/dev/sms", params={"phone": phone})).json()["text"]
    code = re.search(r"\b(\d{6})\b", sms)
    assert code is not None
    pair = await c.post("/api/v1/auth/login", json={"phone": phone, "code": code.group(1), "device_id": "p1"})
    assert pair.status_code == 200, pair.text
    return {"Authorization": f"Bearer {pair.json()['access_token']}"}


async def test_enabled_by_settings_it_migrates_seeds_scans_and_shows_the_visit(
    scratch_database, settings, tmp_path, serve, free_port, new_phone
):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SHENGSHI_")},
        "SHENGSHI_ENV": "test",
        "SHENGSHI_DATA_DIR": str(tmp_path),
        "SHENGSHI_DATABASE_URL": scratch_database,
        "SHENGSHI_REDIS_URL": settings.redis_url,
        "SHENGSHI_STORE_PREFIX": f"{settings.store_prefix}hello:",
        "SHENGSHI_SECRET_KEY": new_key(),
        "SHENGSHI_KEY_ENCRYPTION_KEY": new_key(),
        "SHENGSHI_PII_KEYS": f"h1:{new_key()}",
        "SHENGSHI_PUBLIC_URL": base,
        "SHENGSHI_LOG_LEVEL": "WARNING",
        # enabling it, and its settings (checked against its manifest's settings schema): settings only
        "SHENGSHI_MINIAPPS": ENABLED,
        "SHENGSHI_MINIAPP_HELLO": '{"greeting": "欢迎光临", "greeting_en": "Welcome"}',
    }
    engine = db.create_engine(Settings(database_url=scratch_database, data_dir=str(tmp_path)))

    async def rows(sql: str) -> list[dict[str, Any]]:
        return [dict(r) for r in await engine.run_querystring(QueryString(sql))]

    migrated = _shengshi(env, "migrate")
    assert "== hello" in migrated
    recorded = await rows("SELECT name FROM migration WHERE app_name = 'hello'")
    assert [r["name"] for r in recorded] == ["2026-11-28T13:22:31:937734"]
    assert await rows("SELECT * FROM hello_visit") == []
    assert "No migrations need to be run" in _shengshi(env, "migrate").split("== hello")[1]

    seeded = _shengshi(env, "seed-demo")
    assert "hello: 2 doors (2 new, 0 updated)" in seeded
    assert "console: 9 demo scanners for /admin/scanner (9 new)" in seeded
    doors = await rows("SELECT code, name, name_en FROM hello_door ORDER BY code")
    assert [(d["code"], d["name"], d["name_en"]) for d in doors] == [
        ("D-FRONT", "正门", "Front door"),
        ("D-GARDEN", "花园门", "Garden gate"),
    ]
    scanner = await rows("SELECT app_id, context, place FROM machine_client WHERE name = '演示：你好门 正门'")
    assert [(s["app_id"], s["context"], s["place"]) for s in scanner] == [("hello", "hello-door", "D-FRONT")]
    assert "(0 new, 0 updated)" in _shengshi(env, "seed-demo")

    door = json.loads(_shengshi(env, "scanners", "add", "--app", "hello", "--place", "D-GARDEN", "--json"))
    backend = json.loads(_shengshi(env, "miniapps", "credentials", "hello", "--json"))
    proc = serve(env, port, log=tmp_path / "server.log")
    try:
        async with httpx.AsyncClient(base_url=base, timeout=10) as c:
            me = await _citizen(c, new_phone())
            assert (await c.get("/api/v1/apps/hello/visits", headers=me)).json()["visits"] == 0
            token = (await c.get("/api/v1/codes/current", headers=me)).json()["token"]
            scan = await c.post(
                "/api/v1/scans", json={"token": token}, auth=(door["client_id"], door["client_secret"])
            )
            assert scan.status_code == 200, scan.text
            body = scan.json()
            assert body["result"] == "allow" and body["app_id"] == "hello"
            assert body["display"]["title"] == "欢迎光临!" and body["data"] == {"visits": 1}

            visits = await rows("SELECT openid, place FROM hello_visit")
            assert len(visits) == 1 and visits[0]["place"] == "D-GARDEN"

            # the mini-app's login: the citizen authorises it, its backend exchanges the code
            code = await c.post("/api/v1/miniapps/hello/authorize", json={"scopes": ["profile"]}, headers=me)
            assert code.status_code == 200, code.text
            login = await c.post(
                "/api/v1/miniapps/hello/token",
                json={"code": code.json()["code"]},
                auth=(backend["client_id"], backend["client_secret"]),
            )
            assert login.status_code == 200, login.text
            openid = login.json()["openid"]
            assert visits[0]["openid"] == openid

            mine = await c.get("/api/v1/apps/hello/visits", headers={**me, "Accept-Language": "en"})
            assert mine.status_code == 200, mine.text
            shown = mine.json()
            assert shown["openid"] == openid and shown["visits"] == 1
            last = shown["last"]
            assert (last["place"], last["door"], last["door_zh"]) == ("D-GARDEN", "Garden gate", "花园门")
            assert (await c.get("/api/v1/apps/hello/visits")).status_code == 401
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
