"""一码借阅 libraries: the citizen code is the library card, at the desk and at self-check kiosks.

- Desk (scanner context ``library-desk``, place = a branch's code): the librarian scans the reader's
  code with the step in the scan's ``meta``: ``{"action": "checkout", "item": "<barcode>"}``, ``renew``,
  ``checkin``, ``hold`` (``"isbn"``) or ``status`` (the default). The decision's ``data`` says what came
  of it; a refused step is a refused scan with the reason (nothing written).
- Kiosk (scanner context ``library-kiosk``): 3M SIP2 over TCP (:mod:`miniapps.library.sip2`); the kiosk
  logs in with its scanner credential and the patron identifier (AA) is the scanned citizen code, which
  the platform verifies (``Platform.identify``) once per kiosk session.
- The rules (due dates, renewals, limits, fines, holds, deposits) are in :mod:`miniapps.library.rules`;
  the lending itself in :mod:`miniapps.library.services`.
"""

from __future__ import annotations

import logging
from typing import Any

from miniapps.contract import (
    Display,
    Manifest,
    MessageTemplate,
    MiniApp,
    PaymentEvent,
    Platform,
    ScanDecision,
    ScanEvent,
)
from miniapps.library import demo, routes
from miniapps.library.rules import REFUSALS, isbn13
from miniapps.library.services import Lending, Refused
from miniapps.library.sip2 import Sip2Server

log = logging.getLogger("shengshitong.miniapps.library")


class LibraryApp(MiniApp):
    piccolo_app = "miniapps.library.piccolo_app"
    demo_scanners = demo.SCANNERS
    manifest = Manifest(
        id="library",
        name_zh="一码借阅",
        name_en="Library",
        version="1.0.0",
        description="Borrow, return, renew and hold library books with the citizen code, at the desk and"
        " at self-check kiosks (SIP2); no deposit for readers in good standing.",
        description_zh="刷市民码在图书馆借书、还书、续借和预约，支持自助借还机（SIP2）；信用良好免押金。",
        scopes=["openid"],
        scan_contexts={"library-desk": None, "library-kiosk": None},
        settings_schema={
            "sip2_port": {"type": "integer", "default": 0},  # 0: no SIP2 listener in this process
            "sip2_host": {"type": "string", "default": "127.0.0.1"},
            "sip2_reuse_port": {"type": "boolean", "default": False},  # several workers on one port
            "sip2_idle_seconds": {"type": "number", "default": 300},
            "sip2_max_line": {"type": "integer", "default": 2048},
            "sip2_login_seconds": {"type": "number", "default": 10},  # to log in after connecting
            "sip2_max_connections": {"type": "integer", "default": 200},  # per process
        },
        templates={
            "due_soon": MessageTemplate(
                category="reminder",
                title_zh="图书即将到期",
                title_en="A library book is due soon",
                body_zh="您借阅的《{title}》将于 {due_at} 到期，请按时归还或续借。",
                body_en="“{title}” is due back on {due_at}: return or renew it in time.",
                placeholders={"title": "text", "due_at": "datetime"},
                link="/wallet#library",
                description="到期前 3 天提醒（归还或续借即撤回）/ 3 days before a loan is due (withdrawn"
                " when it is returned or renewed)",
            ),
            "hold_ready": MessageTemplate(
                category="transactional",
                title_zh="预约的图书已到馆",
                title_en="Your hold is ready",
                body_zh="您预约的《{title}》已在{branch}为您保留至 {until}，请凭市民码借阅。",
                body_en="“{title}” is kept for you at {branch_en} until {until}: borrow it with your"
                " citizen code.",
                placeholders={"title": "text", "branch": "text", "branch_en": "text", "until": "datetime"},
                link="/wallet#library",
                description="预约图书到馆时发送 / sent when a returned copy is set aside for the hold",
            ),
        },
    )

    def __init__(self, platform: Platform) -> None:
        super().__init__(platform)
        self.lending = Lending(platform)
        self.sip2: Sip2Server | None = None

    def route_handlers(self) -> list[Any]:
        return routes.handlers(self.platform, self.lending)

    def seed_demo(self) -> Any:
        return demo.seed()

    async def startup(self) -> None:
        port = self.platform.config["sip2_port"]
        if port and self.platform.serving:  # an operator's command leaves the server's port alone
            self.sip2 = Sip2Server(self.platform, self.lending)
            await self.sip2.start(self.platform.config["sip2_host"], port)

    async def shutdown(self) -> None:
        if self.sip2 is not None:
            await self.sip2.stop()
            self.sip2 = None

    async def on_payment_event(self, event: PaymentEvent) -> None:
        if event.reference.startswith("library-fine-") and event.type == "order.paid":
            await self.lending.fine_paid(event.order_id)
        elif event.reference.startswith("library-deposit-"):
            await self.lending.deposit_event(event.order_id, event.type)

    async def on_scan(self, scan: ScanEvent) -> ScanDecision:
        action = scan.meta.get("action", "status") if scan.scanner.context == "library-desk" else "status"
        try:
            data = await self._step(scan, action)
        except Refused as refused:
            zh, en = REFUSALS.get(refused.code, ("无法办理", "refused"))
            return ScanDecision(
                allow=False,
                reason=refused.code,
                display=Display(title=scan.text(zh, en), color="red"),
                data={"action": action},
            )
        title = {
            "checkout": ("借阅成功", "Borrowed"),
            "checkin": ("归还成功", "Returned"),
            "renew": ("续借成功", "Renewed"),
            "hold": ("预约成功", "Hold placed"),
            "status": ("读者已识别", "Reader identified"),
        }[action]
        subtitle = ""
        if "due_at" in data:
            due = data["due_at"][:10]
            subtitle = scan.text(f"《{data['title']}》 应还日期 {due}", f"“{data['title']}” due {due}")
        elif action == "checkin" and data.get("fine"):
            subtitle = scan.text(
                f"逾期罚款 ¥{data['fine'] / 100:.2f}", f"Overdue fine ¥{data['fine'] / 100:.2f}"
            )
        return ScanDecision(
            allow=True,
            display=Display(title=scan.text(*title), subtitle=subtitle),
            data={"action": action, **data},
        )

    async def _step(self, scan: ScanEvent, action: str) -> dict[str, Any]:
        branch = scan.scanner.place
        item = scan.meta.get("item", "")
        if action in ("checkout", "checkin", "renew") and not item:
            raise Refused("item_required")
        if action == "checkout":
            loan = await self.lending.checkout(scan.openid, item, branch, via="desk")
            return {**loan, "due_at": loan["due_at"].isoformat()}
        if action == "renew":
            loan = await self.lending.renew(scan.openid, item)
            return {**loan, "due_at": loan["due_at"].isoformat()}
        if action == "checkin":
            done = await self.lending.checkin(item, branch_code=branch)
            done.pop("openid")  # the desk needs no reader's id
            return done
        library = (await self.lending.branch(branch))["library.code"]
        if action == "hold":
            isbn = isbn13(scan.meta.get("isbn", ""))
            if isbn is None:
                raise Refused("invalid_isbn")
            return await self.lending.place_hold(scan.openid, library, isbn)
        if action == "status":
            lib = await self.lending.library(library)
            standing = await self.lending.standing(lib, scan.openid)
            standing["deposit"].pop("order_id")
            return standing
        raise Refused("unknown_action")
