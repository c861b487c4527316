"""What the non-tax fee centre keeps: payment notices, the fiscal system's deliveries (one per paid
notice) with every attempt, and the reconciliations of the fiscal system's day files.

A department (执收单位) is a machine credential of kind ``department`` whose ``app_id`` is its code: it
needs no table of its own. The payer's name and ID number or phone are sealed (the PII keyring) and
indexed by the platform's keyed hash, as the identity tables are; only masked forms are ever shown.
"""

from piccolo.columns import JSON, UUID, Boolean, ForeignKey, Integer, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class FeeNotice(Table, tablename="fee_notice"):
    """A payable item a department issued: one notice number, paid once."""

    id = UUID(primary_key=True)
    notice_no = Varchar(length=20, unique=True)  # 缴款码: fees/numbers.py
    department = Varchar(length=32, index=True)  # the department's code (执收单位编码)
    department_name = Varchar(length=128, default="")
    client_id = Varchar(length=40, default="")  # the credential that issued it
    reference = Varchar(length=64)  # the department's own reference
    department_reference = Varchar(length=100, unique=True)  # "<department>/<reference>": issued once
    item_code = Varchar(length=32)  # 收费项目编码
    item_name = Varchar(length=64)
    amount = Integer()  # fen, before any late fee
    late_fee_bp = Integer(default=0)  # late fee a day past the due date, in 1/10000 of the amount
    due_date = Varchar(length=10)  # ISO date, China time; paid on that day is on time
    description = Varchar(length=128, default="")
    payer_name_sealed = Varchar(length=512, secret=True)
    payer_name_masked = Varchar(length=64, default="")
    payer_kind = Varchar(length=12)  # id_number | phone
    payer_index = Varchar(length=64, index=True)  # the platform's keyed hash (auth's indexes)
    payer_sealed = Varchar(length=256, secret=True)
    payer_masked = Varchar(length=32, default="")
    payer_citizen_id = Varchar(length=36, null=True, default=None, index=True)  # when known at issue
    state = Varchar(length=12, default="open", index=True)  # open | paid | cancelled
    order_id = Varchar(length=36, null=True, default=None)  # the payment order now open, or the one paid
    order_seq = Integer(default=0)  # orders made for this notice (each order's reference is <no>-<seq>)
    paid_amount = Integer(default=0)  # fen, with the late fee
    late_fee = Integer(default=0)  # fen of paid_amount that was the late fee
    channel = Varchar(length=16, default="")
    paid_at = Timestamptz(null=True, default=None)
    paid_day = Varchar(length=10, default="", index=True)  # the China-time day of paid_at: statements
    receipt_no = Varchar(length=64, default="")  # 电子票据号, from the fiscal system's answer
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())
    cancelled_at = Timestamptz(null=True, default=None)


class FiscalDelivery(Table, tablename="fee_fiscal_delivery"):
    """The fiscal system told of one paid notice: one row per notice, attempted until it answers 2xx."""

    id = UUID(primary_key=True)
    notice = ForeignKey(references=FeeNotice, on_delete=OnDelete.restrict)
    notice_no = Varchar(length=20, unique=True)  # once per payment
    payload = JSON(default="{}")  # what is sent, fixed when the payment is recorded
    state = Varchar(length=12, default="pending", index=True)  # pending | delivered | dead
    attempts = Integer(default=0)
    next_attempt_at = Timestamptz(default=TimestamptzNow(), index=True)
    last_error = Varchar(length=256, default="")
    created_at = Timestamptz(default=TimestamptzNow())
    delivered_at = Timestamptz(null=True, default=None)


class FiscalAttempt(Table, tablename="fee_fiscal_attempt"):
    """Every attempt of a delivery: its delivery log."""

    id = UUID(primary_key=True)
    delivery = ForeignKey(references=FiscalDelivery, on_delete=OnDelete.cascade, index=True)
    attempt = Integer()
    at = Timestamptz(default=TimestamptzNow())
    status_code = Integer(default=0)
    ok = Boolean(default=False)
    error = Varchar(length=256, default="")
    receipt_no = Varchar(length=64, default="")


class FeeReconciliation(Table, tablename="fee_reconciliation"):
    """One reconciliation of the fiscal system's day file against the notices paid that day."""

    id = UUID(primary_key=True)
    day = Varchar(length=10, index=True)
    fiscal_rows = Integer(default=0)
    our_rows = Integer(default=0)
    differences = JSON(default="[]")
    actor = Varchar(length=64, default="")
    created_at = Timestamptz(default=TimestamptzNow())


TABLES = [FeeNotice, FiscalDelivery, FiscalAttempt, FeeReconciliation]
