"""Entry points for ASGI servers (``uvicorn --factory backend.asgi:serve_app``) and the command line
(``shengshi``, :func:`main`): the composition root's doors."""

from __future__ import annotations

import fcntl
import os
import sys
from pathlib import Path
from typing import IO

from litestar import Litestar

from backend import cli, piccolo_conf
from backend.app import create_app
from backend.runtime import Runtime
from backend.settings import SettingsError, load_settings

_lock_file: IO[str] | None = None


class SingleProcessOnly(RuntimeError):
    pass


def _hold_inprocess_lock(data_dir: str) -> None:
    """The in-process store lives in one process: refuse to serve from a second one on the same data."""
    global _lock_file
    if _lock_file is not None:
        return
    path = Path(data_dir) / "inprocess-store.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise SingleProcessOnly(
            "another process already serves with the in-process store; it serves one process only. "
            "Set SHENGSHI_REDIS_URL to run several workers."
        ) from None
    handle.write(str(os.getpid()))
    handle.flush()
    _lock_file = handle


def serve_app() -> Litestar:
    """Factory every server worker calls. Bad settings (the core's, or a plugin's own, checked as the
    app is built) stop it with their list, not a traceback."""
    try:
        settings = load_settings()
        if not settings.uses_redis:
            _hold_inprocess_lock(settings.data_dir)
        return create_app(settings)
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        sys.exit(2)


def cli_app() -> Litestar:
    """Factory for the inspection commands (routes, schema): never serves, takes no lock."""
    return create_app(load_settings())


def _app_for(runtime: Runtime) -> Litestar:
    return create_app(runtime=runtime)


def main() -> None:
    """``shengshi``: the command line, with this app's factory for commands that need a started app."""
    cli.main(cli.Root(create_app=_app_for, piccolo_apps=piccolo_conf.app_configs))
