"""A database migrated before the mini-apps had migrations of their own — the platform's one history
created their tables — is brought forward by ``shengshi migrate`` with no error and every row kept.

The mini-apps' migrations kept the IDs they had in the shared history, so ``shengshi migrate`` finds them
recorded under the platform's name and records them under the mini-app's before applying the rest of
its history (see docs/miniapps.md). The old history is the platform's ``migrations/`` as it was (the
files still there, up to its last migration) and the mini-app migrations it held
(``old_history/migrations``, the files as they were), applied by a script as the code of that time did.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from piccolo.querystring import QueryString

from backend import db
from backend.settings import Settings, new_key

pytestmark = pytest.mark.storage

ROOT = Path(__file__).resolve().parents[3]
OLD = Path(__file__).parent / "old_history" / "migrations"
LAST_SHARED = "2026-11-28T11:58:24:142832"  # the last migration of the shared history
BEFORE_NAMES = "2026-11-25T15:38:56:055336"  # an older database: no English names (name_en) yet
# what the code of that time ran: the one Piccolo app "shengshitong" with the whole history
OLD_MIGRATE = """
import asyncio, sys
from piccolo.conf.apps import AppConfig
from backend import db
from backend.settings import Settings
engine = db.create_engine(Settings(database_url=sys.argv[1], data_dir=sys.argv[2]))
app = AppConfig(app_name="shengshitong", migrations_folder_path=sys.argv[3])
asyncio.run(db.migrate(engine, [app], quiet=True))
"""
# each one's migrations (civic came after the shared history: its one migration simply runs; the
# hospital's third, the old ratings' partial index, came with the evaluation centre; with the e-licences
# came parking's third and fourth, plates checked against vehicle licences, and the hospital's fourth,
# the linked insurance card; library, carmove and doors came with issue 20: their migrations simply run)
MINIAPPS = {
    "transit": 2,
    "parking": 4,
    "hospital": 4,
    "tourism": 2,
    "civic": 1,
    "library": 2,
    "carmove": 3,
    "doors": 1,
}


def _id(path: Path) -> str:
    match = re.search(r'^ID = "(.+)"$', path.read_text(), re.MULTILINE)
    assert match, path
    return match.group(1)


def _old_history(where: Path, upto: str) -> Path:
    folder = where / "old-migrations"
    folder.mkdir()
    files = [*sorted((ROOT / "migrations").glob("shengshitong_*.py")), *sorted(OLD.glob("shengshitong_*.py"))]
    for path in files:
        if _id(path) <= upto:
            shutil.copy(path, folder / path.name)
    return folder


def _run(args: list[str], env: dict[str, str]) -> str:
    out = subprocess.run(args, env=env, capture_output=True, text=True, timeout=180, check=False)
    assert out.returncode == 0, (out.stdout, out.stderr)
    return out.stdout


@pytest.mark.parametrize("upto", [LAST_SHARED, BEFORE_NAMES], ids=["whole-shared-history", "older"])
async def test_a_database_of_the_shared_history_migrates_forward_keeping_its_rows(
    upto, scratch_database, tmp_path
):
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SHENGSHI_")},
        "SHENGSHI_ENV": "test",
        "SHENGSHI_DATA_DIR": str(tmp_path),
        "SHENGSHI_DATABASE_URL": scratch_database,
        "SHENGSHI_SECRET_KEY": new_key(),
        "SHENGSHI_KEY_ENCRYPTION_KEY": new_key(),
        "SHENGSHI_PII_KEYS": f"u1:{new_key()}",
        "SHENGSHI_LOG_LEVEL": "WARNING",
    }
    old = _old_history(tmp_path, upto)
    assert len(list(old.glob("*.py"))) == (18 if upto == LAST_SHARED else 11)
    await asyncio.to_thread(
        _run, [sys.executable, "-c", OLD_MIGRATE, scratch_database, str(tmp_path), str(old)], env
    )
    engine = db.create_engine(Settings(database_url=scratch_database, data_dir=str(tmp_path)))

    async def run(sql: str, *args: Any) -> list[dict[str, Any]]:
        return [dict(r) for r in await engine.run_querystring(QueryString(sql, *args))]

    assert {r["app_name"] for r in await run("SELECT app_name FROM migration")} == {"shengshitong"}
    # rows in every mini-app's tables, as the code of that time wrote them
    await run("INSERT INTO transit_line (code, name, kind, flat_fare) VALUES ('B113', '113路', 'bus', 200)")
    await run(
        "INSERT INTO parking_car_park (code, name, district, capacity, occupied, reserved, free_minutes, "
        "hourly_rate, daily_max) VALUES ('P-1', '北陵公园停车场', '皇姑区', 120, 7, 2, 15, 500, 6000)"
    )
    await run("INSERT INTO hospital (code, name, region) VALUES ('H-1', '盛京医院', '210100')")
    await run(
        "INSERT INTO tourism_attraction (code, name, price, refund_days) VALUES ('A-1', '沈阳故宫', 5000, 1)"
    )

    shengshi = os.path.join(os.path.dirname(sys.executable), "shengshi")
    report = await asyncio.to_thread(_run, [shengshi, "migrate"], env)
    for app_id in MINIAPPS:
        assert f"== {app_id}" in report

    line = await run("SELECT code, name, name_en, kind, flat_fare FROM transit_line")
    assert line == [{"code": "B113", "name": "113路", "name_en": "", "kind": "bus", "flat_fare": 200}]
    park = await run("SELECT code, district, district_en, capacity, occupied, reserved FROM parking_car_park")
    assert park == [
        {
            "code": "P-1",
            "district": "皇姑区",
            "district_en": "",
            "capacity": 120,
            "occupied": 7,
            "reserved": 2,
        }
    ]
    assert await run("SELECT code, name, name_en FROM hospital") == [
        {"code": "H-1", "name": "盛京医院", "name_en": ""}
    ]
    assert await run("SELECT code, price FROM tourism_attraction") == [{"code": "A-1", "price": 5000}]

    # each mini-app's history is recorded under its own name: none applied twice, none left out
    ran = await run("SELECT app_name, count(*) AS n FROM migration GROUP BY app_name")
    assert {r["app_name"]: r["n"] for r in ran if r["app_name"] != "shengshitong"} == MINIAPPS
    again = await asyncio.to_thread(_run, [shengshi, "migrate"], env)
    for app_id in MINIAPPS:
        assert "No migrations need to be run" in again.split(f"== {app_id}")[1].split("==")[0]
    # the tables are what the mini-apps' tables say: an English name can be written
    await run("UPDATE transit_line SET name_en = 'Bus 113'")
    assert (await run("SELECT name_en FROM transit_line"))[0]["name_en"] == "Bus 113"
