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
# Probes that ran past their timeout, still finishing in the background (see _check).
_abandoned: set[asyncio.Task[Any]] = set()


@get(
    "/healthz",
    tags=["service"],
    summary="Liveness: 200 while the process runs",
    sync_to_thread=False,
    opt={"storage": False},
)
def healthz() -> dict[str, str]:
    return {"status": "ok"}


def _forget(task: asyncio.Task[Any]) -> None:
    _abandoned.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved: a late failure of an abandoned probe is not worth a warning


async def _check(name: str, probe: Any) -> tuple[str, str | None]:
    """Run ``probe``; a failure, or no answer within CHECK_TIMEOUT, fails the check.

    The timeout is hard: ``asyncio.wait_for`` would cancel the probe and then wait for it to finish,
    and a probe cancelled inside asyncpg first gives its connection back to the pool, which waits for
    the cancellation to reach a server that does not answer (the pool's own timeouts bound that, not
    this check's). So the probe runs as a task of its own, and one that is late is cancelled and left
    to finish in the background."""
    task = asyncio.ensure_future(probe)
    done, _ = await asyncio.wait({task}, timeout=CHECK_TIMEOUT)
    if not done:
        task.cancel()
        _abandoned.add(task)
        task.add_done_callback(_forget)
        log.warning("readiness: %s did not answer within %s s", name, CHECK_TIMEOUT)
        return name, f"no answer within {CHECK_TIMEOUT} s"
    if task.cancelled():
        return name, "cancelled"
    if (exc := task.exception()) is not None:  # readiness reports any failure, whatever its kind
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
