"""Tourism's test world: the demo attractions at 09:00 China time, a gate at 沈阳故宫 and a hotel's
check-in desk, and visitors."""

from datetime import UTC, datetime

import pytest

from backend.clock import FrozenClock


@pytest.fixture
async def park(make_client, login, new_phone, enrol_scanner):
    clock = FrozenClock(datetime(2026, 11, 25, 1, 0, tzinfo=UTC))  # 09:00 China time
    async with make_client(clock=clock, access_token_ttl=30 * 86400) as client:
        await client.services.miniapps.apps["tourism"].seed_demo()
        gate = await enrol_scanner(client, "tourism", context="tourism-gate", place="A-MUKDEN")
        desk = await enrol_scanner(client, "tourism", context="hotel-checkin", place="HT-ZHONGJIE")

        async def visitor():
            pair = await login(client, new_phone())
            return {"Authorization": f"Bearer {pair['access_token']}"}

        yield client, clock, gate, desk, visitor
