"""The real-name provider over HTTP: an identity-verification gateway's API (二要素核验 and 实名核身), with
signed requests and signed answers. The wire format is in docs/identity.md ("The HTTP provider").

Shape, as Chinese verification gateways shape theirs (Tencent Cloud's TC3-HMAC-SHA256, Alibaba Cloud
API Gateway's ``X-Ca-*`` headers): an app id and a shared secret; each request carries a timestamp, a
fresh nonce and the body's SHA-256 in headers, and an HMAC-SHA256 over method, path, app id, timestamp,
nonce and that digest. The name and ID number travel only in the JSON body (never in the URL, never in
a log line). The answer is signed the same way over its status, timestamp, the request's nonce (echoed,
so an answer cannot be replayed onto another request) and its body's digest; an answer whose signature,
nonce, request id or time does not check out is refused, and the verdict is "unavailable".
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import uuid
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from auth.realname import Claim, Level, RealNameProvider, Verdict

log = logging.getLogger("shengshitong.auth.realname")

SCHEME = "SST-REALNAME-V1"
PATHS: dict[Level, str] = {
    "two_factor": "/v1/id-verifications/two-factor",
    "face": "/v1/id-verifications/face",
}
# the authority's results, and what each means here
NOT_MATCHED = {"mismatch": "name_mismatch", "not_found": "id_not_found", "liveness_failed": "liveness_failed"}


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def request_string(method: str, path: str, app_id: str, timestamp: str, nonce: str, digest: str) -> bytes:
    return "\n".join([SCHEME, method.upper(), path, app_id, timestamp, nonce, digest]).encode()


def response_string(status: int, app_id: str, timestamp: str, nonce: str, digest: str) -> bytes:
    return "\n".join([SCHEME + "-RESPONSE", str(status), app_id, timestamp, nonce, digest]).encode()


def mac(secret: str, message: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


class AnswerRefused(Exception):
    """The gateway's answer did not check out (signature, nonce, request id, time or form)."""


class HttpRealNameProvider(RealNameProvider):
    def __init__(
        self,
        base_url: str,
        app_id: str,
        secret: str,
        *,
        name: str = "http",
        timeout: float = 5.0,
        max_skew: int = 300,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.name = name
        self._base = base_url.rstrip("/")
        self._base_path = urlsplit(self._base).path
        self._app_id = app_id
        self._secret = secret
        self._max_skew = max_skew
        self._client = httpx.AsyncClient(timeout=timeout, transport=transport, follow_redirects=False)

    def __repr__(self) -> str:
        shown = f"name={self.name!r}, base_url={self._base!r}, app_id={self._app_id!r}"
        return f"HttpRealNameProvider({shown}, secret=<hidden>)"

    async def close(self) -> None:
        await self._client.aclose()

    async def verify(self, claim: Claim, *, at: datetime) -> Verdict:
        level: Level = "face" if claim.liveness_token else "two_factor"
        request_id = uuid.uuid4().hex
        document: dict[str, Any] = {
            "request_id": request_id,
            "name": claim.name,
            "id_number": claim.id_number,
        }
        if claim.liveness_token:
            document["liveness_token"] = claim.liveness_token
        body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
        path = self._base_path + PATHS[level]
        timestamp, nonce, digest = str(int(at.timestamp())), secrets.token_hex(16), body_digest(body)
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "X-App-Id": self._app_id,
            "X-Timestamp": timestamp,
            "X-Nonce": nonce,
            "X-Content-SHA256": digest,
            "X-Signature": mac(
                self._secret, request_string("POST", path, self._app_id, timestamp, nonce, digest)
            ),
        }

        def unavailable(reason: str) -> Verdict:
            return Verdict("unavailable", self.name, request_id, at, reason=reason)

        try:
            r = await self._client.post(self._base + PATHS[level], content=body, headers=headers)
        except httpx.TimeoutException:
            log.warning("real-name provider %s timed out (request %s)", self.name, request_id)
            return unavailable("timeout")
        except httpx.HTTPError as exc:
            log.warning(
                "real-name provider %s unreachable (request %s): %s",
                self.name,
                request_id,
                type(exc).__name__,
            )
            return unavailable("unreachable")
        if r.status_code >= 500 or r.status_code == 429:
            log.warning(
                "real-name provider %s answered HTTP %d (request %s)", self.name, r.status_code, request_id
            )
            return unavailable(f"http_{r.status_code}")
        try:
            answer = self._checked(r, nonce=nonce, request_id=request_id, at=at)
        except AnswerRefused as exc:
            log.error("real-name provider %s: answer refused (request %s): %s", self.name, request_id, exc)
            return unavailable("answer_refused")
        if r.status_code != 200:
            # a signed refusal of our request (bad signature, stale, unknown app): our configuration
            log.error(
                "real-name provider %s refused the request %s: HTTP %d %s",
                self.name,
                request_id,
                r.status_code,
                str(answer.get("error", ""))[:64],
            )
            return unavailable(f"http_{r.status_code}")
        result, reference = answer.get("result"), answer.get("reference")
        if not isinstance(reference, str) or not 1 <= len(reference) <= 64:
            log.error("real-name provider %s: answer without a reference (request %s)", self.name, request_id)
            return unavailable("answer_refused")
        score = answer.get("liveness_score")
        score = float(score) if isinstance(score, int | float) and not isinstance(score, bool) else None
        if result == "match":
            log.info("real-name provider %s: matched at %s (request %s)", self.name, level, request_id)
            return Verdict("matched", self.name, reference, at, level=level, liveness_score=score)
        if isinstance(result, str) and result in NOT_MATCHED:
            log.info("real-name provider %s: %s (request %s)", self.name, result, request_id)
            return Verdict(
                "not_matched", self.name, reference, at, reason=NOT_MATCHED[result], liveness_score=score
            )
        log.error("real-name provider %s: unknown result (request %s)", self.name, request_id)
        return unavailable("answer_refused")

    def _checked(self, r: httpx.Response, *, nonce: str, request_id: str, at: datetime) -> dict[str, Any]:
        """The answer's JSON object once its signature, echoed nonce, time and request id check out."""
        timestamp = r.headers.get("X-Timestamp", "")
        signature = r.headers.get("X-Signature", "")
        if r.headers.get("X-Nonce") != nonce:
            raise AnswerRefused("the nonce is not ours")
        if not timestamp.isdigit():
            raise AnswerRefused("no timestamp")
        if abs(int(timestamp) - at.timestamp()) > self._max_skew:
            raise AnswerRefused("stale or future timestamp")
        wanted = mac(
            self._secret,
            response_string(r.status_code, self._app_id, timestamp, nonce, body_digest(r.content)),
        )
        if not hmac.compare_digest(wanted.encode(), signature.encode()):
            raise AnswerRefused("bad signature")
        try:
            answer = json.loads(r.content)
        except ValueError:
            raise AnswerRefused("not JSON") from None
        if not isinstance(answer, dict):
            raise AnswerRefused("not a JSON object")
        if r.status_code == 200 and answer.get("request_id") != request_id:
            raise AnswerRefused("the request id is not ours")
        return answer
