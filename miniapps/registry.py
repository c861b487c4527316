"""Finding mini-apps (the ``shengshitong.miniapps`` entry-point group) and enabling them by settings."""

from __future__ import annotations

import json
import os
from importlib import import_module
from typing import Any

import msgspec
from piccolo.conf.apps import AppConfig

from backend import plugins
from backend.errors import InvalidInput
from miniapps.contract import Manifest, MiniApp

ENTRY_POINT_GROUP = "shengshitong.miniapps"


class MiniAppError(Exception):
    """A mini-app cannot be loaded; start-up stops with this message."""


def _check_class(cls: Any, where: str) -> type[MiniApp]:
    if not (isinstance(cls, type) and issubclass(cls, MiniApp)):
        raise MiniAppError(f"{where} is not a MiniApp subclass")
    manifest = getattr(cls, "manifest", None)
    if not isinstance(manifest, Manifest):
        raise MiniAppError(f"{where} has no Manifest")
    try:  # re-validate: a Manifest built in code bypasses the decoder's constraints
        msgspec.convert(msgspec.to_builtins(manifest), Manifest)
    except msgspec.ValidationError as exc:
        raise MiniAppError(f"{where}: bad manifest: {exc}") from None
    if problems := manifest.problems():
        raise MiniAppError(f"{where}: bad manifest: " + "; ".join(problems))
    if cls.on_scan is MiniApp.on_scan and not cls.decides_fast():
        raise MiniAppError(f"{where} decides no scan: implement on_scan, or decide (with apply)")
    if not isinstance(cls.piccolo_app, str | None):
        raise MiniAppError(f"{where}: piccolo_app must name a module (a string), not {cls.piccolo_app!r}")
    return cls


def discover(extra: list[type[MiniApp]] | None = None) -> dict[str, type[MiniApp]]:
    """Every installed mini-app by id. Two packages claiming one id is an error naming both."""
    return plugins.discover(
        ENTRY_POINT_GROUP,
        what="mini-app",
        extra=[(cls, f"{cls.__module__}.{cls.__qualname__}") for cls in extra or []],
        check=_check_class,
        key=lambda app: app.manifest.id,
        key_name="id",
        error=MiniAppError,
    )


def wanted(setting: str) -> list[str]:
    """The ids ``SHENGSHI_MINIAPPS`` names, in its order."""
    return [a.strip() for a in setting.split(",") if a.strip()]


def enabled(wanted: list[str], discovered: dict[str, type[MiniApp]]) -> list[type[MiniApp]]:
    """The mini-apps named in settings, in that order; unknown names and clashing scan contexts stop
    start-up."""
    apps = []
    for app_id in wanted:
        if app_id not in discovered:
            raise MiniAppError(
                f"SHENGSHI_MINIAPPS names {app_id!r}, which is not installed "
                f"(installed: {sorted(discovered) or 'none'})"
            )
        apps.append(discovered[app_id])
    if len(set(wanted)) != len(wanted):
        raise MiniAppError(f"SHENGSHI_MINIAPPS names an app twice: {wanted}")
    owner: dict[str, str] = {}
    for app in apps:
        for context in app.manifest.scan_contexts:
            if context in owner:
                raise MiniAppError(
                    f"scan context {context!r} is claimed by both {owner[context]!r} and {app.manifest.id!r}"
                )
            owner[context] = app.manifest.id
    return apps


def piccolo_app(cls: type[MiniApp]) -> AppConfig | None:
    """The mini-app's own Piccolo app (its tables and migrations), checked: the module it names holds an
    ``APP_CONFIG`` whose app is named after the mini-app's id. None when it keeps no tables."""
    if cls.piccolo_app is None:
        return None
    app_id = cls.manifest.id
    try:
        module = import_module(cls.piccolo_app)
    except Exception as exc:
        raise MiniAppError(
            f"mini-app {app_id!r}: its Piccolo app {cls.piccolo_app} cannot be loaded: {exc}"
        ) from exc
    config = getattr(module, "APP_CONFIG", None)
    if not isinstance(config, AppConfig):
        raise MiniAppError(f"mini-app {app_id!r}: {cls.piccolo_app} has no APP_CONFIG (a Piccolo AppConfig)")
    if config.app_name != app_id:
        raise MiniAppError(
            f"mini-app {app_id!r}: its Piccolo app is named {config.app_name!r}; name it {app_id!r}, "
            "after the mini-app (its migrations are recorded under that name)"
        )
    return config


def piccolo_apps(classes: list[type[MiniApp]]) -> list[str]:
    """The modules of the given mini-apps' Piccolo apps, in their order (apps without tables left out)."""
    modules = []
    for cls in classes:
        if cls.piccolo_app is not None and piccolo_app(cls) is not None:
            modules.append(cls.piccolo_app)
    return modules


def load_config(manifest: Manifest, environ: dict[str, str] | None = None) -> dict[str, Any]:
    """A mini-app's settings: JSON in ``SHENGSHI_MINIAPP_<ID>`` checked against its settings schema
    (``{"key": {"type": "integer|number|string|boolean", "default": ...}}``)."""
    env = os.environ if environ is None else environ
    var = "SHENGSHI_MINIAPP_" + manifest.id.upper().replace("-", "_")
    try:
        given = json.loads(env.get(var, "{}"))
    except json.JSONDecodeError as exc:
        raise MiniAppError(f"{var} is not JSON: {exc}") from None
    if not isinstance(given, dict):
        raise MiniAppError(f"{var} must be a JSON object")
    types: dict[str, Any] = {"integer": int, "number": (int, float), "string": str, "boolean": bool}
    config: dict[str, Any] = {}
    for key, spec in manifest.settings_schema.items():
        if key in given:
            value = given[key]
            expected = types.get(spec.get("type", "string"), str)
            if isinstance(value, bool) and spec.get("type") in ("integer", "number"):
                raise MiniAppError(f"{var}: {key} must be {spec.get('type')}")
            if not isinstance(value, expected):
                raise MiniAppError(f"{var}: {key} must be {spec.get('type')}")
            config[key] = value
        elif "default" in spec:
            config[key] = spec["default"]
        else:
            raise MiniAppError(f"{var}: {key} is required")
    if unknown := set(given) - set(manifest.settings_schema):
        raise MiniAppError(f"{var}: unknown settings {sorted(unknown)}")
    return config


def credential_fields(apps: dict[str, Any], kind: str, app_id: str, context: str) -> dict[str, str]:
    """Check a scanner or mini-app credential against the enabled mini-apps: a scanner belongs to one of
    them and to one of the scan contexts it declares (the only one, when it has one). Returns the
    fields to store (the context a scanner gets)."""

    if app_id not in apps:
        enabled = ", ".join(apps) or "-"
        raise InvalidInput(
            f"mini-app {app_id!r} is not enabled (enabled: {enabled}; see SHENGSHI_MINIAPPS)",
            code="miniapp_not_enabled",
            app_id=app_id,
            enabled=enabled,
        )
    if kind != "scanner":
        return {}
    contexts = list(apps[app_id].manifest.scan_contexts)
    if not context and len(contexts) == 1:
        context = contexts[0]
    if context not in contexts:
        known = ", ".join(contexts) or "-"
        raise InvalidInput(
            f"the context must be one of {app_id}'s scan contexts: {known}",
            code="unknown_scan_context",
            app_id=app_id,
            contexts=known,
        )
    return {"context": context}
