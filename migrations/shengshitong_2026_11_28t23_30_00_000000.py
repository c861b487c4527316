from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-11-28T23:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "messages: the inbox's index and the due scheduled messages' partial index"


class RawTable(Table):
    pass


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="shengshitong", description=DESCRIPTION
    )

    async def run():
        # the inbox: a citizen's messages by the time they show (list, unread count, daily cap)
        await RawTable.raw(
            "CREATE INDEX IF NOT EXISTS message_inbox ON message (citizen_id, visible_at)"
        )
        # scheduled messages whose live event is still due (few rows: a partial index)
        await RawTable.raw(
            "CREATE INDEX IF NOT EXISTS message_due ON message (visible_at) WHERE notified_at IS NULL"
        )

    manager.add_raw(run)

    return manager
