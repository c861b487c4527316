"""How the evaluation centre plugs into the app: its routes, its services for handlers, the declared units
recorded and the overdue round started with the app, and the demo's ratings."""

from __future__ import annotations

from litestar.config.app import AppConfig
from litestar.di import Provide
from litestar.plugins import InitPlugin

from ratings import demo
from ratings.controllers import MyRatingsController, OperatorRatingsController, UnitCasesController
from ratings.setup import RATINGS, RatingServices


class RatingsPlugin(InitPlugin):
    def __init__(self, services: RatingServices, *, env: str) -> None:
        self.services = services
        self.env = env

    async def seed_demo(self) -> list[str]:
        """Outside production: a service for the demo citizen to rate, and a bad rating its unit answered."""
        if self.env == "prod":
            return []
        return await demo.seed(self.services)

    async def _startup(self) -> None:
        await self.services.start()

    async def _shutdown(self) -> None:
        await self.services.stop()

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        services = self.services
        RATINGS.put(app_config.state, services)
        app_config.route_handlers.extend(
            [MyRatingsController, UnitCasesController, OperatorRatingsController]
        )
        app_config.dependencies["ratings"] = Provide(lambda: services, sync_to_thread=False, use_cache=True)
        app_config.signature_namespace.update({"RatingServices": RatingServices})
        app_config.on_startup.append(self._startup)
        app_config.on_shutdown.insert(0, self._shutdown)
        return app_config
