"""The message centre's services, built once in the composition root, and the platform's own templates
(payments: paid, refunded; operators: city notices)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from auth.services import AuthServices
from backend.crypto import Keyring
from backend.jobs import Jobs
from backend.keystore import KeyStore
from backend.runtime import Runtime, Slot
from messages._announce import Announcements
from messages._delivery import Deliveries, PushSubscriptions
from messages.services import (
    PLATFORM,
    Consents,
    Inbox,
    Limits,
    MessageCentre,
    Outgoing,
    Preferences,
    Templates,
    forget,
)
from messages.templates import Template
from messages.webpush import WebPushSender, application_server_key
from payments.events import OrderEvent

PLATFORM_TEMPLATES: dict[str, Template] = {
    "payment_paid": Template(
        category="transactional",
        title_zh="支付成功",
        title_en="Payment received",
        body_zh="{item}已支付 {amount}。",
        body_en="{amount} paid for {item}.",
        placeholders={"item": "text", "amount": "amount"},
        link="/wallet#orders",
        description="每笔订单支付成功后发送 / sent when an order is paid",
    ),
    "payment_refunded": Template(
        category="transactional",
        title_zh="退款成功",
        title_en="Refund made",
        body_zh="{item}已退款 {amount}，原路退回。",
        body_en="{amount} refunded for {item}, to the way you paid.",
        placeholders={"item": "text", "amount": "amount"},
        link="/wallet#orders",
        description="退款成功后发送 / sent when a refund succeeds",
    ),
    "city_notice": Template(
        category="announcement",
        title_zh="{headline}",
        title_en="{headline_en}",
        body_zh="{text}",
        body_en="{text_en}",
        placeholders={"headline": "text", "headline_en": "text", "text": "paragraph", "text_en": "paragraph"},
        description="运营人员发布的城市公告 / a city notice operators send to a segment",
    ),
}


@dataclass
class MessageServices:
    templates: Templates
    preferences: Preferences
    consents: Consents
    centre: MessageCentre
    inbox: Inbox
    subscriptions: PushSubscriptions
    deliveries: Deliveries
    announcements: Announcements
    vapid: KeyStore
    push_subject: str
    apps: set[str] = field(default_factory=set)
    background: bool = True
    interval: float = 1.0

    def register(self, owner: str, templates: dict[str, Template]) -> None:
        """A mini-app's templates (from its manifest), when the mini-app platform is built."""
        self.templates.declare(owner, templates)
        self.apps.add(owner)

    async def departed(self, citizen_id: str, device_id: str | None) -> None:
        """A device signed out: its browser gets no more pushes. An account deleted: its inbox, consents,
        preferences and browsers go with it."""
        if device_id is not None:
            await self.subscriptions.remove_device(citizen_id, device_id)
            return
        await forget(citizen_id)

    async def application_server_key(self) -> str:
        return application_server_key((await self.vapid.ensure()).private)  # type: ignore[arg-type]

    async def start(self) -> None:
        await self.templates.sync()
        key = await self.vapid.ensure()
        if self.deliveries.push is None:
            self.deliveries.push = WebPushSender(
                key.private,  # type: ignore[arg-type]
                self.push_subject,
                allowed_hosts=self.subscriptions.allowed_hosts,
            )
        self.centre.push_enabled = True
        if self.background:
            await self.deliveries.start(self.interval)
            await self.announcements.start(self.interval)

    async def stop(self) -> None:
        await self.announcements.stop()
        await self.deliveries.stop()


MESSAGES = Slot[MessageServices]("messages")


class PaymentMessages:
    """The payment centre's order events → the citizen's transactional messages (exactly one per event:
    the event's id is the key)."""

    def __init__(self, centre: MessageCentre, citizen_of: Callable[[str], Awaitable[str | None]]) -> None:
        self._centre = centre
        self._citizen_of = citizen_of

    async def __call__(self, owner: str, event: OrderEvent) -> None:
        name = {"order.paid": "payment_paid", "order.refunded": "payment_refunded"}.get(event.type)
        if name is None:
            return
        amount = (
            event.amount
            if event.type == "order.paid"
            else int(event.data.get("refund_amount") or event.refunded)
        )
        if amount <= 0:
            return
        citizen = await self._citizen_of(event.order_id)
        if citizen is None:
            return
        item = str(event.data.get("description") or event.reference or "订单")[:64]
        await self._centre.send(
            PLATFORM,
            name,
            [
                Outgoing(
                    citizen_id=citizen, key=f"order-event:{event.id}", data={"item": item, "amount": amount}
                )
            ],
        )


def build_message_services(
    runtime: Runtime, *, auth: AuthServices, citizen_of_order: Callable[[str], Awaitable[str | None]]
) -> tuple[MessageServices, PaymentMessages]:
    s, clock, store = runtime.settings, runtime.clock, runtime.store
    templates = Templates(clock)
    templates.declare(PLATFORM, PLATFORM_TEMPLATES)
    preferences = Preferences(clock)
    consents = Consents(clock, templates)
    limits = Limits(
        daily_cap=s.message_daily_cap,
        app_per_minute=s.message_app_per_minute,
        sms_after=s.message_sms_after,
    )
    apps: set[str] = set()  # the mini-apps that registered (announcement segments name them)
    subscriptions = PushSubscriptions(
        clock, Keyring(s.pii_keyring()), tuple(h.strip() for h in s.push_services.split(",") if h.strip())
    )
    centre = MessageCentre(
        clock, store, runtime.live, auth.pairwise, templates, preferences, consents, limits
    )
    jobs = Jobs(s.redis_url, f"{s.store_prefix}messages")
    deliveries = Deliveries(
        clock,
        centre,
        jobs,
        subscriptions,
        auth.sms,
        auth.profile.phone_of,
        base_delay=s.message_retry_base_delay,
        max_attempts=s.message_max_attempts,
        retention_days=s.message_retention_days,
    )
    services = MessageServices(
        templates=templates,
        preferences=preferences,
        consents=consents,
        centre=centre,
        inbox=Inbox(clock),
        subscriptions=subscriptions,
        deliveries=deliveries,
        announcements=Announcements(
            clock,
            store,
            centre,
            apps=apps,
            batch=s.message_announce_batch,
            lease=s.message_announce_lease,
        ),
        vapid=KeyStore("vapid", s.secret_bytes("key_encryption_key"), clock, default_alg="ES256"),
        push_subject=s.push_subject,
        background=runtime.background,
        interval=s.message_interval,
        apps=apps,
    )
    auth.sessions.departures.append(services.departed)
    return services, PaymentMessages(centre, citizen_of_order)
