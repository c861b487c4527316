"""Demo data for the web faces (``shengshi seed-demo``, never in production): one scanner at each kind of
gate in the demo city, so the scanner simulator works out of the box, and an admin console operator
``demo`` whose random password is printed this once (it is stored only as a hash)."""

from __future__ import annotations

import secrets

from auth.tables import MachineClient
from backend.runtime import Runtime
from console.operators import OperatorService
from console.tables import ConsoleOperator

# (mini-app, scan context, place: a code the mini-app's demo data knows, label)
SCANNERS = [
    ("transit", "bus", "B113", "demo: 113路 bus front door"),
    ("transit", "metro-entry", "M1-14", "demo: 地铁1号线 沈阳站 entry gate"),
    ("transit", "metro-exit", "M1-19", "demo: 地铁1号线 中街 exit gate"),
    ("parking", "parking-entry", "P-ZHONGJIE", "demo: 中街大悦城 barrier in"),
    ("parking", "parking-exit", "P-ZHONGJIE", "demo: 中街大悦城 barrier out"),
    ("hospital", "hospital-checkin", "H-SHENGJING", "demo: 盛京医院 check-in kiosk"),
    ("tourism", "tourism-gate", "A-MUKDEN", "demo: 沈阳故宫 gate"),
    ("tourism", "hotel-checkin", "HT-ZHONGJIE", "demo: 中街盛京客栈 front desk"),
]


async def seed(runtime: Runtime, operators: OperatorService) -> list[str]:
    apps = runtime.services["miniapps"].apps
    auth = runtime.services["auth"]
    made = 0
    for app_id, context, place, name in SCANNERS:
        if app_id not in apps:
            continue
        if await MachineClient.exists().where(
            (MachineClient.kind == "scanner") & (MachineClient.name == name)
        ):
            continue
        # the secret is dropped: these scanners serve the simulator, which scans in their name
        await auth.machines.create(
            "scanner", actor="seed-demo", app_id=app_id, context=context, place=place, name=name
        )
        made += 1
    lines = [f"console: {len(SCANNERS)} demo scanners for /admin/scanner ({made} new)"]
    if not await ConsoleOperator.exists().where(ConsoleOperator.username == "demo"):
        password = secrets.token_urlsafe(12)
        await operators.add("demo", password, "admin", actor="seed-demo")
        lines.append(f"console: operator 'demo' (admin) for /admin — password {password} (shown this once)")
    else:
        lines.append(
            "console: operator 'demo' exists (forgot the password? shengshi console reset-password demo)"
        )
    return lines
