"""The gate's own door (miniapps/gateway.py) answers a well-formed scan exactly as the general stack
does, and hands everything else to it untouched."""

import json

import pytest


@pytest.fixture(scope="module")
async def client(make_module_client):
    """One app for the module: its tests make what they need of their own and count nothing of another's."""
    async with make_module_client() as c:
        yield c


pytestmark = pytest.mark.storage


async def _token(client, login, new_phone, auth_header):
    pair = await login(client, new_phone())
    return (await client.get("/api/v1/codes/current", headers=auth_header(pair))).json()["token"]


async def test_a_scan_through_the_door_is_answered_as_through_the_general_stack(
    client, login, new_phone, enrol_scanner, auth_header
):
    gate = await enrol_scanner(client)
    headers = {**gate["headers"], "Content-Type": "application/json", "X-Request-ID": "door-test-0001"}
    door = await client.post(
        "/api/v1/scans",
        content=json.dumps({"token": await _token(client, login, new_phone, auth_header)}),
        headers=headers,
    )
    token = await _token(client, login, new_phone, auth_header)

    async def chunks(body: bytes):  # no Content-Length: the general stack takes it
        yield body

    body = json.dumps({"token": await _token(client, login, new_phone, auth_header)}).encode()
    general = await client.post("/api/v1/scans", content=chunks(body), headers=headers)
    assert door.status_code == general.status_code == 200
    a, b = door.json(), general.json()
    assert a.keys() == b.keys() and a["result"] == b["result"] == "allow"
    assert door.headers["x-request-id"] == general.headers["x-request-id"] == "door-test-0001"
    assert door.headers["content-type"] == general.headers["content-type"] == "application/json"
    # a retry of the door's record (the same code, the same record id) gets the same answer
    first = json.dumps({"token": token, "record_id": "door-r1"})
    answers = [await client.post("/api/v1/scans", content=first, headers=headers) for _ in range(2)]
    assert answers[0].json() == answers[1].json() and answers[0].json()["result"] == "allow"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b'{"token": ', 400),  # not JSON
        (b'{"token": "a\\u0000b"}', 400),  # a NUL
        (b'{"token": 5}', 400),  # wrong type
        (b'{"token": "SC1:AAAA", "extra": ' + b"[" * 40 + b"1" + b"]" * 40 + b"}", 400),  # deep nesting
    ],
)
async def test_bad_bodies_get_the_general_stacks_problem(client, enrol_scanner, body, status):
    gate = await enrol_scanner(client)
    r = await client.post(
        "/api/v1/scans", content=body, headers={**gate["headers"], "Content-Type": "application/json"}
    )
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.headers["x-request-id"] and r.json()["code"]


async def test_a_wrong_credential_gets_a_401_problem(client, enrol_scanner):
    r = await client.post(
        "/api/v1/scans",
        content=b'{"token": "SC1:AAAA"}',
        headers={"Authorization": "Basic c2NuX3g6eQ==", "Content-Type": "application/json"},
    )
    assert r.status_code == 401 and r.headers["content-type"].startswith("application/problem+json")


def _scans_counted(metrics: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("shengshitong_requests_total{")
        and 'path="/api/v1/scans"' in line
        and 'status_code="200"' in line
    )


async def test_scans_through_the_door_are_counted_in_the_request_metrics(
    client, login, new_phone, enrol_scanner, auth_header
):
    gate = await enrol_scanner(client)
    headers = {**gate["headers"], "Content-Type": "application/json"}
    token = await _token(client, login, new_phone, auth_header)
    before = _scans_counted((await client.get("/metrics")).text)
    r = await client.post("/api/v1/scans", content=json.dumps({"token": token}), headers=headers)
    assert r.status_code == 200
    assert _scans_counted((await client.get("/metrics")).text) == before + 1
