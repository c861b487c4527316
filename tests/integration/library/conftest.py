"""The library's test bench: demo libraries, a desk scanner at 辽宁省图书馆 总馆, citizens, and scans with
the step in the scan's meta."""

from typing import Any

import pytest


@pytest.fixture
async def bench(make_client, frozen_clock, login, new_phone, enrol_scanner):
    async with make_client(clock=frozen_clock, access_token_ttl=90 * 86400) as client:
        await client.services.miniapps.apps["library"].seed_demo()
        desk = await enrol_scanner(client, "library", context="library-desk", place="LN-MAIN")

        async def citizen() -> dict[str, str]:
            pair = await login(client, new_phone())
            return {"Authorization": f"Bearer {pair['access_token']}"}

        yield client, citizen, desk, frozen_clock


async def code_of(client: Any, me: dict[str, str], clock: Any) -> str:
    clock.advance(31)  # a fresh code (a code is single use per scanner context)
    r = await client.get("/api/v1/codes/current", headers=me)
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


async def desk_scan(client: Any, me: dict[str, str], desk: dict[str, Any], clock: Any, **meta: str) -> Any:
    token = await code_of(client, me, clock)
    r = await client.post("/api/v1/scans", json={"token": token, "meta": meta}, headers=desk["headers"])
    assert r.status_code == 200, r.text
    return r.json()
