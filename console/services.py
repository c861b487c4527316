"""The web faces' services: console operators, the live dashboard, the scanner simulator, the 好差评
desk, the 电子证照 desk and the console's ASGI gate around piccolo-admin, built from the services below
them."""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis
from litestar.channels import ChannelsPlugin
from litestar.channels.backends.base import ChannelsBackend
from litestar.channels.backends.memory import MemoryChannelsBackend

from auth.services import AuthServices
from backend.runtime import Runtime, Slot
from codes.services import CodeServices
from console.admin import ConsoleGate
from console.channels import ResilientRedisPubSub
from console.dashboard import Dashboard
from console.forms import console_forms
from console.licences import LicencesDesk
from console.operators import OperatorService
from console.ratings import RatingsDesk, RatingsPanel
from console.simulator import ScannerSimulator
from licences.setup import LicenceServices
from messages.setup import MessageServices
from miniapps.services import MiniAppServices
from payments.services import PaymentServices
from ratings.setup import RatingServices


@dataclass(frozen=True)
class ConsoleServices:
    operators: OperatorService
    channels: ChannelsPlugin  # the dashboard's live channel (Redis pub/sub reaches every worker)
    dashboard: Dashboard
    simulator: ScannerSimulator
    ratings: RatingsDesk  # the console's 好差评 page
    licences: LicencesDesk  # the console's 电子证照 page: the issuer register
    admin: ConsoleGate
    # the sandbox's payment page is served while the payment centre has a channel paid on it
    sandbox_page: bool


CONSOLE = Slot[ConsoleServices]("console")


def _channels_backend(runtime: Runtime) -> ChannelsBackend:
    if runtime.settings.uses_redis:
        # its own connection: a pub/sub subscription holds one for as long as the app runs
        return ResilientRedisPubSub(redis=aioredis.Redis.from_url(runtime.settings.redis_url))
    return MemoryChannelsBackend()


def build_console_services(
    runtime: Runtime,
    *,
    auth: AuthServices,
    codes: CodeServices,
    payments: PaymentServices,
    messages: MessageServices,
    ratings: RatingServices,
    licences: LicenceServices,
    miniapps: MiniAppServices,
) -> ConsoleServices:
    channel = f"{runtime.settings.store_prefix}dashboard"
    channels = ChannelsPlugin(backend=_channels_backend(runtime), channels=[channel])
    operators = OperatorService()
    return ConsoleServices(
        operators=operators,
        channels=channels,
        dashboard=Dashboard(runtime, channels, channel, miniapps.apps, RatingsPanel(ratings, runtime.clock)),
        simulator=ScannerSimulator(miniapps.gate),
        ratings=RatingsDesk(ratings),
        licences=LicencesDesk(licences, runtime.clock),
        admin=ConsoleGate(runtime, operators, lambda: console_forms(auth, codes, miniapps.apps, messages)),
        sandbox_page=payments.page_channel is not None,
    )
