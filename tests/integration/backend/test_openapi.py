"""The OpenAPI document declares what the API really does: problem+json errors, who may call what, and
that unknown fields are refused."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.routes import HTTPRoute

from backend.openapi import SECURITY_ATTR

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
async def client(make_module_client):
    """One app for the module: its tests only read, or make citizens of their own."""
    async with make_module_client() as c:
        yield c


@pytest.fixture
async def doc(client) -> dict[str, Any]:
    r = await client.get("/schema/openapi.json")
    assert r.status_code == 200
    return dict(r.json())


def operations(doc: dict[str, Any]):
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                yield method.upper(), path, op


async def test_the_security_schemes_are_declared(doc):
    schemes = doc["components"]["securitySchemes"]
    assert schemes["citizenToken"] == {**schemes["citizenToken"], "type": "http", "scheme": "bearer"}
    assert schemes["machineCredential"] == {**schemes["machineCredential"], "type": "http", "scheme": "basic"}
    assert schemes["miniappToken"]["scheme"] == "bearer"
    assert schemes["consoleSession"] == {**schemes["consoleSession"], "type": "apiKey", "in": "cookie"}


@pytest.mark.parametrize(
    ("method", "path", "security"),
    [
        ("GET", "/api/v1/me", [{"citizenToken": []}]),
        ("POST", "/api/v1/scans", [{"machineCredential": []}]),
        ("POST", "/api/v1/payments/orders", [{"machineCredential": []}]),
        # the owner (HTTP Basic) or the citizen (bearer) reads an order
        ("GET", "/api/v1/payments/orders/{order_id}", [{"machineCredential": []}, {"citizenToken": []}]),
        ("GET", "/api/v1/payments/reconciliation", [{"machineCredential": []}]),
        ("POST", "/api/v1/apps/tourism/tickets", [{"citizenToken": []}]),
        ("POST", "/api/v1/apps/tourism/hotel-bookings", [{"machineCredential": []}]),
        ("GET", "/api/v1/miniapps/{app_id}/userinfo", [{"miniappToken": []}]),
        # stacked guards: signed in to the console and the CSRF token, both
        ("POST", "/admin/scanner/scan", [{"consoleSession": [], "consoleCsrf": []}]),
        ("GET", "/api/v1/miniapps", None),
        ("POST", "/api/v1/auth/otp", None),
    ],
)
async def test_operations_say_who_may_call_them(doc, method, path, security):
    assert doc["paths"][path][method.lower()].get("security") == security


async def test_every_error_answer_is_documented_as_problem_json(doc):
    for method, path, op in operations(doc):
        if path.startswith("/api/v1/payments/notify/"):
            continue  # the channels' protocols: below
        responses = op["responses"]
        assert "default" in responses and "400" in responses, (method, path)
        for status, response in responses.items():
            if status == "default" or int(status) >= 400:
                assert list(response["content"]) == [PROBLEM], (method, path, status)
                assert response["content"][PROBLEM]["schema"] == {"$ref": "#/components/schemas/Problem"}
        if op.get("security"):
            assert {"401", "403"} <= set(responses), (method, path)
        if "{" in path:
            assert "404" in responses, (method, path)
        if path != "/healthz":
            assert "503" in responses, (method, path)
    otp = doc["paths"]["/api/v1/auth/otp"]["post"]["responses"]
    assert "429" in otp


async def test_the_problem_schema_names_fields_and_parameters(doc):
    problem = doc["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "code", "title", "status", "detail"}
    error = doc["components"]["schemas"]["ProblemError"]
    assert {"key", "message", "source"} <= set(error["properties"])


@pytest.mark.parametrize("name", ["OrderCreate", "ScanRequest", "BatchRecord", "LoginRequest", "Purchase"])
async def test_bodies_that_refuse_unknown_fields_say_so(doc, name):
    assert doc["components"]["schemas"][name]["additionalProperties"] is False


async def test_answers_do_not_claim_to_be_closed(doc):
    assert "additionalProperties" not in doc["components"]["schemas"]["Order"]


async def test_every_guard_declares_what_it_checks(client):
    """A new guard that does not say which security it checks would leave the document silent."""
    silent = set()
    for route in client.app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            if not handler.resolve_include_in_schema():
                continue
            silent |= {g.__name__ for g in handler.resolve_guards() if not getattr(g, SECURITY_ATTR, None)}
    assert not silent


async def test_channel_callbacks_answer_in_the_channels_format(doc):
    """They are the channels' protocols: any media type, any status, as the channel says."""
    callback = doc["paths"]["/api/v1/payments/notify/{channel}"]["post"]
    assert set(callback["responses"]) == {"200", "400", "default"}
    assert all(list(r["content"]) == ["*/*"] for r in callback["responses"].values())
    (name,) = [p for p in callback["parameters"] if p["name"] == "channel"]
    assert name["schema"]["enum"] == ["sandbox"]  # alipay and wechatpay are not enabled in this deployment
