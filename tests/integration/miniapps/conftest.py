"""Fixtures for the mini-app platform's tests: a database of a test's own, and the example mini-app's
tables in this pass's database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import msgspec
import pytest

from backend import db, piccolo_conf
from backend.settings import Settings
from tests.conftest import BACKEND, PG_ADMIN_URL, RUN_ID


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_URL, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture
async def scratch_database(tmp_path: Path) -> AsyncIterator[str]:
    """The URL of an empty database of this test's own, on this pass's backend (dropped afterwards)."""
    if BACKEND == "sqlite":
        yield f"sqlite:///{tmp_path / 'scratch.sqlite3'}"
        return
    name = f"shengshi_scratch_{RUN_ID}_{tmp_path.name[-12:].lower().replace('-', '_')}"
    await _admin(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_ADMIN_URL.rpartition('/')[0]}/{name}"
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
async def hello_migrated(settings: Settings, migrated: None) -> None:
    """The example mini-app (examples/hello-miniapp, installed as a package of its own) enabled by
    settings, and the migrations applied as ``shengshi migrate`` applies them: its tables are made."""
    hello = msgspec.structs.replace(settings, miniapps="hello")
    await db.migrate(db.create_engine(hello), piccolo_conf.app_configs(hello), quiet=True)
