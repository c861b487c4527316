"""The gate's own door: ``POST /api/v1/scans`` answered without Litestar's general request stack.

A scan is the one request the city makes thousands of times a second. Through Litestar it costs ~0.9 ms
of a worker's CPU besides the scan itself (the metrics and edge middlewares, routing, the guard, the
signature model, the response), against ~0.1 ms for a bare handler. This door takes a well-formed scan
straight to the gate: the body read (by its Content-Length, up to a small limit), checked as the edge
checks JSON text, decoded into :class:`ScanRequest` by msgspec, the scanner's credential checked by the
same :meth:`MachineAuth.authenticate`, the answer encoded by msgspec. The request id, the language and
the access log are still set around it (those middlewares wrap the whole app), and the request is counted
in the same Prometheus metrics.

Anything else — another path or method, no or a large Content-Length, a body that is not a well-formed
scan, a credential that does not authenticate — goes on to the general stack untouched (the body handed
on as it was read), which answers it as before (problem+json, 401, 413, ...). So this door changes no
answer, only the cost of the common one; the Litestar handler stays the route's documentation and its
answer for everything unusual. A failure inside the gate is answered with the platform's own error
handlers.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import msgspec
from litestar import Request
from litestar.plugins.prometheus.middleware import PrometheusMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from auth.services import AUTH
from backend.edge import check_json_text, replay
from backend.errors import EXCEPTION_HANDLERS
from miniapps.schemas import ScanRequest
from miniapps.services import MINIAPPS

log = logging.getLogger("shengshitong.scans")

PATH = "/api/v1/scans"
MAX_BODY = 16 * 1024  # a scan is ~300 bytes; larger bodies go the general way (its limit, its 413)
_decoder = msgspec.json.Decoder(ScanRequest)
_encoder = msgspec.json.Encoder()
_HEADERS = [(b"content-type", b"application/json")]


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def _count(status: int, seconds: float) -> None:
    """The request in the metrics the general stack's Prometheus middleware keeps (once it made them)."""
    metrics: dict[str, Any] = PrometheusMiddleware._metrics
    labels = {"method": "POST", "path": PATH, "status_code": status, "app_name": "shengshitong"}
    if (total := metrics.get("shengshitong_requests_total")) is not None:
        total.labels(*labels.values()).inc()
    if (duration := metrics.get("shengshitong_request_duration_seconds")) is not None:
        duration.labels(*labels.values()).observe(seconds)


def gate_door(litestar_app: Any, inner: ASGIApp) -> ASGIApp:
    """Wrap ``inner`` (the app's ASGI handler) with the gate's door."""

    async def door(scope: Any, receive: Receive, send: Any) -> None:  # (ASGI's types, loosely)
        if (
            scope["type"] != "http"
            or scope["path"] != PATH
            or scope["method"] != "POST"
            or scope["query_string"]
        ):
            await inner(scope, receive, send)
            return
        length = _header(scope, b"content-length")
        content_type = _header(scope, b"content-type") or b""
        if (
            length is None
            or not length.isdigit()
            or int(length) > MAX_BODY
            or not content_type.lower().startswith(b"application/json")
        ):
            await inner(scope, receive, send)
            return
        started = time.perf_counter()
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        try:
            if len(body) != int(length):
                raise ValueError("the body is not as long as its Content-Length")
            check_json_text(body, utf8=True)
            data = _decoder.decode(body)
            client = scope.get("client")
            scanner = await AUTH.of(litestar_app).machines.authenticate(
                (_header(scope, b"authorization") or b"").decode("latin-1"),
                ("scanner",),
                ip=client[0] if client else "",
            )
        except Exception:  # not a well-formed, authenticated scan: the general stack answers it
            await inner(scope, replay(body, receive), send)
            return
        try:
            result = await MINIAPPS.of(litestar_app).gate.scan(scanner, data)
        except Exception as exc:
            await _error(litestar_app, scope, receive, send, exc)
            _count(500, time.perf_counter() - started)
            return
        payload = _encoder.encode(result)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [*_HEADERS, (b"content-length", str(len(payload)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": payload})
        _count(200, time.perf_counter() - started)

    return door


async def _error(litestar_app: Any, scope: Scope, receive: Receive, send: Send, exc: Exception) -> None:
    """Answer a failure inside the gate with the platform's handler for its kind (503 for a store or a
    database that does not answer, 500 otherwise), as the general stack would."""
    handler = next(
        (h for kind, h in EXCEPTION_HANDLERS.items() if isinstance(kind, type) and isinstance(exc, kind)),
        EXCEPTION_HANDLERS[Exception],
    )
    full: Any = {**scope, "app": litestar_app, "litestar_app": litestar_app}
    request: Request[Any, Any, Any] = Request(full, receive)
    response = handler(request, exc)
    await response.to_asgi_response(app=litestar_app, request=request)(scope, receive, send)
