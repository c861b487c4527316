"""An example mini-app, written the way a third party writes one: a separate package that depends on
``shengshitong`` and uses nothing of it but ``miniapps.contract``."""

from __future__ import annotations

from typing import Any

from litestar import get
from litestar.di import NamedDependency

from miniapps.contract import AppCaller, Display, Manifest, MiniApp, ScanDecision, ScanEvent, citizen_caller


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
        description_zh="在门口问候市民并记录来访次数。",
        scopes=["openid", "profile"],
        scan_contexts={"hello-door": None},  # any valid citizen code opens the door
        settings_schema={
            "greeting": {"type": "string", "default": "你好"},
            "greeting_en": {"type": "string", "default": "Hello"},
        },
    )

    def route_handlers(self) -> list[Any]:
        return [ping, my_visits]

    async def on_scan(self, scan: ScanEvent) -> ScanDecision:
        key = f"visits:{scan.openid}"
        visits = int(await self.platform.kv_get(key) or 0) + 1
        await self.platform.kv_set(key, str(visits))
        return ScanDecision(
            allow=True,
            # the gate's language (scan.locale): one language per screen
            display=Display(
                title=scan.text(self.platform.config["greeting"], self.platform.config["greeting_en"]) + "!",
                subtitle=scan.text(f"第 {visits} 次来访", f"visit no. {visits}"),
            ),
            data={"visits": visits},
        )
