"""A city with the doors app's demo places, its manager's backend, door controllers and citizens, driven
through the public HTTP API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from backend.clock import FrozenClock
from tests.conftest import basic_auth, bearer

APP = "/api/v1/apps/doors"
EN = {"Accept-Language": "en"}


class City:
    def __init__(
        self, client: Any, clock: FrozenClock, login: Any, new_phone: Any, enrol_scanner: Any
    ) -> None:
        self.client = client
        self.clock = clock
        self._login = login
        self._new_phone = new_phone
        self._enrol = enrol_scanner
        self.manager: dict[str, str] = {}
        self.doors: dict[str, dict[str, Any]] = {}

    async def start(self) -> None:
        await self.client.services.miniapps.apps["doors"].seed_demo()
        self.manager = basic_auth(await self.client.services.auth.machines.create("miniapp", app_id="doors"))
        for code in ("WK-GATE-N", "WK-GATE-S", "WK-B1-U1", "WK-B2-U1", "FP-LOBBY"):
            self.doors[code] = await self._enrol(self.client, "doors", context="door", place=code)

    async def citizen(self, *, device: str = "phone-1", phone: str | None = None) -> dict[str, Any]:
        phone = phone or self._new_phone()
        pair = await self._login(self.client, phone, device_id=device)
        return {"phone": phone, "headers": bearer(pair), "pair": pair}

    async def code(self, who: dict[str, Any]) -> str:
        r = await self.client.get("/api/v1/codes/current", headers=who["headers"])
        assert r.status_code == 200, r.text
        return str(r.json()["token"])

    async def scan(
        self, door: str, who: dict[str, Any], *, locale: str = "zh-CN", fresh: bool = True
    ) -> dict[str, Any]:
        if fresh:
            self.clock.advance(31)  # a fresh code: a code opens a door once
        token = await self.code(who)
        r = await self.client.post(
            "/api/v1/scans",
            json={"token": token},
            headers={**self.doors[door]["headers"], "Accept-Language": locale},
        )
        assert r.status_code == 200, r.text
        return dict(r.json())

    async def add_resident(
        self, place: str, who: dict[str, Any], building: str | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"phone": who["phone"]}
        if building:
            body["building"] = building
        r = await self.client.post(f"{APP}/places/{place}/residents", json=body, headers=self.manager)
        assert r.status_code == 201, r.text
        return dict(r.json())


@pytest.fixture
async def city(make_client, login, new_phone, enrol_scanner):
    clock = FrozenClock(datetime(2026, 11, 25, 1, 0, tzinfo=UTC))  # 09:00 in Shenyang
    async with make_client(clock=clock, access_token_ttl=30 * 86400, miniapps=[]) as client:
        c = City(client, clock, login, new_phone, enrol_scanner)
        await c.start()
        yield c
