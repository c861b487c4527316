"""hospital's own Piccolo app: its tables and its migrations (``miniapps/hospital/migrations``), applied by
``shengshi migrate`` when hospital is enabled (the platform's migrations first)."""

from pathlib import Path

from piccolo.conf.apps import AppConfig

from miniapps.hospital.tables import TABLES

APP_CONFIG = AppConfig(
    app_name="hospital",
    migrations_folder_path=str(Path(__file__).parent / "migrations"),
    table_classes=list(TABLES),
)
