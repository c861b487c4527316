"""The payment centre's migrations applied to a database that already holds payments.

A scratch database of its own (a SQLite file, or a PostgreSQL database next to the test's) is migrated
with Piccolo's own command up to the last migration before these columns, filled the way the code of
that time filled it, then brought up to date with ``shengshi migrate``, as a deployment upgrades."""

import asyncio
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import asyncpg
from piccolo.querystring import QueryString

from backend import db
from backend.settings import Settings
from tests.conftest import BACKEND, PG_ADMIN_URL, RUN_ID

BEFORE = "2026-11-28T09:55:46:062141"  # overpayments, before they could be refunded in parts
CHINA = timezone(timedelta(hours=8))


def _command(name: str, *args: str, url: str, data_dir: Path, secrets: dict[str, str]) -> None:
    env = {
        **os.environ,
        **secrets,
        "SHENGSHI_DATABASE_URL": url,
        "SHENGSHI_DATA_DIR": str(data_dir),
        "PICCOLO_CONF": "backend.piccolo_conf",
        "SHENGSHI_LOG_LEVEL": "WARNING",
    }
    command = os.path.join(os.path.dirname(sys.executable), name)
    out = subprocess.run([command, *args], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, (out.stdout, out.stderr)


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_URL, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def test_payment_migrations_keep_the_payments_already_made(tmp_path, settings):
    if BACKEND == "postgres":
        name = f"shengshi_migrations_{RUN_ID}"
        await _admin(f'CREATE DATABASE "{name}"')
        url = f"{PG_ADMIN_URL.rpartition('/')[0]}/{name}"
    else:
        url = f"sqlite:///{tmp_path / 'upgrade.sqlite3'}"
    try:
        secrets = {
            "SHENGSHI_SECRET_KEY": settings.secret_key,
            "SHENGSHI_KEY_ENCRYPTION_KEY": settings.key_encryption_key,
            "SHENGSHI_PII_KEYS": settings.pii_keys,
        }
        await _upgrade(url, tmp_path, secrets)
    finally:
        if BACKEND == "postgres":
            await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _upgrade(url: str, data_dir: Path, secrets: dict[str, str]) -> None:
    await asyncio.to_thread(
        _command,
        "piccolo",
        "migrations",
        "forwards",
        "shengshitong",
        BEFORE,
        url=url,
        data_dir=data_dir,
        secrets=secrets,
    )
    engine = db.create_engine(Settings(database_url=url, data_dir=str(data_dir)))

    async def run(sql: str, *args):
        return await engine.run_querystring(QueryString(sql, *args))

    # what the code of that time wrote: a paid order, its payment booked yesterday evening (China time),
    # and two overpayments, one refunded whole (then the only way) and one still to refund
    oid, booked = (
        uuid.uuid4(),
        datetime.now(CHINA).replace(hour=21, minute=0, microsecond=0) - timedelta(days=1),
    )
    await run(
        "INSERT INTO payment_order (id, owner, reference, owner_reference, amount, state, channel, "
        "channel_txn, created_at, updated_at) VALUES ({}, 'miniapp:testgate', 'old', "
        "'miniapp:testgate/old', 1000, 'paid', 'wechatpay', '4200000001', {}, {})",
        oid,
        booked.astimezone(UTC),
        booked.astimezone(UTC),
    )
    for kind, account, amount, txn in (
        ("payment", "channel:wechatpay", 1000, "4200000001"),
        ("payment", "payable:miniapp:testgate", -1000, "4200000001"),
        ("overpayment", "channel:wechatpay", 1000, "4200000002"),
        ("overpayment", "suspense:overpaid", -1000, "4200000002"),
        ("overpayment", "channel:wechatpay", 1000, "4200000003"),
        ("overpayment", "suspense:overpaid", -1000, "4200000003"),
        ("overpay_refund", "suspense:overpaid", 1000, "5000000002"),
        ("overpay_refund", "channel:wechatpay", -1000, "5000000002"),
    ):
        await run(
            'INSERT INTO ledger_entry (id, "order", account, amount, kind, channel, channel_txn, created_at) '
            "VALUES ({}, {}, {}, {}, {}, 'wechatpay', {}, {})",
            uuid.uuid4(),
            oid,
            account,
            amount,
            kind,
            txn,
            booked.astimezone(UTC),
        )
    for txn, state in (("4200000002", "refunded"), ("4200000003", "to_refund")):
        await run(
            'INSERT INTO payment_overpayment (id, "order", channel, channel_txn, txn_key, amount, reason, '
            "state, created_at) VALUES ({}, {}, 'wechatpay', {}, {}, 1000, 'already_paid', {}, {})",
            uuid.uuid4(),
            oid,
            txn,
            f"wechatpay/{txn}",
            state,
            booked.astimezone(UTC),
        )

    await asyncio.to_thread(_command, "shengshi", "migrate", url=url, data_dir=data_dir, secrets=secrets)

    rows = await run(
        "SELECT channel_txn, state, amount, refunded FROM payment_overpayment ORDER BY channel_txn"
    )
    assert [(r["channel_txn"], r["state"], r["amount"], r["refunded"]) for r in rows] == [
        ("4200000002", "refunded", 1000, 1000),  # refunded whole before: all of it
        ("4200000003", "to_refund", 1000, 0),
    ]
    rows = await run("SELECT channel_time FROM ledger_entry")
    assert len(rows) == 8 and {r["channel_time"] for r in rows} == {None}  # the channel's time was not kept
    # and those entries are still reconciled on the day they were booked
    statement = data_dir / "statement.csv"
    statement.write_text(
        "txn_id,order_id,type,amount_fen\n"
        f"4200000001,{oid},payment,1000\n4200000002,{oid},payment,1000\n4200000003,{oid},payment,1000\n"
        f"5000000002,{oid},refund,1000\n"
    )
    await asyncio.to_thread(
        _command,
        "shengshi",
        "payments",
        "reconcile",
        "--date",
        booked.date().isoformat(),
        "--channel",
        "wechatpay",
        "--statement",
        str(statement),
        url=url,
        data_dir=data_dir,
        secrets=secrets,
    )
    runs = await run("SELECT statement_rows, ledger_rows, mismatches FROM reconciliation_run")
    assert [(r["statement_rows"], r["ledger_rows"]) for r in runs] == [(4, 4)]
    assert runs[0]["mismatches"] in ([], "[]")
