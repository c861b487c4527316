from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.postgres import PostgresEngine
from piccolo.table import Table

ID = "2026-11-29T00:05:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "messages: an index on the creation time, for the purge of messages past their retention"


class RawTable(Table):
    pass


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="shengshitong", description=DESCRIPTION
    )

    async def run():
        # rows arrive in time order: on PostgreSQL a BRIN index answers "older than" for a tiny cost per
        # insert (an announcement writes hundreds of thousands); SQLite has only B-trees
        if isinstance(RawTable._meta.db, PostgresEngine):
            sql = "CREATE INDEX IF NOT EXISTS message_age ON message USING brin (created_at)"
        else:
            sql = "CREATE INDEX IF NOT EXISTS message_age ON message (created_at)"
        await RawTable.raw(sql)

    manager.add_raw(run)

    return manager
