"""Operators' payment commands: reconciliation, webhook endpoints, closing expired orders."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import click
from litestar import Litestar
from rich.console import Console
from rich.progress import Progress

from backend.cli import emit_json, run_with_runtime
from payments.reconciliation import StatementError, compare, ledger_day, read_statement, summary
from payments.services import PAYMENTS, PaymentServices
from payments.tables import ReconciliationRun


def _payments(app: Litestar) -> PaymentServices:
    return PAYMENTS.of(app)


@click.group("payments")
def payments() -> None:
    """The payment centre: reconciliation and maintenance."""


@payments.command("reconcile")
@click.option(
    "--date",
    "day",
    required=True,
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="business day (China time)",
)
@click.option("--channel", required=True, type=click.Choice(["wechatpay", "alipay", "sandbox"]))
@click.option(
    "--statement",
    "statement",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="the channel's statement as CSV: txn_id,order_id,type,amount_fen",
)
@click.option("--json", "as_json", is_flag=True, help="print the mismatches as JSON lines")
def reconcile(day: Any, channel: str, statement: Path, as_json: bool) -> None:
    """Compare the ledger with a channel's statement for one day; list and store the mismatches."""

    try:
        theirs = read_statement(statement.read_text(encoding="utf-8-sig"))
    except StatementError as exc:
        raise click.ClickException(str(exc)) from None

    async def go(app: Litestar) -> list[dict[str, Any]]:
        ours = await ledger_day(channel, day.date())
        with Progress(transient=True, console=Console(stderr=True)) as bar:
            task = bar.add_task(f"reconciling {channel} {day.date()}", total=len(theirs))
            mismatches = compare(ours, theirs, progress=lambda n: bar.advance(task, n))
        await ReconciliationRun.insert(
            ReconciliationRun(
                id=uuid.uuid4(),
                day=day.date().isoformat(),
                channel=channel,
                statement_rows=len(theirs),
                ledger_rows=len(ours),
                mismatches=mismatches,
            )
        ).run()
        click.echo(summary(len(theirs), len(ours), len(mismatches)), err=True)
        return mismatches

    for m in run_with_runtime(go):
        if as_json:
            emit_json(m)
        else:
            theirs_txn = f" theirs_txn={m['their_txn_id']}" if m.get("their_txn_id") else ""
            count = f" count={m['count']}" if m.get("count", 1) > 1 else ""
            click.echo(
                f"{m['kind']:<16} {m['type']:<8} {m['txn_id']:<32} "
                f"ours={m['our_amount']} theirs={m['their_amount']}{theirs_txn}{count}"
            )


@payments.command("close-expired")
def close_expired() -> None:
    """Close unpaid orders whose payment window has passed (servers also do this every minute)."""

    async def go(app: Litestar) -> int:
        return int(await _payments(app).orders.close_expired())

    click.echo(f"closed {run_with_runtime(go)} orders")


@click.group("webhooks")
def webhooks() -> None:
    """Merchants' and mini-apps' webhook endpoints."""


@webhooks.command("add")
@click.argument("owner")
@click.argument("url")
@click.option("--json", "as_json", is_flag=True)
def webhooks_add(owner: str, url: str, as_json: bool) -> None:
    """Add an endpoint for OWNER (miniapp:<app_id> or merchant:<client_id>); prints its secret once."""

    if not owner.startswith(("miniapp:", "merchant:")):
        raise click.BadParameter("OWNER is miniapp:<app_id> or merchant:<client_id>")

    async def go(app: Litestar) -> dict[str, Any]:
        return dict(await _payments(app).endpoints.add(owner, url))

    created = run_with_runtime(go)
    emit_json(created) if as_json else click.echo(
        f"endpoint {created['endpoint_id']}\nsecret   {created['secret']}"
    )


@webhooks.command("rotate")
@click.argument("endpoint_id")
def webhooks_rotate(endpoint_id: str) -> None:
    """A new signing secret; the previous one keeps signing alongside until the next rotation."""

    async def go(app: Litestar) -> dict[str, Any]:
        return dict(await _payments(app).endpoints.rotate(endpoint_id))

    emit_json(run_with_runtime(go))
