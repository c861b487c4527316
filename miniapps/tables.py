"""Platform tables of the mini-app platform (mini-apps keep their own data in their own tables)."""

from piccolo.columns import JSON, UUID, Boolean, ForeignKey, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from auth.tables import Citizen


class MiniAppGrant(Table, tablename="miniapp_grant"):
    """A citizen's authorisation of a mini-app for some scopes (one row per citizen and app)."""

    id = UUID(primary_key=True)
    citizen = ForeignKey(references=Citizen, on_delete=OnDelete.cascade, index=True)
    app_id = Varchar(length=32, index=True)
    citizen_app = Varchar(length=80, unique=True)  # "<citizen>/<app>"
    scopes = JSON(default="[]")
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())
    revoked_at = Timestamptz(null=True, default=None)


class ScanRecord(Table, tablename="scan_record"):
    """Every decision at a gate on a citizen code, online or uploaded later by an offline terminal."""

    id = UUID(primary_key=True)
    scanner_id = Varchar(length=40, index=True)  # the scanner's client id
    record_id = Varchar(length=64)  # the terminal's own id for this scan; unique per scanner
    scanner_record = Varchar(length=110, unique=True)  # "<scanner_id>/<record_id>": the idempotency key
    app_id = Varchar(length=64, index=True)
    context = Varchar(length=64)
    place = Varchar(length=128, default="")
    citizen_id = Varchar(length=36, null=True, default=None, index=True)
    code_id = Varchar(length=32, default="")  # hex of the code's cti (never the token itself)
    result = Varchar(length=8)  # allow | deny
    reason = Varchar(length=32, default="")
    flagged = Boolean(default=False, index=True)  # e.g. one code seen on two different scanners
    offline = Boolean(default=False)
    scanned_at = Timestamptz()
    received_at = Timestamptz(default=TimestamptzNow())
    display = JSON(default="{}")


TABLES = [MiniAppGrant, ScanRecord]
