"""一码借阅's own Piccolo app: its tables and its migrations (``miniapps/library/migrations``), applied by
``shengshi migrate`` when the library app is enabled (the platform's migrations first)."""

from pathlib import Path

from piccolo.conf.apps import AppConfig

from miniapps.library.tables import TABLES

APP_CONFIG = AppConfig(
    app_name="library",
    migrations_folder_path=str(Path(__file__).parent / "migrations"),
    table_classes=list(TABLES),
)
