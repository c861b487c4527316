"""Demo data for the message centre (``shengshi seed-demo``, never in production): every declared template
approved (in production an operator approves each in the console) and a welcome notice in the demo
citizen's inbox, so ``make run`` shows a working inbox."""

from __future__ import annotations

from auth.tables import Citizen
from messages.services import PLATFORM, Outgoing
from messages.setup import MessageServices

DEMO_PHONE_MASKED = "138****8000"


async def seed(services: MessageServices) -> list[str]:
    templates = services.templates
    await templates.sync()
    approved = 0
    for row in await templates.all():
        if not row["usable"]:
            await templates.decide(row["template_id"], "approve", operator="demo", note="demo data")
            approved += 1
    lines = [f"messages: {approved} templates approved for the demo ({len(templates.declared)} declared)"]
    demo = await Citizen.select(Citizen.id).where(Citizen.phone_masked == DEMO_PHONE_MASKED).first().run()
    if demo is not None:
        notices = await services.centre.send(
            PLATFORM,
            "city_notice",
            [
                Outgoing(
                    citizen_id=str(demo["id"]),
                    key="demo:welcome",
                    data={
                        "headline": "欢迎使用盛事通",
                        "headline_en": "Welcome to Shengshitong",
                        "text": "一个市民码，乘车、停车、就医、游玩都能用。消息会在这里出现。",
                        "text_en": (
                            "One citizen code for buses, parking, hospitals and sights. Messages appear here."
                        ),
                    },
                )
            ],
        )
        lines.append(f"messages: a welcome notice for the demo citizen ({notices[0].outcome})")
    return lines
