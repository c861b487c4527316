"""The one composition root: ``create_app(settings) -> Litestar``.

It builds the runtime (engine, store, clock) and lists the plugins; each package knows its own insides.
"""

from __future__ import annotations

from litestar import Litestar
from litestar.plugins import PluginProtocol

from auth.plugin import AuthPlugin
from backend import db
from backend.clock import Clock, SystemClock
from backend.i18n import locale_middleware
from backend.logs import configure_logging
from backend.middleware import request_id_middleware
from backend.plugin import CorePlugin
from backend.runtime import Runtime
from backend.settings import Settings, load_settings
from backend.store import Store, create_store
from codes.plugin import CodesPlugin
from console.plugin import ConsolePlugin
from miniapps.contract import MiniApp
from miniapps.plugin import MiniAppsPlugin
from payments.plugin import PaymentsPlugin


def build_runtime(settings: Settings, *, clock: Clock | None = None, store: Store | None = None) -> Runtime:
    return Runtime(
        settings=settings,
        engine=db.create_engine(settings),
        store=store or create_store(settings.redis_url, settings.store_prefix),
        clock=clock or SystemClock(),
    )


def create_app(
    settings: Settings | None = None,
    *,
    runtime: Runtime | None = None,
    extra_plugins: list[PluginProtocol] | None = None,
    extra_miniapps: list[type[MiniApp]] | None = None,
) -> Litestar:
    """``extra_miniapps`` are enabled besides the installed ones that settings name (tests, embedding)."""
    settings = settings or (runtime.settings if runtime else load_settings())
    runtime = runtime or build_runtime(settings)
    configure_logging(settings.log_level, settings.log_json)
    plugins: list[PluginProtocol] = [
        CorePlugin(runtime),
        AuthPlugin(runtime),
        CodesPlugin(runtime),
        MiniAppsPlugin(runtime, extra_miniapps),
        PaymentsPlugin(runtime),
        ConsolePlugin(runtime),
        *(extra_plugins or []),
    ]
    # Logging is ours (JSON lines, masked, request id): Litestar's own dictConfig would replace it.
    # The body limit is given here: Litestar's app router takes it from its constructor's argument, not
    # from the AppConfig that plugins see.
    app = Litestar(
        route_handlers=[],
        plugins=plugins,
        debug=False,
        logging_config=None,
        request_max_body_size=settings.max_body_bytes,
    )
    # The request id wraps the whole ASGI handler, outside routing, so a 404 or 405 carries one too.
    app.asgi_handler = request_id_middleware(app.asgi_handler)
    # The request's language (Accept-Language, zh-CN by default) for every text a person reads.
    app.asgi_handler = locale_middleware(app.asgi_handler)
    app.state.runtime = runtime
    return app
