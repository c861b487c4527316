from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-11-29T02:20:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "ratings: the indexes of the pending list, the monthly statistics and the due cases"


class RawTable(Table):
    pass


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="shengshitong", description=DESCRIPTION
    )

    async def run():
        # a citizen's events still open for a rating, newest first
        await RawTable.raw(
            "CREATE INDEX IF NOT EXISTS rating_event_pending ON rating_event (citizen_id, closes_at)"
        )
        # the statistics of a month, by unit (and the ranking)
        await RawTable.raw("CREATE INDEX IF NOT EXISTS rating_month ON rating (month, unit_id)")
        await RawTable.raw("CREATE INDEX IF NOT EXISTS rating_case_month ON rating_case (month, unit_id)")
        # cases still waiting for their unit, by deadline (the overdue round; few rows: partial)
        await RawTable.raw(
            "CREATE INDEX IF NOT EXISTS rating_case_due ON rating_case (deadline)"
            " WHERE state IN ('open', 'rectifying')"
        )

    manager.add_raw(run)

    return manager
