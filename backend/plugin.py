"""The core plugin: storage life cycle, errors, request ids, metrics, health, OpenAPI."""

from __future__ import annotations

from litestar.config.app import AppConfig
from litestar.di import Provide
from litestar.openapi.config import OpenAPIConfig
from litestar.plugins import InitPlugin
from litestar.plugins.prometheus import PrometheusConfig

from backend import db
from backend.apidocs import docs_router, render_plugins
from backend.clock import Clock
from backend.edge import EdgeMiddleware, StrictRequest
from backend.errors import EXCEPTION_HANDLERS
from backend.health import MetricsController, healthz, readyz
from backend.openapi import OpenAPITruthPlugin, components, replace_struct_schema_plugin
from backend.runtime import Runtime
from backend.settings import Settings
from backend.store import Store

DOCS = "/schema"


class CorePlugin(InitPlugin):
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def _startup(self) -> None:
        db.bind_engine(self.runtime.engine)
        await db.start(self.runtime.engine, self.runtime.settings)
        await self.runtime.store.start()

    async def _shutdown(self) -> None:
        await self.runtime.live.close()
        await self.runtime.store.close()
        await db.stop(self.runtime.engine)

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        rt = self.runtime
        db.bind_engine(rt.engine)
        app_config.route_handlers.extend([healthz, readyz, MetricsController])
        app_config.dependencies.update(
            {
                "runtime": Provide(lambda: rt, sync_to_thread=False, use_cache=True),
                "settings": Provide(lambda: rt.settings, sync_to_thread=False, use_cache=True),
                "store": Provide(lambda: rt.store, sync_to_thread=False, use_cache=True),
            }
        )
        app_config.signature_namespace.update(
            {"Runtime": Runtime, "Settings": Settings, "Store": Store, "Clock": Clock}
        )
        app_config.exception_handlers.update(EXCEPTION_HANDLERS)
        app_config.on_startup.insert(0, self._startup)
        app_config.on_shutdown.append(self._shutdown)
        prometheus = PrometheusConfig(
            app_name="shengshitong",
            prefix="shengshitong",
            group_path=True,
            exclude=["^/metrics", "^/healthz", "^/readyz"],
        )
        # outermost first: metrics, then the edge checks (before any guard or handler sees the request)
        app_config.middleware[:0] = [prometheus.middleware, EdgeMiddleware()]
        app_config.request_class = StrictRequest
        app_config.plugins.append(OpenAPITruthPlugin())
        replace_struct_schema_plugin(app_config.plugins)
        app_config.openapi_config = OpenAPIConfig(
            title="Shengshitong (盛事通) API",
            version="1",
            description="The backend of a city super app: one citizen code, mini-apps, unified payments.",
            path=DOCS,
            render_plugins=render_plugins(DOCS),
            openapi_router=docs_router(DOCS),
            components=components(),
        )
        return app_config
