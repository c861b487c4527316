"""Payment centre tables. Money is integer fen; times are UTC."""

from piccolo.columns import JSON, UUID, Boolean, Bytea, ForeignKey, Integer, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class PaymentOrder(Table, tablename="payment_order"):
    id = UUID(primary_key=True)  # the order id clients see (opaque), also the channels' out_trade_no
    owner = Varchar(length=64, index=True)  # "miniapp:<app_id>" or "merchant:<client_id>"
    app_id = Varchar(length=32, default="", index=True)
    reference = Varchar(length=64)  # the owner's own reference
    owner_reference = Varchar(length=130, unique=True)  # "<owner>/<reference>": creating twice = same order
    # the citizen; an order made without one (a merchant's) gets the first who pays it through its link
    citizen_id = Varchar(length=36, null=True, default=None, index=True)
    claimed_at = Timestamptz(null=True, default=None)  # when a citizen took it through its pay link
    description = Varchar(length=128, default="")
    amount = Integer()
    currency = Varchar(length=3, default="CNY")
    state = Varchar(
        length=24, default="created", index=True
    )  # created paying paid partially_refunded refunded closed
    deferred = Boolean(default=False, index=True)  # charged later against the citizen's agreement
    channel = Varchar(length=16, default="")
    channel_txn = Varchar(length=64, default="")
    refunded = Integer(default=0)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())
    expires_at = Timestamptz(null=True, default=None)
    paid_at = Timestamptz(null=True, default=None)
    closed_at = Timestamptz(null=True, default=None)


class Refund(Table, tablename="payment_refund"):
    id = UUID(primary_key=True)  # also the channels' out_refund_no
    order = ForeignKey(references=PaymentOrder, on_delete=OnDelete.restrict, index=True)
    order_reference = Varchar(length=110, unique=True)  # "<order>/<caller's reference>": idempotency
    amount = Integer()
    reason = Varchar(length=128, default="")
    # pending (room held) -> succeeded, or failed (closed by the channel) / abnormal (the channel could
    # not pay it out: an operator must act); failed and abnormal hold no room
    state = Varchar(length=16, default="pending", index=True)
    channel_txn = Varchar(length=96, default="")
    created_at = Timestamptz(default=TimestamptzNow())
    succeeded_at = Timestamptz(null=True, default=None)
    failure = Varchar(length=64, default="")  # the channel's word for a failed or abnormal refund
    failed_at = Timestamptz(null=True, default=None)


class LedgerEntry(Table, tablename="ledger_entry"):
    """Double entry: every movement is a set of entries summing to zero (debit +, credit -)."""

    id = UUID(primary_key=True)
    order = ForeignKey(references=PaymentOrder, on_delete=OnDelete.restrict, index=True)
    refund = ForeignKey(references=Refund, on_delete=OnDelete.restrict, null=True, default=None)
    # channel:wechatpay, payable:miniapp:transit, suspense:overpaid (money held for a citizen), ...
    account = Varchar(length=64, index=True)
    amount = Integer()
    kind = Varchar(length=16)  # payment | refund | overpayment | overpay_refund
    channel = Varchar(length=16, default="", index=True)
    channel_txn = Varchar(length=96, default="")
    created_at = Timestamptz(default=TimestamptzNow(), index=True)  # when we booked it
    # when the channel says the money moved (its payment or refund time): the business day its
    # statement lists it under; null when the channel told none (the booking time counts then)
    channel_time = Timestamptz(null=True, default=None, index=True)


class ChannelNotification(Table, tablename="channel_notification"):
    """Every verified callback, once: the unique key is what makes resends and races harmless."""

    id = UUID(primary_key=True)
    notify_key = Varchar(length=140, unique=True)  # "<channel>/<the channel's notification id>"
    channel = Varchar(length=16)
    kind = Varchar(length=16)
    order_ref = Varchar(length=64, index=True)
    refund_ref = Varchar(length=64, default="")
    amount = Integer()
    channel_txn = Varchar(length=96, default="")
    status = Varchar(length=16)  # applied | pending (refund before payment) | rejected
    reason = Varchar(length=64, default="")
    summary = JSON(default="{}")
    notification = JSON(default="{}")  # the whole verified notification, to apply a pending one later
    received_at = Timestamptz(default=TimestamptzNow())
    applied_at = Timestamptz(null=True, default=None)


class Overpayment(Table, tablename="payment_overpayment"):
    """A real payment the order did not need (a second channel or transaction for a paid order, or a
    payment of a closed order): money held for the citizen until it is refunded."""

    id = UUID(primary_key=True)
    order = ForeignKey(references=PaymentOrder, on_delete=OnDelete.restrict, index=True)
    channel = Varchar(length=16)
    channel_txn = Varchar(length=96)
    txn_key = Varchar(length=120, unique=True)  # "<channel>/<transaction>": one record per payment
    amount = Integer()
    reason = Varchar(length=24)  # already_paid | order_closed
    # to_refund -> refunded (when all of it is: a channel's console may refund it in parts)
    state = Varchar(length=16, default="to_refund", index=True)
    refunded = Integer(default=0)  # fen refunded so far
    refund_txn = Varchar(length=96, default="")  # the channel's id of the latest refund
    created_at = Timestamptz(default=TimestamptzNow(), index=True)
    refunded_at = Timestamptz(null=True, default=None)


