"""一码借阅 libraries: the lending rules as pure functions (no database, no clock: times are passed in;
the standard library only).

Each library states its own rule (:class:`LoanRule`, a row of ``library_library``): the loan period in
days, how many renewals, how many loans at once, the fine per overdue day and its cap per loan, how long
a copy waits on the hold shelf, and the deposit asked of a reader who is not in good standing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

CHINA = timezone(timedelta(hours=8))
DAY = timedelta(days=1)


@dataclass(frozen=True)
class LoanRule:
    loan_days: int = 30
    max_renewals: int = 2
    max_loans: int = 10
    fine_per_day: int = 10  # fen per started overdue day
    fine_cap: int = 1000  # fen, at most per loan
    hold_days: int = 7  # a copy on the hold shelf waits this long for its reader
    deposit: int = 10000  # fen, asked of a reader not in good standing
    remind_days: int = 3  # the reminder comes this long before the due date


def isbn13_check_digit(first12: str) -> str:
    """The check digit of an ISBN-13 from its first 12 digits (weights 1, 3, 1, 3, ...)."""
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(first12))
    return str((10 - total % 10) % 10)


def isbn13(text: str) -> str | None:
    """The ISBN-13 in ``text`` (hyphens and spaces allowed), normalised to 13 digits; None when it is
    not one (wrong length, not digits, not 978/979, a wrong check digit)."""
    digits = text.replace("-", "").replace(" ", "")
    if len(digits) != 13 or not digits.isascii() or not digits.isdigit():
        return None
    if digits[:3] not in ("978", "979"):
        return None
    return digits if isbn13_check_digit(digits[:12]) == digits[12] else None


def due_at(borrowed: datetime, rule: LoanRule) -> datetime:
    """When a loan made (or renewed) at ``borrowed`` is due: the end of the China-time day ``loan_days``
    later (23:59:59), so a book is never due in the middle of a day."""
    day = (borrowed.astimezone(CHINA) + timedelta(days=rule.loan_days)).date()
    return datetime(day.year, day.month, day.day, 23, 59, 59, tzinfo=CHINA)


def overdue_days(due: datetime, returned: datetime) -> int:
    """Started days past the due time (0 when returned on time)."""
    late = (returned - due).total_seconds()
    return 0 if late <= 0 else math.ceil(late / DAY.total_seconds())


def fine(due: datetime, returned: datetime, rule: LoanRule) -> int:
    """The fine in fen for a copy returned at ``returned``: each started overdue day at the rule's rate,
    at most the cap."""
    return min(rule.fine_cap, overdue_days(due, returned) * rule.fine_per_day)


def in_good_standing(unpaid_fines: int, blocked: bool) -> bool:
    """信用免押: a reader with no unpaid fines whom the library has not blocked borrows with no deposit."""
    return unpaid_fines == 0 and not blocked


def checkout_refusal(
    *, open_loans: int, rule: LoanRule, unpaid_fines: int, blocked: bool, deposit_paid: bool
) -> str | None:
    """Why a reader may not borrow one more copy, or None: ``reader_blocked`` (the library blocked the
    reader), ``deposit_required`` (not in good standing and no deposit paid), ``loan_limit``."""
    if blocked:
        return "reader_blocked"
    if not in_good_standing(unpaid_fines, blocked) and not deposit_paid:
        return "deposit_required"
    if open_loans >= rule.max_loans:
        return "loan_limit"
    return None


def renew_refusal(
    *, renewals: int, rule: LoanRule, due: datetime, now: datetime, held_by_others: bool
) -> str | None:
    """Why a loan may not be renewed, or None: ``held`` (another reader waits for the title),
    ``overdue`` (return it: the fine is charged then), ``renewal_limit``."""
    if held_by_others:
        return "held"
    if now > due:
        return "overdue"
    if renewals >= rule.max_renewals:
        return "renewal_limit"
    return None


def renewed_due(due: datetime, now: datetime, rule: LoanRule) -> datetime:
    """The due date after a renewal at ``now``: a loan period from today, never earlier than it was."""
    return max(due, due_at(now, rule))


def hold_shelf_until(now: datetime, rule: LoanRule) -> datetime:
    """How long a copy set aside for a hold waits: the end of the China-time day ``hold_days`` later."""
    return due_at(now, LoanRule(loan_days=rule.hold_days))


def reminder_at(due: datetime, now: datetime, rule: LoanRule) -> datetime | None:
    """When to remind the reader of a due date: ``remind_days`` before it, at 09:00 China time; None
    when that moment has passed (a short loan: no reminder) or is not before the due time."""
    day = (due.astimezone(CHINA) - timedelta(days=rule.remind_days)).date()
    at = datetime(day.year, day.month, day.day, 9, tzinfo=CHINA)
    return at if now < at < due else None


def deposit_refundable(*, open_loans: int, unpaid_fines: int) -> bool:
    """A deposit is given back when the reader leaves with nothing borrowed and nothing owed."""
    return open_loans == 0 and unpaid_fines == 0


def yuan(fen: int) -> str:
    return f"¥{fen // 100}.{fen % 100:02d}"


# Why a step is refused, for a gate screen, a kiosk's screen message and the API's problem text
# (the API's catalogue, backend/i18n.py PROBLEMS, has the same texts): code -> (Chinese, English)
REFUSALS: dict[str, tuple[str, str]] = {
    "unknown_branch": ("未知的分馆", "unknown branch"),
    "unknown_library": ("未知的图书馆", "unknown library"),
    "unknown_item": ("未知的图书条码", "unknown item barcode"),
    "unknown_title": ("馆藏中没有此书", "no such title in the catalogue"),
    "other_library": ("此书属于其他图书馆", "this copy belongs to another library"),
    "on_loan": ("此书已被借出", "this copy is on loan"),
    "already_yours": ("您已借阅此书", "you have this book on loan already"),
    "item_unavailable": ("此书暂不可借", "this copy cannot be lent"),
    "held_for_another": ("此书为其他读者预约保留", "this copy is kept for another reader's hold"),
    "reader_blocked": ("借阅权限已被图书馆暂停", "the library has suspended your borrowing"),
    "deposit_required": (
        "您有未缴罚款，需先缴纳押金或缴清罚款",
        "unpaid fines: pay them or a deposit before borrowing",
    ),
    "loan_limit": ("已达借阅数量上限", "you have as many loans as the library allows"),
    "not_on_loan": ("此书未被借出", "this copy is not on loan"),
    "not_your_loan": ("您没有借阅此书", "you do not have this copy on loan"),
    "held": ("其他读者已预约此书，不能续借", "another reader has a hold on it: no renewal"),
    "overdue": ("已逾期，请归还（罚款在归还时结算）", "overdue: return it (the fine is charged then)"),
    "renewal_limit": ("已达续借次数上限", "no renewals left"),
    "copy_available": ("此书有在架副本，可直接借阅", "a copy is on the shelf: borrow it"),
    "already_held": ("您已预约此书", "you have a hold on this title already"),
    "hold_not_found": ("未找到有效的预约", "no such hold of yours"),
    "deposit_not_needed": ("您信用良好，免押金借阅", "you are in good standing: no deposit needed"),
    "no_deposit": ("您没有已缴纳的押金", "you have no deposit paid"),
    "deposit_in_use": (
        "尚有在借图书或未缴罚款，押金暂不能退还",
        "books on loan or fines unpaid: the deposit cannot be returned yet",
    ),
    "unknown_action": ("未知的操作", "unknown desk action"),
    "item_required": ("请扫描图书条码", "scan the book's barcode"),
    "isbn_required": ("请提供 ISBN", "an ISBN is needed"),
    "invalid_isbn": ("ISBN 无效", "not a valid ISBN-13"),
}
