"""Operators' commands for identities (``shengshi merchants|operators|citizens ...``), and the helpers
other packages' credential commands use (scanners and mini-app credentials are the mini-app platform's,
which checks them against the enabled mini-apps)."""

from __future__ import annotations

import getpass
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import click
from litestar import Litestar

from auth.services import AUTH, AuthServices
from backend.cli import emit_json, run_with_runtime


def _auth(app: Litestar) -> AuthServices:
    return AUTH.of(app)


def operator_name() -> str:
    """Who runs the command (the OS user), for the audit log."""
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return "operator"


def _show_created(created: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json(created)
        return
    for key in ("kind", "client_id", "client_secret", "app_id", "place", "context", "name"):
        if created.get(key):
            click.echo(f"{key:>14}: {created[key]}")
    click.echo("the secret is shown this once; only its hash is stored", err=True)


def revoke_credential(kind: str, client_id: str) -> None:
    async def go(app: Litestar) -> dict[str, Any]:
        return await _auth(app).machines.revoke(client_id, kind=kind, actor=operator_name())

    emit_json(run_with_runtime(go))


def list_credentials(kind: str) -> None:
    async def go(app: Litestar) -> list[dict[str, Any]]:
        return await _auth(app).machines.list(kind, limit=10_000)

    for row in run_with_runtime(go):
        emit_json(row)


# what a kind's credential must be checked against before it is made (fields to add; sync, or async for a
# check that reads the database), or None
Check = Callable[[Litestar], dict[str, str] | Awaitable[dict[str, str]]] | None


def create_credential(kind: str, as_json: bool, check: Check = None, **fields: str) -> None:
    """Make a machine credential and show its secret once; ``check`` (run inside the started app) may
    refuse it or add fields."""

    async def go(app: Litestar) -> dict[str, Any]:
        if check is not None:
            extra = check(app)
            fields.update(await extra if inspect.isawaitable(extra) else extra)
        return await _auth(app).machines.create(kind, actor=operator_name(), **fields)

    _show_created(run_with_runtime(go), as_json)


@click.group("merchants")
def merchants() -> None:
    """Partner merchants' credentials."""


@merchants.command("add")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="print the credential as one JSON object")
def merchants_add(name: str, as_json: bool) -> None:
    """Register a merchant; prints its client id and secret once."""
    create_credential("merchant", as_json, name=name)


@merchants.command("revoke")
@click.argument("client_id")
def merchants_revoke(client_id: str) -> None:
    """Revoke a merchant credential."""
    revoke_credential("merchant", client_id)


@merchants.command("list")
def merchants_list() -> None:
    """List merchants as JSON lines."""
    list_credentials("merchant")


@click.group("operators")
def operators() -> None:
    """Operators' API credentials (reconciliation reports and other operator endpoints)."""


@operators.command("add")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="print the credential as one JSON object")
def operators_add(name: str, as_json: bool) -> None:
    """Create an operator credential; prints its client id and secret once."""
    create_credential("operator", as_json, name=name)


@operators.command("revoke")
@click.argument("client_id")
def operators_revoke(client_id: str) -> None:
    """Revoke an operator credential."""
    revoke_credential("operator", client_id)


@click.group("citizens")
def citizens() -> None:
    """Citizen accounts (operators' actions, audited)."""


def _block(citizen_id: str, blocked: bool) -> None:
    async def go(app: Litestar) -> dict[str, Any]:
        return await _auth(app).sessions.set_blocked(citizen_id, blocked, actor=operator_name())

    emit_json(run_with_runtime(go))


@citizens.command("block")
@click.argument("citizen_id")
def citizens_block(citizen_id: str) -> None:
    """Block an account: login refused, its codes refused at every gate (account_blocked)."""
    _block(citizen_id, True)


@citizens.command("unblock")
@click.argument("citizen_id")
def citizens_unblock(citizen_id: str) -> None:
    """Lift a block."""
    _block(citizen_id, False)


@citizens.command("clear-real-name")
@click.argument("citizen_id")
@click.option("--reason", default="", help="why (kept in the audit log), e.g. the provider's fraud notice")
def citizens_clear_real_name(citizen_id: str, reason: str) -> None:
    """Withdraw an account's real-name verification: name, ID number and verification are deleted, and
    the entitlements that came with them go; the citizen may verify again."""

    async def go(app: Litestar) -> dict[str, Any]:
        return await _auth(app).realname.clear(
            citizen_id, actor_kind="operator", actor_id=operator_name(), reason=reason
        )

    emit_json(run_with_runtime(go))
