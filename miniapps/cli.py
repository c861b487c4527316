"""Operators' commands for the mini-app platform's machines (``shengshi scanners|miniapps ...``): a
scanner or a mini-app backend's credential is checked against the enabled mini-apps before it is made."""

from __future__ import annotations

from collections.abc import Callable

import click
from litestar import Litestar

from auth.cli import create_credential, list_credentials, revoke_credential
from miniapps.registry import credential_fields
from miniapps.services import MINIAPPS


def _enabled(kind: str, app_id: str, context: str) -> Callable[[Litestar], dict[str, str]]:
    def check(app: Litestar) -> dict[str, str]:
        return credential_fields(MINIAPPS.of(app).apps, kind, app_id, context)

    return check


@click.group("scanners")
def scanners() -> None:
    """Scanner terminals (gates, buses, barriers): enrol, list, revoke."""


@scanners.command("add")
@click.option("--app", "app_id", required=True, help="the mini-app that owns this scanner, e.g. transit")
@click.option(
    "--place",
    required=True,
    help="where it stands: the code its mini-app knows, e.g. B113 (a bus line) or M1-14 (a metro station)",
)
@click.option(
    "--context",
    default="",
    help="one of the app's scan contexts (e.g. metro-entry); optional when it has one",
)
@click.option("--name", default="", help="a label for operators")
@click.option("--json", "as_json", is_flag=True, help="print the credential as one JSON object")
def scanners_add(app_id: str, place: str, context: str, name: str, as_json: bool) -> None:
    """Enrol a scanner; prints its client id and secret once."""
    create_credential(
        "scanner",
        as_json,
        _enabled("scanner", app_id, context),
        app_id=app_id,
        place=place,
        name=name or place,
    )


@scanners.command("revoke")
@click.argument("client_id")
def scannersrevoke_credential(client_id: str) -> None:
    """Revoke a scanner's credential (takes effect on every worker within seconds)."""
    revoke_credential("scanner", client_id)


@scanners.command("list")
def scannerslist_credentials() -> None:
    """List scanners as JSON lines."""
    list_credentials("scanner")


@click.group("miniapps")
def miniapps() -> None:
    """Mini-app backends' credentials."""


@miniapps.command("credentials")
@click.argument("app_id")
@click.option("--json", "as_json", is_flag=True, help="print the credential as one JSON object")
def miniapps_credentials(app_id: str, as_json: bool) -> None:
    """Issue a new credential for a mini-app's backend (several may be valid during rotation)."""
    create_credential("miniapp", as_json, _enabled("miniapp", app_id, ""), app_id=app_id, name=app_id)


@miniapps.command("revoke")
@click.argument("client_id")
def miniappsrevoke_credential(client_id: str) -> None:
    """Revoke a mini-app backend credential."""
    revoke_credential("miniapp", client_id)


@miniapps.command("list-credentials")
def miniappslist_credentials() -> None:
    """List mini-app credentials as JSON lines."""
    list_credentials("miniapp")
