"""The hello door: greets citizens at the door and remembers their visits in its own table."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import get
from litestar.di import NamedDependency

from hello_miniapp.demo import SCANNERS, seed
from hello_miniapp.tables import HelloDoor, HelloVisit
from miniapps.contract import (
    AppCaller,
    Display,
    Manifest,
    MiniApp,
    ScanDecision,
    ScanEvent,
    citizen_caller,
    names,
)


@get("/ping", sync_to_thread=False)
def ping() -> dict[str, Any]:
    return {"app": "hello", "pong": True}


@get("/visits", guards=[citizen_caller], summary="How often the caller came, and their last visit")
async def my_visits(caller: NamedDependency[AppCaller]) -> dict[str, Any]:
    count = await HelloVisit.count().where(HelloVisit.openid == caller.openid).run()
    last = (
        await HelloVisit.select()
        .where(HelloVisit.openid == caller.openid)
        .order_by(HelloVisit.at, ascending=False)
        .first()
        .run()
    )
    if last is None:
        return {"openid": caller.openid, "visits": 0, "last": None}
    door = await HelloDoor.select().where(HelloDoor.code == last["place"]).first().run()
    shown = names(door["name"], door["name_en"], "door") if door else names(last["place"], "", "door")
    return {
        "openid": caller.openid,
        "visits": count,
        "last": {"at": last["at"].isoformat(), "place": last["place"], **shown},
    }


class HelloApp(MiniApp):
    manifest = Manifest(
        id="hello",
        name_zh="你好门",
        name_en="Hello door",
        version="0.2.0",
        description="Greets citizens at the door and counts their visits.",
        description_zh="在门口问候市民并记录来访次数。",
        scopes=["openid", "profile"],
        scan_contexts={"hello-door": None},  # any valid citizen code opens the door
        settings_schema={
            "greeting": {"type": "string", "default": "你好"},
            "greeting_en": {"type": "string", "default": "Hello"},
        },
    )
    piccolo_app = "hello_miniapp.piccolo_app"  # its tables and migrations
    demo_scanners = SCANNERS

    def route_handlers(self) -> list[Any]:
        return [ping, my_visits]

    def seed_demo(self) -> Any:
        return seed()

    async def on_scan(self, scan: ScanEvent) -> ScanDecision:
        # on_scan runs in the platform's transaction: the visit is written with the decision, or not at all
        await HelloVisit.insert(
            HelloVisit(id=uuid.uuid4(), openid=scan.openid, place=scan.scanner.place, at=scan.scanned_at)
        ).run()
        visits = await HelloVisit.count().where(HelloVisit.openid == scan.openid).run()
        config = self.platform.config
        return ScanDecision(
            allow=True,
            # the gate's language (scan.locale): one language per screen
            display=Display(
                title=scan.text(config["greeting"], config["greeting_en"]) + "!",
                subtitle=scan.text(f"第 {visits} 次来访", f"visit no. {visits}"),
            ),
            data={"visits": visits},
        )