class OutboxEvent(Table, tablename="outbox_event"):
    """Written in the same transaction as the state change it reports; delivered afterwards."""

    id = UUID(primary_key=True)
    order = ForeignKey(references=PaymentOrder, on_delete=OnDelete.restrict, index=True)
    type = Varchar(length=32)
    payload = JSON()
    created_at = Timestamptz(default=TimestamptzNow())
    dispatched_at = Timestamptz(null=True, default=None, index=True)


class WebhookEndpoint(Table, tablename="webhook_endpoint"):
    id = UUID(primary_key=True)
    owner = Varchar(length=64, index=True)
    url = Varchar(length=512)
    secrets = JSON()  # current first; several during rotation (shown once, stored sealed)
    created_at = Timestamptz(default=TimestamptzNow())
    revoked_at = Timestamptz(null=True, default=None)


class WebhookDelivery(Table, tablename="webhook_delivery"):
    id = UUID(primary_key=True)
    event = ForeignKey(references=OutboxEvent, on_delete=OnDelete.cascade, index=True)
    target = Varchar(length=600)  # "endpoint:<id>" or "miniapp:<app_id>"
    event_target = Varchar(length=640, unique=True)  # one delivery per event and target
    state = Varchar(length=16, default="pending", index=True)  # pending delivered dead
    attempts = Integer(default=0)
    next_attempt_at = Timestamptz(default=TimestamptzNow(), index=True)
    last_error = Varchar(length=256, default="")
    delivered_at = Timestamptz(null=True, default=None)


class WebhookAttempt(Table, tablename="webhook_attempt"):
    """The delivery log: one row per attempt."""

    id = UUID(primary_key=True)
    delivery = ForeignKey(references=WebhookDelivery, on_delete=OnDelete.cascade, index=True)
    attempt = Integer()
    at = Timestamptz(default=TimestamptzNow())
    status_code = Integer(default=0)
    error = Varchar(length=256, default="")
    ok = Boolean(default=False)


TABLES = [
    PaymentOrder,
    Refund,
    LedgerEntry,
    ChannelNotification,
    Overpayment,
    OutboxEvent,
    WebhookEndpoint,
    WebhookDelivery,
    WebhookAttempt,
]


class ReconciliationRun(Table, tablename="reconciliation_run"):
    id = UUID(primary_key=True)
    day = Varchar(length=10, index=True)  # YYYY-MM-DD, China time
    channel = Varchar(length=16, index=True)
    statement_rows = Integer()
    ledger_rows = Integer()
    mismatches = JSON()
    created_at = Timestamptz(default=TimestamptzNow())
    # auto (the payment centre's daily run on the channel's downloaded statement), cli (a CSV given by
    # an operator), native (a channel's own file given by an operator)
    source = Varchar(length=16, default="cli")


class ChannelTask(Table, tablename="channel_task"):
    """Work the payment centre owes a channel, kept until it is done: ask about a payment whose notice
    has not come (``query``), close an expired order's trade (``close``), see a pending refund to its end
    (``refund``), download and reconcile a day's statement (``bill``). Written in the transaction that
    creates the need; a worker claims a due task by moving ``next_at`` past now (a conditional update:
    two workers never hold one task, and a worker that dies leaves it due again when its lease ends)."""

    id = UUID(primary_key=True)
    key = Varchar(length=140, unique=True)  # "<kind>/<channel>/<subject>": one task per need
    kind = Varchar(length=16)  # query | close | refund | bill
    channel = Varchar(length=16)
    subject = Varchar(length=64)  # the order's id, the refund's id, or the day (YYYY-MM-DD)
    attempts = Integer(default=0)
    next_at = Timestamptz(default=TimestamptzNow(), index=True)  # due from then (or leased until then)
    last_error = Varchar(length=256, default="")
    outcome = Varchar(length=64, default="")
    created_at = Timestamptz(default=TimestamptzNow())
    done_at = Timestamptz(null=True, default=None, index=True)


class ChannelStatement(Table, tablename="channel_statement"):
    """A channel's statement for one business day as it was downloaded (gzip), kept for operators and
    auditors, with what reconciliation read from it."""

    id = UUID(primary_key=True)
    channel = Varchar(length=16, index=True)
    day = Varchar(length=10, index=True)  # YYYY-MM-DD, China time
    channel_day = Varchar(length=28, unique=True)  # "<channel>/<day>": one statement per channel and day
    raw_gzip = Bytea()
    media_type = Varchar(length=64, default="text/csv")
    rows = Integer(default=0)
    totals = JSON(default="{}")  # the bill's own totals line, and ours of its rows
    downloaded_at = Timestamptz(default=TimestamptzNow())


class SandboxTrade(Table, tablename="sandbox_trade"):
    """The sandbox channel's own books (it plays a channel: what it answers to queries, closes and its
    statement comes from here). One trade per order."""

    id = UUID(primary_key=True)
    order_ref = Varchar(length=64, unique=True)
    txn = Varchar(length=64, default="")
    amount = Integer(default=0)
    state = Varchar(length=16, default="open")  # open (started, unpaid) | paid | closed | refunded
    # [{"refund_ref", "txn", "amount", "state": processing|succeeded, "at": ISO time}]
    refunds = JSON(default="[]")
    created_at = Timestamptz(default=TimestamptzNow())
    paid_at = Timestamptz(null=True, default=None, index=True)
    closed_at = Timestamptz(null=True, default=None)


TABLES += [ReconciliationRun, ChannelTask, ChannelStatement, SandboxTrade]
