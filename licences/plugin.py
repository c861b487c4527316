"""How the e-licence centre plugs into the app: its routes and its services for handlers, and the demo's
issuer and licences."""

from __future__ import annotations

from litestar.config.app import AppConfig
from litestar.di import Provide
from litestar.plugins import InitPlugin

from licences import demo
from licences.controllers import (
    IssuedLicencesController,
    LicenceRequestsController,
    MyLicenceRequestsController,
    MyLicencesController,
    MyLicenceUsesController,
    OperatorLicencesController,
    PublicLicencesController,
)
from licences.setup import LICENCES, LicenceServices


class LicencesPlugin(InitPlugin):
    def __init__(self, services: LicenceServices, *, env: str) -> None:
        self.services = services
        self.env = env

    async def seed_demo(self) -> list[str]:
        """Outside production: a traffic police issuer and the demo citizen's driving and vehicle
        licences."""
        if self.env == "prod":
            return []
        return await demo.seed(self.services)

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        services = self.services
        LICENCES.put(app_config.state, services)
        app_config.route_handlers.extend(
            [
                PublicLicencesController,
                IssuedLicencesController,
                MyLicencesController,
                MyLicenceRequestsController,
                MyLicenceUsesController,
                LicenceRequestsController,
                OperatorLicencesController,
            ]
        )
        app_config.dependencies["licences"] = Provide(lambda: services, sync_to_thread=False, use_cache=True)
        app_config.signature_namespace.update({"LicenceServices": LicenceServices})
        return app_config
