"""tourism's own Piccolo app: its tables and its migrations (``miniapps/tourism/migrations``), applied by
``shengshi migrate`` when tourism is enabled (the platform's migrations first)."""

from pathlib import Path

from piccolo.conf.apps import AppConfig

from miniapps.tourism.tables import TABLES

APP_CONFIG = AppConfig(
    app_name="tourism",
    migrations_folder_path=str(Path(__file__).parent / "migrations"),
    table_classes=list(TABLES),
)
