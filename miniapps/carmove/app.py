"""扫码挪车 car moving: reaching a car's owner without revealing anyone.

- 一物一码: a citizen registers a plate and gets a sticker, a QR code of a random code (no plate, no
  phone) that opens a small public page; the car is ``unproven`` until the citizen shares the plate
  number of their vehicle licence (机动车行驶证) and it matches (:meth:`Carmove.settle`).
- Anyone at the car (a phone camera, no login) asks the owner to move it, with a reason and an optional
  photo; the owner is told at once, and by SMS when the request is still unanswered a minute later (an
  urgent notice scheduled in the message centre, withdrawn when the owner answers). The sender sees the
  answer on the page, and may call the owner through a privacy number (隐私号) while the request waits.
- Abuse: limits per sender, per sticker and per hour in the shared store (429 with Retry-After); the
  owner pauses or regenerates the sticker; anyone reports misuse, the operators close reports (and may
  pause the sticker) with the app's backend credential.

The rules are :mod:`miniapps.carmove.rules`; the database work is :mod:`miniapps.carmove.services`.
"""

from __future__ import annotations

from typing import Any

from miniapps.carmove import demo, routes
from miniapps.carmove.services import Carmove
from miniapps.contract import Manifest, MessageTemplate, MiniApp, Platform, ScanDecision, ScanEvent


class CarmoveApp(MiniApp):
    piccolo_app = "miniapps.carmove.piccolo_app"
    manifest = Manifest(
        id="carmove",
        name_zh="扫码挪车",
        name_en="Car moving",
        version="1.0.0",
        description="A car sticker anyone can scan to ask the owner to move the car, revealing no plate"
        " and no phone number.",
        description_zh="一车一码：他人扫描车贴即可请车主挪车，不暴露车牌和手机号。",
        scopes=["openid"],
        settings_schema={
            "sms_after_seconds": {"type": "integer", "default": 60},
            "per_sender_hour": {"type": "integer", "default": 10},
            "per_sticker_hour": {"type": "integer", "default": 6},
            "per_sender_sticker_hour": {"type": "integer", "default": 3},
            "per_report_hour": {"type": "integer", "default": 5},
            "open_minutes": {"type": "integer", "default": 120},
            "photo_max_bytes": {"type": "integer", "default": 800000},
            "photo_days": {"type": "integer", "default": 7},
            "call_minutes": {"type": "integer", "default": 5},
            # the address printed stickers open (https://sst.shenyang.gov.cn); "": the request's own
            "sticker_base_url": {"type": "string", "default": ""},
        },
        templates={
            "move_request": MessageTemplate(
                category="transactional",
                title_zh="有人请您挪车",
                title_en="Someone asks you to move your car",
                body_zh="您的车辆 {plate} 收到挪车请求：{reason}。请尽快挪车，并在盛事通中回复。",
                body_en="Your car {plate} got a request to move it: {reason}. Please move it and answer"
                " in Shengshitong.",
                placeholders={"plate": "plate", "reason": "text"},
                link="/wallet#carmove",
                description="他人扫描车贴请车主挪车时立即发送 / sent at once when someone scans the car's"
                " sticker and asks",
            ),
            "move_waiting": MessageTemplate(
                category="transactional",
                title_zh="挪车请求仍在等待",
                title_en="A request to move your car is still waiting",
                body_zh="您的车辆 {plate} 的挪车请求（{reason}）仍未回复，请尽快挪车或在盛事通中回复。",
                body_en="The request to move your car {plate} ({reason}) is still unanswered: please move"
                " it or answer in Shengshitong.",
                placeholders={"plate": "plate", "reason": "text"},
                urgent=True,
                link="/wallet#carmove",
                description="挪车请求 1 分钟未回复时发送，并同时发短信（车主回复即撤回）/ sent with an SMS"
                " when a request is unanswered after a minute (withdrawn when the owner answers)",
            ),
        },
    )

    def __init__(self, platform: Platform) -> None:
        super().__init__(platform)
        self.service = Carmove(platform)

    def route_handlers(self) -> list[Any]:
        return routes.handlers(self.service)

    async def on_scan(self, scan: ScanEvent) -> ScanDecision:
        """The manifest declares no scan context, so no scanner is ever enrolled for carmove and the
        platform routes it no scan: here citizens scan a sticker, not a scanner their code."""
        return ScanDecision(allow=False, reason="no_scan_context")

    def seed_demo(self) -> Any:
        return demo.seed()
