"""``shengshi carmove ...``: the operators of 扫码挪车 work the reports of misuse from a terminal, through
the app's own API (``GET /reports``, ``POST /reports/{id}/close``, ``POST /reports/{id}/lift``) with
the app's backend credential, like any back office of the app would: the command needs the server, not
its database.

The credential comes from the environment (``SHENGSHI_CARMOVE_CLIENT_ID``,
``SHENGSHI_CARMOVE_CLIENT_SECRET``: made with ``shengshi miniapps credentials carmove``), never from the
command line, where other users of the machine and the shell's history would see it."""

from __future__ import annotations

import getpass
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
import httpx

API = "/api/v1/apps/carmove"


def _client(server: str) -> httpx.Client:
    client_id = os.environ.get("SHENGSHI_CARMOVE_CLIENT_ID", "")
    secret = os.environ.get("SHENGSHI_CARMOVE_CLIENT_SECRET", "")
    if not client_id or not secret:
        raise click.UsageError(
            "set SHENGSHI_CARMOVE_CLIENT_ID and SHENGSHI_CARMOVE_CLIENT_SECRET to carmove's backend"
            " credential (shengshi miniapps credentials carmove --json)"
        )
    return httpx.Client(base_url=server.rstrip("/"), auth=(client_id, secret), timeout=10)


@contextmanager
def _reaching(server: str) -> Iterator[None]:
    """An operator told the server could not be reached (and why), not shown httpx's traceback."""
    try:
        yield
    except httpx.TransportError as exc:
        raise click.ClickException(f"cannot reach {server}: {exc or type(exc).__name__}") from exc


def _answer(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail") or response.json().get("title")
        except ValueError:
            detail = response.text[:200]
        raise click.ClickException(f"{response.status_code}: {detail}")
    return response.json()


SERVER = click.option(
    "--server",
    default=lambda: os.environ.get("SHENGSHI_PUBLIC_URL", "http://127.0.0.1:8000"),
    show_default="SHENGSHI_PUBLIC_URL or http://127.0.0.1:8000",
    help="the server's address",
)


@click.group("carmove")
def carmove() -> None:
    """扫码挪车: reports of misuse (the operators' list)."""


@carmove.command("reports")
@SERVER
@click.option("--state", type=click.Choice(["open", "closed", "all"]), default="open", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="one JSON object a line")
def reports(server: str, state: str, as_json: bool) -> None:
    """List reports, newest first (every page)."""
    params: dict[str, Any] = {"limit": 100}
    if state != "all":
        params["state"] = state
    with _client(server) as client, _reaching(server):
        offset = 0
        while True:
            page = _answer(client.get(f"{API}/reports", params={**params, "offset": offset}))
            for r in page["items"]:
                if as_json:
                    click.echo(json.dumps(r, ensure_ascii=False))
                else:
                    who = "owner" if r["by_owner"] else "public"
                    click.echo(
                        f"{r['report_id']}  {r['created_at'][:16]}  {r['state']:<6}  {r['kind']:<12}"
                        f"  {who:<6}  {r['plate']}  sticker {r['sticker_state']}  {r['note']}"
                    )
            if page.get("next_offset") is None:
                break
            offset = page["next_offset"]


def _me() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name (a container): --by is then needed to lift
        return ""


BY = click.option(
    "--by",
    default=_me,
    show_default="your login name",
    help="the operator, recorded on the report",
)


@carmove.command("close")
@SERVER
@BY
@click.argument("report_id")
@click.option(
    "--pause", is_flag=True, help="also suspend the car's sticker (its owner cannot lift it: see lift)"
)
def close(server: str, by: str, report_id: str, pause: bool) -> None:
    """Close a report (and suspend its car's sticker with --pause)."""
    with _client(server) as client, _reaching(server):
        done = _answer(
            client.post(
                f"{API}/reports/{report_id}/close",
                json={"action": "pause" if pause else "none", "by": by},
            )
        )
    click.echo(f"closed {done['report_id']}" + (" and suspended the sticker" if pause else ""))


@carmove.command("lift")
@SERVER
@BY
@click.argument("report_id")
def lift(server: str, by: str, report_id: str) -> None:
    """Lift the suspension of a sticker made by closing REPORT_ID with --pause."""
    with _client(server) as client, _reaching(server):
        done = _answer(client.post(f"{API}/reports/{report_id}/lift", json={"by": by}))
    click.echo(f"lifted the suspension of report {done['report_id']} (by {done['lifted_by']})")
