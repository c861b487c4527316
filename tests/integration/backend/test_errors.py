"""Bad input gets problem+json with the right status, never a 500 with internals."""

import asyncio
import logging

import msgspec
import pytest
from litestar import get, post
from litestar.config.app import AppConfig
from litestar.params import JSONBody
from litestar.plugins import InitPlugin

from backend.errors import Conflict

PROBLEM = "application/problem+json"


class ThingCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    count: int


@post("/test/things", sync_to_thread=False)
def create_thing(data: JSONBody[ThingCreate]) -> dict[str, object]:
    return {"name": data.name, "count": data.count}


@get("/test/boom", sync_to_thread=False)
def boom() -> None:
    raise RuntimeError("database password is hunter2")


@get("/test/timeout")
async def timeout() -> None:
    await asyncio.wait_for(asyncio.sleep(10), 0.01)  # a timeout of its own, not the database's


@get("/test/conflict", sync_to_thread=False)
def conflict() -> None:
    raise Conflict("the thing is already there", thing_id="t1")


class ProbePlugin(InitPlugin):
    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.route_handlers.extend([create_thing, boom, conflict, timeout])
        return app_config


@pytest.fixture
async def probe(make_client):
    async with make_client(extra_plugins=[ProbePlugin()]) as c:
        yield c


def assert_problem(r, status, code):
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body = r.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"].endswith(code)
    assert body["request_id"] == r.headers["x-request-id"]
    return body


async def test_valid_body_is_accepted(probe):
    r = await probe.post("/test/things", json={"name": "gate", "count": 2})
    assert r.status_code == 201 and r.json() == {"name": "gate", "count": 2}


async def test_malformed_json(probe):
    r = await probe.post(
        "/test/things", content=b'{"name": "gate", ', headers={"content-type": "application/json"}
    )
    assert_problem(r, 400, "malformed_request")


async def test_wrong_type_names_the_field(probe):
    r = await probe.post("/test/things", json={"name": "gate", "count": "two"})
    body = assert_problem(r, 400, "invalid_body")
    assert "count" in r.text
    assert body["errors"]


async def test_unknown_field_is_refused(probe):
    r = await probe.post("/test/things", json={"name": "gate", "count": 1, "admin": True})
    assert_problem(r, 400, "invalid_body")


async def test_unknown_path(probe):
    body = assert_problem(await probe.get("/no/such/path"), 404, "not_found")
    assert body["instance"] == "/no/such/path"


async def test_wrong_method(probe):
    r = await probe.delete("/test/things")
    assert_problem(r, 405, "method_not_allowed")
    assert "POST" in r.headers["allow"]


async def test_ten_megabyte_body(probe):
    big = b'{"name": "' + b"x" * (10 * 1024 * 1024) + b'", "count": 1}'
    r = await probe.post("/test/things", content=big, headers={"content-type": "application/json"})
    assert_problem(r, 413, "body_too_large")


async def test_app_error_maps_to_its_status_with_extra_fields(probe):
    body = assert_problem(await probe.get("/test/conflict"), 409, "conflict")
    assert body["detail"] == "与当前状态冲突"  # a generic code's Chinese text: one language per answer
    assert body["thing_id"] == "t1"
    english = await probe.get("/test/conflict", headers={"Accept-Language": "en"})
    body = assert_problem(english, 409, "conflict")
    assert body["detail"] == "the thing is already there"
    assert body["thing_id"] == "t1"


async def test_unexpected_error_is_a_500_problem_without_internals(probe, caplog):
    with caplog.at_level(logging.ERROR, logger="shengshitong.errors"):
        r = await probe.get("/test/boom")
    body = assert_problem(r, 500, "internal_error")
    assert "hunter2" not in r.text
    assert body["request_id"]
    assert any(rec.getMessage() == "unhandled error" for rec in caplog.records)


async def test_a_timeout_that_is_not_the_database_s_is_a_500(probe, caplog):
    """Only a timeout raised in the database driver means the database is not answering."""
    with caplog.at_level(logging.ERROR, logger="shengshitong.errors"):
        r = await probe.get("/test/timeout")
    assert_problem(r, 500, "internal_error")
