"""Scan records: every decision on a citizen code, online or uploaded later by an offline terminal."""

from piccolo.columns import JSON, UUID, Boolean, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class ScanRecord(Table, tablename="scan_record"):
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


class IssuedCode(Table, tablename="issued_code"):
    """Whom a code stands for (its cti), for as long as a scan of it may still be uploaded. The store holds
    the same mapping for the scan path; this copy is what survives a store that loses its data, so an
    offline terminal's upload after a Redis restart is still charged to the right citizen."""

    cti = Varchar(length=32, unique=True)  # hex of the code's 12-byte cti
    citizen_id = Varchar(length=36)
    session_id = Varchar(length=36)
    device_id = Varchar(length=128, default="")
    expires_at = Timestamptz(index=True)  # after this no scan of the code is accepted (then purged)


TABLES = [ScanRecord, IssuedCode]
