"""How identity plugs into the app: routes, dependencies, signing keys at start-up, demo data."""

from __future__ import annotations

from litestar.config.app import AppConfig
from litestar.di import Provide
from litestar.plugins import InitPlugin

from auth.controllers import (
    AuthController,
    DevSmsController,
    DistrictsController,
    JwksController,
    MeController,
)
from auth.demo import seed
from auth.deps import DEPENDENCIES
from auth.pairwise import Pairwise
from auth.principals import CitizenPrincipal, MachinePrincipal
from auth.services import AUTH, AuthServices
from auth.sms import HttpSmsGateway
from backend.runtime import Runtime


class AuthPlugin(InitPlugin):
    def __init__(self, runtime: Runtime, services: AuthServices) -> None:
        self.runtime = runtime
        self.services = services

    async def seed_demo(self) -> list[str]:
        """A demo citizen verified by the development provider, outside production only."""
        if self.runtime.settings.env == "prod":
            return []
        return await seed(self.services)

    async def _startup(self) -> None:
        await self.services.keys.ensure()
        await self.services.revocations.ensure_loaded()

    async def _shutdown(self) -> None:
        if isinstance(self.services.sms, HttpSmsGateway):
            await self.services.sms.close()
        await self.services.realname.provider.close()

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        handlers: list[type] = [AuthController, MeController, JwksController, DistrictsController]
        if self.runtime.settings.sms_gateway == "dev" and self.runtime.settings.env != "prod":
            handlers.append(DevSmsController)
        app_config.route_handlers.extend(handlers)
        AUTH.put(app_config.state, self.services)
        pairwise = self.services.pairwise
        app_config.dependencies.update(
            {**DEPENDENCIES, "pairwise": Provide(lambda: pairwise, sync_to_thread=False, use_cache=True)}
        )
        app_config.signature_namespace.update(
            {
                "AuthServices": AuthServices,
                "Pairwise": Pairwise,
                "CitizenPrincipal": CitizenPrincipal,
                "MachinePrincipal": MachinePrincipal,
            }
        )
        app_config.on_startup.append(self._startup)
        app_config.on_shutdown.append(self._shutdown)
        return app_config
