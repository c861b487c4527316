"""The HTTP real-name provider against a local double of the verification gateway's API: a real HTTP
server on a free port, written from the wire format in docs/identity.md ("The HTTP provider") and not
from our code — it checks our signatures byte for byte, keeps the authority's register, and signs its
answers (or forges, stales, replays and delays them when told to)."""

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import threading
import time
import uuid
from datetime import UTC, datetime

import pytest
import uvicorn

from auth.realname import Claim
from auth.realname_http import HttpRealNameProvider

APP_ID = "sst-shenyang"
SECRET = "double-shared-secret-0123456789"
ID_NUMBER = "21010219491231018X"
OTHER_ID = "210102199003070011"
REGISTER = {ID_NUMBER: "张三丰", OTHER_ID: "沈阳"}  # the authority's records (公安 citizen register)


def _digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def _sign(secret: str, *lines: str) -> str:
    return base64.b64encode(
        hmac.new(secret.encode(), "\n".join(lines).encode(), hashlib.sha256).digest()
    ).decode()


class Gateway:
    """The double. ``mode`` changes how it answers: normal, forge, stale, replayed_nonce, other_request,
    unsigned, slow, error500."""

    def __init__(self) -> None:
        self.mode = "normal"
        self.requests: list[dict] = []
        self.nonces: set[str] = set()
        self.refusals: list[str] = []

    async def __call__(self, scope, receive, send):
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        path = scope["raw_path"].decode()
        self.requests.append(
            {
                "method": scope["method"],
                "path": path,
                "query": scope["query_string"],
                "headers": headers,
                "body": body,
            }
        )
        nonce = headers.get("x-nonce", "")
        if self.mode == "error500":
            return await self._send(send, 500, b"", nonce, sign=False)
        if self.mode == "slow":
            await asyncio.sleep(1.0)
        # check the request as the gateway would
        wanted = _sign(
            SECRET,
            "SST-REALNAME-V1",
            scope["method"],
            path,
            headers.get("x-app-id", ""),
            headers.get("x-timestamp", ""),
            nonce,
            _digest(body),
        )
        error = None
        if headers.get("x-app-id") != APP_ID:
            error = "unknown_app"
        elif headers.get("x-content-sha256") != _digest(body):
            error = "digest_mismatch"
        elif not hmac.compare_digest(headers.get("x-signature", ""), wanted):
            error = "bad_signature"
        elif abs(int(headers.get("x-timestamp", "0")) - time.time()) > 300:
            error = "stale_request"
        elif len(nonce) < 16 or nonce in self.nonces:
            error = "nonce_reused"
        if error:
            self.refusals.append(error)
            return await self._send(send, 401, json.dumps({"error": error}).encode(), nonce)
        self.nonces.add(nonce)
        request = json.loads(body)
        name, number = request["name"], request["id_number"]
        if number not in REGISTER:
            result = "not_found"
        elif REGISTER[number] != name:
            result = "mismatch"
        elif path.endswith("/face") and request.get("liveness_token") != "live-ok":
            result = "liveness_failed"
        else:
            result = "match"
        answer = {
            "request_id": request["request_id"] if self.mode != "other_request" else uuid.uuid4().hex,
            "result": result,
            "reference": "GW" + uuid.uuid4().hex[:20],
            "liveness_score": 0.98 if path.endswith("/face") else None,
        }
        await self._send(send, 200, json.dumps(answer).encode(), nonce)

    async def _send(self, send, status, body, nonce, sign=True):
        timestamp = str(int(time.time()) - (3600 if self.mode == "stale" else 0))
        if self.mode == "replayed_nonce":
            nonce = uuid.uuid4().hex  # a well-signed answer to another request
        key = "not-the-shared-secret-at-all" if self.mode == "forge" else SECRET
        headers = [(b"content-type", b"application/json"), (b"x-timestamp", timestamp.encode())]
        headers.append((b"x-nonce", nonce.encode()))
        if sign and self.mode != "unsigned":
            signature = _sign(
                key, "SST-REALNAME-V1-RESPONSE", str(status), APP_ID, timestamp, nonce, _digest(body)
            )
            headers.append((b"x-signature", signature.encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module")
def served(free_port):
    gateway = Gateway()
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(gateway, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the double did not start"
        time.sleep(0.02)
    yield gateway, f"http://127.0.0.1:{port}/gateway"
    server.should_exit = True
    thread.join(timeout=5)


@pytest.fixture
def gateway(served):
    gateway, url = served
    gateway.mode = "normal"
    gateway.requests.clear()
    gateway.refusals.clear()
    return gateway, url


def _provider(url, *, secret=SECRET, timeout=2.0):
    return HttpRealNameProvider(url, APP_ID, secret, name="gateway", timeout=timeout, max_skew=300)


async def _verify(provider, name, number, liveness=None):
    try:
        return await provider.verify(Claim(name, number, liveness), at=datetime.now(UTC))
    finally:
        await provider.close()


async def test_a_match_an_unknown_number_a_wrong_name(gateway, caplog):
    gw, url = gateway
    with caplog.at_level(logging.DEBUG):
        matched = await _verify(_provider(url), "张三丰", ID_NUMBER)
        unknown = await _verify(_provider(url), "张三丰", "11010519491231002X")
        wrong = await _verify(_provider(url), "张三", ID_NUMBER)
    assert (matched.outcome, matched.level, matched.provider) == ("matched", "two_factor", "gateway")
    assert matched.reference.startswith("GW")
    assert (unknown.outcome, unknown.reason) == ("not_matched", "id_not_found")
    assert (wrong.outcome, wrong.reason) == ("not_matched", "name_mismatch")
    # the request as the gateway saw it: signed, the ID number only in the body
    first = gw.requests[0]
    assert first["method"] == "POST" and first["path"] == "/gateway/v1/id-verifications/two-factor"
    assert first["query"] == b""
    assert ID_NUMBER not in first["path"] and ID_NUMBER not in json.dumps(first["headers"])
    assert json.loads(first["body"])["id_number"] == ID_NUMBER
    assert len({r["headers"]["x-nonce"] for r in gw.requests}) == 3 and gw.refusals == []
    assert ID_NUMBER not in caplog.text and "张三丰" not in caplog.text and SECRET not in caplog.text


async def test_face_verification_with_the_sdks_liveness_token(gateway):
    _, url = gateway
    face = await _verify(_provider(url), "沈阳", OTHER_ID, "live-ok")
    assert (face.outcome, face.level, face.liveness_score) == ("matched", "face", 0.98)
    spoofed = await _verify(_provider(url), "沈阳", OTHER_ID, "photo-of-a-photo")
    assert (spoofed.outcome, spoofed.reason) == ("not_matched", "liveness_failed")


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("forge", "answer_refused"),
        ("stale", "answer_refused"),
        ("replayed_nonce", "answer_refused"),
        ("other_request", "answer_refused"),
        ("unsigned", "answer_refused"),
        ("error500", "http_500"),
    ],
)
async def test_an_answer_that_does_not_check_out_is_unavailable(gateway, mode, reason, caplog):
    gw, url = gateway
    gw.mode = mode
    with caplog.at_level(logging.DEBUG):
        verdict = await _verify(_provider(url), "张三丰", ID_NUMBER)
    assert (verdict.outcome, verdict.reason, verdict.level) == ("unavailable", reason, "")
    assert ID_NUMBER not in caplog.text and "张三丰" not in caplog.text


async def test_a_slow_or_absent_gateway_is_unavailable(gateway, free_port):
    gw, url = gateway
    gw.mode = "slow"
    started = time.monotonic()
    verdict = await _verify(_provider(url, timeout=0.2), "张三丰", ID_NUMBER)
    assert (verdict.outcome, verdict.reason) == ("unavailable", "timeout")
    assert time.monotonic() - started < 0.9
    gone = await _verify(_provider(f"http://127.0.0.1:{free_port()}/gateway"), "张三丰", ID_NUMBER)
    assert (gone.outcome, gone.reason) == ("unavailable", "unreachable")


async def test_the_gateway_refuses_a_wrong_secret_and_we_say_unavailable(gateway, caplog):
    gw, url = gateway
    with caplog.at_level(logging.DEBUG):
        verdict = await _verify(_provider(url, secret="a-different-secret-0000"), "张三丰", ID_NUMBER)
    assert verdict.outcome == "unavailable"
    # the gateway's signed refusal cannot be checked with the wrong secret either: refused, logged
    assert gw.refusals == ["bad_signature"]
    assert "answer refused" in caplog.text and "a-different-secret-0000" not in caplog.text


def test_the_secret_stays_out_of_the_repr():
    provider = HttpRealNameProvider("https://idv.example/api", APP_ID, SECRET)
    assert SECRET not in repr(provider) and "secret=<hidden>" in repr(provider)


async def test_citizens_verify_through_the_gateway_end_to_end(
    gateway, make_client, login, new_phone, auth_header
):
    gw, url = gateway
    settings = {
        "realname_provider": "http",
        "realname_http_url": url,
        "realname_http_app_id": APP_ID,
        "realname_http_secret": SECRET,
        "realname_http_name": "shenyang-idv",
    }
    async with make_client(**settings) as client:
        me = auth_header(await login(client, new_phone()))
        r = await client.post(
            "/api/v1/me/real-name", json={"real_name": "张三", "id_number": ID_NUMBER}, headers=me
        )
        assert r.status_code == 422 and r.json()["code"] == "real_name_mismatch"
        r = await client.post(
            "/api/v1/me/real-name",
            json={"real_name": "张三丰", "id_number": ID_NUMBER, "liveness": {"token": "live-ok"}},
            headers=me,
        )
        assert r.status_code == 200, r.text
        verification = r.json()["real_name_verification"]
        assert (verification["provider"], verification["level"]) == ("shenyang-idv", "face")
        gw.mode = "forge"
        other = auth_header(await login(client, new_phone()))
        r = await client.post(
            "/api/v1/me/real-name", json={"real_name": "沈阳", "id_number": OTHER_ID}, headers=other
        )
        assert r.status_code == 503 and r.json()["code"] == "realname_unavailable"
        assert (await client.get("/api/v1/me", headers=other)).json()["real_name_verified"] is False
