"""How the non-tax fee centre plugs into the app: its routes, its services for handlers, the fiscal
notifier started and stopped with the app."""

from __future__ import annotations

from litestar.config.app import AppConfig
from litestar.di import Provide
from litestar.plugins import InitPlugin

from fees.controllers import CONTROLLERS
from fees.setup import FEES, FeeServices


class FeesPlugin(InitPlugin):
    def __init__(self, services: FeeServices) -> None:
        self.services = services

    async def _startup(self) -> None:
        await self.services.start()

    async def _shutdown(self) -> None:
        await self.services.stop()

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        services = self.services
        FEES.put(app_config.state, services)
        app_config.route_handlers.extend(CONTROLLERS)
        app_config.dependencies["fees"] = Provide(lambda: services, sync_to_thread=False, use_cache=True)
        app_config.signature_namespace.update({"FeeServices": FeeServices})
        app_config.on_startup.append(self._startup)
        app_config.on_shutdown.insert(0, self._shutdown)
        return app_config
