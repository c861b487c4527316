"""How the payment centre plugs in: channels from the registry and settings, orders, callbacks, the
webhook dispatcher."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from litestar.config.app import AppConfig
from litestar.di import Provide
from litestar.plugins import InitPlugin

from backend.crypto import Keyring
from backend.runtime import Runtime
from payments.channels.base import Capability
from payments.controllers import (
    MyOrdersController,
    OrdersController,
    ReconciliationController,
    SandboxPayController,
    enabled_channels,
    notify_route,
)
from payments.registry import build_channels
from payments.services import NotificationService, OrderService
from payments.webhooks import WebhookDispatcher, WebhookEndpoints

log = logging.getLogger("shengshitong.payments")


class PaymentsPlugin(InitPlugin):
    def __init__(self, runtime: Runtime) -> None:
        s = runtime.settings
        self.runtime = runtime
        self.channels = build_channels(s, runtime.clock.time)
        # the channel whose payment page this service serves (the sandbox's), if one is enabled
        self.page_channel = next(
            (name for name, c in self.channels.items() if Capability.PAY_PAGE in c.capabilities), None
        )
        self.orders = OrderService(
            runtime.clock, self.channels, order_ttl=s.order_ttl, public_url=s.public_url
        )
        self.notifications = NotificationService(runtime.clock, self.channels)
        self.orders.callbacks = self.notifications
        self.endpoints = WebhookEndpoints(runtime.clock, Keyring(s.pii_keyring()))
        self.webhooks = WebhookDispatcher(
            runtime.clock,
            self.endpoints,
            miniapp_handler=self._to_miniapp,
            redis_url=s.redis_url,
            # the deployment's prefix, like every Redis key: deployments sharing a Redis keep their jobs
            queue_name=f"{s.store_prefix}webhooks",
            base_delay=s.webhook_base_delay,
            max_attempts=s.webhook_max_attempts,
        )
        self._closer: asyncio.Task[None] | None = None
        runtime.services["payments"] = self

    async def _to_miniapp(self, app_id: str, event: dict[str, Any]) -> None:
        """A mini-app's payment-event handler, called through the same queue as webhooks."""
        from miniapps.contract import PaymentEvent

        platform = self.runtime.services["miniapps"]
        app = platform.apps.get(app_id)
        if app is None:
            raise RuntimeError(f"mini-app {app_id!r} is not enabled")
        data = event["data"]
        # events carry no citizen id (merchants get them too): the app's openid comes from the order
        citizen = await self.orders.citizen_of(data["order_id"])
        openid = await platform.pairwise.issue(app_id, citizen) if citizen else ""
        await app.on_payment_event(
            PaymentEvent(
                type=event["type"],
                order_id=data["order_id"],
                reference=data["reference"],
                openid=openid,
                amount=data["amount"],
                refunded=data["refunded"],
                at=WebhookDispatcher.event_time(event),
                data=data,
            )
        )

    async def _close_expired_loop(self) -> None:
        while True:
            await asyncio.sleep(60)
            try:
                await self.orders.close_expired()
            except Exception:
                log.exception("closing expired orders failed; will retry")

    async def _startup(self) -> None:
        if not self.runtime.background:
            return
        await self.webhooks.start(self.runtime.settings.webhook_interval)
        self._closer = asyncio.create_task(self._close_expired_loop(), name="order-closer")

    async def _shutdown(self) -> None:
        if self._closer is not None:
            self._closer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._closer
        await self.webhooks.stop()

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        handlers: list[Any] = [
            OrdersController,
            ReconciliationController,
            MyOrdersController,
            enabled_channels,
        ]
        if self.channels:  # one route for every channel; one that is not enabled gets the usual 404
            handlers.append(notify_route(list(self.channels)))
        if self.page_channel is not None:  # its payment page (pay_url) is the web faces' (console/)
            handlers.append(SandboxPayController)
        app_config.route_handlers.extend(handlers)
        app_config.dependencies.update(
            {
                "orders": Provide(lambda: self.orders, sync_to_thread=False, use_cache=True),
                "notifications": Provide(lambda: self.notifications, sync_to_thread=False, use_cache=True),
            }
        )
        app_config.signature_namespace.update(
            {"OrderService": OrderService, "NotificationService": NotificationService}
        )
        app_config.on_startup.append(self._startup)
        app_config.on_shutdown.insert(0, self._shutdown)
        return app_config
