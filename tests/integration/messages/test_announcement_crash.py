"""An announcement survives kill -9: real servers (``shengshi serve``) on this pass's database and store,
a few thousand citizens, an announcement at a low rate; the server is SIGKILLed mid-send and started
again on the same database and store, and the announcement finishes with exactly one message per
citizen, none missing, and counts that agree with the rows."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from auth.tables import Citizen
from backend import db
from messages.tables import Announcement, Message
from tests.conftest import basic_auth

pytestmark = [pytest.mark.storage, pytest.mark.timeout_sensitive]
CITIZENS = 3000


def _env(settings: Any, tmp_path: Any) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHENGSHI_")}
    return {
        **env,
        "SHENGSHI_ENV": "test",
        "SHENGSHI_DATA_DIR": str(tmp_path),
        "SHENGSHI_DATABASE_URL": settings.database_url,
        "SHENGSHI_REDIS_URL": settings.redis_url,
        "SHENGSHI_STORE_PREFIX": f"{settings.store_prefix}crash:",
        "SHENGSHI_SECRET_KEY": settings.secret_key,
        "SHENGSHI_KEY_ENCRYPTION_KEY": settings.key_encryption_key,
        "SHENGSHI_PII_KEYS": settings.pii_keys,
        "SHENGSHI_LOG_LEVEL": "WARNING",
        # small batches and a short lease, so the kill lands mid-send and the restart takes over soon
        "SHENGSHI_MESSAGE_ANNOUNCE_BATCH": "100",
        "SHENGSHI_MESSAGE_ANNOUNCE_LEASE": "2",
        "SHENGSHI_MESSAGE_INTERVAL": "0.2",
    }


async def _row(announcement_id: str) -> dict[str, Any]:
    row = await Announcement.select().where(Announcement.id == uuid.UUID(announcement_id)).first().run()
    assert row is not None
    return row


async def _wait_for(announcement_id: str, done: Any, seconds: float) -> dict[str, Any]:
    """Look at the announcement until ``done(row)`` (the server works at its own pace)."""
    deadline = time.monotonic() + seconds
    while True:
        row = await _row(announcement_id)
        if done(row):
            return row
        assert time.monotonic() < deadline, row
        await asyncio.sleep(0.05)


async def test_an_announcement_killed_mid_send_resumes_without_a_duplicate_or_a_gap(
    client, settings, tmp_path, serve, free_port
):
    now = datetime.now(UTC)
    ids = [uuid.uuid4() for _ in range(CITIZENS)]
    await db.bulk_insert(
        Citizen, [{"id": i, "status": "active", "created_at": now, "updated_at": now} for i in ids]
    )
    services = client.services
    await services.messages.templates.decide("platform.city_notice", "approve", operator="test", note="")
    op = basic_auth(await services.auth.machines.create("operator", name="crash desk"))
    env = _env(settings, tmp_path)

    port = free_port()
    server = serve(env, port)
    try:
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(timeout=10) as http:
            r = await http.post(
                f"{base}/api/v1/admin/announcements",
                json={
                    "template": "platform.city_notice",
                    "data": {
                        "headline": "演练",
                        "headline_en": "Drill",
                        "text": "消防演练。",
                        "text_en": "A drill.",
                    },
                    "segment": {"kind": "everyone"},
                    "rate": 600,
                },
                headers=op,
            )
        assert r.status_code == 202, r.text
        ident = r.json()["id"]
        row = await _wait_for(ident, lambda r: r["sent"] >= CITIZENS * 0.3, 60)
        server.kill()  # SIGKILL: no shutdown, possibly inside a batch's transaction
        server.wait(10)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(10)

    killed = await _row(ident)
    assert killed["state"] == "sending" and killed["sent"] < CITIZENS, killed
    # whatever the kill interrupted, the books hold whole batches: the rows are what the counts say
    assert await Message.count().where(Message.announcement == ident).run() == killed["sent"]

    again = serve(env, free_port())
    try:
        done = await _wait_for(ident, lambda r: r["state"] != "sending", 90)
    finally:
        again.terminate()
        again.wait(20)
    assert (done["state"], done["scanned"], done["sent"], done["skipped"], done["error"]) == (
        "done",
        CITIZENS,
        CITIZENS,
        0,
        "",
    )
    got = Counter(
        r["citizen_id"]
        for r in await Message.select(Message.citizen_id).where(Message.announcement == ident).run()
    )
    assert got == Counter({str(i): 1 for i in ids})  # one each: none twice, none missing
    assert row["sent"] < CITIZENS
