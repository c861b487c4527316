"""What the message centre keeps: templates and their approval, messages (the inbox), their deliveries on
the channels that need work (Web Push, SMS), citizens' consents and preferences, their browsers' push
subscriptions, and announcements to segments."""

from piccolo.columns import JSON, UUID, Boolean, Integer, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class MessageTemplate(Table, tablename="message_template"):
    """A template as its owner declared it (a mini-app's manifest, the platform), and the operator's
    decision on exactly that text (``approved_digest``): a changed text waits for approval again."""

    template_id = Varchar(length=96, unique=True)  # "<owner>.<name>"
    owner = Varchar(length=32, index=True)  # a mini-app id, or "platform"
    category = Varchar(length=16)
    declared = JSON()  # the Template as declared
    digest = Varchar(length=64)  # of the declared text
    status = Varchar(length=16, default="pending")  # pending | approved | rejected | suspended
    approved_digest = Varchar(length=64, default="")
    decided_by = Varchar(length=64, default="")
    decided_at = Timestamptz(null=True, default=None)
    note = Varchar(length=256, default="")
    declared_at = Timestamptz(default=TimestamptzNow())


class Message(Table, tablename="message"):
    """One message to one citizen: their inbox row (shown from ``visible_at``), with its text as sent."""

    id = UUID(primary_key=True)
    citizen_id = Varchar(length=36)  # indexed with visible_at by the migration (the inbox's order)
    sender = Varchar(length=32)  # a mini-app id, or "platform"
    template_id = Varchar(length=96)
    category = Varchar(length=16)
    urgent = Boolean(default=False)
    content = JSON()  # {"zh-CN": {title, body}, "en": {...}, "masked": {...}}
    link = Varchar(length=200, default="")
    idempotency = Varchar(length=200, unique=True)  # "<sender>/<key>": the same key twice is one message
    announcement = Varchar(length=36, default="")
    created_at = Timestamptz(default=TimestamptzNow())
    visible_at = Timestamptz(default=TimestamptzNow())  # later for a scheduled message
    notified_at = Timestamptz(null=True, default=None)  # the live event went out (hint; null: due)
    read_at = Timestamptz(null=True, default=None)
    deleted_at = Timestamptz(null=True, default=None)
    cancelled_at = Timestamptz(null=True, default=None)  # a scheduled message withdrawn by its sender


class MessageDelivery(Table, tablename="message_delivery"):
    """A message on a channel that needs work and may fail: Web Push to one browser, SMS. The delivery
    log per message per channel, with every attempt's outcome (the inbox itself is the message row)."""

    id = UUID(primary_key=True)
    message = UUID(index=True)
    citizen_id = Varchar(length=36)
    channel = Varchar(length=16)  # webpush | sms
    target = Varchar(length=36, default="")  # the push subscription's id
    state = Varchar(length=16, default="pending")  # pending | sent | skipped | dead | cancelled
    attempts = Integer(default=0)
    next_attempt_at = Timestamptz(null=True, default=None, index=True)
    last_error = Varchar(length=256, default="")
    sent_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())


class MessageConsent(Table, tablename="message_consent"):
    """A citizen's subscription to one template (订阅消息): standing (long-term) or a number of
    one-time acceptances, each good for one message."""

    citizen_template = Varchar(length=140, unique=True)  # "<citizen>/<template>"
    citizen_id = Varchar(length=36, index=True)
    template_id = Varchar(length=96)
    standing = Boolean(default=False)
    once_left = Integer(default=0)
    updated_at = Timestamptz(default=TimestamptzNow())


class MessagePreference(Table, tablename="message_preference"):
    """A citizen's choices: channels per category, and quiet hours (China time). No row: the defaults."""

    citizen_id = Varchar(length=36, unique=True)
    channels = JSON()  # {"reminder": {"webpush": true, "sms": true}, "announcement": {...}}
    quiet = Boolean(default=True)
    quiet_start = Varchar(length=5, default="22:00")
    quiet_end = Varchar(length=5, default="08:00")
    updated_at = Timestamptz(default=TimestamptzNow())


class PushSubscription(Table, tablename="push_subscription"):
    """A browser's Web Push subscription (one per device). The endpoint and keys are a bearer capability:
    sealed, and found by the endpoint's hash."""

    id = UUID(primary_key=True)
    citizen_id = Varchar(length=36, index=True)
    device_id = Varchar(length=128, default="")
    endpoint_hash = Varchar(length=64, unique=True)
    sealed = Varchar(length=4096)  # {"endpoint", "p256dh", "auth"} sealed with the personal-data key
    host = Varchar(length=128, default="")  # the push service's host, for operators
    created_at = Timestamptz(default=TimestamptzNow())
    last_ok_at = Timestamptz(null=True, default=None)
    gone_at = Timestamptz(null=True, default=None)  # the push service said it is gone (404/410)


class Announcement(Table, tablename="announcement"):
    """信息发布: an approved announcement template sent to a segment, in citizen id order, one batch per
    transaction together with ``cursor`` (the last citizen done): a crash resumes after the cursor, with no
    duplicate (each message's idempotency key is the announcement and the citizen) and no gap."""

    id = UUID(primary_key=True)
    template_id = Varchar(length=96)
    data = JSON()
    segment = JSON()  # {"kind": "everyone"} | {"kind": "entitlement", "value": "medical"} | ...
    state = Varchar(length=16, default="sending", index=True)  # sending | cancelled | done | failed
    rate = Integer(default=2000)  # messages a second at most
    cursor = Varchar(length=36, default="")
    scanned = Integer(default=0)  # citizens looked at
    sent = Integer(default=0)  # messages written
    skipped = Integer(default=0)  # in the segment but opted out or over their daily cap
    created_by = Varchar(length=64, default="")
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())
    finished_at = Timestamptz(null=True, default=None)
    error = Varchar(length=256, default="")


TABLES = [
    MessageTemplate,
    Message,
    MessageDelivery,
    MessageConsent,
    MessagePreference,
    PushSubscription,
    Announcement,
]
