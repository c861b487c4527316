"""HTTP handlers (thin) for entitlements: the owners' API (single changes, streamed bulk uploads, their
progress and report), the citizen's view of what their code claims and why, and the live channel that
tells an open app its code changed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.exceptions import InternalServerException
from litestar.params import FromPath
from litestar.response import Stream
from litestar.status_codes import HTTP_200_OK

from auth.guards import citizen_only, source_only
from auth.principals import CitizenPrincipal, MachinePrincipal
from auth.services import AuthServices
from backend.errors import AppError, InvalidInput, PayloadTooLarge, RequestTimeout, UnsupportedMediaType
from backend.live import Event, Live
from codes.owners import Facts
from codes.sources import EntitlementService, ordered

NDJSON = ("application/x-ndjson", "application/jsonl", "application/json-seq", "application/ndjson")
STALL = 60.0  # seconds an upload may send nothing before it is given up
HEARTBEAT = 20.0  # seconds between comments on an idle event stream (keeps proxies from closing it)


class UploadProgress(msgspec.Struct):
    id: str
    kind: str
    status: str  # running | done | failed | interrupted
    lines: int
    applied: int
    unchanged: int
    rejected: int
    started_at: Any
    updated_at: Any
    finished_at: Any
    error: str | None = None


class ChangeOutcome(msgspec.Struct):
    outcome: str  # applied | unchanged
    record_id: str
    kind: str
    effective_at: Any
    fact: str


class OwnersController(Controller):
    path = "/api/v1/entitlements"
    tags = ["entitlement owners"]
    guards = [source_only]

    @post(
        "/changes",
        status_code=HTTP_200_OK,
        summary="One change of one person's entitlement (idempotent: the same change twice is one)",
    )
    async def change(
        self,
        request: Request[Any, Any, Any],
        machine: NamedDependency[MachinePrincipal],
        entitlement_facts: NamedDependency[Facts],
    ) -> ChangeOutcome:
        body = await request.body()
        result = await entitlement_facts.change(machine.app_id, body, source=machine.client_id)
        return ChangeOutcome(**result)

    @post(
        "/uploads",
        status_code=HTTP_200_OK,
        summary="A day's changes in one streamed NDJSON upload (one change per line)",
        request_max_body_size=None,
    )
    async def upload(
        self,
        request: Request[Any, Any, Any],
        machine: NamedDependency[MachinePrincipal],
        entitlement_facts: NamedDependency[Facts],
        upload_limit: NamedDependency[int],
    ) -> UploadProgress:
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media not in NDJSON:
            raise UnsupportedMediaType(
                "send the changes as NDJSON (Content-Type: application/x-ndjson), one per line",
                code="ndjson_required",
            )
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > upload_limit:
            raise PayloadTooLarge(f"an upload is at most {upload_limit} bytes", code="upload_too_large")
        result = await entitlement_facts.upload(
            machine.app_id, _limited(request.stream(), upload_limit), source=machine.client_id
        )
        return UploadProgress(**result)

    @get("/uploads/{upload_id:str}", summary="An upload's progress (while it streams) or outcome")
    async def progress(
        self,
        upload_id: FromPath[str],
        machine: NamedDependency[MachinePrincipal],
        entitlement_facts: NamedDependency[Facts],
    ) -> UploadProgress:
        return UploadProgress(**await entitlement_facts.progress(upload_id, source=machine.client_id))

    @get(
        "/uploads/{upload_id:str}/report",
        summary="The upload's records that were not applied, with line and reason (NDJSON)",
        media_type="application/x-ndjson",
    )
    async def report(
        self,
        upload_id: FromPath[str],
        machine: NamedDependency[MachinePrincipal],
        entitlement_facts: NamedDependency[Facts],
    ) -> Stream:
        lines = await entitlement_facts.report(upload_id, source=machine.client_id)
        return Stream(lines, media_type="application/x-ndjson", headers={"Cache-Control": "no-store"})


async def _limited(body: AsyncIterator[bytes], limit: int) -> AsyncIterator[bytes]:
    """The body's chunks, refused past ``limit`` bytes, after ``STALL`` seconds with none, or when the
    client goes away (each a problem of the client's, not a server error; the upload reads failed and
    sending the file again completes it)."""
    seen = 0
    chunks = aiter(body)
    while True:
        try:
            chunk = await asyncio.wait_for(anext(chunks), STALL)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise RequestTimeout(f"no data came for {STALL:.0f} s", code="upload_stalled") from None
        except InternalServerException:  # Litestar's word for a client that disconnected mid-body
            raise InvalidInput(
                "the client disconnected before the upload ended", code="client_disconnected"
            ) from None
        seen += len(chunk)
        if seen > limit:
            raise PayloadTooLarge(f"an upload is at most {limit} bytes", code="upload_too_large")
        yield chunk


class CitizenEntitlements(msgspec.Struct):
    verified: bool  # real-name verified: without it nothing is granted
    entitlements: list[dict[str, Any]]
    changes_at: Any = None  # when one changes by itself next (a validity ending), if known


class MyEntitlementsController(Controller):
    path = "/api/v1/me"
    tags = ["citizens: code"]
    guards = [citizen_only]

    @get("/entitlements", summary="What the code claims, each with its source and time, and why one is not")
    async def entitlements(
        self,
        citizen: NamedDependency[CitizenPrincipal],
        code_entitlements: NamedDependency[EntitlementService],
    ) -> Response[CitizenEntitlements]:
        standing = await code_entitlements.standing(citizen.citizen_id)
        body = CitizenEntitlements(
            verified=standing.verified,
            entitlements=[h.readable() for h in ordered(standing.held)],
            changes_at=standing.changes_at,
        )
        return Response(body, headers={"Cache-Control": "no-store"})

    @get(
        "/events",
        summary="Live events for the citizen's open app (server-sent events): `code` when the code changed",
        media_type="text/event-stream",
    )
    async def events(
        self,
        request: Request[Any, Any, Any],
        citizen: NamedDependency[CitizenPrincipal],
        auth: NamedDependency[AuthServices],
        live: NamedDependency[Live],
    ) -> Stream:
        token = request.headers.get("authorization", "").partition(" ")[2].strip()

        async def still_signed_in() -> bool:
            try:
                await auth.tokens.verify(token)
            except AppError:  # signed out, deleted, blocked, or the token expired
                return False
            return True

        return Stream(
            _events(live, f"citizen:{citizen.citizen_id}", still_signed_in),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )


async def _events(
    live: Live, topic: str, still_signed_in: Callable[[], Awaitable[bool]]
) -> AsyncIterator[bytes]:
    """Events while the access token that opened the stream stays good: it is checked again before each
    event and at each heartbeat, so a sign-out, an account deleted or blocked, or the token's expiry ends
    the stream (the app opens a new one with a fresh token) and nothing more reaches a signed-out device.
    A comment every ``HEARTBEAT`` seconds keeps proxies from closing an idle stream."""
    async with live.follow(topic) as queue:
        yield b"retry: 3000\nevent: ready\ndata: {}\n\n"
        while True:
            try:
                event: Event | None = await asyncio.wait_for(queue.get(), timeout=HEARTBEAT)
            except TimeoutError:
                event = None
            if not await still_signed_in():
                return
            yield b": keep-alive\n\n" if event is None else event.sse()
