"""A database that does not answer is a 503 ``database_unavailable`` with Retry-After, not a 500.

PostgreSQL: the app reaches the shared server through a TCP proxy inside the test, and the test cuts
the proxy (the shared server is never stopped), or turns it into a blackhole: connections stay open and
new ones are accepted, but nothing is forwarded any more (a dead network path, a frozen server), so
nothing is refused either. SQLite: another connection holds the write lock past the app's busy timeout."""

from __future__ import annotations

import asyncio
import base64
import logging
import sqlite3
import threading
from urllib.parse import urlsplit, urlunsplit

import pytest
from piccolo.engine.sqlite import SQLiteEngine

from tests.conftest import BACKEND

PROBLEM = "application/problem+json"


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target, on an event loop in a thread of its own (the app's engine
    also connects synchronously once, while it is built). ``cut()`` drops every connection and refuses
    new ones; ``resume()`` listens again on the same port. ``blackhole()`` keeps every connection open
    and accepts new ones, but forwards nothing: what is sent is read and dropped."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.dropping = False

    def _run(self, coro) -> None:
        asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def start(self) -> None:
        self.thread.start()
        self._run(self._listen())

    def cut(self) -> None:
        self._run(self._cut())

    def resume(self) -> None:
        self._run(self._listen())

    def blackhole(self) -> None:
        self.dropping = True

    def restore(self) -> None:
        """After a blackhole: the connections it swallowed data of are dropped, new ones go through."""
        self._run(self._cut())
        self.dropping = False
        self._run(self._listen())

    def stop(self) -> None:
        self._run(self._cut())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    async def _listen(self) -> None:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        if self.dropping:  # accepted, and never answered
            self.writers.add(client_w)
            task = asyncio.create_task(self._pipe(client_r, None))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
            return
        try:
            up_r, up_w = await asyncio.open_connection(*self.target)
        except OSError:
            client_w.close()
            return
        self.writers |= {client_w, up_w}
        for r, w in ((client_r, up_w), (up_r, client_w)):
            task = asyncio.create_task(self._pipe(r, w))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter | None) -> None:
        try:
            while data := await reader.read(65536):
                if writer is None or self.dropping:
                    continue  # swallowed
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            if writer is not None:
                writer.close()
                self.writers.discard(writer)

    async def _cut(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None
        for w in list(self.writers):
            w.transport.abort()
        for t in list(self.tasks):
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.writers.clear()


def assert_unavailable(r) -> None:
    assert r.status_code == 503, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    assert r.headers["retry-after"] == "2"
    body = r.json()
    assert body["code"] == "database_unavailable"
    assert body["request_id"] == r.headers["x-request-id"]


def basic(cred) -> dict[str, str]:
    raw = f"{cred['client_id']}:{cred['client_secret']}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


@pytest.mark.storage
@pytest.mark.timeout_sensitive
@pytest.mark.skipif(BACKEND != "postgres", reason="a PostgreSQL outage (the SQLite pass tests a locked file)")
async def test_a_postgres_outage_is_a_503_and_readyz_names_the_database(make_client, settings, caplog):
    url = urlsplit(settings.database_url)
    proxy = TcpProxy(url.hostname or "127.0.0.1", url.port or 5432)
    proxy.start()
    through_proxy = urlunsplit(url._replace(netloc=f"{url.username}@127.0.0.1:{proxy.port}"))
    try:
        async with make_client(database_url=through_proxy) as client:
            await client.services.miniapps.apps["parking"].seed_demo()
            cred = await client.services.auth.machines.create("miniapp", app_id="testgate")
            order = {"reference": "during-outage", "amount": 100}
            assert (await client.get("/api/v1/apps/parking/car-parks")).status_code == 200
            assert (await client.get("/readyz")).status_code == 200

            proxy.cut()
            with caplog.at_level(logging.ERROR, logger="shengshitong.errors"):
                assert_unavailable(await client.get("/api/v1/apps/parking/car-parks"))
                assert_unavailable(
                    await client.post("/api/v1/payments/orders", json=order, headers=basic(cred))
                )
            assert not [rec for rec in caplog.records if rec.getMessage() == "unhandled error"]
            ready = await client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["failed"] == ["database"]
            assert ready.json()["checks"] == {"database": "failed", "store": "ok"}

            proxy.resume()
            assert (await client.get("/readyz")).status_code == 200
            r = await client.post("/api/v1/payments/orders", json=order, headers=basic(cred))
            assert r.status_code == 201, r.text
    finally:
        proxy.stop()


@pytest.mark.storage
@pytest.mark.skipif(BACKEND != "sqlite", reason="SQLite's file lock (the PostgreSQL pass cuts the server)")
async def test_a_sqlite_file_locked_past_the_busy_timeout_is_a_503(make_client, make_runtime, settings):
    runtime = make_runtime()
    path = settings.sqlite_path
    runtime.engine = SQLiteEngine(path=path, timeout=0.2, check_same_thread=False)
    async with make_client(runtime=runtime) as client:
        cred = await client.services.auth.machines.create("miniapp", app_id="testgate")
        order = {"reference": "while-locked", "amount": 100}
        holder = sqlite3.connect(path, isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")  # another process writing, for longer than the timeout
            assert_unavailable(await client.post("/api/v1/payments/orders", json=order, headers=basic(cred)))
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        r = await client.post("/api/v1/payments/orders", json=order, headers=basic(cred))
        assert r.status_code == 201, r.text


@pytest.mark.storage
@pytest.mark.timeout_sensitive
@pytest.mark.skipif(BACKEND != "postgres", reason="a PostgreSQL server that stops answering")
async def test_a_database_that_stops_answering_is_a_503_not_a_hang(
    make_client, settings, login, new_phone, enrol_scanner, monkeypatch, caplog
):
    """The proxy swallows everything: nothing is refused, nothing answers. Statements give up after the
    pool's command timeout, waiting for a connection after its acquire timeout, /readyz after its own
    check timeout; each answer is a 503 that says so (small timeouts here keep the test short)."""
    from backend import health

    monkeypatch.setattr(health, "CHECK_TIMEOUT", 0.5)
    url = urlsplit(settings.database_url)
    proxy = TcpProxy(url.hostname or "127.0.0.1", url.port or 5432)
    proxy.start()
    through_proxy = urlunsplit(url._replace(netloc=f"{url.username}@127.0.0.1:{proxy.port}"))

    async def answer(request):
        """The answer, or a failure if none comes: a hang fails the test instead of stopping the suite
        (asyncio.wait_for would wait for the hung request's cancellation, which hangs as well)."""
        task = asyncio.ensure_future(request)
        done, _ = await asyncio.wait({task}, timeout=30)
        if not done:
            task.cancel()
            pytest.fail("no answer within 30 s: the request hangs")
        return task.result()

    try:
        async with make_client(
            database_url=through_proxy, db_command_timeout=1.0, db_acquire_timeout=1.0
        ) as client:
            await client.services.miniapps.apps["tourism"].seed_demo()
            me = {"Authorization": f"Bearer {(await login(client, new_phone()))['access_token']}"}
            scanner = await enrol_scanner(client)
            token = (await client.get("/api/v1/codes/current", headers=me)).json()["token"]
            assert (await client.get("/api/v1/apps/tourism/sessions", headers=me)).status_code == 200
            assert (await client.get("/readyz")).status_code == 200

            proxy.blackhole()
            try:
                with caplog.at_level(logging.ERROR, logger="shengshitong.errors"):
                    sessions, scan, ready, alive = await asyncio.gather(
                        answer(client.get("/api/v1/apps/tourism/sessions", headers=me)),
                        answer(
                            client.post(
                                "/api/v1/scans",
                                json={"token": token, "record_id": "blackholed-1"},
                                headers=scanner["headers"],
                            )
                        ),
                        answer(client.get("/readyz")),
                        answer(client.get("/healthz")),
                    )
                assert_unavailable(sessions)
                assert_unavailable(scan)
                assert ready.status_code == 503
                assert ready.json()["checks"] == {"database": "failed", "store": "ok"}
                assert alive.status_code == 200
                assert not [rec for rec in caplog.records if rec.getMessage() == "unhandled error"]
                # the pool is not left waiting either: the next requests give up the same way
                assert_unavailable(await answer(client.get("/api/v1/apps/tourism/sessions", headers=me)))
                assert (await answer(client.get("/readyz"))).status_code == 503
            except BaseException:
                proxy.cut()  # the app's shutdown must not wait on the swallowed connections
                raise

            proxy.restore()
            for _ in range(20):  # the pool replaces the connections it gave up on
                r = await answer(client.get("/api/v1/apps/tourism/sessions", headers=me))
                if r.status_code == 200:
                    break
            assert r.status_code == 200, r.text
            assert (await answer(client.get("/readyz"))).status_code == 200
    finally:
        proxy.stop()
