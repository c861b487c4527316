"""市民服务 civic services: two scenes that use the code's entitlements.

- 社保服务大厅 social-security service hall (scanner context ``civic-hall``, place = hall code; requires
  ``social_security``): the hall's kiosk scans the citizen's code and gives a queue number for one window
  category (the terminal's ``meta.service``, a letter such as ``B``; else the hall's first category).
  The number, the place in the line and the estimated wait are on the gate's screen and in the app
  (``GET /queue``); the hall's own system calls numbers to its windows (``POST .../call``).
  A number called to a window is a service had: the citizen may rate it (好差评, ``hall``), the hall
  the unit that answers for it.
- 健康检查点 health check point (context ``health-check``, place = check point code; requires ``health``,
  green only: the platform refuses yellow, red or unknown with the reason before this app is asked): the
  pass is logged, and the operators' dashboard shows each check point's passes today.

The numbering and the other rules are in :mod:`miniapps.civic.rules`.
"""

from __future__ import annotations

import uuid
from typing import Any

from miniapps.civic import demo, routes
from miniapps.civic.rules import hall_unit, health_passes, pick_service, service_day, wait_minutes
from miniapps.civic.services import ahead_of, draw, passes_today, waiting_today
from miniapps.civic.tables import Checkpoint, Hall, Pass, QueueTicket, Service
from miniapps.contract import (
    Display,
    Gauge,
    Manifest,
    MiniApp,
    Rateable,
    RatingUnit,
    ScanDecision,
    ScanEvent,
)

HALL = "civic-hall"
HEALTH = "health-check"


