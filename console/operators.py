"""Console operators: people who sign in to /admin with a password, each with a role.

``readonly`` operators see the console; ``admin`` operators may also change what it lets change. They
are created, re-roled and disabled from the command line (``shengshi console ...``), every change
audited; disabling one ends their sessions at once."""

from __future__ import annotations

from http.cookies import SimpleCookie
from typing import Any

import msgspec

from backend import audit
from backend.errors import Conflict, InvalidInput, NotFound
from console.tables import ROLES, ConsoleOperator, ConsoleSession

SESSION_COOKIE = "id"  # piccolo-api's session cookie
# piccolo's password rules (BaseUser), named in the error a refused password gets
PASSWORD_LENGTHS = (ConsoleOperator._min_password_length, ConsoleOperator._max_password_length)


class Operator(msgspec.Struct, frozen=True):
    id: int
    username: str
    role: str

    @property
    def can_change(self) -> bool:
        return self.role == "admin"


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}", code="invalid_role", roles=list(ROLES))


def _bad_password(exc: ValueError) -> InvalidInput:
    low, high = PASSWORD_LENGTHS
    return InvalidInput(str(exc), code="invalid_password", min_length=low, max_length=high)


def session_token(scope_or_headers: Any) -> str | None:
    """The console session token from an ASGI scope's Cookie header."""
    headers = scope_or_headers.get("headers", []) if isinstance(scope_or_headers, dict) else []
    for name, value in headers:
        if name == b"cookie":
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(value.decode("latin-1"))
            except Exception:  # a malformed Cookie header is no session
                return None
            if SESSION_COOKIE in jar:
                return jar[SESSION_COOKIE].value or None
    return None


class OperatorService:
    async def add(
        self, username: str, password: str, role: str, *, email: str = "", actor: str
    ) -> dict[str, Any]:
        _check_role(role)
        username = username.strip()
        if not username or len(username) > 100:
            raise InvalidInput("a username of 1 to 100 characters is required", code="invalid_username")
        if await ConsoleOperator.exists().where(ConsoleOperator.username == username).run():
            raise Conflict(f"operator {username!r} exists", code="operator_exists", username=username)
        try:
            user = await ConsoleOperator.create_user(
                username=username,
                password=password,
                email=email or f"{username}@operators.invalid",
                active=True,
                admin=True,  # piccolo-admin's own flag: may sign in to the console at all
                superuser=False,  # piccolo-admin's user management stays off: operators come from the CLI
                role=role,
            )
        except ValueError as exc:  # piccolo's password rules (length, not hashed-looking)
            raise _bad_password(exc) from exc
        await audit.record(
            "console.operator_added", actor_kind="operator", actor_id=actor, subject=username, role=role
        )
        return {"id": user.id, "username": username, "role": role}

    async def set_role(self, username: str, role: str, *, actor: str) -> dict[str, Any]:
        _check_role(role)
        updated = (
            await ConsoleOperator.update({ConsoleOperator.role: role})
            .where(ConsoleOperator.username == username)
            .returning(ConsoleOperator.id)
            .run()
        )
        if not updated:
            raise NotFound(f"no operator {username!r}")
        await audit.record(
            "console.operator_role", actor_kind="operator", actor_id=actor, subject=username, role=role
        )
        return {"username": username, "role": role}

    async def reset_password(self, username: str, password: str, *, actor: str) -> dict[str, Any]:
        """A new password; the operator's sessions end (whoever knew the old one is signed out)."""
        row = (
            await ConsoleOperator.select(ConsoleOperator.id)
            .where(ConsoleOperator.username == username)
            .first()
        )
        if row is None:
            raise NotFound(f"no operator {username!r}")
        try:
            await ConsoleOperator.update_password(row["id"], password)
        except ValueError as exc:
            raise _bad_password(exc) from exc
        ended = (
            await ConsoleSession.delete()
            .where(ConsoleSession.user_id == row["id"])
            .returning(ConsoleSession.id)
        )
        await audit.record(
            "console.password_reset",
            actor_kind="operator",
            actor_id=actor,
            subject=username,
            sessions=len(ended),
        )
        return {"username": username, "sessions_ended": len(ended)}

    async def disable(self, username: str, *, actor: str) -> dict[str, Any]:
        updated = (
            await ConsoleOperator.update({ConsoleOperator.active: False})
            .where(ConsoleOperator.username == username)
            .returning(ConsoleOperator.id)
            .run()
        )
        if not updated:
            raise NotFound(f"no operator {username!r}")
        ended = (
            await ConsoleSession.delete()
            .where(ConsoleSession.user_id == updated[0]["id"])
            .returning(ConsoleSession.id)
            .run()
        )
        await audit.record(
            "console.operator_disabled",
            actor_kind="operator",
            actor_id=actor,
            subject=username,
            sessions=len(ended),
        )
        return {"username": username, "active": False, "sessions_ended": len(ended)}

    async def list(self) -> list[dict[str, Any]]:
        return await ConsoleOperator.select(
            ConsoleOperator.id,
            ConsoleOperator.username,
            ConsoleOperator.role,
            ConsoleOperator.active,
            ConsoleOperator.last_login,
        ).order_by(ConsoleOperator.username)

    async def from_token(self, token: str | None) -> Operator | None:
        """The signed-in operator for a session token, or None (unknown, expired, disabled)."""
        if not token:
            return None
        user_id = await ConsoleSession.get_user_id(token)
        if user_id is None:
            return None
        row = (
            await ConsoleOperator.select(ConsoleOperator.id, ConsoleOperator.username, ConsoleOperator.role)
            .where(
                (ConsoleOperator.id == user_id)
                & (ConsoleOperator.active.eq(True))
                & (ConsoleOperator.admin.eq(True))
            )
            .first()
            .run()
        )
        return None if row is None else Operator(id=row["id"], username=row["username"], role=row["role"])
