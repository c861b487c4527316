"""How the message centre plugs into the app: its routes, its services for handlers, the templates synced
and the delivery and announcement rounds started with the app, and demo approvals."""

from __future__ import annotations

from litestar.config.app import AppConfig
from litestar.di import Provide
from litestar.plugins import InitPlugin

from messages.controllers import (
    InboxController,
    MyMessageSettingsController,
    OperatorMessagesController,
    PushKeyController,
    SendController,
)
from messages.demo import seed
from messages.setup import MESSAGES, MessageServices


class MessagesPlugin(InitPlugin):
    def __init__(self, services: MessageServices, *, env: str) -> None:
        self.services = services
        self.env = env

    async def seed_demo(self) -> list[str]:
        """Outside production: the declared templates approved (an operator's job in production) and a
        few messages in the demo citizen's inbox."""
        if self.env == "prod":
            return []
        return await seed(self.services)

    async def _startup(self) -> None:
        await self.services.start()

    async def _shutdown(self) -> None:
        await self.services.stop()

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        services = self.services
        MESSAGES.put(app_config.state, services)
        app_config.route_handlers.extend(
            [
                InboxController,
                MyMessageSettingsController,
                PushKeyController,
                SendController,
                OperatorMessagesController,
            ]
        )
        app_config.dependencies["messages"] = Provide(lambda: services, sync_to_thread=False, use_cache=True)
        app_config.signature_namespace.update({"MessageServices": MessageServices})
        app_config.on_startup.append(self._startup)
        app_config.on_shutdown.insert(0, self._shutdown)
        return app_config
