from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-11-29T05:55:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "parking: a plate once per citizen (a unique index on parking_plate (openid, plate))"


class RawTable(Table):
    pass


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="parking", description=DESCRIPTION)

    async def run():
        # two adds of one plate at once make one row (and one request to the citizen); the index also
        # answers the citizen's list and the entry barrier's question "is this plate verified?"
        await RawTable.raw(
            "CREATE UNIQUE INDEX IF NOT EXISTS parking_plate_owner ON parking_plate (openid, plate)"
        )

    manager.add_raw(run)

    return manager
