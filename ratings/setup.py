"""The evaluation centre's services, built once in the composition root: its messages (the invitation, the
answer to a bad rating), the platform's own rateable service (a paid order, answered for by the payment
centre), the round that escalates overdue cases, and what an account's deletion takes with it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from auth.services import AuthServices
from backend.runtime import Runtime, Slot
from messages.services import PLATFORM
from messages.setup import MessageServices
from messages.templates import Template
from payments.events import OrderEvent
from ratings._cases import Cases, CaseSettings
from ratings._stats import Stats
from ratings.rules import Rateable, Unit
from ratings.services import Declared, RatingCentre, Units

log = logging.getLogger("shengshitong.ratings")

TEMPLATES: dict[str, Template] = {
    "rating_invite": Template(
        category="transactional",
        title_zh="邀您评价：{service}",
        title_en="How was it? {service_en}",
        body_zh="您在{unit}办理的{service}已完成，欢迎对本次服务作出评价（{closes}前有效）。",
        body_en="You used {service_en} at {unit_en}. Tell us how it went (until {closes}).",
        placeholders={
            "service": "text",
            "service_en": "text",
            "unit": "text",
            "unit_en": "text",
            "closes": "datetime",
        },
        link="/wallet#ratings",
        description="服务完成后邀请办事人评价（好差评·邀评）/ invites the citizen to rate a service they had",
    ),
    "rating_feedback": Template(
        category="transactional",
        title_zh="您的评价已处理",
        title_en="Your rating has been answered",
        body_zh="{unit}对您关于{service}的评价作出答复：{answer} 请对处理结果作出评价。",
        body_en="{unit_en} answered your rating of {service_en}: {answer} Tell us what you think of it.",
        placeholders={
            "service": "text",
            "service_en": "text",
            "unit": "text",
            "unit_en": "text",
            "answer": "paragraph",
        },
        link="/wallet#ratings",
        description="单位对差评整改或解释后反馈给评价人，并邀请回访 / the unit's answer to a bad rating,"
        " with the call-back invitation",
    ),
}

# the platform's own rateable services and units
PLATFORM_SERVICES: dict[str, Rateable] = {
    "payment": Rateable(
        name_zh="统一支付",
        name_en="Payment",
        channel="online",
        window_days=15,
        invite=False,  # every payment would be one invitation too many: rated from the list of services
        description="一笔订单支付成功 / an order paid through the payment centre",
    )
}
PLATFORM_UNITS = [
    Unit(code="platform", name_zh="盛事通平台", name_en="Shengshitong platform"),
    Unit(code="payments", name_zh="统一支付中心", name_en="Unified payment centre"),
]


@dataclass
class RatingServices:
    centre: RatingCentre
    cases: Cases
    stats: Stats
    declared: Declared
    background: bool = True
    interval: float = 60.0
    _task: asyncio.Task[None] | None = None

    def register(self, owner: str, services: dict[str, Rateable], default_unit: Unit | None) -> None:
        """A mini-app's rateable services (from its manifest) and its own unit, when the platform loads it."""
        self.declared.declare(owner, services, [default_unit] if default_unit else [])

    async def departed(self, citizen_id: str, device_id: str | None) -> None:
        if device_id is None:  # the account is deleted (a device signing out changes nothing here)
            await self.centre.forget(citizen_id)

    async def start(self) -> None:
        await self.centre.units.sync(self.declared)
        if self.background:
            self._task = asyncio.create_task(self._loop(), name="ratings")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                await self.cases.tick()
            except Exception:
                log.exception("ratings round failed; retrying")
            await asyncio.sleep(self.interval)


RATINGS = Slot[RatingServices]("ratings")


class OrderRatings:
    """A paid order → a rateable event of the payment centre (no invitation: see PLATFORM_SERVICES)."""

    def __init__(self, centre: RatingCentre, citizen_of: Callable[[str], Awaitable[str | None]]) -> None:
        self._centre = centre
        self._citizen_of = citizen_of

    async def __call__(self, owner: str, event: OrderEvent) -> None:
        if event.type != "order.paid":
            return
        citizen = await self._citizen_of(event.order_id)
        if citizen is None:
            return
        await self._centre.record(
            PLATFORM, "payment", citizen, f"order:{event.order_id}", unit="payments", at=event.at
        )


def build_rating_services(
    runtime: Runtime,
    *,
    auth: AuthServices,
    messages: MessageServices,
    citizen_of_order: Callable[[str], Awaitable[str | None]],
) -> tuple[RatingServices, OrderRatings]:
    s = runtime.settings
    messages.templates.declare(PLATFORM, TEMPLATES)
    declared = Declared()
    declared.declare(PLATFORM, PLATFORM_SERVICES, PLATFORM_UNITS)

    units = Units(runtime.clock)
    cases = Cases(
        runtime.clock,
        messages.centre,
        CaseSettings(rectify_days=s.rating_rectify_days, callback_days=s.rating_callback_days),
        units,
        declared,
    )
    centre = RatingCentre(
        runtime.clock, messages.centre, declared, units, cases, key=s.secret_bytes("secret_key")
    )
    services = RatingServices(
        centre=centre,
        cases=cases,
        stats=Stats(runtime.clock, declared),
        declared=declared,
        background=runtime.background,
        interval=s.rating_interval,
    )
    auth.sessions.departures.append(services.departed)
    return services, OrderRatings(centre, citizen_of_order)
