"""How citizen codes plug into the app: keys at start-up, issuance, trust list, scans."""

from __future__ import annotations

from litestar.config.app import AppConfig
from litestar.di import Provide
from litestar.plugins import InitPlugin

from backend.crypto import Keyring
from backend.runtime import Runtime
from codes.controllers import CodesController
from codes.services import CodeIssuer, CodeKeys, EntitlementService, ScanService
from codes.sources import HealthStatusSource, RealNameInsuranceSource


class CodesPlugin(InitPlugin):
    def __init__(self, runtime: Runtime) -> None:
        s = runtime.settings
        self.keys = CodeKeys(s, runtime.clock)
        self.health = HealthStatusSource(runtime.store)
        self.entitlements = EntitlementService(
            [RealNameInsuranceSource(Keyring(s.pii_keyring())), self.health]
        )
        self.issuer = CodeIssuer(s, runtime.clock, runtime.store, self.keys, self.entitlements)
        self.scans = ScanService(
            s, runtime.clock, runtime.store, self.keys, runtime.services["auth"].revocations
        )
        runtime.services["codes"] = self

    async def _startup(self) -> None:
        await self.keys.ensure()
        await self.scans.recorder.start()
        await self.issuer.mappings.start()

    async def _shutdown(self) -> None:
        await self.scans.recorder.stop()
        await self.issuer.mappings.stop()

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.route_handlers.extend([CodesController])
        app_config.dependencies.update(
            {
                "code_keys": Provide(lambda: self.keys, sync_to_thread=False, use_cache=True),
                "code_issuer": Provide(lambda: self.issuer, sync_to_thread=False, use_cache=True),
                "scan_service": Provide(lambda: self.scans, sync_to_thread=False, use_cache=True),
            }
        )
        app_config.signature_namespace.update(
            {"CodeKeys": CodeKeys, "CodeIssuer": CodeIssuer, "ScanService": ScanService}
        )
        app_config.on_startup.append(self._startup)
        app_config.on_shutdown.insert(0, self._shutdown)
        return app_config
