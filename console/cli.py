"""``shengshi console ...``: the people who may sign in to the operators' console."""

from __future__ import annotations

import sys
from typing import Any

import click
from litestar import Litestar

from auth.cli import operator_name
from backend.cli import emit_json, run_with_runtime
from console.operators import OperatorService
from console.services import CONSOLE
from console.tables import ROLES


def _ops(app: Litestar) -> OperatorService:
    return CONSOLE.of(app).operators


def _actor() -> str:
    return operator_name()


@click.group("console")
def console() -> None:
    """Console operators: who may sign in at /admin, and with which role (readonly or admin)."""


@console.command("add-operator")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), default="readonly", show_default=True)
@click.option("--email", default="", help="the operator's e-mail (optional)")
@click.option("--password-stdin", is_flag=True, help="read the password from standard input (scripts)")
def add_operator(username: str, role: str, email: str, password_stdin: bool) -> None:
    """Create a console operator; asks for the password (never taken as an argument)."""

    password = _password(password_stdin)

    async def go(app: Litestar) -> dict[str, Any]:
        return await _ops(app).add(username, password, role, email=email, actor=_actor())

    emit_json(run_with_runtime(go))


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return str(click.prompt("password", hide_input=True, confirmation_prompt=True))


@console.command("reset-password")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="read the password from standard input (scripts)")
def reset_password(username: str, password_stdin: bool) -> None:
    """Give an operator a new password; their sessions end."""

    password = _password(password_stdin)

    async def go(app: Litestar) -> dict[str, Any]:
        return await _ops(app).reset_password(username, password, actor=_actor())

    emit_json(run_with_runtime(go))


@console.command("set-role")
@click.argument("username")
@click.argument("role", type=click.Choice(ROLES))
def set_role(username: str, role: str) -> None:
    """Change an operator's role (takes effect on their next request)."""

    async def go(app: Litestar) -> dict[str, Any]:
        return await _ops(app).set_role(username, role, actor=_actor())

    emit_json(run_with_runtime(go))


@console.command("disable-operator")
@click.argument("username")
def disable_operator(username: str) -> None:
    """Disable an operator and end their sessions at once."""

    async def go(app: Litestar) -> dict[str, Any]:
        return await _ops(app).disable(username, actor=_actor())

    emit_json(run_with_runtime(go))


@console.command("list-operators")
def list_operators() -> None:
    """Console operators, one JSON line each."""

    async def go(app: Litestar) -> list[dict[str, Any]]:
        return await _ops(app).list()

    for row in run_with_runtime(go):
        emit_json(row)
