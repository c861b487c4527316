"""Operators' commands: ``shengshi departments`` (the credentials of departments that issue payment
notices) and ``shengshi fees`` (reconciling the fiscal system's day file, resending a notification)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click
from litestar import Litestar

from auth.cli import create_credential, list_credentials, operator_name, revoke_credential
from backend.cli import emit_json, run_with_runtime
from fees.setup import FEES

CODE = re.compile(r"^[A-Za-z0-9]{3,32}\Z")


@click.group("departments")
def departments() -> None:
    """Departments (执收单位) that issue payment notices for non-tax fees (HTTP Basic, kind department)."""


@departments.command("add")
@click.argument("name")
@click.option("--code", required=True, help="the department's code (执收单位编码), 3-32 letters or digits")
@click.option("--json", "as_json", is_flag=True, help="print the credential as one JSON line")
def departments_add(name: str, code: str, as_json: bool) -> None:
    """Make a credential for a department; its secret is shown once. A department may hold several
    (add the new one, move its system over, revoke the old one)."""
    if not CODE.match(code):
        raise click.BadParameter("3-32 letters or digits", param_hint="--code")
    create_credential("department", as_json, name=name, app_id=code)


@departments.command("revoke")
@click.argument("client_id")
def departments_revoke(client_id: str) -> None:
    """Revoke a department's credential (takes effect on every worker within seconds)."""
    revoke_credential("department", client_id)


@departments.command("list")
def departments_list() -> None:
    """Department credentials as JSON lines (never their secrets)."""
    list_credentials("department")


@click.group("fees")
def fees() -> None:
    """Non-tax fees (财政非税): reconciliation with the fiscal system."""


@fees.command("reconcile")
@click.option(
    "--date", "day", required=True, type=click.DateTime(formats=["%Y-%m-%d"]), help="day (China time)"
)
@click.option(
    "--file",
    "path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="the fiscal system's day file, CSV: notice_no,amount[,paid_at,receipt_no]",
)
@click.option("--json", "as_json", is_flag=True, help="print the differences as JSON lines")
def reconcile(day: Any, path: Path, as_json: bool) -> None:
    """Compare the fiscal system's day file with the notices paid that day; list and keep the differences."""
    text = path.read_text(encoding="utf-8-sig")

    async def go(app: Litestar) -> dict[str, Any]:
        return await FEES.of(app).centre.reconcile(day.date(), text, actor=operator_name())

    result = run_with_runtime(go)
    click.echo(
        f"{result['date']}: fiscal file {result['fiscal_rows']} rows, ours {result['our_rows']},"
        f" {len(result['differences'])} differences",
        err=True,
    )
    for d in result["differences"]:
        if as_json:
            emit_json(d)
        else:
            click.echo(
                f"{d['kind']:<15} {d['notice_no']} ours={d['ours']} theirs={d['theirs']} {d['note']}".rstrip()
            )


@fees.command("resend")
@click.argument("notice_no")
def resend(notice_no: str) -> None:
    """Send a paid notice's notification to the fiscal system again after it was given up."""

    async def go(app: Litestar) -> bool:
        return await FEES.of(app).fiscal.resend(notice_no)

    emit_json({"notice_no": notice_no, "resent": run_with_runtime(go)})
