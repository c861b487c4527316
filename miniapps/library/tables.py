"""一码借阅's own tables. Readers are citizens, named only by their pairwise openid for this app."""

from piccolo.columns import UUID, Boolean, ForeignKey, Integer, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class Library(Table, tablename="library_library"):
    """A library and its lending rule (rules.LoanRule)."""

    code = Varchar(length=16, unique=True)
    name = Varchar(length=64)  # Chinese
    name_en = Varchar(length=128, default="")
    loan_days = Integer(default=30)
    max_renewals = Integer(default=2)
    max_loans = Integer(default=10)
    fine_per_day = Integer(default=10)  # fen
    fine_cap = Integer(default=1000)  # fen per loan
    hold_days = Integer(default=7)
    deposit = Integer(default=10000)  # fen
    remind_days = Integer(default=3)


class Branch(Table, tablename="library_branch"):
    """A branch; desk scanners and self-check kiosks are enrolled with its code as their place."""

    code = Varchar(length=16, unique=True)
    library = ForeignKey(references=Library, on_delete=OnDelete.cascade, index=True)
    name = Varchar(length=64)
    name_en = Varchar(length=128, default="")
    district = Varchar(length=32, default="")
    district_en = Varchar(length=64, default="")


class Title(Table, tablename="library_title"):
    """A title in one library's catalogue (unique per library and ISBN, an index in a migration)."""

    id = UUID(primary_key=True)
    library = ForeignKey(references=Library, on_delete=OnDelete.cascade)
    isbn = Varchar(length=13, index=True)
    title = Varchar(length=200)
    author = Varchar(length=120, default="")
    publisher = Varchar(length=120, default="")
    year = Integer(default=0)


class Copy(Table, tablename="library_copy"):
    """One copy with its barcode: available | on_loan | on_hold_shelf | lost. Its state moves only by
    conditional UPDATEs, so one copy is on one loan at a time."""

    barcode = Varchar(length=32, unique=True)
    title = ForeignKey(references=Title, on_delete=OnDelete.cascade, index=True)
    branch = ForeignKey(references=Branch, on_delete=OnDelete.cascade, index=True)
    state = Varchar(length=16, default="available")
    held_for = Varchar(length=36, default="")  # the hold it waits for on the shelf


class Loan(Table, tablename="library_loan"):
    """A loan; at most one open (returned_at null) per copy (a partial unique index, in a migration)."""

    id = UUID(primary_key=True)
    copy = ForeignKey(references=Copy, on_delete=OnDelete.cascade)
    library = ForeignKey(references=Library, on_delete=OnDelete.cascade)
    openid = Varchar(length=40, index=True)
    branch = Varchar(length=16)  # where it was borrowed
    borrowed_at = Timestamptz()
    due_at = Timestamptz()
    renewals = Integer(default=0)
    returned_at = Timestamptz(null=True, default=None)
    fine = Integer(default=0)  # fen, set at return
    fine_order = Varchar(length=36, default="")  # the deferred order of the fine
    fine_paid = Boolean(default=False)
    via = Varchar(length=8, default="desk")  # desk | kiosk


class Hold(Table, tablename="library_hold"):
    """A reader waiting for a title: waiting | ready (a copy on the hold shelf until ready_until) |
    collected | cancelled | expired. One live hold per reader and title (a partial unique index)."""

    id = UUID(primary_key=True)
    title = ForeignKey(references=Title, on_delete=OnDelete.cascade, index=True)
    openid = Varchar(length=40, index=True)
    state = Varchar(length=12, default="waiting")
    placed_at = Timestamptz()
    copy = Varchar(length=32, default="")  # the barcode set aside for it
    ready_until = Timestamptz(null=True, default=None)


class Reader(Table, tablename="library_reader"):
    """A reader's standing at one library: blocked by the library, and the deposit (none | pending |
    paid | refunded). One row per reader and library (a unique index, in a migration)."""

    id = UUID(primary_key=True)
    library = ForeignKey(references=Library, on_delete=OnDelete.cascade)
    openid = Varchar(length=40)
    blocked = Boolean(default=False)
    deposit_state = Varchar(length=12, default="none")
    deposit_order = Varchar(length=36, default="")
    deposit_amount = Integer(default=0)
    created_at = Timestamptz(default=TimestamptzNow())


TABLES = [Library, Branch, Title, Copy, Loan, Hold, Reader]
