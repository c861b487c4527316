"""Demo data for the web faces (``shengshi seed-demo``, never in production): one scanner at each kind of
gate in the demo city, so the scanner simulator works out of the box, and an admin console operator
``demo`` whose random password is printed this once (it is stored only as a hash)."""

from __future__ import annotations

import secrets

from auth.services import AuthServices
from auth.tables import MachineClient
from console.operators import OperatorService
from console.tables import ConsoleOperator
from miniapps.contract import MiniApp

# (mini-app, scan context, place: a code the mini-app's demo data knows, name). Operators read the name in
# the console, whose default language is Chinese: one language, Chinese.
SCANNERS = [
    ("transit", "bus", "B113", "演示：113路公交 前门"),
    ("transit", "metro-entry", "M1-14", "演示：地铁1号线 沈阳站 进站闸机"),
    ("transit", "metro-exit", "M1-19", "演示：地铁1号线 中街 出站闸机"),
    ("parking", "parking-entry", "P-ZHONGJIE", "演示：中街大悦城停车场 入口道闸"),
    ("parking", "parking-exit", "P-ZHONGJIE", "演示：中街大悦城停车场 出口道闸"),
    ("hospital", "hospital-checkin", "H-SHENGJING", "演示：盛京医院 自助签到机"),
    ("tourism", "tourism-gate", "A-MUKDEN", "演示：沈阳故宫 检票闸机"),
    ("tourism", "hotel-checkin", "HT-ZHONGJIE", "演示：中街盛京客栈 前台"),
]
# what earlier versions named them (both languages in one name): a database seeded then has its demo
# scanners renamed, not a second set made beside them
FORMERLY = {
    "演示：113路公交 前门": "demo: 113路 bus front door",
    "演示：地铁1号线 沈阳站 进站闸机": "demo: 地铁1号线 沈阳站 entry gate",
    "演示：地铁1号线 中街 出站闸机": "demo: 地铁1号线 中街 exit gate",
    "演示：中街大悦城停车场 入口道闸": "demo: 中街大悦城 barrier in",
    "演示：中街大悦城停车场 出口道闸": "demo: 中街大悦城 barrier out",
    "演示：盛京医院 自助签到机": "demo: 盛京医院 check-in kiosk",
    "演示：沈阳故宫 检票闸机": "demo: 沈阳故宫 gate",
    "演示：中街盛京客栈 前台": "demo: 中街盛京客栈 front desk",
}


async def seed(auth: AuthServices, apps: dict[str, MiniApp], operators: OperatorService) -> list[str]:
    made = renamed = 0
    for app_id, context, place, name in SCANNERS:
        if app_id not in apps:
            continue
        scanner = MachineClient.kind == "scanner"
        if await MachineClient.exists().where(scanner & (MachineClient.name == name)):
            continue
        old_name = FORMERLY.get(name, name)
        formerly = scanner & (MachineClient.app_id == app_id) & (MachineClient.name == old_name)
        if await MachineClient.exists().where(formerly):
            await MachineClient.update({MachineClient.name: name}).where(formerly)
            renamed += 1
            continue
        # the secret is dropped: these scanners serve the simulator, which scans in their name
        await auth.machines.create(
            "scanner", actor="seed-demo", app_id=app_id, context=context, place=place, name=name
        )
        made += 1
    renames = f", {renamed} renamed" if renamed else ""
    lines = [f"console: {len(SCANNERS)} demo scanners for /admin/scanner ({made} new{renames})"]
    if not await ConsoleOperator.exists().where(ConsoleOperator.username == "demo"):
        password = secrets.token_urlsafe(12)
        await operators.add("demo", password, "admin", actor="seed-demo")
        lines.append(f"console: operator 'demo' (admin) for /admin — password {password} (shown this once)")
    else:
        lines.append(
            "console: operator 'demo' exists (forgot the password? shengshi console reset-password demo)"
        )
    return lines
