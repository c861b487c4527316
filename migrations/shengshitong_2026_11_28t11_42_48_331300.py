from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Integer
from piccolo.columns.indexes import IndexMethod

ID = "2026-11-28T11:42:48:331300"
VERSION = "1.38.0"
DESCRIPTION = "payments: an overpayment refunded in parts (its refunded amount so far)"


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="shengshitong", description=DESCRIPTION
    )

    manager.add_column(
        table_class_name="Overpayment",
        tablename="payment_overpayment",
        column_name="refunded",
        db_column_name="refunded",
        column_class_name="Integer",
        column_class=Integer,
        params={
            "default": 0,
            "null": False,
            "primary_key": False,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )

    return manager
