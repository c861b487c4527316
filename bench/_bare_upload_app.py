"""The baseline for the bulk-upload benchmark: a bare Litestar handler that reads a streamed NDJSON body
and counts its lines, served by the same server the same way (what receiving the file costs at all)."""

from typing import Any

from litestar import Litestar, Request, post


@post("/api/v1/entitlements/uploads", status_code=200, request_max_body_size=None)
async def upload(request: Request[Any, Any, Any]) -> dict[str, int]:
    lines = 0
    async for chunk in request.stream():
        lines += chunk.count(b"\n")
    return {"lines": lines}


app = Litestar([upload], logging_config=None)
