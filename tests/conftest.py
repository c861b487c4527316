"""Test set-up. The environment is fixed BEFORE the app is imported.

The whole suite runs once per storage backend, the way Piccolo's own suite runs once per engine:
``SHENGSHI_TEST_BACKEND=sqlite`` (SQLite file + in-process store, the default) or
``SHENGSHI_TEST_BACKEND=postgres`` (PostgreSQL + Redis). ``make test`` runs both. The PostgreSQL pass
creates a scratch database next to ``SHENGSHI_TEST_DATABASE_URL`` and drops it afterwards; Redis keys
live under a per-run prefix that is deleted afterwards. An unreachable server is an error, not a skip.
"""

from __future__ import annotations

import asyncio
import functools
import os
import secrets
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

BACKEND = os.environ.get("SHENGSHI_TEST_BACKEND", "sqlite")
if BACKEND not in ("sqlite", "postgres"):
    raise RuntimeError(f"SHENGSHI_TEST_BACKEND must be sqlite or postgres, not {BACKEND!r}")
PG_ADMIN_URL = os.environ.get("SHENGSHI_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("SHENGSHI_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
RUN_ID = uuid.uuid4().hex[:10]
DATA_DIR = Path(tempfile.mkdtemp(prefix="shengshi-test-"))

for key in [k for k in os.environ if k.startswith("SHENGSHI_") and not k.startswith("SHENGSHI_TEST_")]:
    del os.environ[key]
os.environ.update(
    {
        "SHENGSHI_ENV": "test",
        "SHENGSHI_DATA_DIR": str(DATA_DIR),
        "SHENGSHI_LOG_JSON": "true",
    }
)

import httpx  # noqa: E402
from litestar import Litestar  # noqa: E402

from backend import db, piccolo_conf  # noqa: E402
from backend.app import Services, build_runtime, create_app, services_of  # noqa: E402
from backend.clock import Clock, FrozenClock  # noqa: E402
from backend.runtime import Runtime  # noqa: E402
from backend.settings import Settings, load_settings, new_key  # noqa: E402
from backend.store import RedisStore, Store, create_store  # noqa: E402

SECRETS = {
    "secret_key": new_key(),
    "key_encryption_key": new_key(),
    "pii_keys": f"t1:{new_key()}",
}


# Tests of pure logic (tests/unit, tests/vectors) give the same answer on either backend: they run in the
# SQLite pass only, unless marked ``storage`` (they touch a database or a store then, and run in both).
_BACKEND_FREE = ("unit", "vectors")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if BACKEND != "postgres":
        return
    tests_dir = Path(__file__).parent
    keep, once = [], []
    for item in items:
        part = item.path.relative_to(tests_dir).parts[0] if item.path.is_relative_to(tests_dir) else ""
        (once if part in _BACKEND_FREE and item.get_closest_marker("storage") is None else keep).append(item)
    if once:
        config.hook.pytest_deselected(items=once)
        items[:] = keep


def pytest_report_header(config: pytest.Config) -> str:
    kind = "PostgreSQL + Redis" if BACKEND == "postgres" else "SQLite + in-process store"
    return f"shengshitong storage backend: {kind}"


def _pg_url(dbname: str) -> str:
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    return f"{base}/{dbname}"


async def _pg_admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_URL, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
async def database_url() -> AsyncIterator[str]:
    if BACKEND == "sqlite":
        yield f"sqlite:///{DATA_DIR / 'test.sqlite3'}"
        return
    name = f"shengshi_test_{RUN_ID}"
    await _pg_admin(f'CREATE DATABASE "{name}"')
    try:
        yield _pg_url(name)
    finally:
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def redis_url() -> str:
    return REDIS_URL if BACKEND == "postgres" else ""


@pytest.fixture(scope="session")
def settings(database_url: str, redis_url: str) -> Settings:
    # Tests log the same citizen in many times: no resend cool-down and roomy hourly limits here;
    # the rate-limit tests set the production values explicitly.
    return load_settings(
        database_url=database_url,
        redis_url=redis_url,
        store_prefix=f"test:{RUN_ID}:",
        otp_resend_interval=0,
        otp_per_phone_per_hour=1000,
        otp_per_ip_per_hour=10_000,
        # tests assert decisions, not speed: a busy CI machine must not turn a slow fare into a refusal
        # (the budget's own tests set theirs)
        miniapp_scan_budget=5.0,
        # tests read the books right after a scan: a fast decision's writes are made before the answer
        # (the writes behind the answer, production's mode with Redis, have tests of their own)
        gate_writes="inline",
        **SECRETS,
    )


@pytest.fixture(scope="session")
async def migrated(settings: Settings) -> AsyncIterator[None]:
    engine = db.create_engine(settings)
    await db.migrate(engine, piccolo_conf.app_configs(settings), quiet=True)
    yield
    if settings.uses_redis:
        store = RedisStore(settings.redis_url, prefix=settings.store_prefix)
        await store.delete_prefix()
        await store.close()


@functools.cache
def _table_names(miniapps: str) -> list[str]:
    """Every table of the platform and of the mini-apps ``miniapps`` enables."""
    apps = piccolo_conf.app_configs(load_settings(miniapps=miniapps, **SECRETS))
    return [t._meta.tablename for app in apps for t in app.table_classes]


async def _truncate(settings: Settings) -> None:
    engine = db.current_engine()
    names = _table_names(settings.miniapps)
    if not names:
        return
    if settings.uses_postgres:
        # DELETE, not TRUNCATE: a test's tables hold a few rows, which DELETE empties in a few ms, while
        # TRUNCATE gives each of the ~80 tables a new file (half a second for every app a test starts).
        # One statement (a DO block), children before parents; TRUNCATE if the order ever falls short.
        deletes = " ".join(f'DELETE FROM "{n}";' for n in reversed(names))
        try:
            await engine.run_ddl(f"DO $$ BEGIN {deletes} END $$")
        except Exception:
            await engine.run_ddl("TRUNCATE " + ", ".join(f'"{n}"' for n in names) + " CASCADE")
    else:
        for name in reversed(names):
            await engine.run_ddl(f'DELETE FROM "{name}"')


@pytest.fixture
def frozen_clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def make_runtime(settings: Settings, migrated: None) -> Callable[..., Runtime]:
    """Build a runtime on this pass's backend with a store namespace of its own (tests don't collide)."""
    return functools.partial(_runtime, settings)


def _fields(s: Settings) -> dict[str, Any]:
    import msgspec

    return {f.name: getattr(s, f.name) for f in msgspec.structs.fields(s)}


class AppClient(httpx.AsyncClient):
    app: Litestar
    runtime: Runtime
    services: Services


@asynccontextmanager
async def running(app: Litestar) -> AsyncIterator[None]:
    """Run the app's lifespan in a task of its own: pytest-asyncio sets a fixture up and tears it down in
    different tasks, and the lifespan's task group must be left in the task that entered it."""
    started, stop = asyncio.Event(), asyncio.Event()

    async def lifespan() -> None:
        async with app.lifespan():
            started.set()
            await stop.wait()

    task = asyncio.create_task(lifespan())
    waiter = asyncio.create_task(started.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        waiter.cancel()
        await task  # start-up failed: raise its error here
    try:
        yield
    finally:
        stop.set()
        await task


def _runtime(
    settings: Settings, *, clock: Clock | None = None, store: Store | None = None, **overrides: Any
) -> Runtime:
    """A runtime on this pass's backend with a store namespace of its own (tests don't collide)."""
    s = settings
    if overrides:
        s = load_settings(**{**_fields(settings), **overrides})
    prefix = f"{s.store_prefix}{secrets.token_hex(4)}:"
    return build_runtime(s, clock=clock, store=store or create_store(s.redis_url, prefix))


@asynccontextmanager
async def _app_client(
    settings: Settings,
    *,
    runtime: Runtime | None = None,
    extra_plugins: list[Any] | None = None,
    clock: Clock | None = None,
    miniapps: list[Any] | None = None,
    miniapps_enabled: str | None = None,
    background: bool = False,
    **overrides: Any,
) -> AsyncIterator[AppClient]:
    """An app on this pass's backend, started in the running event loop, with clean tables.
    ``background``: run the server's background work (the webhook queue's worker); tests that drive the
    dispatcher themselves ask for it."""
    if miniapps_enabled is not None:
        overrides["miniapps"] = miniapps_enabled
    rt = runtime or _runtime(settings, clock=clock, **overrides)
    rt.background = background
    app = create_app(
        runtime=rt,
        extra_plugins=extra_plugins,
        extra_miniapps=[TestGate] if miniapps is None else miniapps,
    )
    await _truncate(settings)  # before start-up, which creates the first signing keys
    async with running(app):
        transport = httpx.ASGITransport(app=app)
        async with AppClient(transport=transport, base_url="http://testserver") as client:
            client.app = app
            client.runtime = rt
            client.services = services_of(app)
            yield client


@pytest.fixture
def make_client(settings: Settings, migrated: None) -> Callable[..., Any]:
    """``async with make_client(...) as client`` — an app on this pass's backend, started in the test's
    own event loop (the database pool and the test share one loop), with clean tables."""
    return functools.partial(_app_client, settings)


@pytest.fixture(scope="module")
def make_module_client(settings: Settings, migrated: None) -> Callable[..., Any]:
    """``make_client`` for a module-scoped fixture: one app start serves every test of a module (a start
    costs a good part of a second). Only for tests that need no clean tables of their own: each makes
    its own citizens, and none counts rows another test of the module may have written."""
    return functools.partial(_app_client, settings)


@pytest.fixture
async def client(make_client: Callable[..., Any]) -> AsyncIterator[AppClient]:
    async with make_client() as c:
        yield c


@pytest.fixture
def data_dir() -> Iterator[Path]:
    yield DATA_DIR


# ---- identity helpers ------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def new_phone() -> Callable[[], str]:
    """A fresh mainland mobile number for each call (no two tests share a citizen)."""

    def make() -> str:
        return f"139{secrets.randbelow(10**8):08d}"

    return make


async def read_dev_sms_code(client: httpx.AsyncClient, phone: str) -> str:
    import re

    r = await client.get("/api/v1/dev/sms", params={"phone": phone})
    assert r.status_code == 200, r.text
    match = re.search(r"\b(\d{6})\b", r.json()["text"])
    assert match, r.json()
    return match.group(1)


@pytest.fixture(scope="session")
def login() -> Callable[..., Any]:
    """``await login(client, phone, device_id=...)`` → the token pair, through the HTTP API."""

    async def do(
        client: httpx.AsyncClient,
        phone: str,
        *,
        device_id: str = "phone-1",
        device_name: str = "Test phone",
        ip: str | None = None,
    ) -> dict[str, Any]:
        r = await client.post("/api/v1/auth/otp", json={"phone": phone})
        assert r.status_code == 202, r.text
        code = await read_dev_sms_code(client, phone)
        r = await client.post(
            "/api/v1/auth/login",
            json={"phone": phone, "code": code, "device_id": device_id, "device_name": device_name},
        )
        assert r.status_code == 200, r.text
        return dict(r.json())

    return do


def bearer(pair: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {pair['access_token']}"}


@pytest.fixture(scope="session")
def auth_header() -> Callable[[dict[str, Any]], dict[str, str]]:
    return bearer


# ---- a mini-app for tests of the scan path ----------------------------------------------------------
from miniapps.contract import (  # noqa: E402
    Display,
    Manifest,
    MessageTemplate,
    MiniApp,
    ScanDecision,
    ScanEvent,
)


class TestGate(MiniApp):
    """Admits every verified scan; its contexts require nothing, transit, medical insurance, social
    security or a green health status."""

    __test__ = False
    manifest = Manifest(
        id="testgate",
        name_zh="测试闸机",
        name_en="Test gate",
        version="1.0",
        scopes=["openid", "profile", "phone"],
        entitlements=["transit", "medical", "social_security", "health"],
        scan_contexts={
            "testgate": None,
            "testgate-bus": "transit",
            "testgate-clinic": "medical",
            "testgate-hall": "social_security",
            "testgate-health": "health",
        },
        templates={
            "receipt": MessageTemplate(
                category="transactional",
                title_zh="已收款",
                title_en="Paid",
                body_zh="{item} 已收款 {amount}。",
                body_en="{amount} received for {item}.",
                placeholders={"item": "text", "amount": "amount"},
            ),
            "alarm": MessageTemplate(
                category="transactional",
                title_zh="欠费提醒",
                title_en="Unpaid",
                body_zh="车辆 {plate} 欠费 {amount}，请尽快缴纳。",
                body_en="{amount} unpaid for {plate}; please pay soon.",
                placeholders={"plate": "plate", "amount": "amount"},
                urgent=True,
            ),
            "visit": MessageTemplate(
                category="reminder",
                title_zh="就诊提醒",
                title_en="Appointment",
                body_zh="您预约了 {at} 的就诊。",
                body_en="Your appointment is at {at}.",
                placeholders={"at": "datetime"},
                description="预约前一天提醒",
            ),
        },
    )

    async def on_scan(self, scan: ScanEvent) -> ScanDecision:
        return ScanDecision(
            allow=True,
            display=Display(title="请通行", subtitle="Welcome"),
            data={"openid": scan.openid, "offline": scan.offline},
        )


# ---- scanner helpers -------------------------------------------------------------------------------
def basic_auth(cred: dict[str, Any]) -> dict[str, str]:
    import base64
    from urllib.parse import quote

    raw = f"{quote(cred['client_id'])}:{quote(cred['client_secret'])}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


@pytest.fixture(scope="session")
def enrol_scanner() -> Callable[..., Any]:
    """``await enrol_scanner(client, app_id="transit", context=None, place=...)`` → credential + headers."""

    async def enrol(
        client: AppClient, app_id: str = "testgate", *, context: str = "", place: str = "gate 1"
    ) -> dict[str, Any]:
        cred = await client.services.auth.machines.create(
            "scanner", app_id=app_id, place=place, context=context or app_id, name=place
        )
        return {**cred, "headers": basic_auth(cred)}

    return enrol


# ---- the systems that own entitlements ---------------------------------------------------------------
@pytest.fixture(scope="session")
def new_id_number() -> Callable[[], str]:
    """A fresh valid resident ID number of Shenyang (2101xx) for each call."""
    from auth.pii import id_check_digit

    def make() -> str:
        born = f"{1950 + secrets.randbelow(50)}{1 + secrets.randbelow(12):02d}{1 + secrets.randbelow(28):02d}"
        first = f"210102{born}"
        first += f"{secrets.randbelow(1000):03d}"
        return first + id_check_digit(first)

    return make


@pytest.fixture(scope="session")
def enrol_source() -> Callable[..., Any]:
    """``await enrol_source(client, "medical", name=...)`` → a source credential and its headers."""

    async def enrol(client: AppClient, kind: str, *, name: str = "") -> dict[str, Any]:
        cred = await client.services.auth.machines.create(
            "source", app_id=kind, name=name or f"{kind} bureau"
        )
        return {**cred, "headers": basic_auth(cred)}

    return enrol


@pytest.fixture(scope="session")
def push_change() -> Callable[..., Any]:
    """``await push_change(client, source, id_number, value, effective_at=..., valid_until=...)`` → the
    answer of ``POST /api/v1/entitlements/changes`` (asserted 200)."""

    async def push(
        client: AppClient,
        source: dict[str, Any],
        id_number: str,
        value: dict[str, Any],
        *,
        effective_at: str | None = None,
        valid_until: str | None = None,
        record_id: str | None = None,
    ) -> dict[str, Any]:
        from datetime import UTC, datetime

        body = {
            "record_id": record_id or secrets.token_hex(8),
            "id_number": id_number,
            "effective_at": effective_at
            or datetime.fromtimestamp(client.runtime.clock.time(), UTC).isoformat(),
            "value": value,
        }
        if valid_until is not None:
            body["valid_until"] = valid_until
        r = await client.post("/api/v1/entitlements/changes", json=body, headers=source["headers"])
        assert r.status_code == 200, r.text
        return dict(r.json())

    return push


@pytest.fixture(scope="session")
def verify_real_name() -> Callable[..., Any]:
    """``await verify_real_name(client, pair, name, id_number)``: the citizen's real name verified through
    the API (the development provider in tests)."""

    async def verify(client: AppClient, pair: dict[str, Any], name: str, id_number: str) -> dict[str, Any]:
        r = await client.patch(
            "/api/v1/me", json={"real_name": name, "id_number": id_number}, headers=bearer(pair)
        )
        assert r.status_code == 200, r.text
        assert r.json()["real_name_verified"] is True, r.json()
        return dict(r.json())

    return verify


@pytest.fixture(scope="session")
def testgate_app() -> type[MiniApp]:
    return TestGate


@pytest.fixture
def shengshi_cli(settings: Settings) -> Callable[..., Any]:
    """Run the real ``shengshi`` command against this pass's database and store."""
    import subprocess
    import sys

    def run(
        *args: str, env: dict[str, str] | None = None, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        full_env = {
            **os.environ,
            "SHENGSHI_DATABASE_URL": settings.database_url,
            "SHENGSHI_REDIS_URL": settings.redis_url,
            "SHENGSHI_SECRET_KEY": settings.secret_key,
            "SHENGSHI_KEY_ENCRYPTION_KEY": settings.key_encryption_key,
            "SHENGSHI_PII_KEYS": settings.pii_keys,
            "SHENGSHI_LOG_LEVEL": "WARNING",
            **(env or {}),
        }
        shengshi = os.path.join(os.path.dirname(sys.executable), "shengshi")
        return subprocess.run(
            [shengshi, *args],
            env=full_env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            input=input,
        )

    return run


@pytest.fixture
def console_login():
    """``await console_login(client, username, role)`` → the client, signed in (session + CSRF cookies),
    and the headers its changes need."""

    async def sign_in(
        client: AppClient, username: str, role: str, password: str = "a-long-test-password"
    ) -> dict[str, str]:
        ops = client.services.console.operators
        await ops.add(username, password, role, actor="test")
        await client.get("/admin/")  # piccolo-admin sets its CSRF cookie
        csrf = client.cookies.get("csrftoken")
        assert csrf
        r = await client.post(
            "/admin/public/login/",
            json={"username": username, "password": password},
            headers={"X-CSRFToken": csrf},
        )
        assert r.status_code == 200, r.text
        assert client.cookies.get("id")
        return {"X-CSRFToken": csrf}

    return sign_in


@pytest.fixture(scope="session")
def free_port() -> Callable[[], int]:
    """``free_port()`` → a TCP port nothing listens on now."""
    import socket

    def pick() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])

    return pick


@pytest.fixture(scope="session")
def serve() -> Callable[..., Any]:
    """``serve(env, port, log=path)`` → the real ``shengshi serve`` in a subprocess, once ``/readyz`` answers
    200 (its output to ``log``, whose end is shown if it does not start). The caller stops it."""
    import subprocess
    import sys
    import time

    def start(env: dict[str, str], port: int, log: Path | None = None) -> subprocess.Popen[bytes]:
        shengshi = os.path.join(os.path.dirname(sys.executable), "shengshi")
        out = open(log, "wb") if log else subprocess.DEVNULL
        proc = subprocess.Popen(
            [shengshi, "serve", "--host", "127.0.0.1", "--port", str(port)], env=env, stdout=out, stderr=out
        )
        if log:
            out.close()  # type: ignore[union-attr]
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    return proc
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                tail = log.read_text()[-3000:] if log else ""
                raise AssertionError("the server did not start\n" + tail)
            time.sleep(0.2)

    return start


@pytest.fixture
def walk_pages() -> Callable[..., Any]:
    """``await walk_pages(client, url, limit=2, headers=..., params=...)`` → every item of a list endpoint,
    following its ``next`` links to the end; each page is checked against the pagination convention
    (backend/pagination.py: ``items``, ``next_offset``, ``next``; at most ``limit`` items a page)."""

    async def walk(
        client: httpx.AsyncClient,
        url: str,
        *,
        limit: int = 2,
        headers: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
    ) -> list[Any]:
        items: list[Any] = []
        r = await client.get(url, params={**(params or {}), "limit": limit}, headers=headers)
        for _ in range(1000):
            assert r.status_code == 200, r.text
            body = r.json()
            assert {"items", "next_offset", "next"} <= set(body), body
            assert len(body["items"]) <= limit
            items.extend(body["items"])
            if body["next"] is None:
                assert body["next_offset"] is None
                return items
            assert body["next_offset"] == len(items) + (params or {}).get("offset", 0)
            assert len(body["items"]) == limit  # only the last page is short
            r = await client.get(body["next"], headers=headers)
        raise AssertionError(f"{url}: more than 1000 pages")

    return walk


class ServedApp:
    """A real ``shengshi serve`` started by a test (see the ``serve`` fixture) and its environment:
    ``cli`` runs the real ``shengshi`` command against the same storage and returns its JSON answer."""

    def __init__(self, url: str, env: dict[str, str]) -> None:
        self.url = url
        self.env = env

    def cli(self, *args: str, input: str | None = None) -> Any:
        import json
        import subprocess
        import sys

        shengshi = os.path.join(os.path.dirname(sys.executable), "shengshi")
        r = subprocess.run(
            [shengshi, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            input=input,
            check=False,
        )
        assert r.returncode == 0, r.stderr
        lines = [line for line in r.stdout.strip().splitlines() if line.startswith("{")]
        return json.loads(lines[-1]) if lines else None
