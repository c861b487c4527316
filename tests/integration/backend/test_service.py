"""Service endpoints: liveness, readiness, metrics, OpenAPI, request ids."""

from prometheus_client.parser import text_string_to_metric_families


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
