"""扫码门禁 doors: the doors of residential communities, offices and public buildings open to the
citizen code.

- Residents (a manager adds them by phone or ID number, or approves a citizen's request) open their
  place's doors: those of their building and the gates of no building.
- Visitor passes: a resident invites a visitor by phone for named doors, a time window and a number of
  entries; each entry is taken by one conditional UPDATE (:func:`services.use_pass`), so concurrent
  scans at two doors never exceed the count.
- Offline doors: each resident's code carries a keyed claim per place they live in (at most two),
  the resident's random handle masked under the place's key for that code (:meth:`DoorsApp.code_claims`);
  a door holds a signed, expiring list of handles and the key (:func:`services.door_list`) and decides
  with :mod:`miniapps.doors.offline`. Its log comes back through the platform's batch upload.
"""

from __future__ import annotations

from typing import Any

from miniapps.contract import (
    Display,
    Manifest,
    MessageTemplate,
    MiniApp,
    Platform,
    ScanDecision,
    ScanEvent,
)
from miniapps.doors import demo, routes, rules, services
from miniapps.doors.tables import Door, Entry, Resident, VisitorPass


class DoorsApp(MiniApp):
    piccolo_app = "miniapps.doors.piccolo_app"
    demo_scanners = demo.SCANNERS
    manifest = Manifest(
        id="doors",
        name_zh="扫码门禁",
        name_en="Door access",
        version="1.0.0",
        description="Residents and their invited visitors open the doors of communities, offices and"
        " public buildings with the citizen code; doors keep working offline for residents.",
        description_zh="住户及其邀请的访客刷市民码开小区、写字楼和公共建筑的门；门禁断网时住户照常通行。",
        scopes=["openid"],
        scan_contexts={"door": None},
        settings_schema={
            "list_validity_hours": {"type": "integer", "default": 24},
            "list_refresh_seconds": {"type": "integer", "default": 3600},
            "pass_max_hours": {"type": "integer", "default": 168},
            "pass_max_entries": {"type": "integer", "default": 20},
            "pass_ahead_days": {"type": "integer", "default": 30},
            "passes_per_day": {"type": "integer", "default": 30},
        },
        templates={
            "visitor_pass": MessageTemplate(
                category="transactional",
                title_zh="您收到一张访客通行证",
                title_en="You have a visitor pass",
                body_zh="您已获邀访问{place}，{starts_at} 至 {ends_at} 可刷市民码通行 {entries} 次。",
                body_en="You are invited to {place_en}: your citizen code opens its doors {entries} times"
                " from {starts_at} to {ends_at}.",
                placeholders={
                    "place": "text",
                    "place_en": "text",
                    "starts_at": "datetime",
                    "ends_at": "datetime",
                    "entries": "number",
                },
                description="住户邀请访客时发送 / sent when a resident invites a visitor",
            )
        },
    )

    def __init__(self, platform: Platform) -> None:
        super().__init__(platform)
        self.keys = services.Keys(platform, lambda: self._setting("list_refresh_seconds") + 60)
        self.residents = services.Residents(platform)

    def _setting(self, name: str) -> int:
        default = self.manifest.settings_schema[name]["default"]
        return int(self.platform.config.get(name, default))

    def route_handlers(self) -> list[Any]:
        return routes.handlers(self.platform, self.keys, self.residents, self._setting)

    def seed_demo(self) -> Any:
        return demo.seed()

    async def code_claims(self, openid: str, cti: bytes) -> list[tuple[int, bytes]]:
        return await services.code_claims(self.keys, openid, cti)

    async def on_scan(self, scan: ScanEvent) -> ScanDecision:
        record = f"{scan.scanner.client_id}/{scan.record_id}"
        door = await Door.select().where(Door.code == scan.scanner.place).first().run()
        if door is None:
            return self._refuse(scan, "unknown_door")
        place = {"id": door["place"]}  # all a scan needs of its place
        at = scan.scanned_at
        resident = await (
            Resident.select(Resident.building, Resident.state, Resident.removed_at)
            .where((Resident.place == place["id"]) & (Resident.openid == scan.openid))
            .first()
            .run()
        )
        # offline: the door decided from the list it held; the resident counts as one until removed
        living = resident is not None and (
            resident["state"] == "active"
            or (
                scan.offline
                and resident["state"] == "removed"
                and resident["removed_at"] is not None
                and resident["removed_at"] > at
            )
        )
        reason, kind, used = "not_resident", "", None
        if living and resident is not None and rules.opens(resident["building"], door["building"]):
            reason, kind = "ok", "resident"
        elif scan.offline:  # visitor passes are online only: an offline door refused them
            if living:
                reason = "wrong_door"
            elif await VisitorPass.exists().where(
                (VisitorPass.visitor == scan.openid)
                & (VisitorPass.place == place["id"])
                & (VisitorPass.state == "active")
            ):
                reason = "visitor_offline"  # a visitor the door could not admit (else: a stranger)
        else:
            rows = await (
                VisitorPass.select()
                .where((VisitorPass.visitor == scan.openid) & (VisitorPass.place == place["id"]))
                .run()
            )
            reason, chosen = rules.pass_decision([services.pass_view(r) for r in rows], door["code"], at)
            if reason == "not_resident" and living:
                reason = "wrong_door"
            while chosen is not None:  # another door took the last entry meanwhile: decide again
                if await services.use_pass(chosen.id):
                    reason, kind, used = "ok", "visitor", chosen.id
                    break
                rows = await (
                    VisitorPass.select()
                    .where((VisitorPass.visitor == scan.openid) & (VisitorPass.place == place["id"]))
                    .run()
                )
                reason, chosen = rules.pass_decision([services.pass_view(r) for r in rows], door["code"], at)
        await (
            Entry.insert(
                Entry(
                    record=record,
                    door=door["id"],
                    place=place["id"],
                    openid=scan.openid,
                    kind=kind,
                    visitor_pass=used,
                    allowed=reason == "ok",
                    reason=reason,
                    at=at,
                    offline=scan.offline,
                )
            )
            .on_conflict(action="DO NOTHING")
            .run()
        )
        name = scan.text(door["name"], door["name_en"] or door["code"])
        if reason != "ok":
            return self._refuse(scan, reason, name)
        title = scan.text("欢迎", "Welcome") if kind == "visitor" else rules.screen("ok", scan.locale)
        return ScanDecision(
            allow=True,
            display=Display(title=title, subtitle=name),
            data={"kind": kind, "door": door["code"], **({"pass_id": used} if used else {})},
        )

    @staticmethod
    def _refuse(scan: ScanEvent, reason: str, subtitle: str = "") -> ScanDecision:
        return ScanDecision(
            allow=False,
            reason=reason,
            display=Display(title=rules.screen(reason, scan.locale), subtitle=subtitle, color="red"),
            data={"door": scan.scanner.place},
        )
