from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-11-28T11:43:01:202279"
VERSION = "1.38.0"
DESCRIPTION = "payments: overpayments refunded before refunds came in parts hold their whole amount refunded"


class RawTable(Table):
    pass


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="shengshitong", description=DESCRIPTION
    )

    async def run():
        # until now an overpayment was refunded whole, in one notice
        await RawTable.raw(
            "UPDATE payment_overpayment SET refunded = amount WHERE state = 'refunded'"
        )

    manager.add_raw(run)

    return manager
