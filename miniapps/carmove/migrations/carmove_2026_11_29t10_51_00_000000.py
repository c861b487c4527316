from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-11-29T10:51:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "carmove: a car once per citizen (a unique index on carmove_car (openid, plate))"


class RawTable(Table):
    pass


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="carmove", description=DESCRIPTION)

    async def run():
        # two adds of one plate at once make one car (one sticker, one request to the citizen); the
        # index also answers the owner's list of their cars
        await RawTable.raw(
            "CREATE UNIQUE INDEX IF NOT EXISTS carmove_car_owner ON carmove_car (openid, plate)"
        )

    manager.add_raw(run)

    return manager
