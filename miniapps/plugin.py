"""How the mini-app platform plugs in: discover and enable mini-apps, mount their routes under
/api/v1/apps/{id}, route scans to them, and offer them login and payments."""

from __future__ import annotations

from typing import Any

from litestar import Router
from litestar.config.app import AppConfig
from litestar.di import Provide
from litestar.plugins import InitPlugin

from backend.runtime import Runtime
from backend.scans import MyScansController, ScanRouter, ScansController
from miniapps.contract import MiniApp
from miniapps.controllers import GrantsController, MiniAppsController
from miniapps.deps import DEPENDENCIES, AppCaller, citizen_caller
from miniapps.registry import MiniAppError, discover, enabled, load_config, piccolo_apps, wanted
from miniapps.services import AppPlatform, MiniAppAuth, Pairwise


class MiniAppsPlugin(InitPlugin):
    def __init__(self, runtime: Runtime, extra: list[type[MiniApp]] | None = None) -> None:
        self.runtime = runtime
        s = runtime.settings
        named = wanted(s.miniapps)
        classes = enabled(
            named + [c.manifest.id for c in extra or [] if c.manifest.id not in named], discover(extra)
        )
        # each one's Piccolo app is checked at start-up (and its tables loaded, so the engine binds them)
        piccolo_apps(classes)
        self.apps: dict[str, MiniApp] = {}
        for cls in classes:
            platform = AppPlatform(
                cls.manifest.id, load_config(cls.manifest), runtime.store, runtime.clock, runtime.services
            )
            try:
                self.apps[cls.manifest.id] = cls(platform)
            except Exception as exc:
                raise MiniAppError(f"mini-app {cls.manifest.id!r} failed to start: {exc}") from exc
        self.pairwise = Pairwise(s)
        self.auth = MiniAppAuth(s, runtime.clock, runtime.store, self.pairwise, self.apps)
        codes = runtime.services["codes"]
        self.router = ScanRouter(
            codes.scans,
            self.apps,
            self.pairwise,
            budget=s.miniapp_scan_budget,
            observers=runtime.scan_observers,
        )
        runtime.services["miniapps"] = self

    async def _startup(self) -> None:
        for app in self.apps.values():
            await app.startup()

    async def _shutdown(self) -> None:
        await self.router.settle()
        for app in reversed(list(self.apps.values())):
            await app.shutdown()

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        handlers: list[Any] = [MiniAppsController, GrantsController, ScansController, MyScansController]
        for app_id, app in self.apps.items():
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
                "miniapp_platform": Provide(lambda: self, sync_to_thread=False, use_cache=True),
                "miniapp_auth": Provide(lambda: self.auth, sync_to_thread=False, use_cache=True),
                "scan_router": Provide(lambda: self.router, sync_to_thread=False, use_cache=True),
            }
        )
        app_config.signature_namespace.update(
            {"AppCaller": AppCaller, "MiniAppAuth": MiniAppAuth, "ScanRouter": ScanRouter}
        )
        app_config.on_startup.append(self._startup)
        app_config.on_shutdown.insert(0, self._shutdown)
        return app_config

    async def seed_demo(self) -> list[str]:
        lines: list[str] = []
        for app in self.apps.values():
            seeding = app.seed_demo()
            if seeding is not None:
                lines.extend(await seeding or [])
        return lines


__all__ = ["AppCaller", "MiniAppsPlugin", "citizen_caller"]
