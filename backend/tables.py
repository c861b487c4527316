"""Platform-level tables."""

from piccolo.columns import JSON, UUID, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.columns.indexes import IndexMethod
from piccolo.table import Table


class AuditEvent(Table, tablename="audit_event"):
    """A security-relevant event. Holds no secret and no unmasked personal data."""

    id = UUID(primary_key=True)
    at = Timestamptz(default=TimestamptzNow(), index=True)
    action = Varchar(length=64, index=True, index_method=IndexMethod.btree)
    actor_kind = Varchar(length=16)  # citizen | scanner | merchant | miniapp | operator | system
    actor_id = Varchar(length=64, default="")
    subject = Varchar(length=128, default="")
    ip = Varchar(length=64, default="")
    request_id = Varchar(length=64, default="")
    data = JSON(default="{}")


TABLES = [AuditEvent]
