"""doors' own Piccolo app: its tables and its migrations (``miniapps/doors/migrations``), applied by
``shengshi migrate`` when doors is enabled (the platform's migrations first)."""

from pathlib import Path

from piccolo.conf.apps import AppConfig

from miniapps.doors.tables import TABLES

APP_CONFIG = AppConfig(
    app_name="doors",
    migrations_folder_path=str(Path(__file__).parent / "migrations"),
    table_classes=list(TABLES),
)
