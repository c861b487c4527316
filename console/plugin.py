"""How the web faces plug in: the console (piccolo-admin behind our gate) mounted at /admin, the live
dashboard with its channel, the scanner simulator, the wallet page, the sandbox's payment page (while the
payment centre has the sandbox channel) and the static assets."""

from __future__ import annotations

from typing import Any

from litestar import asgi
from litestar.channels import ChannelsPlugin
from litestar.channels.backends.base import ChannelsBackend
from litestar.channels.backends.memory import MemoryChannelsBackend
from litestar.config.app import AppConfig
from litestar.di import Provide
from litestar.plugins import InitPlugin
from litestar.static_files import create_static_files_router
from litestar.types import Receive, Scope, Send

from backend.runtime import Runtime
from console.admin import PREFIX, ConsoleGate
from console.channels import ResilientRedisPubSub
from console.controllers import STATIC, DashboardController, Pages, SandboxPayPage, ScannerController
from console.dashboard import Dashboard
from console.operators import OperatorService
from console.simulator import ScannerSimulator


def _channels_backend(runtime: Runtime) -> ChannelsBackend:
    if runtime.settings.uses_redis:
        import redis.asyncio as aioredis

        # its own connection: a pub/sub subscription holds one for as long as the app runs
        return ResilientRedisPubSub(redis=aioredis.Redis.from_url(runtime.settings.redis_url))
    return MemoryChannelsBackend()


class ConsolePlugin(InitPlugin):
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.channel = f"{runtime.settings.store_prefix}dashboard"
        self.channels = ChannelsPlugin(backend=_channels_backend(runtime), channels=[self.channel])
        self.operators = OperatorService()
        self.dashboard = Dashboard(runtime, self.channels, self.channel)
        self.simulator = ScannerSimulator(runtime)
        self.gate = ConsoleGate(runtime, self.operators)
        runtime.services["console"] = self

    async def seed_demo(self) -> list[str]:
        """Demo scanners for the simulator and a demo console operator, outside production only."""
        if self.runtime.settings.env == "prod":
            return []
        from console.demo import seed

        return await seed(self.runtime, self.operators)

    async def _startup(self) -> None:
        if self.runtime.background:
            await self.dashboard.start()

    async def _shutdown(self) -> None:
        await self.dashboard.stop()

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        self.channels.on_app_init(app_config)
        gate = self.gate

        @asgi(PREFIX, is_mount=True, copy_scope=True, include_in_schema=False)
        async def console(scope: Scope, receive: Receive, send: Send) -> None:
            await gate(scope, receive, send)  # type: ignore[arg-type]

        handlers: list[Any] = [
            console,
            Pages,
            DashboardController,
            ScannerController,
            create_static_files_router(
                path="/static/web", directories=[STATIC], include_in_schema=False, send_as_attachment=False
            ),
        ]
        # the sandbox's pay_url: a page only while the payment centre has the sandbox (never in production)
        payments = self.runtime.services.get("payments")
        if payments is not None and payments.page_channel is not None:
            handlers.append(SandboxPayPage)
        app_config.route_handlers.extend(handlers)
        app_config.dependencies.update(
            {
                "dashboard": Provide(lambda: self.dashboard, sync_to_thread=False, use_cache=True),
                "scanner_simulator": Provide(lambda: self.simulator, sync_to_thread=False, use_cache=True),
            }
        )
        app_config.signature_namespace.update(
            {"Dashboard": Dashboard, "ScannerSimulator": ScannerSimulator, "ChannelsPlugin": ChannelsPlugin}
        )
        app_config.on_startup.append(self._startup)
        app_config.on_shutdown.insert(0, self._shutdown)
        return app_config
