"""How the payment centre plugs in: channels from settings, orders, callbacks, the webhook dispatcher."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from litestar.config.app import AppConfig
from litestar.di import Provide
from litestar.plugins import InitPlugin

from backend.crypto import Keyring, keyed_hash
from backend.runtime import Runtime
from backend.settings import Settings, decode_key
from payments.channels.alipay import Alipay
from payments.channels.base import Channel
from payments.channels.sandbox import Sandbox
from payments.channels.wechatpay import WeChatPay
from payments.controllers import (
    NOTIFY_HANDLERS,
    MyOrdersController,
    OrdersController,
    ReconciliationController,
    SandboxPayController,
    enabled_channels,
)
from payments.events import OwnerSubscribers
from payments.services import PAYMENTS, NotificationService, OrderService, PaymentServices
from payments.webhooks import WebhookDispatcher, WebhookEndpoints

log = logging.getLogger("shengshitong.payments")


def _pem(path: str, private: bool = False) -> Any:
    data = Path(path).read_bytes()
    return (
        serialization.load_pem_private_key(data, None) if private else serialization.load_pem_public_key(data)
    )


def build_channels(s: Settings, now: Callable[[], float]) -> dict[str, Channel]:
    """Each enabled channel from its settings; a missing key names the setting."""
    channels: dict[str, Channel] = {}
    for name in [c.strip() for c in s.payment_channels.split(",") if c.strip()]:
        if name == "sandbox":
            sandbox_key = bytes.fromhex(keyed_hash(s.secret_bytes("secret_key"), "sandbox-channel", "v1"))
            channels[name] = Sandbox(sandbox_key, s.public_url, now)
        elif name == "wechatpay":
            keys_dir = Path(s.wechatpay_platform_keys_dir)
            if not (s.wechatpay_mchid and s.wechatpay_appid and s.wechatpay_apiv3_key and keys_dir.is_dir()):
                raise ValueError(
                    "wechatpay needs SHENGSHI_WECHATPAY_MCHID, _APPID, _APIV3_KEY and _PLATFORM_KEYS_DIR"
                )
            platform = {
                p.stem: WeChatPay.load_public_key(p.read_bytes()) for p in sorted(keys_dir.glob("*.pem"))
            }
            key = (
                s.wechatpay_apiv3_key.encode()
                if len(s.wechatpay_apiv3_key) == 32
                else decode_key(s.wechatpay_apiv3_key)
            )
            channels[name] = WeChatPay(
                mchid=s.wechatpay_mchid,
                appid=s.wechatpay_appid,
                apiv3_key=key,
                platform_keys=platform,
            )
        elif name == "alipay":
            if not (s.alipay_app_id and s.alipay_seller_id and s.alipay_public_key_file):
                raise ValueError(
                    "alipay needs SHENGSHI_ALIPAY_APP_ID, _SELLER_ID and SHENGSHI_ALIPAY_PUBLIC_KEY_FILE"
                )
            channels[name] = Alipay(
                app_id=s.alipay_app_id,
                seller_id=s.alipay_seller_id,
                alipay_public_key=_pem(s.alipay_public_key_file),
                app_private_key=_pem(s.alipay_app_private_key_file, True)
                if s.alipay_app_private_key_file
                else None,
                notify_url=f"{s.public_url}/api/v1/payments/notify/alipay",
            )
        else:
            raise ValueError(f"unknown payment channel {name!r} in SHENGSHI_PAYMENT_CHANNELS")
    return channels


def build_payment_services(runtime: Runtime) -> PaymentServices:
    s = runtime.settings
    channels = build_channels(s, runtime.clock.time)
    notifications = NotificationService(runtime.clock, channels)
    endpoints = WebhookEndpoints(runtime.clock, Keyring(s.pii_keyring()))
    subscribers = OwnerSubscribers()
    return PaymentServices(
        channels=channels,
        orders=OrderService(
            runtime.clock, channels, callbacks=notifications, order_ttl=s.order_ttl, public_url=s.public_url
        ),
        notifications=notifications,
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
        # a channel that is not enabled has no notify route (its callbacks get the usual 404 problem)
        handlers.extend(NOTIFY_HANDLERS[name] for name in self.channels)
        if "sandbox" in self.channels:  # its payment page (pay_url) is the web faces' (console/)
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
