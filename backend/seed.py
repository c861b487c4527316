"""``shengshi seed-demo``: every plugin that can seed demo data does, in plugin order.

Seeding is idempotent: static demo data (lines, car parks, hospitals, attractions) is created once and
brought back to the demo's values by code when it was changed; date-bound data (appointment slots,
ticket sessions) is made for today and the coming days (China time) on every run, so the demo still
works next week.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from litestar import Litestar


@runtime_checkable
class DemoSeeder(Protocol):
    async def seed_demo(self) -> list[str]:
        """Create demo data if absent; return one human-readable line per thing made or found."""


async def seed_demo(app: Litestar) -> list[str]:
    lines: list[str] = []
    for plugin in app.plugins.init:
        if isinstance(plugin, DemoSeeder):
            lines.extend(await plugin.seed_demo())
    return lines


async def upsert_by_code(table: Any, code: str, values: dict[str, Any]) -> str:
    """Create the row of ``table`` with this ``code``, or bring its columns to ``values``.

    Returns ``"new"``, ``"updated"`` or ``""`` (already as wanted), for :func:`tally`."""
    row = await table.select().where(table.code == code).first().run()
    if row is None:
        await table.insert(table(code=code, **values)).run()
        return "new"
    changed = {getattr(table, k): v for k, v in values.items() if row[k] != v}
    if changed:
        await table.update(changed).where(table.code == code).run()
        return "updated"
    return ""


def tally(outcomes: list[str]) -> str:
    """``"(2 new, 1 updated)"`` from :func:`upsert_by_code`'s answers."""
    return f"({outcomes.count('new')} new, {outcomes.count('updated')} updated)"
