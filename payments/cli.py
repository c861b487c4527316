"""Operators' payment commands: reconciliation, webhook endpoints, closing expired orders, the channel
tasks (lost notices, closes, refunds, statements) one pass at a time, the sandbox's demonstrations."""

from __future__ import annotations

import importlib
from datetime import date
from pathlib import Path
from typing import Any

import click
from litestar import Litestar
from rich.console import Console
from rich.progress import Progress

from backend.cli import emit_json, run_with_runtime
from payments.channels.base import Statement, StatementRow
from payments.reconciliation import StatementError, read_statement, summary
from payments.reconciliation import reconcile as reconcile_statement
from payments.registry import discover
from payments.services import PAYMENTS, PaymentServices


def _payments(app: Litestar) -> PaymentServices:
    return PAYMENTS.of(app)


def _installed_channel(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """A channel installed here (enabled or not: a statement may come after a channel is switched off)."""
    installed = sorted(discover())
    if value not in installed:
        raise click.BadParameter(
            f"{value!r} is not an installed payment channel (installed: {', '.join(installed)})"
        )
    return value


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
@click.option(
    "--channel", required=True, callback=_installed_channel, help="an installed payment channel's name"
)
@click.option(
    "--statement",
    "statement",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="the channel's statement as CSV: txn_id,order_id,type,amount_fen",
)
@click.option(
    "--native",
    "native",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="the channel's own statement file as it publishes it (read by the channel's parse_bill)",
)
@click.option("--json", "as_json", is_flag=True, help="print the mismatches as JSON lines")
def reconcile_command(
    day: Any, channel: str, statement: Path | None, native: Path | None, as_json: bool
) -> None:
    """Compare the ledger with a channel's statement for one day; list and store the mismatches.
    (Servers also do it every day on the statement they download, for channels that publish one.)"""

    if (statement is None) == (native is None):
        raise click.UsageError("give the statement as --statement CSV or as the channel's own file, --native")
    try:
        parsed = (
            _native(channel, native, day.date())
            if native is not None
            else _csv(channel, statement, day.date())
        )
    except (StatementError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None

    async def go(app: Litestar) -> list[dict[str, Any]]:
        with Progress(transient=True, console=Console(stderr=True)) as bar:
            task = bar.add_task(f"reconciling {channel} {day.date()}", total=len(parsed.rows))
            run = await reconcile_statement(
                parsed, source="native" if native else "cli", progress=lambda n: bar.advance(task, n)
            )
        click.echo(summary(run["statement_rows"], run["ledger_rows"], len(run["mismatches"])), err=True)
        return list(run["mismatches"])

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


def _csv(channel: str, path: Path | None, day: date) -> Statement:
    assert path is not None
    rows = read_statement(path.read_text(encoding="utf-8-sig"))
    return Statement(
        channel=channel,
        day=day,
        rows=[
            StatementRow(txn_id=r["txn_id"], order_id=r["order_id"], type=r["type"], amount=r["amount"])
            for r in rows
        ],
    )


def _native(channel: str, path: Path, day: date) -> Statement:
    """The channel's own file, read by its module's ``parse_bill(bytes, day)`` (``parse_trade_bill`` for
    WeChat Pay's); a channel without one publishes the platform's CSV."""
    module = importlib.import_module(discover()[channel].channel.__module__)
    # the contract's name, parse_bill; WeChat Pay's module calls its trade bill's parse_trade_bill
    parse = getattr(module, "parse_bill", None) or getattr(module, "parse_trade_bill", None)
    if parse is None:
        return _csv(channel, path, day)
    parsed = parse(path.read_bytes(), day)
    assert isinstance(parsed, Statement)
    return parsed


@payments.command("recover")
@click.option("--json", "as_json", is_flag=True)
def recover(as_json: bool) -> None:
    """One pass of what servers do every half minute: ask channels about payments whose notice has not
    come, close expired orders' trades at their channels, see pending refunds on, fetch and reconcile
    the statements that are out."""

    async def go(app: Litestar) -> dict[str, int]:
        return dict(await _payments(app).recovery.run_once())

    _outcomes(run_with_runtime(go), as_json)


@payments.command("refunds-retry")
@click.option("--json", "as_json", is_flag=True)
def refunds_retry(as_json: bool) -> None:
    """One pass over pending refunds that are due: ask the channel about each (or ask for it again)."""

    async def go(app: Litestar) -> dict[str, int]:
        return dict(await _payments(app).recovery.run_once(kinds=("refund",)))

    _outcomes(run_with_runtime(go), as_json)


def _outcomes(done: dict[str, int], as_json: bool) -> None:
    if as_json:
        emit_json(done)
    elif not done:
        click.echo("nothing was due")
    else:
        for outcome, count in sorted(done.items()):
            click.echo(f"{outcome:<24} {count}")


@payments.group("sandbox")
def sandbox() -> None:
    """The sandbox channel, for development and demonstrations (not in prod)."""


@sandbox.command("pay")
@click.argument("order_id")
@click.option("--lose-notice", is_flag=True, help="the sandbox takes the money but its notice never comes")
@click.option("--json", "as_json", is_flag=True)
def sandbox_pay(order_id: str, lose_notice: bool, as_json: bool) -> None:
    """Pay ORDER_ID in the sandbox as its citizen would."""

    async def go(app: Litestar) -> dict[str, Any]:
        return dict(await _payments(app).orders.sandbox_pay(order_id, lose_notice=lose_notice))

    order = run_with_runtime(go)
    if as_json:
        emit_json(order)
    else:
        click.echo(f"order {order['order_id']} {order['state']}")


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
