"""Piccolo's configuration module (``PICCOLO_CONF=backend.piccolo_conf``): its engine and its apps.

``DB`` is the engine this process bound (``backend.db.bind_engine``): the app's, built from its settings.
Piccolo's own CLI binds none, and gets the one ``SHENGSHI_DATABASE_URL`` names (SQLite under ``var/``
when unset).

``APP_REGISTRY`` holds the platform's Piccolo app and each enabled mini-app's (``SHENGSHI_MINIAPPS``,
found through the mini-apps' entry points: none is named here), so Piccolo's CLI works for any of them:
``piccolo migrations new shengshitong --auto`` for the platform, ``SHENGSHI_MINIAPPS=<id> piccolo
migrations new <id> --auto`` for a mini-app (see docs/miniapps.md). ``shengshi migrate`` applies the
same apps (:func:`app_configs`).
"""

from __future__ import annotations

import os
from importlib import import_module
from typing import Any

from piccolo.conf.apps import AppConfig, AppRegistry

from backend import db
from backend.settings import Settings
from miniapps.registry import discover, enabled, piccolo_apps, wanted

PLATFORM_APP = "backend.piccolo_app"


def environment() -> Settings:
    """What Piccolo's CLI needs of the settings (no secrets): the database and the enabled mini-apps."""
    env, default = os.environ, Settings()
    return Settings(
        database_url=env.get("SHENGSHI_DATABASE_URL", default.database_url),
        data_dir=env.get("SHENGSHI_DATA_DIR", default.data_dir),
        miniapps=env.get("SHENGSHI_MINIAPPS", default.miniapps),
    )


def app_modules(settings: Settings) -> list[str]:
    """The platform's Piccolo app, then each enabled mini-app's, in ``SHENGSHI_MINIAPPS`` order."""
    return [PLATFORM_APP, *piccolo_apps(enabled(wanted(settings.miniapps), discover()))]


def app_configs(settings: Settings) -> list[AppConfig]:
    configs = []
    for module in app_modules(settings):
        config = import_module(module).APP_CONFIG
        assert isinstance(config, AppConfig)
        configs.append(config)
    return configs


def __getattr__(name: str) -> Any:
    # computed when Piccolo first asks (PEP 562): the engine may be bound after this module is loaded
    if name == "DB":
        engine = db.bound_engine()
        if engine is None:
            engine = db.create_engine(environment())
            db.bind_engine(engine)
        return engine
    if name == "APP_REGISTRY":
        registry = AppRegistry(apps=app_modules(environment()))
        globals()["APP_REGISTRY"] = registry
        return registry
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
