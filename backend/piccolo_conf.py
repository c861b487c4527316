"""Piccolo's configuration module (``PICCOLO_CONF=backend.piccolo_conf``).

``DB`` starts as the engine named by ``SHENGSHI_DATABASE_URL`` (SQLite under ``var/`` when unset), so
Piccolo's own CLI works (``piccolo migrations new shengshitong --auto``); the app replaces it with the
engine it builds from its settings (see ``backend.db.bind_engine``).
"""

import os

from piccolo.conf.apps import AppRegistry

from backend.db import create_engine
from backend.settings import Settings

DB = create_engine(
    Settings(
        database_url=os.environ.get("SHENGSHI_DATABASE_URL", ""),
        data_dir=os.environ.get("SHENGSHI_DATA_DIR", "var"),
    )
)

APP_REGISTRY = AppRegistry(apps=["backend.piccolo_app"])
