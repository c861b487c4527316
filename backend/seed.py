"""``shengshi seed-demo``: every plugin that can seed demo data does, in plugin order."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

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
