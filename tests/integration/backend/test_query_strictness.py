"""Query parameters are read strictly (issue 13): an integer is decimal digits, a parameter taken once
comes once; and OPTIONS answers name every method a path takes."""

from __future__ import annotations

import pytest
from litestar.routes import HTTPRoute

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
async def client(make_module_client):
    """One app for the module: its tests only read, or make citizens of their own."""
    async with make_module_client() as c:
        yield c


def assert_invalid_parameter(r, key: str) -> dict:
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body = r.json()
    assert body["code"] == "invalid_parameters", body
    assert body["errors"][0]["key"] == key and body["errors"][0]["source"] == "query", body
    assert len(body["errors"]) == 1
    return body


@pytest.fixture
async def me(client, login, new_phone):
    pair = await login(client, new_phone())
    return {"Authorization": f"Bearer {pair['access_token']}"}


@pytest.mark.storage
@pytest.mark.parametrize("value", ["0.0", "1e2", "1.5", "+1", " 1", "1 ", "0x10", "１", "1_000", "", "abc"])
@pytest.mark.parametrize("name", ["limit", "offset"])
async def test_an_integer_parameter_is_decimal_digits_only(client, me, name, value):
    r = await client.get("/api/v1/me/orders", params={name: value}, headers={**me, "Accept-Language": "en"})
    problem = assert_invalid_parameter(r, name)
    assert name in problem["detail"]


@pytest.mark.storage
async def test_integers_in_decimal_digits_still_work(client, me):
    r = await client.get("/api/v1/me/orders?limit=5&offset=0", headers=me)
    assert r.status_code == 200, r.text
    assert_invalid_parameter(await client.get("/api/v1/me/orders?offset=-5", headers=me), "offset")  # range
    assert (await client.get("/api/v1/miniapps?limit=7&offset=10")).status_code == 200


@pytest.mark.storage
@pytest.mark.parametrize(
    ("path", "query", "name"),
    [
        ("/api/v1/me/orders", "limit=abc&limit=5", "limit"),
        ("/api/v1/me/orders", "limit=5&limit=5", "limit"),
        ("/api/v1/me/orders", "unpaid=true&offset=0&unpaid=false", "unpaid"),
        ("/api/v1/apps/tourism/sessions", "attraction=a&attraction=b", "attraction"),
        ("/api/v1/codes/current", "qr=svg&qr=svg", "qr"),
    ],
)
async def test_a_parameter_taken_once_may_not_come_twice(client, me, path, query, name):
    r = await client.get(f"{path}?{query}", headers={**me, "Accept-Language": "en"})
    problem = assert_invalid_parameter(r, name)
    assert problem["errors"][0]["message"] == "is given more than once"
    assert name in problem["detail"]


async def test_parameters_a_route_does_not_take_are_left_alone(client):
    r = await client.get("/api/v1/miniapps?utm=a&utm=b&limit=2")
    assert r.status_code == 200, r.text


# ---- OPTIONS ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "methods"),
    [
        ("/api/v1/me", {"GET", "PATCH", "DELETE", "OPTIONS"}),
        ("/api/v1/apps/hospital/appointments", {"GET", "POST", "OPTIONS"}),
        ("/api/v1/apps/parking/reservations", {"GET", "POST", "OPTIONS"}),
        ("/api/v1/apps/tourism/tickets", {"GET", "POST", "OPTIONS"}),
        ("/api/v1/payments/orders/{order_id}", {"GET", "OPTIONS"}),
    ],
)
async def test_options_names_every_method_of_a_path(client, path, methods):
    r = await client.options(path.replace("{order_id}", "ord_x"))
    assert r.status_code == 204, r.text
    assert {m.strip() for m in r.headers["allow"].split(",")} == methods
    assert r.headers["x-request-id"]


async def test_every_path_answers_options_with_all_its_methods(client):
    checked = 0
    for route in client.app.routes:
        if not isinstance(route, HTTPRoute) or "{" in route.path:
            continue
        r = await client.options(route.path)
        assert r.status_code == 204, (route.path, r.text)
        assert {m.strip() for m in r.headers["allow"].split(",")} == set(route.methods), route.path
        checked += 1
    assert checked > 20
