"""扫码挪车's own tables. Citizens only by their pairwise openid; senders by a hash of their request
token (and the openid of a signed-in one), never a phone or an address."""

from piccolo.columns import UUID, Boolean, Bytea, ForeignKey, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class Car(Table, tablename="carmove_car"):
    """A car a citizen registered (一物一码), its ownership asked of their vehicle licence; one row per
    citizen and plate (a unique index, in a migration)."""

    id = UUID(primary_key=True)
    openid = Varchar(length=40)  # the unique (openid, plate) index serves the owner's look-ups
    plate = Varchar(length=16)  # as rules.plate writes it
    proof = Varchar(length=12, default="unproven")  # unproven | proven
    reason = Varchar(length=32, default="")  # why it is unproven once settled: mismatch, consent_refused...
    request = Varchar(length=36, default="")  # the licence request (Platform.ask_licence)
    settled_at = Timestamptz(null=True, default=None)  # the licence request was answered and read
    vehicle_type = Varchar(length=64, default="")
    created_at = Timestamptz(default=TimestamptzNow())


class Sticker(Table, tablename="carmove_sticker"):
    """The car's sticker: a random code, the only thing its QR holds. Regenerating replaces it (the old
    one answers that it is no longer valid); the owner may pause it."""

    id = UUID(primary_key=True)
    car = ForeignKey(references=Car, on_delete=OnDelete.cascade, index=True)
    code = Varchar(length=32, unique=True)  # random, URL-safe
    openid = Varchar(length=40, index=True)  # the owner's, as the car's
    # active | paused (by its owner) | suspended (by the operators, after a report) | replaced
    state = Varchar(length=10, default="active")
    created_at = Timestamptz(default=TimestamptzNow())
    replaced_at = Timestamptz(null=True, default=None)


class MoveRequest(Table, tablename="carmove_request"):
    """One "please move your car": the sender holds its token (only its hash is kept)."""

    id = UUID(primary_key=True)
    sticker = ForeignKey(references=Sticker, on_delete=OnDelete.cascade, index=True)
    openid = Varchar(length=40, index=True)  # the owner's
    token_hash = Varchar(length=64, unique=True)
    sender = Varchar(length=40, default="")  # a signed-in sender's openid, else ""
    reason = Varchar(length=16)
    note = Varchar(length=64, default="")
    state = Varchar(length=10, default="waiting")  # waiting | answered (expired: computed)
    answer = Varchar(length=16, default="")
    answer_note = Varchar(length=64, default="")
    photo_type = Varchar(length=16, default="")  # image/jpeg once a photo was attached
    call_number = Varchar(length=20, default="")  # the privacy number given to the sender, if any
    call_until = Timestamptz(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    answered_at = Timestamptz(null=True, default=None)


class Photo(Table, tablename="carmove_photo"):
    """A request's photo, re-encoded by the app (no EXIF, no location): one per request."""

    request = ForeignKey(references=MoveRequest, on_delete=OnDelete.cascade, unique=True)
    content_type = Varchar(length=16)
    data = Bytea()


class Report(Table, tablename="carmove_report"):
    """A report of misuse to the operators (anyone may send one), with what they did about it."""

    id = UUID(primary_key=True)
    sticker = ForeignKey(references=Sticker, on_delete=OnDelete.cascade, index=True)
    kind = Varchar(length=16)
    note = Varchar(length=64, default="")
    by_owner = Boolean(default=False)  # the sticker's owner reported one of its requests
    request = Varchar(length=36, default="")  # the request it is about, if any
    state = Varchar(length=10, default="open", index=True)  # open | closed
    action = Varchar(length=16, default="")  # none | pause (suspended the car's sticker): on closing it
    created_at = Timestamptz(default=TimestamptzNow())
    closed_at = Timestamptz(null=True, default=None)
    closed_by = Varchar(length=64, default="")  # the operator who closed it, as they named themselves
    lifted_at = Timestamptz(null=True, default=None)  # the suspension it made was lifted through it
    lifted_by = Varchar(length=64, default="")


TABLES = [Car, Sticker, MoveRequest, Photo, Report]
