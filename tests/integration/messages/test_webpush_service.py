"""The Web Push sender over a real socket to the local push service double (uvicorn on 127.0.0.1):
what a browser would read, what the push service answers, and a push service that is not there."""

import asyncio
import logging
import socket

import http_ece
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from messages.webpush import PushTarget, WebPushSender, application_server_key
from tests.integration.messages.pushservice import serving

SUBJECT = "https://shengshitong.example/contact"


@pytest.fixture(scope="module")
def served():
    with serving() as service:
        yield service


@pytest.fixture
def service(served):
    served.reset()
    return served


@pytest.fixture
def vapid_key():
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
async def sender(vapid_key, service):
    sender = WebPushSender(vapid_key, SUBJECT, allowed_hosts=[service.origin], timeout=5.0)
    yield sender
    await sender.close()


def subscribe(service, vapid_key):
    endpoint, ua = service.subscribe(application_server_key=application_server_key(vapid_key))
    return PushTarget(endpoint, ua.p256dh, ua.auth_b64), ua


async def test_a_push_over_the_wire(sender, service, vapid_key, caplog):
    target, ua = subscribe(service, vapid_key)
    payload = "您有一条新消息：盛京医院 明天 09:30 的预约已确认".encode()

    with caplog.at_level(logging.DEBUG):  # httpx and httpcore included
        outcome = await sender.send(target, payload, ttl=600, urgency="low")

    assert outcome == (True, False, 201, "", None)
    [got] = service.received
    assert got.refusal == ""
    assert got.plaintext == payload
    assert http_ece.decrypt(got.body, private_key=ua.private_key, auth_secret=ua.auth) == payload
    assert got.claims["aud"] == service.origin  # http://127.0.0.1:<port>, the port included
    assert got.claims["sub"] == SUBJECT
    assert (got.headers["ttl"], got.headers["urgency"]) == ("600", "low")
    assert got.headers["content-type"] == "application/octet-stream"
    secret = target.endpoint.rsplit("/", 1)[1]
    assert caplog.records and not any(
        secret in r.getMessage() or secret in str(vars(r)) for r in caplog.records
    )


async def test_what_the_push_service_answers(sender, service, vapid_key):
    target, _ = subscribe(service, vapid_key)
    service.answer = (410, {})
    assert await sender.send(target, b"x") == (False, True, 410, "HTTP 410 Gone", None)
    service.answer = (429, {"Retry-After": "37"})
    assert await sender.send(target, b"x") == (False, False, 429, "HTTP 429 Too Many Requests", 37.0)
    service.answer = (500, {})
    assert await sender.send(target, b"x") == (False, False, 500, "HTTP 500 Internal Server Error", None)
    service.answer = (201, {})
    assert (await sender.send(target, b"x")).ok
    # the double took every request (the answers were the test's, not refusals)
    assert [r.refusal for r in service.received] == [""] * 4
    assert [r.plaintext for r in service.received] == [b"x"] * 4


async def test_one_jwt_for_many_messages_to_one_push_service(sender, service, vapid_key):
    targets = [subscribe(service, vapid_key)[0] for _ in range(12)]
    outcomes = await asyncio.gather(*(sender.send(t, f"第{i}条".encode()) for i, t in enumerate(targets)))
    assert all(o.ok for o in outcomes)
    assert sorted(r.plaintext for r in service.received) == sorted(f"第{i}条".encode() for i in range(12))
    assert len({r.jwt for r in service.received}) == 1


async def test_a_push_service_that_is_not_there(vapid_key):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    origin = f"http://127.0.0.1:{port}"
    sender = WebPushSender(vapid_key, SUBJECT, allowed_hosts=[origin], timeout=5.0)
    ua_key = ec.generate_private_key(ec.SECP256R1())
    target = PushTarget(
        f"{origin}/wpush/v2/secret-token", application_server_key(ua_key), "AAAAAAAAAAAAAAAAAAAAAA"
    )
    try:
        assert await sender.send(target, b"hello") == (False, False, 0, "no answer (ConnectError)", None)
    finally:
        await sender.close()
