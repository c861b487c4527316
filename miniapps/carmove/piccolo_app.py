"""carmove's own Piccolo app: its tables and its migrations (``miniapps/carmove/migrations``), applied by
``shengshi migrate`` when carmove is enabled (the platform's migrations first)."""

from pathlib import Path

from piccolo.conf.apps import AppConfig

from miniapps.carmove.tables import TABLES

APP_CONFIG = AppConfig(
    app_name="carmove",
    migrations_folder_path=str(Path(__file__).parent / "migrations"),
    table_classes=list(TABLES),
)
