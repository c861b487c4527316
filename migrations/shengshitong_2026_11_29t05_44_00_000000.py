from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-11-29T05:44:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "licences: one licence per number, one entry per status slot, one list per number; the logs' indexes"


class RawTable(Table):
    pass


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="shengshitong", description=DESCRIPTION
    )

    async def run():
        # an issuer's licence of a type is one per number: a duplicate issued twice at once fails here
        await RawTable.raw(
            "CREATE UNIQUE INDEX IF NOT EXISTS licence_number ON licence (issuer, type, number_index)"
        )
        # a status list's entry belongs to one licence, and a list's number is one per issuer
        await RawTable.raw(
            "CREATE UNIQUE INDEX IF NOT EXISTS licence_status_slot ON licence (status_list, status_idx)"
        )
        await RawTable.raw(
            "CREATE UNIQUE INDEX IF NOT EXISTS licence_status_list_number"
            " ON licence_status_list (issuer, number)"
        )
        # a citizen's use log and requests, newest first
        await RawTable.raw("CREATE INDEX IF NOT EXISTS licence_use_citizen ON licence_use (citizen_id, at)")
        await RawTable.raw(
            "CREATE INDEX IF NOT EXISTS licence_request_citizen ON licence_request (citizen_id, created_at)"
        )

    manager.add_raw(run)

    return manager
