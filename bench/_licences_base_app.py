"""The baselines of the e-licence benchmark (bench/licences.py), served the same way as the app (uvicorn,
uvloop, httptools, no access log, as many workers):

- ``GET /bare/status``: a bare Litestar handler answering the very Status List Token the app served for
  the list the inspectors read (the bytes read once from ``BENCH_STATUS_TOKEN``), with its media type, an
  ETag and Cache-Control: what serving that answer costs;
- ``GET /floor/status``: the same answer taken from the shared store as the app keeps it (one GET with
  the app's own store client, ``SHENGSHI_REDIS_URL`` + ``SHENGSHI_STORE_PREFIX``, key
  ``BENCH_STATUS_KEY``): what a read from the cache alone costs;
- ``POST /bare/issued``: a bare handler decoding an issuer's body into a msgspec Struct of the same shape
  and answering 201 with a body of a licence's shape;
- ``POST /bare/shared/{request_id}``: a bare handler answering the bytes of a real share's answer (read
  once from ``BENCH_SHARED_BODY``).

Every handler echoes ``X-Request-ID``, as the app does.
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
from litestar import Litestar, Request, Response, get, post

from backend.store import Store, create_store

TOKEN = Path(os.environ["BENCH_STATUS_TOKEN"]).read_text() if os.environ.get("BENCH_STATUS_TOKEN") else ""
SHARED = Path(os.environ["BENCH_SHARED_BODY"]).read_bytes() if os.environ.get("BENCH_SHARED_BODY") else b"{}"
STATUS_KEY = os.environ.get("BENCH_STATUS_KEY", "")
MEDIA = "application/statuslist+jwt"
_store: dict[str, Store] = {}


class LicenceIssue(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    type: str
    id_number: str
    fields: dict[str, str]
    valid_until: datetime | None = None


def _echo(request: Request[Any, Any, Any]) -> dict[str, str]:
    rid = request.headers.get("x-request-id")
    return {"x-request-id": rid} if rid else {}


@get("/bare/status", sync_to_thread=False, media_type=MEDIA)
def bare_status(request: Request[Any, Any, Any]) -> Response[str]:
    headers = {"ETag": '"bare"', "Cache-Control": "public, max-age=300", **_echo(request)}
    return Response(TOKEN, headers=headers, media_type=MEDIA)


@get("/floor/status", media_type=MEDIA)
async def floor_status(request: Request[Any, Any, Any]) -> Response[str]:
    held = await _store["store"].get(STATUS_KEY)
    if held is None:
        return Response("", status_code=404, headers=_echo(request), media_type=MEDIA)
    cached = json.loads(held)
    headers = {"ETag": cached["etag"], "Cache-Control": "public, max-age=300", **_echo(request)}
    return Response(cached["token"], headers=headers, media_type=MEDIA)


@post("/bare/issued", status_code=201, sync_to_thread=False)
def bare_issue(request: Request[Any, Any, Any], data: LicenceIssue) -> Response[dict[str, Any]]:
    now = datetime.now(UTC)
    body = {
        "id": str(uuid.uuid4()),
        "type": data.type,
        "status": "valid",
        "reason": "",
        "version": 1,
        "number": data.id_number[:4] + "*" * 10 + data.id_number[-4:],
        "valid_until": data.valid_until,
        "issued_at": now,
        "updated_at": now,
    }
    return Response(body, status_code=201, headers=_echo(request))


@post("/bare/shared/{request_id:str}", status_code=200, sync_to_thread=False)
def bare_share(request: Request[Any, Any, Any], request_id: str) -> Response[bytes]:
    return Response(
        SHARED,
        media_type="application/json",
        headers={"Cache-Control": "no-store", **_echo(request)},
    )


async def _start() -> None:
    if os.environ.get("SHENGSHI_REDIS_URL"):
        _store["store"] = create_store(os.environ["SHENGSHI_REDIS_URL"], os.environ["SHENGSHI_STORE_PREFIX"])


async def _stop() -> None:
    if "store" in _store:
        await _store.pop("store").close()


app = Litestar(
    [bare_status, floor_status, bare_issue, bare_share],
    on_startup=[_start],
    on_shutdown=[_stop],
    logging_config=None,
)
