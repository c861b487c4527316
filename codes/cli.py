"""Operators' key commands (``shengshi keys ...``): the access-token keys (identity's) and the citizen
code's issuer and trust-root keys, rotated and listed in one place."""

from __future__ import annotations

from typing import Any, Literal

import click
from litestar import Litestar

from auth.cli import create_credential, list_credentials, operator_name, revoke_credential
from auth.services import AUTH
from backend import audit
from backend.cli import emit_json, run_with_runtime
from backend.keystore import KeyStore
from codes.owners import KINDS
from codes.services import CODES


@click.group("keys")
def keys() -> None:
    """Signing keys (access tokens; citizen codes)."""


def _keystore(app: Litestar, codes: bool, trust_root: bool) -> KeyStore:
    if trust_root:
        return CODES.of(app).keys.root
    if codes:
        return CODES.of(app).keys.issuer
    return AUTH.of(app).keys


@keys.command("rotate")
@click.option(
    "--codes", is_flag=True, help="rotate the citizen-code issuer key instead of the access-token key"
)
@click.option("--trust-root", is_flag=True, help="rotate the trust list's root key (scanners must re-pin it)")
@click.option("--alg", type=click.Choice(["ES256", "EdDSA"]), default=None, help="algorithm of the new key")
def keys_rotate(codes: bool, trust_root: bool, alg: Literal["ES256", "EdDSA"] | None) -> None:
    """Add a new signing key; the old public key stays published while what it signed can still be used.

    A citizen-code key is published at once and signs from `active_from` on, a trust-list refresh period
    later (SHENGSHI_TRUST_LIST_REFRESH + 60 s): offline scanners must hold it before they meet it."""

    async def go(app: Litestar) -> dict[str, Any]:
        store = _keystore(app, codes, trust_root)
        key = await store.rotate(alg)
        await audit.record(
            "keys_rotated",
            actor_kind="operator",
            actor_id=operator_name(),
            subject=f"{store.purpose}:{key.kid}",
        )
        return {"purpose": store.purpose, "kid": key.kid, "alg": key.alg, "active_from": key.active_from}

    emit_json(run_with_runtime(go))


@keys.command("list")
def keys_list() -> None:
    """Published keys of every purpose as JSON lines (public halves only)."""

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


@click.group("sources")
def sources() -> None:
    """Credentials of the systems that own entitlements (medical insurance, social security, health)."""


@sources.command("add")
@click.option(
    "--kind",
    type=click.Choice(list(KINDS)),
    required=True,
    help="the entitlement this source owns: medical (医保), social_security (社保) or health (健康码)",
)
@click.option("--name", required=True, help="the owner's name, as citizens see it (e.g. 沈阳市医疗保障局)")
@click.option("--json", "as_json", is_flag=True, help="print the credential as one JSON line")
def sources_add(kind: str, name: str, as_json: bool) -> None:
    """Make a source credential (HTTP Basic) for POST /api/v1/entitlements/...; its secret is shown once."""
    create_credential("source", as_json, app_id=kind, name=name)


@sources.command("revoke")
@click.argument("client_id")
def sources_revoke(client_id: str) -> None:
    """Revoke a source credential at once (what it sent stays: it is the record of what was said)."""
    revoke_credential("source", client_id)


@sources.command("list")
def sources_list() -> None:
    """Source credentials as JSON lines (never their secrets)."""
    list_credentials("source")
