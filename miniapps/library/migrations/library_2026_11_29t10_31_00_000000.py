from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-11-29T10:31:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "library: one open loan per copy, one live hold per reader and title, unique titles and readers"


class RawTable(Table):
    pass


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="library", description=DESCRIPTION)

    async def run():
        # two kiosks checking out one copy at once make one loan (the copy's conditional UPDATE decides;
        # this index holds it should any write path forget)
        await RawTable.raw(
            'CREATE UNIQUE INDEX IF NOT EXISTS library_loan_open_copy ON library_loan ("copy")'
            " WHERE returned_at IS NULL"
        )
        await RawTable.raw(
            "CREATE UNIQUE INDEX IF NOT EXISTS library_hold_live ON library_hold (title, openid)"
            " WHERE state IN ('waiting', 'ready')"
        )
        await RawTable.raw(
            "CREATE UNIQUE INDEX IF NOT EXISTS library_title_isbn_per_library ON library_title (library, isbn)"
        )
        await RawTable.raw(
            "CREATE UNIQUE INDEX IF NOT EXISTS library_reader_one ON library_reader (library, openid)"
        )

    manager.add_raw(run)

    return manager
