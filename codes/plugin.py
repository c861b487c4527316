"""How citizen codes plug into the app: keys at start-up, issuance, the trust list."""

from __future__ import annotations

from litestar.config.app import AppConfig
from litestar.di import Provide
from litestar.plugins import InitPlugin

from backend.live import Live
from codes import demo
from codes.controllers import CodesController
from codes.owner_controllers import MyEntitlementsController, OwnersController
from codes.owners import Facts
from codes.services import CODES, CodeIssuer, CodeKeys, CodeServices, ScanService
from codes.sources import EntitlementService


class CodesPlugin(InitPlugin):
    def __init__(self, services: CodeServices, *, live: Live, upload_limit: int) -> None:
        self.services = services
        self.live = live
        self.upload_limit = upload_limit

    async def _startup(self) -> None:
        await self.services.keys.ensure()
        await self.services.issuer.mappings.start()

    async def _shutdown(self) -> None:
        await self.services.issuer.mappings.stop()

    async def seed_demo(self) -> list[str]:
        return await demo.seed(self.services.facts)

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        codes = self.services
        CODES.put(app_config.state, codes)
        app_config.route_handlers.extend([CodesController, OwnersController, MyEntitlementsController])
        app_config.dependencies.update(
            {
                "code_keys": Provide(lambda: codes.keys, sync_to_thread=False, use_cache=True),
                "code_issuer": Provide(lambda: codes.issuer, sync_to_thread=False, use_cache=True),
                "entitlement_facts": Provide(lambda: codes.facts, sync_to_thread=False, use_cache=True),
                "code_entitlements": Provide(
                    lambda: codes.entitlements, sync_to_thread=False, use_cache=True
                ),
                "live": Provide(lambda: self.live, sync_to_thread=False, use_cache=True),
                "upload_limit": Provide(lambda: self.upload_limit, sync_to_thread=False, use_cache=True),
            }
        )
        app_config.signature_namespace.update(
            {
                "CodeKeys": CodeKeys,
                "CodeIssuer": CodeIssuer,
                "ScanService": ScanService,
                "Facts": Facts,
                "EntitlementService": EntitlementService,
                "Live": Live,
            }
        )
        app_config.on_startup.append(self._startup)
        app_config.on_shutdown.insert(0, self._shutdown)
        return app_config
