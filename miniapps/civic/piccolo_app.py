"""civic's own Piccolo app: its tables and its migrations (``miniapps/civic/migrations``), applied by
``shengshi migrate`` when civic is enabled (the platform's migrations first)."""

from pathlib import Path

from piccolo.conf.apps import AppConfig

from miniapps.civic.tables import TABLES

APP_CONFIG = AppConfig(
    app_name="civic",
    migrations_folder_path=str(Path(__file__).parent / "migrations"),
    table_classes=list(TABLES),
)
