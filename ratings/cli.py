"""``shengshi units``: credentials for the units' own case-handling systems (HTTP Basic, kind ``unit``),
each bound to one unit, which must exist (a mini-app's, or a department an operator added)."""

from __future__ import annotations

import click
from litestar import Litestar

from auth.cli import create_credential, list_credentials, revoke_credential
from ratings.setup import RATINGS


@click.group("units")
def units() -> None:
    """Units (单位) that answer for their services' bad ratings (好差评)."""


@units.command("credential")
@click.option(
    "--unit", "unit_id", required=True, help="the unit's id, <owner>/<code> (e.g. platform/traffic)"
)
@click.option("--name", required=True, help="the system's name, as operators read it")
@click.option("--json", "as_json", is_flag=True, help="print the credential as one JSON line")
def units_credential(unit_id: str, name: str, as_json: bool) -> None:
    """Make a credential for GET/POST /api/v1/ratings/cases of this unit only; its secret is shown once."""

    async def check(app: Litestar) -> dict[str, str]:
        await RATINGS.of(app).centre.units.get(unit_id)  # an unknown unit stops here (404)
        return {}

    create_credential("unit", as_json, app_id=unit_id, name=name, check=check)


@units.command("revoke")
@click.argument("client_id")
def units_revoke(client_id: str) -> None:
    """Revoke a unit's credential (takes effect on every worker within seconds)."""
    revoke_credential("unit", client_id)


@units.command("list")
def units_list() -> None:
    """Unit credentials as JSON lines (never their secrets)."""
    list_credentials("unit")
