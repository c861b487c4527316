"""``shengshi``: the operators' command line (Litestar's commands plus ours).

The core commands (migrate, seed-demo, serve) are here; every package contributes its own through the
``shengshitong.commands`` entry-point group (a click command or group per entry), so this module imports
no package, and an installed package's commands appear without an edit here. The composition root hands
in how to build the app (:func:`main`); commands run inside a started app with :func:`run_with_runtime`.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, TypeVar

import click
import msgspec
import uvicorn
from litestar import Litestar
from litestar.cli._utils import LitestarEnv, LitestarGroup
from litestar.cli.commands import core, schema
from piccolo.conf.apps import AppConfig

from backend import db
from backend.errors import AppError
from backend.runtime import Runtime, build_runtime
from backend.seed import seed_demo
from backend.settings import Settings, SettingsError, load_settings

T = TypeVar("T")
COMMANDS_GROUP = "shengshitong.commands"


@dataclass(frozen=True)
class Root:
    """What the composition root gives the command line, which imports no package itself."""

    create_app: Callable[[Runtime], Litestar]  # the app, for commands that run inside a started one
    piccolo_apps: Callable[[Settings], list[AppConfig]]  # whose migrations ``migrate`` applies, in order


_root: list[Root] = []  # given to main()


def _the_root() -> Root:
    if not _root:
        raise RuntimeError("the command line was started without its composition root (backend.cli.main)")
    return _root[0]


@click.group(cls=LitestarGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.pass_context
def cli(ctx: click.Context) -> None:
    """盛事通 Shengshitong — operators' command line."""
    if ctx.obj is None:
        ctx.obj = lambda: LitestarEnv.from_env("backend.asgi:cli_app")


for command in (core.info_command, core.routes_command, core.version_command, schema.schema_group):
    cli.add_command(command)


def settings_or_exit() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)


# An operator's command may read far more than a request does (a day's ledger to reconcile): its
# statements get this long, not the API's few seconds (SHENGSHI_DB_COMMAND_TIMEOUT).
CLI_COMMAND_TIMEOUT = 600.0


def run_with_runtime(fn: Callable[[Any], Awaitable[T]], *, settings: Settings | None = None) -> T:
    """Run ``fn(app)`` inside a started app (engine and store open), then shut down cleanly."""
    create_app = _the_root().create_app

    async def main() -> T:
        base = settings or settings_or_exit()
        timeout = max(base.db_command_timeout, CLI_COMMAND_TIMEOUT)
        runtime = build_runtime(msgspec.structs.replace(base, db_command_timeout=timeout))
        runtime.background = False
        runtime.serving = False  # the server's ports stay the server's
        app = create_app(runtime)
        async with app.lifespan():
            return await fn(app)

    try:
        return asyncio.run(main())
    except SettingsError as exc:  # a plugin's own settings, checked as the app is built
        click.echo(str(exc), err=True)
        sys.exit(2)
    except AppError as exc:
        click.echo(f"error: {exc.detail}", err=True)
        sys.exit(1)
    except BaseExceptionGroup as group:  # raised inside the app's task group: the operator's mistake
        matched, _rest = group.split(AppError)
        if matched is None:
            raise
        first = matched.exceptions[0]
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        assert isinstance(first, AppError)
        click.echo(f"error: {first.detail}", err=True)
        sys.exit(1)


def emit_json(obj: Any) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False, default=str))


@click.command("migrate")
def migrate_command() -> None:
    """Apply every pending database migration: the platform's, then each enabled mini-app's."""
    settings = settings_or_exit()

    async def main() -> str:
        engine = db.create_engine(settings)
        return await db.migrate(engine, _the_root().piccolo_apps(settings), quiet=True)

    report = asyncio.run(main())
    click.echo(report.strip() or "migrations applied")

    async def ensure_keys(app: Any) -> None:
        """Starting the app (its lifespan) creates the first signing keys when there are none."""

    run_with_runtime(ensure_keys, settings=settings)


@click.command("seed-demo")
def seed_demo_command() -> None:
    """Load demo data (idempotent: running it twice changes nothing the second time)."""
    results = run_with_runtime(seed_demo)
    if not results:
        click.echo("nothing to seed")
    for line in results:
        click.echo(line)


WILDCARD_HOSTS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}  # noqa: S104 - names, not binds


def public_url_for(host: str, port: int) -> str:
    """The base URL of a server started on ``host:port``; an all-interfaces address is shown as this
    machine's loopback (the one address known to reach it)."""
    shown = WILDCARD_HOSTS.get(host, host)
    return f"http://{f'[{shown}]' if ':' in shown else shown}:{port}"


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
@click.option("--reload", is_flag=True, help="Restart on code changes (development).")
def serve_command(host: str, port: int, workers: int, reload: bool) -> None:
    """Serve the API with uvicorn (several workers need Redis: SHENGSHI_REDIS_URL).

    Unless SHENGSHI_PUBLIC_URL is set, the service's public URL (pay pages, callback URLs) is the host
    and port it is started on."""

    if not os.environ.get("SHENGSHI_PUBLIC_URL"):
        url = os.environ["SHENGSHI_PUBLIC_URL"] = public_url_for(host, port)  # every worker reads it
        if host in WILDCARD_HOSTS:
            click.echo(
                f"serving on all interfaces; links this server hands out say {url}: "
                "set SHENGSHI_PUBLIC_URL to the address other devices reach it by",
                err=True,
            )
    settings = settings_or_exit()
    if workers > 1 and not settings.uses_redis:
        click.echo(
            "refusing to start several workers with the in-process store: set SHENGSHI_REDIS_URL "
            "(the in-process store serves one process only)",
            err=True,
        )
        sys.exit(2)
    if workers > 1:
        # One metrics view across workers: prometheus-client's multiprocess mode.
        metrics_dir = Path(settings.data_dir) / "prometheus"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir.resolve())
    uvicorn.run(
        "backend.asgi:serve_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        reload=reload,
        proxy_headers=True,
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=max(1, round(settings.shutdown_grace)),
    )


for ours in (migrate_command, seed_demo_command, serve_command):
    cli.add_command(ours)  # type: ignore[arg-type]  # LitestarGroup's annotation names rich-click's class


def add_package_commands(group: click.Group) -> None:
    """Every installed package's commands (the ``shengshitong.commands`` entry points), by name."""
    for ep in sorted(entry_points(group=COMMANDS_GROUP), key=lambda e: e.name):
        command = ep.load()
        if not isinstance(command, click.Command):
            raise TypeError(f"entry point {ep.name} = {ep.value} is not a click command")
        if command.name in group.commands:
            raise click.UsageError(f"two packages add the command {command.name!r} (one is {ep.value})")
        group.add_command(command)


def main(root: Root) -> None:
    """Run the command line with what the composition root gives it."""
    _root[:] = [root]
    add_package_commands(cli)
    cli(prog_name="shengshi")
