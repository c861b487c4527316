"""An example mini-app, written the way a third party writes one: a separate package that depends on
``shengshitong`` and uses only ``miniapps.contract`` and ``miniapps.deps``."""

from __future__ import annotations

from typing import Any

from litestar import get
from litestar.di import NamedDependency

from miniapps.contract import Display, Manifest, MiniApp, ScanDecision, ScanEvent
from miniapps.deps import AppCaller, citizen_caller


@get("/ping", sync_to_thread=False)
def ping() -> dict[str, Any]:
    return {"app": "hello", "pong": True}


@get("/visits", guards=[citizen_caller])
async def my_visits(caller: NamedDependency[AppCaller]) -> dict[str, Any]:
    # a real mini-app would look the caller up in its own tables, keyed by the pairwise openid
    return {"openid": caller.openid}


class HelloApp(MiniApp):
    manifest = Manifest(
        id="hello",
        name_zh="你好门",
        name_en="Hello door",
        version="0.1.0",
        description="Greets citizens at the door and counts their visits.",
        scopes=["openid", "profile"],
        scan_contexts={"hello-door": None},  # any valid citizen code opens the door
        settings_schema={"greeting": {"type": "string", "default": "你好"}},
    )

    def route_handlers(self) -> list[Any]:
        return [ping, my_visits]

    async def on_scan(self, scan: ScanEvent) -> ScanDecision:
        key = f"visits:{scan.openid}"
        visits = int(await self.platform.kv_get(key) or 0) + 1
        await self.platform.kv_set(key, str(visits))
        return ScanDecision(
            allow=True,
            display=Display(title=f"{self.platform.config['greeting']}!", subtitle=f"visit no. {visits}"),
            data={"visits": visits},
        )
