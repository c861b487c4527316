"""The baselines of the ratings benchmark (bench/ratings.py), served the same way as the app:

- ``GET /bare/stats``: a bare Litestar handler answering the statistics body the app gave for the same
  request (the very bytes, read once from ``BENCH_STATS_BODY``): what serving that answer costs;
- ``GET /floor/stats``: the same handler, but the answer is the one grouped query a statistic cannot do
  without (ratings of the month by unit: count and sum of levels), run on an asyncpg pool of its own
  (``BENCH_SCRATCH_URL``, ``BENCH_MONTH``): the database's share;
- ``POST /api/v1/me/ratings``: a bare handler decoding a rating's body into a msgspec Struct and answering
  201 with a body of a rating's shape (and the request id echoed, as the app does).
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import asyncpg
import msgspec
from litestar import Litestar, Request, Response, get, post
from msgspec import Meta

BODY = Path(os.environ["BENCH_STATS_BODY"]).read_bytes() if os.environ.get("BENCH_STATS_BODY") else b"{}"
MONTH = os.environ.get("BENCH_MONTH", "")
FLOOR_SQL = (
    "SELECT unit_id, count(*) AS n, sum(level) AS points FROM rating WHERE month = $1 GROUP BY unit_id"
)
_pool: dict[str, Any] = {}


class RatingCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    event_id: Annotated[str, Meta(max_length=64)]
    level: str
    indicators: dict[str, str] = msgspec.field(default_factory=dict)
    comment: Annotated[str, Meta(max_length=500)] = ""


def _echo(request: Request[Any, Any, Any]) -> dict[str, str]:
    rid = request.headers.get("x-request-id")
    return {"x-request-id": rid} if rid else {}


@get("/bare/stats", sync_to_thread=False)
def bare_stats(request: Request[Any, Any, Any]) -> Response[bytes]:
    return Response(BODY, media_type="application/json", headers=_echo(request))


@get("/floor/stats")
async def floor_stats(request: Request[Any, Any, Any]) -> Response[list[dict[str, Any]]]:
    async with _pool["pool"].acquire() as conn:
        rows = await conn.fetch(FLOOR_SQL, MONTH)
    return Response([dict(r) for r in rows], headers=_echo(request))


@post("/api/v1/me/ratings", status_code=201, sync_to_thread=False)
def rate(request: Request[Any, Any, Any], data: RatingCreate) -> Response[dict[str, Any]]:
    body = {
        "id": str(uuid.uuid4()),
        "event_id": data.event_id,
        "service": "parking.stay",
        "service_name": "停车服务",
        "unit_name": "沈阳停车",
        "level": data.level,
        "level_text": data.level,
        "indicators": data.indicators,
        "comment": data.comment,
        "counted": True,
        "created_at": datetime.now(UTC).isoformat(),
        "case": None,
    }
    return Response(body, status_code=201, headers=_echo(request))


async def _start() -> None:
    if os.environ.get("BENCH_SCRATCH_URL"):
        _pool["pool"] = await asyncpg.create_pool(os.environ["BENCH_SCRATCH_URL"], min_size=2, max_size=8)


async def _stop() -> None:
    if "pool" in _pool:
        await _pool.pop("pool").close()


app = Litestar([bare_stats, floor_stats, rate], on_startup=[_start], on_shutdown=[_stop], logging_config=None)
