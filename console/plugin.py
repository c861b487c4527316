"""How the web faces plug in: the console (piccolo-admin behind our gate) mounted at /admin, the live
dashboard with its channel, the scanner simulator, the 好差评 and 电子证照 pages, the wallet page, the
sandbox's payment page (while the payment centre has the sandbox channel) and the static assets."""

from __future__ import annotations

from typing import Any

from litestar import asgi
from litestar.channels import ChannelsPlugin
from litestar.config.app import AppConfig
from litestar.di import Provide
from litestar.plugins import InitPlugin
from litestar.static_files import create_static_files_router
from litestar.types import Receive, Scope, Send

from auth.services import AuthServices
from backend.runtime import Runtime
from console._licences_controller import LicencesController
from console._payments_controller import PaymentsDeskController
from console._ratings_controller import RatingsController
from console.admin import PREFIX
from console.controllers import STATIC, DashboardController, Pages, SandboxPayPage, ScannerController
from console.dashboard import Dashboard
from console.demo import seed
from console.licences import LicencesDesk
from console.ratings import RatingsDesk
from console.services import CONSOLE, ConsoleServices
from console.simulator import ScannerSimulator
from miniapps.contract import MiniApp


class ConsolePlugin(InitPlugin):
    def __init__(
        self, runtime: Runtime, services: ConsoleServices, *, auth: AuthServices, apps: dict[str, MiniApp]
    ) -> None:
        self.runtime = runtime
        self.services = services
        # the simulator's demo scanners: machine credentials of the enabled mini-apps
        self._auth = auth
        self._apps = apps

    async def seed_demo(self) -> list[str]:
        """Demo scanners for the simulator and a demo console operator, outside production only."""
        if self.runtime.settings.env == "prod":
            return []
        return await seed(self._auth, self._apps, self.services.operators)

    async def _startup(self) -> None:
        if self.runtime.background:
            await self.services.dashboard.start()

    async def _shutdown(self) -> None:
        await self.services.dashboard.stop()

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        services = self.services
        CONSOLE.put(app_config.state, services)
        services.channels.on_app_init(app_config)
        gate = services.admin

        @asgi(PREFIX, is_mount=True, copy_scope=True, include_in_schema=False)
        async def console(scope: Scope, receive: Receive, send: Send) -> None:
            await gate(scope, receive, send)  # type: ignore[arg-type]

        handlers: list[Any] = [
            console,
            Pages,
            DashboardController,
            ScannerController,
            RatingsController,
            PaymentsDeskController,
            LicencesController,
            create_static_files_router(
                path="/static/web", directories=[STATIC], include_in_schema=False, send_as_attachment=False
            ),
        ]
        # the sandbox's pay_url: a page only while the payment centre has the sandbox (never in production)
        if services.sandbox_page:
            handlers.append(SandboxPayPage)
        app_config.route_handlers.extend(handlers)
        app_config.dependencies.update(
            {
                "dashboard": Provide(lambda: services.dashboard, sync_to_thread=False, use_cache=True),
                "scanner_simulator": Provide(
                    lambda: services.simulator, sync_to_thread=False, use_cache=True
                ),
                "ratings_desk": Provide(lambda: services.ratings, sync_to_thread=False, use_cache=True),
                "licences_desk": Provide(lambda: services.licences, sync_to_thread=False, use_cache=True),
            }
        )
        app_config.signature_namespace.update(
            {
                "Dashboard": Dashboard,
                "ScannerSimulator": ScannerSimulator,
                "ChannelsPlugin": ChannelsPlugin,
                "RatingsDesk": RatingsDesk,
                "LicencesDesk": LicencesDesk,
            }
        )
        app_config.on_startup.append(self._startup)
        app_config.on_shutdown.insert(0, self._shutdown)
        return app_config
