"""Service endpoints: liveness, readiness, metrics, OpenAPI, request ids."""

import asyncio

import pytest
from prometheus_client.parser import text_string_to_metric_families


@pytest.fixture(scope="module")
async def client(make_module_client):
    """One app for the module: its tests make citizens of their own and count nothing of another's."""
    async with make_module_client() as c:
        yield c


async def test_healthz(client):
    r = await client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}
    assert len(r.headers["x-request-id"]) >= 8


async def test_readyz_reports_both_checks(client, settings):
    r = await client.get("/readyz")
    assert r.status_code == 200
    body = r.json()
    assert body["checks"] == {"database": "ok", "store": "ok"}
    assert body["store"] == ("redis" if settings.uses_redis else "memory")
    assert body["database"] == ("postgres" if settings.uses_postgres else "sqlite")


async def test_openapi_document(client):
    r = await client.get("/schema/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"].startswith("3.")
    assert "/healthz" in doc["paths"] and "/readyz" in doc["paths"]
    page = await client.get("/schema")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]


async def test_metrics_count_requests_by_route(client):
    await client.get("/schema/openapi.json")
    r = await client.get("/metrics")
    assert r.status_code == 200
    families = {f.name: f for f in text_string_to_metric_families(r.text)}
    requests = families["shengshitong_requests"]
    paths = {s.labels.get("path") for s in requests.samples}
    assert "/schema/openapi.json" in paths


async def test_caller_request_id_is_echoed_and_bad_ones_replaced(client):
    r = await client.get("/healthz", headers={"x-request-id": "gate-7-000123"})
    assert r.headers["x-request-id"] == "gate-7-000123"
    r = await client.get("/healthz", headers={"x-request-id": "bad id\twith spaces"})
    assert r.headers["x-request-id"] != "bad id\twith spaces"


async def test_the_access_log_masks_numbers_written_in_a_path(client):
    """The access log writes each request's path: a phone or ID number in it, however grouped, is
    masked on the line that leaves the process."""
    import io
    import logging

    from backend.logs import JSONFormatter

    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JSONFormatter())
    access = logging.getLogger("shengshitong.access")
    access.addHandler(handler)
    level = access.level
    access.setLevel(logging.INFO)
    paths = ["13912345678", "139-1234-5678", "139%201234%205678", "+86-139-1234-5678", "210102-19491231-018X"]
    try:
        for path in paths:
            assert (await client.get(f"/api/v1/nope/{path}")).status_code == 404
    finally:
        access.removeHandler(handler)
        access.setLevel(level)
    lines = out.getvalue()
    assert lines.count("/api/v1/nope/") == len(paths)
    for secret in ["12345678", "1234-5678", "1234 5678", "19491231"]:
        assert secret not in lines
    assert lines.count("139****5678") == 4 and "2101**********018X" in lines


@pytest.mark.storage
async def test_readyz_answers_within_its_timeout_when_a_probe_hangs(client, monkeypatch):
    """A probe stuck past its timeout, even one that does not end when cancelled (asyncpg hands a
    cancelled connection back to its pool, which waits for the server), fails the check in time."""
    from backend import db, health

    monkeypatch.setattr(health, "CHECK_TIMEOUT", 0.2)
    release = asyncio.Event()

    async def stuck(engine):
        while not release.is_set():
            try:
                await release.wait()
            except asyncio.CancelledError:
                continue

    monkeypatch.setattr(db, "ping", stuck)
    task = asyncio.ensure_future(client.get("/readyz"))
    done, _ = await asyncio.wait({task}, timeout=10)
    release.set()
    assert done, "/readyz hangs"
    r = task.result()
    assert r.status_code == 503
    assert r.json()["checks"] == {"database": "failed", "store": "ok"}
