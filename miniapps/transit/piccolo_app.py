"""transit's own Piccolo app: its tables and its migrations (``miniapps/transit/migrations``), applied by
``shengshi migrate`` when transit is enabled (the platform's migrations first)."""

from pathlib import Path

from piccolo.conf.apps import AppConfig

from miniapps.transit.tables import TABLES

APP_CONFIG = AppConfig(
    app_name="transit",
    migrations_folder_path=str(Path(__file__).parent / "migrations"),
    table_classes=list(TABLES),
)
