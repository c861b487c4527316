"""The one composition root: ``create_app(settings) -> Litestar``.

It builds the runtime (engine, store, clock), then each package's services from the services they depend
on, passed in, in the order of the layers (identity, codes, payments, the mini-app platform and its gate,
the web faces), and lists the plugins that mount them. It is the only module that imports every package.
"""

from __future__ import annotations

from dataclasses import dataclass

from litestar import Litestar
from litestar.plugins import PluginProtocol

from auth.plugin import AuthPlugin
from auth.services import AuthServices, build_auth_services
from backend.i18n import locale_middleware
from backend.logs import configure_logging
from backend.middleware import request_id_middleware
from backend.plugin import CorePlugin
from backend.runtime import Runtime, Slot, build_runtime
from backend.settings import Settings, load_settings
from codes.plugin import CodesPlugin
from codes.services import CodeServices, build_code_services
from console.plugin import ConsolePlugin
from console.services import ConsoleServices, build_console_services
from fees.plugin import FeesPlugin
from fees.setup import FeeServices, build_fee_services
from licences.plugin import LicencesPlugin
from licences.setup import LicenceServices, build_licence_services
from messages.plugin import MessagesPlugin
from messages.setup import MessageServices, build_message_services
from miniapps.contract import MiniApp
from miniapps.gateway import gate_door
from miniapps.plugin import MiniAppsPlugin
from miniapps.services import MiniAppServices, build_miniapp_services
from payments.plugin import PaymentsPlugin, build_payment_services
from payments.services import PaymentServices
from ratings.plugin import RatingsPlugin
from ratings.setup import RatingServices, build_rating_services

__all__ = ["SERVICES", "Services", "build_runtime", "create_app", "services_of"]


@dataclass(frozen=True)
class Services:
    """Every package's services of one app, typed (tests, benchmarks and embedding read them here)."""

    auth: AuthServices
    codes: CodeServices
    payments: PaymentServices
    messages: MessageServices
    ratings: RatingServices
    licences: LicenceServices
    fees: FeeServices
    miniapps: MiniAppServices
    console: ConsoleServices


SERVICES = Slot[Services]("all")


def services_of(app: Litestar) -> Services:
    return SERVICES.of(app)


def build_services(runtime: Runtime, extra_miniapps: list[type[MiniApp]] | None = None) -> Services:
    auth = build_auth_services(runtime)
    codes = build_code_services(runtime, auth.revocations, auth.realname.observers)
    payments = build_payment_services(runtime)
    messages, payment_messages = build_message_services(
        runtime, auth=auth, citizen_of_order=payments.orders.citizen_of
    )
    payments.subscribers.observe("messages", payment_messages)
    ratings, order_ratings = build_rating_services(
        runtime, auth=auth, messages=messages, citizen_of_order=payments.orders.citizen_of
    )
    payments.subscribers.observe("ratings", order_ratings)
    licences = build_licence_services(runtime, auth=auth, messages=messages, trust_root=codes.keys.root)
    fees = build_fee_services(runtime, auth=auth, payments=payments, messages=messages)
    miniapps = build_miniapp_services(
        runtime,
        auth=auth,
        codes=codes,
        payments=payments,
        messages=messages,
        ratings=ratings,
        licences=licences,
        extra=extra_miniapps,
    )
    console = build_console_services(
        runtime,
        auth=auth,
        codes=codes,
        payments=payments,
        messages=messages,
        ratings=ratings,
        licences=licences,
        miniapps=miniapps,
    )
    return Services(
        auth=auth,
        codes=codes,
        payments=payments,
        messages=messages,
        ratings=ratings,
        licences=licences,
        fees=fees,
        miniapps=miniapps,
        console=console,
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
    services = build_services(runtime, extra_miniapps)
    plugins: list[PluginProtocol] = [
        CorePlugin(runtime),
        AuthPlugin(runtime, services.auth),
        CodesPlugin(
            services.codes,
            live=runtime.live,
            upload_limit=settings.entitlement_upload_max_bytes,
        ),
        PaymentsPlugin(runtime, services.payments),
        MessagesPlugin(services.messages, env=settings.env),
        RatingsPlugin(services.ratings, env=settings.env),
        LicencesPlugin(services.licences, env=settings.env),
        FeesPlugin(services.fees),
        MiniAppsPlugin(services.miniapps),
        ConsolePlugin(runtime, services.console, auth=services.auth, apps=services.miniapps.apps),
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
    # The gate's own door for well-formed scans (miniapps/gateway.py), inside the request id and the
    # language, outside Litestar's general stack; everything else goes on to it unchanged.
    app.asgi_handler = gate_door(app, app.asgi_handler)
    # The request id wraps the whole ASGI handler, outside routing, so a 404 or 405 carries one too.
    app.asgi_handler = request_id_middleware(app.asgi_handler)
    # The request's language (Accept-Language, zh-CN by default) for every text a person reads.
    app.asgi_handler = locale_middleware(app.asgi_handler)
    app.state.runtime = runtime
    SERVICES.put(app.state, services)
    return app
