"""The platform's Piccolo app: the platform packages' tables and the migrations in ``migrations/``.

Mini-apps are not here: each has a Piccolo app of its own (``MiniApp.piccolo_app``), which
``backend.piccolo_conf`` adds for the enabled ones.
"""

from pathlib import Path

from piccolo.conf.apps import AppConfig

import migrations
from auth.tables import TABLES as AUTH_TABLES
from backend.tables import TABLES as BACKEND_TABLES
from codes.tables import TABLES as CODES_TABLES
from console.tables import TABLES as CONSOLE_TABLES
from fees.tables import TABLES as FEE_TABLES
from licences.tables import TABLES as LICENCE_TABLES
from messages.tables import TABLES as MESSAGE_TABLES
from miniapps.tables import TABLES as MINIAPP_TABLES
from payments.tables import TABLES as PAYMENT_TABLES
from ratings.tables import TABLES as RATING_TABLES

APP_NAME = "shengshitong"

APP_CONFIG = AppConfig(
    app_name=APP_NAME,
    migrations_folder_path=str(Path(migrations.__file__).parent),
    table_classes=[
        *BACKEND_TABLES,
        *AUTH_TABLES,
        *CODES_TABLES,
        *MINIAPP_TABLES,
        *PAYMENT_TABLES,
        *MESSAGE_TABLES,
        *RATING_TABLES,
        *LICENCE_TABLES,
        *FEE_TABLES,
        *CONSOLE_TABLES,
    ],
    migration_dependencies=[],
    commands=[],
)
