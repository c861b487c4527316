"""What the message tests of the services do as an operator and as a citizen, through the public API:
approve a template, subscribe to a reminder, read the inbox."""

from __future__ import annotations

from typing import Any

from tests.conftest import basic_auth


async def approve(client: Any, *template_ids: str) -> None:
    """An operator approves each template's current text in the console's API."""
    cred = await client.services.auth.machines.create("operator", name="messages desk")
    op = basic_auth(cred)
    for template_id in template_ids:
        r = await client.post(
            f"/api/v1/admin/message-templates/{template_id}/decision",
            json={"decision": "approve", "note": "checked"},
            headers=op,
        )
        assert r.status_code == 200 and r.json()["usable"] is True, r.text


async def subscribe(client: Any, me: dict[str, str], template_id: str, mode: str = "once") -> None:
    """The citizen accepts a reminder template (what the wallet asks when a service offers one)."""
    r = await client.put(f"/api/v1/me/message-subscriptions/{template_id}", json={"mode": mode}, headers=me)
    assert r.status_code == 200, r.text


async def inbox(client: Any, me: dict[str, str], locale: str = "zh-CN") -> list[dict[str, Any]]:
    """The citizen's inbox as the wallet lists it, newest first: ``{sender, title, body, ...}``."""
    r = await client.get("/api/v1/me/messages", headers={**me, "Accept-Language": locale})
    assert r.status_code == 200, r.text
    return list(r.json()["items"])
