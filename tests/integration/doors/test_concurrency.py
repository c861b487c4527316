"""Concurrent scans of one visitor pass at two doors never take more entries than it has: each entry is
one conditional UPDATE (PostgreSQL, where the requests really run side by side)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

from miniapps.doors.tables import Entry, VisitorPass
from tests.conftest import BACKEND
from tests.integration.doors.conftest import APP, City

pytestmark = pytest.mark.skipif(BACKEND != "postgres", reason="concurrent transactions: PostgreSQL")


async def test_concurrent_scans_at_two_doors_never_exceed_the_pass_count(city: City):
    client = city.client
    host = await city.citizen()
    await city.add_resident("WANKE-CITY", host)
    visitor = await city.citizen()
    devices = [visitor] + [
        await city.citizen(phone=visitor["phone"], device=f"phone-{i}") for i in range(2, 9)
    ]
    start = city.clock.now()
    r = await client.post(
        f"{APP}/passes",
        json={
            "place": "WANKE-CITY",
            "phone": visitor["phone"],
            "doors": ["WK-GATE-N", "WK-GATE-S"],
            "starts_at": start.isoformat(),
            "ends_at": (start + timedelta(hours=2)).isoformat(),
            "entries": 3,
        },
        headers=host["headers"],
    )
    assert r.status_code == 201, r.text
    pass_id = r.json()["id"]
    codes = [await city.code(d) for d in devices]  # eight codes, one per signed-in phone
    assert len(set(codes)) == 8

    async def scan(i: int, token: str):
        door = "WK-GATE-N" if i % 2 else "WK-GATE-S"
        return await client.post("/api/v1/scans", json={"token": token}, headers=city.doors[door]["headers"])

    answers = await asyncio.gather(*(scan(i, t) for i, t in enumerate(codes)))
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    results = sorted((a.json()["result"], a.json()["reason"]) for a in answers)
    assert results == [("allow", "ok")] * 3 + [("deny", "pass_used_up")] * 5
    row = await VisitorPass.select().where(VisitorPass.id == uuid.UUID(pass_id)).first().run()
    assert row is not None and row["used"] == 3
    allowed = await Entry.count().where((Entry.visitor_pass == uuid.UUID(pass_id)) & (Entry.allowed == True))  # noqa: E712
    assert allowed == 3
    assert {e.json()["data"]["door"] for e in answers if e.json()["result"] == "allow"} <= {
        "WK-GATE-N",
        "WK-GATE-S",
    }
