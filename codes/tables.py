"""What the citizen code keeps: whom each issued code stands for, and what the systems that own the
entitlements it carries said about each person."""

from piccolo.columns import JSON, UUID, Integer, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class IssuedCode(Table, tablename="issued_code"):
    """Whom a code stands for (its cti), for as long as a scan of it may still be uploaded. The store holds
    the same mapping for the scan path; this copy is what survives a store that loses its data, so an
    offline terminal's upload after a Redis restart is still charged to the right citizen."""

    cti = Varchar(length=32, unique=True)  # hex of the code's 12-byte cti
    citizen_id = Varchar(length=36)
    session_id = Varchar(length=36)
    device_id = Varchar(length=128, default="")
    expires_at = Timestamptz(index=True)  # after this no scan of the code is accepted (then purged)


class EntitlementFact(Table, tablename="entitlement_fact"):
    """One thing a system that owns an entitlement (the medical-insurance bureau, the social-security
    bureau, the health authority) said about one person, from a time on. Append-only: the table is the
    audit trail of every change (who sent it, in which upload, when it arrived). The person is the HMAC
    index of the ID number (the citizen table's ``id_number_index``), never the number: a fact about
    someone not (yet) registered waits for them."""

    fact_key = Varchar(length=32, unique=True)  # idempotency: the same record twice is one fact
    kind = Varchar(length=24)  # medical | social_security | health
    subject = Varchar(length=64, index=True)  # HMAC of the ID number
    effective_at = Timestamptz()
    valid_until = Timestamptz(null=True, default=None)
    value = JSON()  # the owner's fields for this kind, validated
    source = Varchar(length=40)  # client id of the source credential that sent it
    upload = Varchar(length=36, default="")  # the bulk upload it came in ("" for a single change)
    record_id = Varchar(length=64, default="")  # the owner's own id of the record
    received_at = Timestamptz(default=TimestamptzNow())


class EntitlementUpload(Table, tablename="entitlement_upload"):
    """A bulk upload of changes by one source: its progress while it streams, its outcome after."""

    id = UUID(primary_key=True)
    source = Varchar(length=40, index=True)
    kind = Varchar(length=24)
    status = Varchar(length=16, default="running")  # running | done | failed
    lines = Integer(default=0)
    applied = Integer(default=0)
    unchanged = Integer(default=0)
    rejected = Integer(default=0)
    started_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())
    finished_at = Timestamptz(null=True, default=None)
    error = Varchar(length=200, default="")


class EntitlementUploadReject(Table, tablename="entitlement_upload_reject"):
    """A record of an upload that was not applied, and why (the per-record report)."""

    upload = UUID(index=True)
    line = Integer()
    record_id = Varchar(length=64, default="")
    reason = Varchar(length=40)
    detail = Varchar(length=200, default="")


TABLES = [IssuedCode, EntitlementFact, EntitlementUpload, EntitlementUploadReject]
