from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-11-28T20:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "auth: self-typed real names and ID numbers that no provider verified are deleted"


class RawTable(Table):
    pass


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="shengshitong", description=DESCRIPTION
    )

    async def run():
        # Until now PATCH /api/v1/me kept whatever name and ID number a citizen typed, and called them
        # verified. They prove nothing, and their index would keep the number's real owner from
        # verifying it (id_number_taken) and lead the bureaus' facts to the wrong account: they go, and
        # the citizen verifies once (docs/identity.md, "Real-name verification").
        await RawTable.raw(
            "UPDATE citizen SET name_sealed = NULL, id_number_sealed = NULL, id_number_index = NULL,"
            " real_name_provider = '', real_name_level = '', real_name_reference = ''"
            " WHERE real_name_verified_at IS NULL"
            " AND (name_sealed IS NOT NULL OR id_number_sealed IS NOT NULL OR id_number_index IS NOT NULL)"
        )

    manager.add_raw(run)

    return manager
