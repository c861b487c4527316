"""Finding mini-apps (the ``shengshitong.miniapps`` entry-point group) and enabling them by settings."""

from __future__ import annotations

import json
import os
from importlib.metadata import entry_points
from typing import Any

import msgspec

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
    return cls


def discover(extra: list[type[MiniApp]] | None = None) -> dict[str, type[MiniApp]]:
    """Every installed mini-app by id. Two packages claiming one id is an error naming both."""
    found: dict[str, tuple[type[MiniApp], str]] = {}
    candidates: list[tuple[Any, str]] = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded = ep.load()
        except Exception as exc:
            raise MiniAppError(
                f"mini-app entry point {ep.name} = {ep.value} cannot be loaded: {exc}"
            ) from exc
        candidates.append((loaded, f"entry point {ep.name} = {ep.value}"))
    candidates += [(cls, f"{cls.__module__}.{cls.__qualname__}") for cls in extra or []]
    for cls, where in candidates:
        app = _check_class(cls, where)
        app_id = app.manifest.id
        if app_id in found and found[app_id][0] is not app:
            raise MiniAppError(f"two mini-apps claim the id {app_id!r}: {found[app_id][1]} and {where}")
        found[app_id] = (app, where)
    return {k: v[0] for k, v in found.items()}


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
