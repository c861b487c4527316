"""Operators' commands for merchants' tills and citizens' payment agreements
(``shengshi tills|agreements``)."""

from __future__ import annotations

from typing import Any

import click
from litestar import Litestar

from auth.cli import operator_name, revoke_credential
from backend.cli import emit_json, run_with_runtime
from payments.merchant_plugin import MERCHANTS
from payments.merchants import MerchantServices


def _merchants(app: Litestar) -> MerchantServices:
    return MERCHANTS.of(app)


@click.group("tills")
def tills() -> None:
    """Merchants' tills: the scanners that take citizen codes as pay codes (付款码)."""


@tills.command("add")
@click.argument("merchant_client_id")
@click.option("--place", required=True, help="which till of the merchant's, e.g. 'counter 2'")
@click.option("--name", default="", help="a label for operators")
@click.option("--json", "as_json", is_flag=True, help="print the credential as one JSON object")
def tills_add(merchant_client_id: str, place: str, name: str, as_json: bool) -> None:
    """Enrol a till for a merchant (``shengshi merchants add`` made it); prints its secret once."""

    async def go(app: Litestar) -> dict[str, Any] | None:
        merchants = _merchants(app).merchants
        merchant = await merchants.machines.active(merchant_client_id)
        if merchant is None or merchant.kind != "merchant":
            return None
        return await merchants.add_till(merchant_client_id, place=place, name=name)

    created = run_with_runtime(go)
    if created is None:
        raise click.BadParameter(f"no merchant {merchant_client_id}", param_hint="MERCHANT_CLIENT_ID")
    if as_json:
        emit_json(created)
        return
    for key in ("client_id", "client_secret", "app_id", "place", "context", "name"):
        click.echo(f"{key:>14}: {created[key]}")
    click.echo("the secret is shown this once; only its hash is stored", err=True)


@tills.command("list")
@click.argument("merchant_client_id")
def tills_list(merchant_client_id: str) -> None:
    """A merchant's tills as JSON lines."""

    async def go(app: Litestar) -> list[dict[str, Any]]:
        return await _merchants(app).merchants.tills(merchant_client_id)

    for row in run_with_runtime(go):
        emit_json(row)


@tills.command("revoke")
@click.argument("client_id")
def tills_revoke(client_id: str) -> None:
    """Revoke a till's credential."""
    revoke_credential("till", client_id)


@click.group("agreements")
def agreements() -> None:
    """Citizens' payment agreements (代扣协议) with the channels, as the channels confirm them."""


@agreements.command("add")
@click.argument("citizen_id")
@click.argument("channel")
@click.option("--agreement-no", required=True, help="the channel's id of the signed agreement")
def agreements_add(citizen_id: str, channel: str, agreement_no: str) -> None:
    """Record an agreement the channel confirmed (until its sign notice is handled here)."""

    async def go(app: Litestar) -> dict[str, Any]:
        return await _merchants(app).paycode.record_agreement(
            citizen_id, channel, agreement_no=agreement_no, signed_by=f"operator:{operator_name()}"
        )

    emit_json(run_with_runtime(go))


@agreements.command("end")
@click.argument("citizen_id")
@click.argument("channel")
def agreements_end(citizen_id: str, channel: str) -> None:
    """Record that an agreement ended (the citizen cancelled it at the channel)."""

    async def go(app: Litestar) -> dict[str, Any]:
        return await _merchants(app).paycode.end_agreement(citizen_id, channel)

    emit_json(run_with_runtime(go))
