"""Operators' commands for credentials and keys (``shengshi scanners|miniapps|merchants|keys ...``)."""

from __future__ import annotations

import getpass
from typing import Any

import click
from litestar import Litestar

from auth.services import AuthServices


def _auth(app: Litestar) -> AuthServices:
    return app.state.runtime.services["auth"]  # type: ignore[no-any-return]


def _operator() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return "operator"


def _show_created(created: dict[str, Any], as_json: bool) -> None:
    from backend.cli import emit_json

    if as_json:
        emit_json(created)
        return
    for key in ("kind", "client_id", "client_secret", "app_id", "place", "context", "name"):
        if created.get(key):
            click.echo(f"{key:>14}: {created[key]}")
    click.echo("the secret is shown this once; only its hash is stored", err=True)


def _revoke(kind: str, client_id: str) -> None:
    from backend.cli import emit_json, run_with_runtime

    async def go(app: Litestar) -> dict[str, Any]:
        return await _auth(app).machines.revoke(client_id, kind=kind, actor=_operator())

    emit_json(run_with_runtime(go))


def _list(kind: str) -> None:
    from backend.cli import emit_json, run_with_runtime

    async def go(app: Litestar) -> list[dict[str, Any]]:
        return await _auth(app).machines.list(kind, limit=10_000)

    for row in run_with_runtime(go):
        emit_json(row)


def _create(kind: str, as_json: bool, **fields: str) -> None:
    from backend.cli import run_with_runtime

    async def go(app: Litestar) -> dict[str, Any]:
        if kind in ("scanner", "miniapp"):
            fields.update(_check_app(app, kind, fields["app_id"], fields.get("context", "")))
        return await _auth(app).machines.create(kind, actor=_operator(), **fields)

    _show_created(run_with_runtime(go), as_json)


def _check_app(app: Litestar, kind: str, app_id: str, context: str) -> dict[str, str]:
    from miniapps.registry import credential_fields

    return credential_fields(app.state.runtime.services["miniapps"].apps, kind, app_id, context)


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
    _create("scanner", as_json, app_id=app_id, place=place, context=context, name=name or place)


@scanners.command("revoke")
@click.argument("client_id")
def scanners_revoke(client_id: str) -> None:
    """Revoke a scanner's credential (takes effect on every worker within seconds)."""
    _revoke("scanner", client_id)


@scanners.command("list")
def scanners_list() -> None:
    """List scanners as JSON lines."""
    _list("scanner")


@click.group("miniapps")
def miniapps() -> None:
    """Mini-app backends' credentials."""


@miniapps.command("credentials")
@click.argument("app_id")
@click.option("--json", "as_json", is_flag=True, help="print the credential as one JSON object")
def miniapps_credentials(app_id: str, as_json: bool) -> None:
    """Issue a new credential for a mini-app's backend (several may be valid during rotation)."""
    _create("miniapp", as_json, app_id=app_id, name=app_id)


@miniapps.command("revoke")
@click.argument("client_id")
def miniapps_revoke(client_id: str) -> None:
    """Revoke a mini-app backend credential."""
    _revoke("miniapp", client_id)


@miniapps.command("list-credentials")
def miniapps_list() -> None:
    """List mini-app credentials as JSON lines."""
    _list("miniapp")


@click.group("merchants")
def merchants() -> None:
    """Partner merchants' credentials."""


@merchants.command("add")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="print the credential as one JSON object")
def merchants_add(name: str, as_json: bool) -> None:
    """Register a merchant; prints its client id and secret once."""
    _create("merchant", as_json, name=name)


@merchants.command("revoke")
@click.argument("client_id")
def merchants_revoke(client_id: str) -> None:
    """Revoke a merchant credential."""
    _revoke("merchant", client_id)


@merchants.command("list")
def merchants_list() -> None:
    """List merchants as JSON lines."""
    _list("merchant")


@click.group("keys")
def keys() -> None:
    """Signing keys (access tokens; citizen codes)."""


def _keystore(app: Litestar, codes: bool, trust_root: bool) -> Any:
    if trust_root:
        return app.state.runtime.services["codes"].keys.root
    if codes:
        return app.state.runtime.services["codes"].keys.issuer
    return _auth(app).keys


@keys.command("rotate")
@click.option(
    "--codes", is_flag=True, help="rotate the citizen-code issuer key instead of the access-token key"
)
@click.option("--trust-root", is_flag=True, help="rotate the trust list's root key (scanners must re-pin it)")
@click.option("--alg", type=click.Choice(["ES256", "EdDSA"]), default=None, help="algorithm of the new key")
def keys_rotate(codes: bool, trust_root: bool, alg: str | None) -> None:
    """Add a new signing key; the old public key stays published while what it signed can still be used.

    A citizen-code key is published at once and signs from `active_from` on, a trust-list refresh period
    later (SHENGSHI_TRUST_LIST_REFRESH + 60 s): offline scanners must hold it before they meet it."""
    from backend import audit
    from backend.cli import emit_json, run_with_runtime

    async def go(app: Litestar) -> dict[str, Any]:
        store = _keystore(app, codes, trust_root)
        key = await store.rotate(alg)
        await audit.record(
            "keys_rotated", actor_kind="operator", actor_id=_operator(), subject=f"{store.purpose}:{key.kid}"
        )
        return {"purpose": store.purpose, "kid": key.kid, "alg": key.alg, "active_from": key.active_from}

    emit_json(run_with_runtime(go))


@keys.command("list")
def keys_list() -> None:
    """Published keys of every purpose as JSON lines (public halves only)."""
    from backend.cli import emit_json, run_with_runtime

    async def go(app: Litestar) -> list[dict[str, Any]]:
        rows = []
        for store in (_keystore(app, False, False), _keystore(app, True, False), _keystore(app, False, True)):
            active = await store.active()
            for k in await store.published():
                rows.append(
                    {
                        "purpose": store.purpose,
                        "kid": k.kid,
                        "alg": k.alg,
                        "active": k.kid == active.kid,
                        "active_from": k.active_from,
                        "retired_at": k.retired_at,
                        "publish_until": k.publish_until,
                    }
                )
        return rows

    for row in run_with_runtime(go):
        emit_json(row)


@click.group("operators")
def operators() -> None:
    """Operators' API credentials (reconciliation reports and other operator endpoints)."""


@operators.command("add")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="print the credential as one JSON object")
def operators_add(name: str, as_json: bool) -> None:
    """Create an operator credential; prints its client id and secret once."""
    _create("operator", as_json, name=name)


@operators.command("revoke")
@click.argument("client_id")
def operators_revoke(client_id: str) -> None:
    """Revoke an operator credential."""
    _revoke("operator", client_id)


@click.group("citizens")
def citizens() -> None:
    """Citizen accounts (operators' actions, audited)."""


def _block(citizen_id: str, blocked: bool) -> None:
    from backend.cli import emit_json, run_with_runtime

    async def go(app: Litestar) -> dict[str, Any]:
        return await _auth(app).sessions.set_blocked(citizen_id, blocked, actor=_operator())

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


COMMANDS = [scanners, miniapps, merchants, operators, citizens, keys]
