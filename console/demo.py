"""Demo data for the web faces (``shengshi seed-demo``, never in production): one scanner at each kind of
gate in the demo city, so the scanner simulator works out of the box, and an admin console operator
``demo`` whose random password is printed this once (it is stored only as a hash). Each enabled mini-app
says which scanners it wants (``MiniApp.demo_scanners``, at places of its own demo data)."""

from __future__ import annotations

import secrets

from auth.services import AuthServices
from auth.tables import MachineClient
from console.operators import OperatorService
from console.tables import ConsoleOperator
from miniapps.contract import MiniApp


async def seed(auth: AuthServices, apps: dict[str, MiniApp], operators: OperatorService) -> list[str]:
    made = renamed = 0
    scanners = [(app_id, demo) for app_id, app in apps.items() for demo in app.demo_scanners]
    for app_id, demo in scanners:
        context, place, name = demo.context, demo.place, demo.name
        scanner = MachineClient.kind == "scanner"
        if await MachineClient.exists().where(scanner & (MachineClient.name == name)):
            continue
        old_name = demo.formerly or name
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
    lines = [f"console: {len(scanners)} demo scanners for /admin/scanner ({made} new{renames})"]
    if not await ConsoleOperator.exists().where(ConsoleOperator.username == "demo"):
        password = secrets.token_urlsafe(12)
        await operators.add("demo", password, "admin", actor="seed-demo")
        lines.append(f"console: operator 'demo' (admin) for /admin — password {password} (shown this once)")
    else:
        lines.append(
            "console: operator 'demo' exists (forgot the password? shengshi console reset-password demo)"
        )
    return lines
