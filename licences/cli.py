"""``shengshi licences``: the issuer register (departments that issue e-licences, each with its signing
key and credential), and credentials for inspectors' verifiers and relying parties (government services
that ask citizens for licence fields)."""

from __future__ import annotations

from typing import Any

import click
from litestar import Litestar

from auth.cli import create_credential, list_credentials, operator_name, revoke_credential
from backend.cli import emit_json, run_with_runtime
from licences.rules import DEPARTMENTS, TYPES
from licences.setup import LICENCES

KINDS = {"inspector": "inspectors' verifiers", "relying_party": "relying parties"}


@click.group("licences")
def licences() -> None:
    """E-licences (电子证照): issuers, inspectors and relying parties."""


@licences.command("add-issuer")
@click.argument("code")
@click.option("--name-zh", required=True, help="the department's name in Chinese")
@click.option("--name-en", required=True, help="the department's name in English")
@click.option("--department", required=True, type=click.Choice(sorted(DEPARTMENTS)))
@click.option("--type", "types", required=True, multiple=True, type=click.Choice(sorted(TYPES)))
@click.option("--json", "as_json", is_flag=True, help="print the issuer and its credential as JSON")
def add_issuer(
    code: str, name_zh: str, name_en: str, department: str, types: tuple[str, ...], as_json: bool
) -> None:
    """Register an issuer: its first signing key (published in the issuer trust list) and its credential
    for /api/v1/licences/issued (the secret is shown once)."""

    async def go(app: Litestar) -> dict[str, Any]:
        return await LICENCES.of(app).issuers.create(
            code, name_zh, name_en, department, list(types), actor=operator_name()
        )

    made = run_with_runtime(go)
    if as_json:
        emit_json(made)
        return
    for key in ("code", "name_zh", "department", "types", "client_id", "client_secret"):
        click.echo(f"{key:>14}: {made[key]}")
    click.echo("the secret is shown this once; only its hash is stored", err=True)


@licences.command("revoke-issuer")
@click.argument("code")
def revoke_issuer(code: str) -> None:
    """Take an issuer out of the trust list and stop its credential."""

    async def go(app: Litestar) -> dict[str, Any]:
        return await LICENCES.of(app).issuers.revoke(code, actor=operator_name())

    emit_json(run_with_runtime(go))


@licences.command("rotate-issuer-key")
@click.argument("code")
def rotate_issuer_key(code: str) -> None:
    """Give an issuer a new signing key: published at once, signing once inspectors have fetched it
    (``signs_from``); the old one stays published while its credentials live."""

    async def go(app: Litestar) -> dict[str, str]:
        return {"code": code, **await LICENCES.of(app).issuers.rotate(code, actor=operator_name())}

    emit_json(run_with_runtime(go))


@licences.command("issuers")
def list_issuers() -> None:
    """The issuers as JSON lines."""

    async def go(app: Litestar) -> list[dict[str, Any]]:
        return await LICENCES.of(app).issuers.list()

    for row in run_with_runtime(go):
        emit_json(row)


@licences.command("credential")
@click.argument("kind", type=click.Choice(sorted(KINDS)))
@click.option("--name", required=True, help="who holds it, as citizens read it in their use log")
@click.option("--json", "as_json", is_flag=True, help="print the credential as one JSON line")
def credential(kind: str, name: str, as_json: bool) -> None:
    """A credential for an inspector's verifier (fetching handed-over presentations) or a relying party
    (asking citizens for licence fields); its secret is shown once."""
    create_credential(kind, as_json, name=name)


@licences.command("revoke")
@click.argument("kind", type=click.Choice(sorted(KINDS)))
@click.argument("client_id")
def revoke(kind: str, client_id: str) -> None:
    """Revoke an inspector's or a relying party's credential."""
    revoke_credential(kind, client_id)


@licences.command("list")
@click.argument("kind", type=click.Choice(sorted(KINDS)))
def list_kind(kind: str) -> None:
    """Inspectors' or relying parties' credentials as JSON lines (never their secrets)."""
    list_credentials(kind)
