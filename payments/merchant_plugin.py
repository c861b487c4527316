"""How merchants' routes plug in: their orders and settlements, order QR codes, tills, the pay code."""

from __future__ import annotations

from litestar.config.app import AppConfig
from litestar.di import Provide
from litestar.plugins import InitPlugin

from backend.runtime import Slot
from payments.merchant_controllers import (
    MerchantController,
    MyPayCodeController,
    OrderQrController,
    PayCodeController,
)
from payments.merchants import MerchantService, MerchantServices
from payments.paycode import PayCodeService

MERCHANTS = Slot[MerchantServices]("merchants")


class MerchantsPlugin(InitPlugin):
    def __init__(self, services: MerchantServices) -> None:
        self.services = services

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.route_handlers.extend(
            [MerchantController, OrderQrController, PayCodeController, MyPayCodeController]
        )
        MERCHANTS.put(app_config.state, self.services)
        services = self.services
        app_config.dependencies.update(
            {
                "merchants": Provide(lambda: services.merchants, sync_to_thread=False, use_cache=True),
                "paycode": Provide(lambda: services.paycode, sync_to_thread=False, use_cache=True),
            }
        )
        app_config.signature_namespace.update(
            {"MerchantService": MerchantService, "PayCodeService": PayCodeService}
        )
        return app_config
