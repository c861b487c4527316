"""Liveness, readiness and metrics."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from litestar import Response, get
from litestar.di import NamedDependency
from litestar.plugins.prometheus import PrometheusController

from backend import db
from backend.errors import problem_response
from backend.runtime import Runtime

log = logging.getLogger("shengshitong.health")
CHECK_TIMEOUT = 2.0


@get(
    "/healthz",
    tags=["service"],
    summary="Liveness: 200 while the process runs",
    sync_to_thread=False,
    opt={"storage": False},
)
def healthz() -> dict[str, str]:
    return {"status": "ok"}


async def _check(name: str, probe: Any) -> tuple[str, str | None]:
    try:
        await asyncio.wait_for(probe, CHECK_TIMEOUT)
    except Exception as exc:  # readiness reports any failure, whatever its kind
        log.warning("readiness: %s failed: %s", name, type(exc).__name__)
        return name, f"{type(exc).__name__}: {exc}"[:200] or type(exc).__name__
    return name, None


@get("/readyz", tags=["service"], summary="Readiness: database and store answer")
async def readyz(runtime: NamedDependency[Runtime]) -> Response[Any]:
    results = await asyncio.gather(
        _check("database", db.ping(runtime.engine)),
        _check("store", runtime.store.ping()),
    )
    checks = {name: ("ok" if err is None else "failed") for name, err in results}
    failed = [name for name, err in results if err is not None]
    if failed:
        return problem_response(
            None,
            status=503,
            code="not_ready",
            title="Not ready",
            detail=f"not answering: {', '.join(failed)}",
            extra={"checks": checks, "failed": failed},
        )
    return Response(
        {
            "status": "ready",
            "checks": checks,
            "database": runtime.engine.engine_type,
            "store": runtime.store.kind,
        }
    )


class MetricsController(PrometheusController):
    path = "/metrics"
    include_in_schema = False