class CivicApp(MiniApp):
    piccolo_app = "miniapps.civic.piccolo_app"  # its tables and migrations
    demo_scanners = demo.SCANNERS
    manifest = Manifest(
        id="civic",
        name_zh="市民服务",
        name_en="Civic services",
        version="1.0.0",
        description="Queue numbers at the social-security service hall and health check points, by code.",
        description_zh="刷市民码在社保服务大厅取号，通过健康检查点。",
        scopes=["openid"],
        entitlements=["social_security", "health"],
        scan_contexts={HALL: "social_security", HEALTH: "health"},
        rateable={
            "hall": Rateable(
                name_zh="社保窗口服务",
                name_en="Social security service at a hall window",
                channel="onsite",
                description="叫号到窗口办理后可评价 / rated once the number was called to a window",
            )
        },
        settings_schema={"minutes_per_person": {"type": "integer", "default": 6}},
    )

    def route_handlers(self) -> list[Any]:
        return routes.handlers(self.platform)

    def seed_demo(self) -> Any:
        return self._seed()

    async def _seed(self) -> list[str]:
        done = await demo.seed()
        await self._units()
        return done

    async def startup(self) -> None:
        await self._units()

    async def _units(self) -> None:
        """Each hall answers for the ratings of its windows' service."""
        halls = await Hall.select(Hall.code, Hall.name, Hall.name_en).run()
        await self.platform.save_units(
            [
                RatingUnit(
                    code=hall_unit(h["code"]),
                    name_zh=h["name"],
                    name_en=(h["name_en"] or h["code"])[:64],
                    district=demo.HALL_DISTRICTS.get(h["code"], ""),
                )
                for h in halls
            ]
        )

    async def on_scan(self, scan: ScanEvent) -> ScanDecision:
        if scan.scanner.context == HEALTH:
            return await self._check_point(scan)
        return await self._hall(scan)

    # ---- the service hall ------------------------------------------------------------------------
    async def _hall(self, scan: ScanEvent) -> ScanDecision:
        hall = await Hall.select().where(Hall.code == scan.scanner.place).first().run()
        if hall is None:
            return ScanDecision(allow=False, reason="unknown_hall")
        services = (
            await Service.select()
            .where(Service.hall == hall["id"])
            .order_by(Service.position)
            .order_by(Service.letter)
            .run()
        )
        letter = pick_service([s["letter"] for s in services], scan.meta.get("service"))
        if letter is None:
            return ScanDecision(
                allow=False,
                reason="unknown_service",
                display=Display(title=scan.text("无此业务", "No such service here"), color="red"),
            )
        service = next(s for s in services if s["letter"] == letter)
        today = service_day(scan.scanned_at)
        ticket = (
            await QueueTicket.select()
            .where(
                (QueueTicket.service == service["id"])
                & (QueueTicket.openid == scan.openid)
                & (QueueTicket.day == today)
                & (QueueTicket.state == "waiting")
            )
            .first()
            .run()
        )
        again = ticket is not None
        if ticket is None:
            ticket = await draw(
                service, scan.openid, scan.scanned_at, f"{scan.scanner.client_id}/{scan.record_id}"
            )
        ahead = await ahead_of(service["id"], today, ticket["number"])
        wait = wait_minutes(ahead, service["windows"], self.platform.config["minutes_per_person"])
        name = scan.text(service["name"], service["name_en"] or service["code"])
        return ScanDecision(
            allow=True,
            display=Display(
                title=scan.text(f"您的号码 {ticket['label']}", f"Your number: {ticket['label']}"),
                subtitle=scan.text(f"{name} · 前面 {ahead} 人", f"{name} · {ahead} ahead of you"),
            ),
            data={
                "ticket_id": str(ticket["id"]),
                "number": ticket["label"],
                "service": letter,
                "ahead": ahead,
                "wait_minutes": wait,
                "again": again,  # already waiting in this line today: the same number
            },
        )

    # ---- the health check point ------------------------------------------------------------------
    async def _check_point(self, scan: ScanEvent) -> ScanDecision:
        point = await Checkpoint.select().where(Checkpoint.code == scan.scanner.place).first().run()
        if point is None:
            return ScanDecision(allow=False, reason="unknown_checkpoint")
        health = scan.entitlements.get("health")
        status = health.get("status") if isinstance(health, dict) else None
        if status is not None and not health_passes(status):  # the platform refuses these first
            return ScanDecision(
                allow=False,
                reason="health_not_green",
                display=Display(title=scan.text("健康状态异常", "Health status not green"), color="red"),
                data={"status": status},
            )
        pass_id = uuid.uuid4()
        await Pass.insert(
            Pass(
                id=pass_id,
                checkpoint=point["id"],
                openid=scan.openid,
                day=service_day(scan.scanned_at),
                passed_at=scan.scanned_at,
                record=f"{scan.scanner.client_id}/{scan.record_id}",
            )
        ).run()
        return ScanDecision(
            allow=True,
            display=Display(
                title=scan.text("健康状态正常 请通行", "Health status green: please pass"),
                subtitle=scan.text(point["name"], point["name_en"] or point["code"]),
            ),
            data={"pass_id": str(pass_id), "checkpoint": point["code"]},
        )

    # ---- the operators' dashboard ----------------------------------------------------------------
    async def gauges(self) -> list[Gauge]:
        """Today's passes per health check point and who waits per hall (China-time day); each label in
        one language (a place without an English name is named by its code on the English screen)."""
        today = service_day(self.platform.now())
        passes, waiting = await passes_today(today), await waiting_today(today)
        points = await Checkpoint.select(Checkpoint.id, Checkpoint.code, Checkpoint.name, Checkpoint.name_en)  # type: ignore[attr-defined]
        halls = await Hall.select(Hall.id, Hall.code, Hall.name, Hall.name_en)  # type: ignore[attr-defined]
        services = await Service.select(Service.id, Service.hall)  # type: ignore[attr-defined]
        per_hall: dict[int, int] = {}
        for s in services:
            per_hall[s["hall"]] = per_hall.get(s["hall"], 0) + waiting.get(s["id"], 0)
        return [
            *(
                Gauge(
                    name=f"passes_today:{p['code']}",
                    label_zh=f"{p['name']} 今日通行",
                    label_en=f"{p['name_en'] or p['code']}: passes today",
                    value=passes.get(p["id"], 0),
                )
                for p in sorted(points, key=lambda p: p["code"])
            ),
            *(
                Gauge(
                    name=f"waiting:{h['code']}",
                    label_zh=f"{h['name']} 等候人数",
                    label_en=f"{h['name_en'] or h['code']}: waiting",
                    value=per_hall.get(h["id"], 0),
                )
                for h in sorted(halls, key=lambda h: h["code"])
            ),
        ]
