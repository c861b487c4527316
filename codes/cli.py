"""Operators' key commands (``shengshi keys ...``): the access-token keys (identity's) and the citizen
code's issuer and trust-root keys, rotated and listed in one place."""

from __future__ import annotations

from typing import Any, Literal

import click
from litestar import Litestar

from auth.cli import operator_name
from auth.services import AUTH
from backend import audit
from backend.cli import emit_json, run_with_runtime
from backend.keystore import KeyStore
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
