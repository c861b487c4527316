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
from payments._recovery import PaymentRecovery, RecoveryTimes
from payments.controllers import (
    MyOrdersController,
    OrdersController,
    ReconciliationController,
    SandboxPayController,
    StatisticsController,
    enabled_channels,
    notify_route,
)
from payments.events import OwnerSubscribers
from payments.registry import build_channels
from payments.services import PAYMENTS, NotificationService, OrderService, PaymentServices
from payments.unpaid import UnpaidCounts
from payments.webhooks import WebhookDispatcher, WebhookEndpoints

log = logging.getLogger("shengshitong.payments")


def build_payment_services(runtime: Runtime) -> PaymentServices:
    s = runtime.settings
    channels = build_channels(s, runtime.clock.time)
    notifications = NotificationService(runtime.clock, channels)
    endpoints = WebhookEndpoints(runtime.clock, Keyring(s.pii_keyring()))
    subscribers = OwnerSubscribers()
    times = RecoveryTimes(query_after=s.payment_query_after, refund_retry_after=s.payment_refund_retry_after)
    orders = OrderService(
        runtime.clock,
        channels,
        callbacks=notifications,
        order_ttl=s.order_ttl,
        public_url=s.public_url,
        times=times,
        env=s.env,
    )
    unpaid = UnpaidCounts(runtime.store, orders)
    return PaymentServices(
        channels=channels,
        orders=orders,
        unpaid=unpaid,
        notifications=notifications,
        recovery=PaymentRecovery(runtime.clock, channels, notifications, times),
        endpoints=endpoints,
        webhooks=WebhookDispatcher(
            runtime.clock,
            endpoints,
            subscribers=subscribers,
            redis_url=s.redis_url,
            # the deployment's prefix, like every Redis key: deployments sharing a Redis keep their jobs
            queue_name=f"{s.store_prefix}webhooks",
            base_delay=s.webhook_base_delay,
            max_attempts=s.webhook_max_attempts,
            changed=unpaid.changed,
        ),
        subscribers=subscribers,
    )


class PaymentsPlugin(InitPlugin):
    def __init__(self, runtime: Runtime, services: PaymentServices) -> None:
        self.runtime = runtime
        self.services = services
        self.channels = services.channels
        self.orders = services.orders
        self.webhooks = services.webhooks
        self._closer: asyncio.Task[None] | None = None
        self._recoverer: asyncio.Task[None] | None = None

    async def _close_expired_loop(self) -> None:
        while True:
            await asyncio.sleep(60)
            try:
                await self.orders.close_expired()
            except Exception:
                log.exception("closing expired orders failed; will retry")

    async def _recovery_loop(self, interval: float) -> None:
        """Every worker runs it: the tasks it claims are its own (payments._recovery)."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.services.recovery.run_once()
            except Exception:
                log.exception("the payment centre's channel tasks failed; will retry")

    async def _startup(self) -> None:
        if not self.runtime.background:
            return
        await self.webhooks.start(self.runtime.settings.webhook_interval)
        self._closer = asyncio.create_task(self._close_expired_loop(), name="order-closer")
        interval = self.runtime.settings.payment_recovery_interval
        if interval > 0:
            self._recoverer = asyncio.create_task(self._recovery_loop(interval), name="payment-recovery")

    async def _shutdown(self) -> None:
        for task in (self._closer, self._recoverer):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self.webhooks.stop()

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        handlers: list[Any] = [
            OrdersController,
            ReconciliationController,
            StatisticsController,
            MyOrdersController,
            enabled_channels,
        ]
        if self.channels:  # one route for every channel; one that is not enabled gets the usual 404
            handlers.append(notify_route(list(self.channels)))
        if self.services.page_channel is not None:  # its payment page (pay_url) is the web faces' (console/)
            handlers.append(SandboxPayController)
        app_config.route_handlers.extend(handlers)
        PAYMENTS.put(app_config.state, self.services)
        services = self.services
        app_config.dependencies.update(
            {
                "orders": Provide(lambda: services.orders, sync_to_thread=False, use_cache=True),
                "notifications": Provide(
                    lambda: services.notifications, sync_to_thread=False, use_cache=True
                ),
            }
        )
        app_config.signature_namespace.update(
            {"OrderService": OrderService, "NotificationService": NotificationService}
        )
        app_config.on_startup.append(self._startup)
        app_config.on_shutdown.insert(0, self._shutdown)
        return app_config
