"""The edge: JSON bodies decoded strictly, nesting and control characters refused, parameters named.

Through real routes (orders, parking, tourism, scans, OTP) and a probe route for what no real route
takes (any JSON at all)."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import pytest
from litestar import post
from litestar.config.app import AppConfig
from litestar.params import JSONBody
from litestar.plugins import InitPlugin

from payments.tables import PaymentOrder

PROBLEM = "application/problem+json"


@post("/test/echo", sync_to_thread=False)
def echo(data: JSONBody[Any]) -> dict[str, Any]:
    return {"data": data}


class EchoPlugin(InitPlugin):
    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.route_handlers.append(echo)
        return app_config


@pytest.fixture(scope="module")
async def edge_app(make_module_client, testgate_app):
    """One app for the module: its tests each make their own citizens and credentials."""
    async with make_module_client(extra_plugins=[EchoPlugin()], miniapps=[testgate_app]) as client:
        yield client


@pytest.fixture
async def edge(edge_app):
    cred = await edge_app.services.auth.machines.create("miniapp", app_id="testgate")
    edge_app.headers_app = basic_auth(cred)  # type: ignore[attr-defined]
    return edge_app


def basic_auth(cred: dict[str, Any]) -> dict[str, str]:
    raw = f"{cred['client_id']}:{cred['client_secret']}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def assert_problem(r, status, code):
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body = r.json()
    assert body["code"] == code, body
    return body


def raw_json(text: str) -> dict[str, Any]:
    return {"content": text.encode(), "headers": {"content-type": "application/json"}}


# ---- strict decoding (issue 13, item 11) -------------------------------------------------------------
@pytest.mark.storage
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"reference": "r-str", "amount": "100"}, "amount"),  # a string is not an amount
        ({"reference": "r-float", "amount": 100.0}, "amount"),  # nor is a float: integer fen, strictly
        ({"reference": "r-bool", "amount": True}, "amount"),  # nor a bool
        ({"reference": "r-def", "amount": 100, "deferred": 1}, "deferred"),  # an int is not a bool
        ({"reference": 7, "amount": 100}, "reference"),  # an int is not a string
        ({"reference": "r-miss"}, "amount"),  # missing, named
        ({"reference": "r-unknown", "amount": 100, "admin": True}, "admin"),  # unknown, named
    ],
)
async def test_order_bodies_are_decoded_strictly(edge, body, field):
    before = await PaymentOrder.count().run()
    r = await edge.post("/api/v1/payments/orders", json=body, headers=edge.headers_app)
    problem = assert_problem(r, 400, "invalid_body")
    assert problem["errors"][0]["key"] == field
    assert problem["errors"][0]["source"] == "body"
    assert await PaymentOrder.count().run() == before


@pytest.mark.storage
async def test_a_well_typed_order_is_still_made(edge):
    r = await edge.post(
        "/api/v1/payments/orders", json={"reference": "r-ok", "amount": 100}, headers=edge.headers_app
    )
    assert r.status_code == 201, r.text
    assert r.json()["amount"] == 100


@pytest.mark.storage
async def test_nested_fields_are_strict_and_named(edge, enrol_scanner):
    scanner = await enrol_scanner(edge)
    body = {"records": [{"record_id": "r1", "token": "x", "scanned_at": "1700000000"}]}
    r = await edge.post("/api/v1/scans/batch", json=body, headers=scanner["headers"])
    problem = assert_problem(r, 400, "invalid_body")
    assert problem["errors"][0]["key"] == "records[0].scanned_at"


async def test_query_parameters_are_still_converted_from_text(edge):
    r = await edge.get("/api/v1/miniapps", params={"limit": "1", "offset": "0"})
    assert r.status_code == 200, r.text
    assert len(r.json()["items"]) == 1


# ---- nesting (item 15) -------------------------------------------------------------------------------
@pytest.mark.parametrize("opener", ["[", '{"a":'])
async def test_deep_nesting_is_refused_before_decoding(edge, opener, caplog):
    with caplog.at_level(logging.ERROR):
        r = await edge.post("/api/v1/auth/otp", **raw_json(opener * 1000))  # unauthenticated
    problem = assert_problem(r, 400, "invalid_body")
    assert problem["errors"] == [{"message": "nested deeper than 32 levels", "source": "body"}]
    assert not [rec for rec in caplog.records if rec.levelno >= logging.ERROR]


async def test_nesting_up_to_the_limit_is_fine(edge):
    ok = "[" * 32 + "]" * 32
    assert (await edge.post("/test/echo", **raw_json(ok))).status_code == 201
    too_deep = "[" * 33 + "]" * 33
    assert_problem(await edge.post("/test/echo", **raw_json(too_deep)), 400, "invalid_body")


async def test_brackets_inside_strings_do_not_count(edge):
    text = json.dumps({"a": "[" * 100, "b": ["{" * 50, '\\"[[['], "c": [[["x"]]]})
    r = await edge.post("/test/echo", **raw_json(text))
    assert r.status_code == 201, r.text
    assert r.json()["data"]["a"] == "[" * 100


async def test_truncated_deep_json_is_refused_too(edge):
    assert_problem(await edge.post("/test/echo", **raw_json("[1," * 100)), 400, "invalid_body")


# ---- control characters (item 16) ---------------------------------------------------------------------
@pytest.mark.storage
async def test_nul_in_a_query_parameter_names_it(edge):
    r = await edge.get("/api/v1/apps/parking/car-parks?district=%00")
    problem = assert_problem(r, 400, "invalid_parameters")
    assert problem["errors"] == [
        {"key": "district", "message": "contains a control character", "source": "query"}
    ]


@pytest.mark.parametrize("value", ["%01", "%1F", "%7f", "%C2%85", "a%0Ab", "%09"])
async def test_other_controls_in_query_parameters(edge, value):
    r = await edge.get(f"/api/v1/miniapps?limit=1&x{value}=1")
    problem = assert_problem(r, 400, "invalid_parameters")
    assert problem["errors"][0]["source"] == "query"


@pytest.mark.storage
async def test_nul_in_a_path_parameter_names_it(edge):
    r = await edge.get("/api/v1/payments/orders/ab%00cd", headers=edge.headers_app)
    problem = assert_problem(r, 400, "invalid_parameters")
    assert problem["errors"] == [
        {"key": "order_id", "message": "contains a control character", "source": "path"}
    ]


@pytest.mark.storage
@pytest.mark.parametrize("bad", ["\x00", "\x01", "\x1b[31m", "\x7f", "\x85", "\b", "\f"])
async def test_control_characters_in_a_text_field_are_refused(edge, bad):
    body = {"reference": "r-ctl", "amount": 100, "description": f"park{bad}ing"}
    before = await PaymentOrder.count().run()
    r = await edge.post("/api/v1/payments/orders", json=body, headers=edge.headers_app)
    problem = assert_problem(r, 400, "invalid_body")
    assert problem["errors"][0]["key"] == "description"
    assert await PaymentOrder.count().run() == before


@pytest.mark.storage
async def test_tab_newline_and_cr_are_free_text(edge):
    body = {"reference": "r-text", "amount": 100, "description": "line one\r\nline\ttwo"}
    r = await edge.post("/api/v1/payments/orders", json=body, headers=edge.headers_app)
    assert r.status_code == 201, r.text
    assert r.json()["description"] == "line one\r\nline\ttwo"


async def test_keys_and_nested_strings_are_checked_and_named(edge):
    r = await edge.post("/test/echo", json={"outer": [{"ok": 1}, {"k\x00": 1}]})
    assert assert_problem(r, 400, "invalid_body")["errors"][0]["key"] == "outer[1].k\x00"


async def test_an_escaped_backslash_before_u0000_is_text(edge):
    text = json.dumps({"path": "C:\\u0000\\b\\f"})  # backslashes, not controls
    r = await edge.post("/test/echo", **raw_json(text))
    assert r.status_code == 201, r.text
    assert r.json()["data"]["path"] == "C:\\u0000\\b\\f"


@pytest.mark.storage
async def test_nul_in_a_plate_is_refused(make_client, login, new_phone):
    async with make_client() as client:
        await client.services.miniapps.apps["parking"].seed_demo()
        me = {"Authorization": f"Bearer {(await login(client, new_phone()))['access_token']}"}
        body = {"car_park": "P-GUOMAO", "plate": "辽A\u000012345", "starts_at": "2030-01-01T00:00:00Z"}
        r = await client.post("/api/v1/apps/parking/reservations", json=body, headers=me)
    assert assert_problem(r, 400, "invalid_body")["errors"][0]["key"] == "plate"


# ---- parameters are typed and named (item 30) -----------------------------------------------------------
@pytest.mark.storage
@pytest.mark.parametrize("day", ["2026-13-45", "tomorrow", "2026-02-30"])
async def test_a_bad_date_in_the_query_is_named(edge, day):
    r = await edge.get("/api/v1/apps/tourism/sessions", params={"day": day})
    problem = assert_problem(r, 400, "invalid_parameters")
    assert [(e["key"], e["source"]) for e in problem["errors"]] == [("day", "query")]


@pytest.mark.storage
async def test_a_good_date_in_the_query_still_filters(make_client):
    async with make_client() as client:
        await client.services.miniapps.apps["tourism"].seed_demo()
        every = (await client.get("/api/v1/apps/tourism/sessions")).json()["items"]
        day = every[0]["day"]
        r = await client.get("/api/v1/apps/tourism/sessions", params={"day": day})
    assert r.status_code == 200
    assert r.json()["items"] and {i["day"] for i in r.json()["items"]} == {day}


async def test_a_missing_query_parameter_is_named(edge):
    r = await edge.get("/api/v1/dev/sms")
    problem = assert_problem(r, 400, "invalid_parameters")
    assert problem["errors"] == [{"key": "phone", "message": "is required", "source": "query"}]


async def test_a_bad_integer_parameter_is_named(edge):
    r = await edge.get("/api/v1/miniapps", params={"limit": "many"}, headers={"Accept-Language": "en"})
    problem = assert_problem(r, 400, "invalid_parameters")
    assert [(e["key"], e["source"]) for e in problem["errors"]] == [("limit", "query")]
    assert "limit" in problem["detail"]


# ---- the console's mounted piccolo-admin reads its own body: the edge checks it too ---------------------
LOGIN = "/admin/public/login/"  # piccolo-api's sign-in: JSON, before any session


@pytest.mark.storage
async def test_the_mounted_console_gets_the_same_edge(make_client, console_login):
    async with make_client(max_body_bytes=4096) as client:
        csrf = await console_login(client, "edge-admin", "admin")
        client.cookies.delete("id")
        nul = {"username": "edge\u0000admin", "password": "a-long-test-password"}
        r = await client.post(LOGIN, json=nul, headers=csrf)
        assert assert_problem(r, 400, "invalid_body")["errors"][0]["key"] == "username"
        deep = {"content": b"[" * 1000, "headers": {**csrf, "content-type": "application/json"}}
        assert_problem(await client.post(LOGIN, **deep), 400, "invalid_body")
        big = {"username": "x" * 5000, "password": "a-long-test-password"}
        assert_problem(await client.post(LOGIN, json=big, headers=csrf), 413, "body_too_large")
        ok = {"username": "edge-admin", "password": "a-long-test-password"}
        assert (await client.post(LOGIN, json=ok, headers=csrf)).status_code == 200
        assert client.cookies.get("id")


async def test_the_body_limit_is_the_setting(make_client):
    async with make_client(extra_plugins=[EchoPlugin()], max_body_bytes=4096) as client:
        small = {"content": b'"' + b"x" * 3000 + b'"', "headers": {"content-type": "application/json"}}
        assert (await client.post("/test/echo", **small)).status_code == 201
        large = {"content": b'"' + b"x" * 5000 + b'"', "headers": {"content-type": "application/json"}}
        assert_problem(await client.post("/test/echo", **large), 413, "body_too_large")


async def test_a_missing_body_is_said_so(edge):
    problem = assert_problem(await edge.post("/api/v1/auth/otp"), 400, "invalid_body")
    assert problem["errors"] == [{"message": "a JSON body is required", "source": "body"}]


async def test_a_parameter_of_the_wrong_type_names_its_source_plainly(edge):
    r = await edge.get(
        "/api/v1/apps/parking/car-parks", params={"available": "maybe"}, headers={"Accept-Language": "en"}
    )
    problem = assert_problem(r, 400, "invalid_parameters")
    assert [(e["key"], e["source"]) for e in problem["errors"]] == [("available", "query")]
    assert problem["detail"] == "not valid: available (query)"


@pytest.mark.storage
async def test_signed_callbacks_reach_their_channel_byte_for_byte(edge):
    """A callback is verified over its raw bytes by its channel: the edge neither refuses nor rewrites
    it (here a NUL escape and deep-ish nesting in a field the channel ignores)."""
    r = await edge.post(
        "/api/v1/payments/orders", json={"reference": "cb-raw", "amount": 100}, headers=edge.headers_app
    )
    order_id = r.json()["order_id"]
    sandbox = edge.services.payments.notifications.channels["sandbox"]
    nested = "[" * 40 + "]" * 40
    body = (
        f'{{"id":"sbx_edge1","type":"payment.succeeded","order_id":"{order_id}","amount":100,"txn_id":"t1",'
        f'"note":"a\\u0000b","extra":{nested}}}'
    ).encode()
    headers = {"Sandbox-Signature": sandbox.sign(body), "Content-Type": "application/json"}
    r = await edge.post("/api/v1/payments/notify/sandbox", content=body, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json() == {"ok": True}
    order = await edge.get(f"/api/v1/payments/orders/{order_id}", headers=edge.headers_app)
    assert order.json()["state"] == "paid"


# ---- bytes that are not UTF-8 are not JSON (RFC 8259 §8.1): 400, never a 500 -------------------------
NOT_UTF8 = [
    b'{"phone":"\xff"}',  # a byte no UTF-8 text holds
    b'{"\xfe\xff":"13912345678"}',  # in a key
    b'{"phone":"\xed\xa0\x80"}',  # an encoded surrogate
    b'{"phone":"139\xc2"}',  # a sequence cut short
]


@pytest.mark.parametrize("body", NOT_UTF8)
async def test_a_body_that_is_not_utf8_is_refused_unauthenticated(edge, body, caplog):
    with caplog.at_level(logging.ERROR):
        r = await edge.post("/api/v1/auth/otp", content=body, headers={"content-type": "application/json"})
    problem = assert_problem(r, 400, "malformed_request")
    english = {"content-type": "application/json", "Accept-Language": "en"}
    assert "UTF-8" in (await edge.post("/api/v1/auth/otp", content=body, headers=english)).json()["detail"]
    assert problem["request_id"] == r.headers["x-request-id"]
    assert not [rec for rec in caplog.records if rec.levelno >= logging.ERROR]


@pytest.mark.storage
async def test_a_body_that_is_not_utf8_is_refused_on_every_kind_of_route(edge, enrol_scanner):
    bad = {"content": b'{"reference":"r-\xff","amount":100}', "headers": {"content-type": "application/json"}}
    before = await PaymentOrder.count().run()
    r = await edge.post(
        "/api/v1/payments/orders", content=bad["content"], headers={**bad["headers"], **edge.headers_app}
    )
    assert_problem(r, 400, "malformed_request")
    assert await PaymentOrder.count().run() == before
    scanner = await enrol_scanner(edge)
    r = await edge.post(
        "/api/v1/scans",
        content=b'{"token":"SC1:\xff\xfe"}',
        headers={"content-type": "application/json", **scanner["headers"]},
    )
    assert_problem(r, 400, "malformed_request")
    assert_problem(await edge.post("/test/echo", **bad), 400, "malformed_request")
    # with a control-character escape too (the edge's own check decodes the body to name the field)
    assert_problem(
        await edge.post("/test/echo", content=b'{"a\\u0000":"\xff"}', headers=bad["headers"]),
        400,
        "malformed_request",
    )


@pytest.mark.storage
async def test_the_mounted_console_refuses_a_body_that_is_not_utf8(make_client, console_login):
    async with make_client() as client:
        csrf = await console_login(client, "utf8-admin", "admin")
        client.cookies.delete("id")
        body = b'{"username":"utf8-\xffadmin","password":"a-long-test-password"}'
        r = await client.post(LOGIN, content=body, headers={**csrf, "content-type": "application/json"})
        assert_problem(r, 400, "malformed_request")
        assert not client.cookies.get("id")
        # signed in: a console form's body
        csrf = await console_login(client, "utf8-admin-2", "admin")
        forms = (await client.get("/admin/api/forms/")).json()
        slug = next(f["slug"] for f in forms if f["name"].startswith("冻结或解冻市民账户"))
        body = b'{"citizen_id":"\xff","blocked":true}'
        r = await client.post(
            f"/admin/api/forms/{slug}/", content=body, headers={**csrf, "content-type": "application/json"}
        )
        assert_problem(r, 400, "malformed_request")
