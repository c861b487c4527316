from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Timestamptz
from piccolo.columns.indexes import IndexMethod

ID = "2026-11-28T11:45:14:740732"
VERSION = "1.38.0"
DESCRIPTION = "payments: the channel's own time of a ledger movement, by which a day is reconciled"


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="shengshitong", description=DESCRIPTION
    )

    manager.add_column(
        table_class_name="LedgerEntry",
        tablename="ledger_entry",
        column_name="channel_time",
        db_column_name="channel_time",
        column_class_name="Timestamptz",
        column_class=Timestamptz,
        params={
            "default": None,
            "null": True,
            "primary_key": False,
            "unique": False,
            "index": True,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )

    return manager
