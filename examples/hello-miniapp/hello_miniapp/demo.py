"""Demo data (``shengshi seed-demo``): the doors of the demo city's hello door, and a scanner at one."""

from __future__ import annotations

from hello_miniapp.tables import HelloDoor
from miniapps.contract import DemoScanner

# (code, Chinese name, English name)
DOORS = [
    ("D-FRONT", "正门", "Front door"),
    ("D-GARDEN", "花园门", "Garden gate"),
]
SCANNERS = (DemoScanner("hello-door", "D-FRONT", "演示：你好门 正门"),)


async def seed() -> list[str]:
    """Create the doors, or bring them back to these names; idempotent."""
    made = updated = 0
    for code, name, name_en in DOORS:
        row = await HelloDoor.select().where(HelloDoor.code == code).first().run()
        if row is None:
            await HelloDoor.insert(HelloDoor(code=code, name=name, name_en=name_en)).run()
            made += 1
        elif (row["name"], row["name_en"]) != (name, name_en):
            await HelloDoor.update({HelloDoor.name: name, HelloDoor.name_en: name_en}).where(
                HelloDoor.code == code
            )
            updated += 1
    return [f"hello: {len(DOORS)} doors ({made} new, {updated} updated)"]
