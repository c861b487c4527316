from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-11-29T04:40:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "hospital: a partial index of the visits whose old rating has still to move to the centre"


class RawTable(Table):
    pass


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="hospital", description=DESCRIPTION)

    async def run():
        # each worker's start-up asks for the visits still holding an old rating (好差评 moved to the
        # evaluation centre): empty once they moved, so the question costs nothing on a large table
        await RawTable.raw(
            "CREATE INDEX IF NOT EXISTS hospital_visit_old_rating ON hospital_visit (id)"
            " WHERE rating <> ''"
        )

    manager.add_raw(run)

    return manager
