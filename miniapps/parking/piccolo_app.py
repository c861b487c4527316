"""parking's own Piccolo app: its tables and its migrations (``miniapps/parking/migrations``), applied by
``shengshi migrate`` when parking is enabled (the platform's migrations first)."""

from pathlib import Path

from piccolo.conf.apps import AppConfig

from miniapps.parking.tables import TABLES

APP_CONFIG = AppConfig(
    app_name="parking",
    migrations_folder_path=str(Path(__file__).parent / "migrations"),
    table_classes=list(TABLES),
)
