"""How the mini-app platform plugs in: mount the enabled mini-apps' routes under /api/v1/apps/{id},
the gate's scan routes, the catalogue and the mini-app login."""

from __future__ import annotations

from typing import Any

from litestar import Router
from litestar.config.app import AppConfig
from litestar.di import Provide
from litestar.plugins import InitPlugin

from miniapps.controllers import GrantsController, MiniAppsController, MyScansController, ScansController
from miniapps.deps import DEPENDENCIES, AppCaller, citizen_caller
from miniapps.gate import Gate
from miniapps.services import MINIAPPS, MiniAppAuth, MiniAppServices


class MiniAppsPlugin(InitPlugin):
    def __init__(self, services: MiniAppServices) -> None:
        self.services = services

    async def _startup(self) -> None:
        await self.services.gate.start()
        for app in self.services.apps.values():
            await app.startup()

    async def _shutdown(self) -> None:
        await self.services.gate.stop()
        for app in reversed(list(self.services.apps.values())):
            await app.shutdown()

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        services = self.services
        MINIAPPS.put(app_config.state, services)
        handlers: list[Any] = [MiniAppsController, GrantsController, ScansController, MyScansController]
        for app_id, app in services.apps.items():
            routes = app.route_handlers()
            if routes:
                handlers.append(
                    Router(
                        path=f"/api/v1/apps/{app_id}",
                        route_handlers=routes,
                        tags=[f"mini-app: {app_id}"],
                        opt={"miniapp_id": app_id},
                    )
                )
        app_config.route_handlers.extend(handlers)
        app_config.dependencies.update(
            {
                **DEPENDENCIES,
                "miniapps": Provide(lambda: services, sync_to_thread=False, use_cache=True),
                "miniapp_auth": Provide(lambda: services.auth, sync_to_thread=False, use_cache=True),
                "gate": Provide(lambda: services.gate, sync_to_thread=False, use_cache=True),
            }
        )
        app_config.signature_namespace.update(
            {
                "AppCaller": AppCaller,
                "MiniAppAuth": MiniAppAuth,
                "Gate": Gate,
                "MiniAppServices": MiniAppServices,
            }
        )
        app_config.on_startup.append(self._startup)
        app_config.on_shutdown.insert(0, self._shutdown)
        return app_config

    async def seed_demo(self) -> list[str]:
        lines: list[str] = []
        for app in self.services.apps.values():
            seeding = app.seed_demo()
            if seeding is not None:
                lines.extend(await seeding or [])
        return lines


__all__ = ["AppCaller", "MiniAppsPlugin", "citizen_caller"]
