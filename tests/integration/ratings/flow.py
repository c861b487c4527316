"""What the rating tests do through the public API: a parking stay that ends with an exit scan (the
invitation), a citizen's rating, a unit's and an operator's credentials."""

from __future__ import annotations

from typing import Any

from tests.conftest import basic_auth
from tests.integration.messages.citizen import approve
from tests.integration.parking.test_parking import scan

INVITE, FEEDBACK = "platform.rating_invite", "platform.rating_feedback"


class Place:
    """The demo car park with an entry and an exit gate, the parking mini-app's backend and an operator."""

    def __init__(self, client: Any, clock: Any, login: Any, new_phone: Any) -> None:
        self.client, self.clock, self._login, self._phone = client, clock, login, new_phone

    async def setup(self, enrol_scanner: Any) -> Place:
        await self.client.services.miniapps.apps["parking"].seed_demo()
        await approve(self.client, INVITE, FEEDBACK)
        self.entry = await enrol_scanner(self.client, "parking", context="parking-entry", place="P-HOSPITAL")
        self.exit = await enrol_scanner(self.client, "parking", context="parking-exit", place="P-HOSPITAL")
        machines = self.client.services.auth.machines
        self.parking = basic_auth(await machines.create("miniapp", app_id="parking", name="好停车后台"))
        self.operator = basic_auth(await machines.create("operator", name="好差评办"))
        return self

    async def citizen(self) -> dict[str, str]:
        pair = await self._login(self.client, self._phone())
        return {"Authorization": f"Bearer {pair['access_token']}"}

    async def stay(self, me: dict[str, str], plate: str = "辽A12345") -> dict[str, Any]:
        """Drive in and out an hour later; the citizen's stay is over (and rateable)."""
        await scan(self.client, me, self.entry, self.clock, plate=plate)
        out = await scan(self.client, me, self.exit, self.clock, plate=plate, advance=3600)
        assert out["result"] == "allow", out
        [event] = (await self.client.get("/api/v1/me/ratings/pending", headers=me)).json()["items"][:1]
        return event

    async def rate(self, me: dict[str, str], event_id: str, level: str, **extra: Any) -> Any:
        return await self.client.post(
            "/api/v1/me/ratings", json={"event_id": event_id, "level": level, **extra}, headers=me
        )
