"""The hello door's Piccolo app: its tables and its migrations (``hello_miniapp/migrations``), which
``shengshi migrate`` applies once ``hello`` is enabled (``SHENGSHI_MINIAPPS``).

A new migration after a change to ``tables.py``:
``SHENGSHI_MINIAPPS=hello PICCOLO_CONF=backend.piccolo_conf piccolo migrations new hello --auto``.
"""

from pathlib import Path

from piccolo.conf.apps import AppConfig

from hello_miniapp.tables import TABLES

APP_CONFIG = AppConfig(
    app_name="hello",  # the mini-app's id: its migrations are recorded under it
    migrations_folder_path=str(Path(__file__).parent / "migrations"),
    table_classes=list(TABLES),
)
