"""Civic services' own tables: service halls with their window categories and queue numbers, health
check points with the passes logged at them."""

from piccolo.columns import UUID, ForeignKey, Integer, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.table import Table


class Hall(Table, tablename="civic_hall"):
    """A social-security service hall (社保服务大厅); its check-in kiosks are enrolled with its code."""

    code = Varchar(length=16, unique=True)
    name = Varchar(length=64)  # Chinese
    name_en = Varchar(length=128, default="")
    address = Varchar(length=128, default="")  # Chinese, as on the hall's door


class Service(Table, tablename="civic_service"):
    """A category of the hall's service windows (养老保险, 社保卡, ...): its own line of queue numbers."""

    hall = ForeignKey(references=Hall, on_delete=OnDelete.cascade, index=True)
    code = Varchar(length=24, unique=True)  # "<hall code>-<letter>"
    letter = Varchar(length=2)  # numbers of this category are "<letter><three digits>": A012
    name = Varchar(length=64)  # Chinese
    name_en = Varchar(length=128, default="")
    position = Integer(default=0)  # the first is the kiosk's default (a general enquiries window)
    windows = Integer(default=1)  # windows serving it (for the waiting-time estimate)
    # the day's numbering: the China-time day it counts, the last number issued and the last called,
    # moved only by conditional UPDATEs (one number to one citizen)
    queue_day = Varchar(length=10, default="")
    issued = Integer(default=0)
    called = Integer(default=0)


class QueueTicket(Table, tablename="civic_queue_ticket"):
    """A queue number a citizen drew by scanning their code at the hall's kiosk."""

    id = UUID(primary_key=True)
    service = ForeignKey(references=Service, on_delete=OnDelete.cascade, index=True)
    openid = Varchar(length=40, index=True)
    day = Varchar(length=10, index=True)  # China date
    number = Integer()
    label = Varchar(length=8)  # "A012"
    state = Varchar(length=10, default="waiting")  # waiting | called | cancelled
    window = Integer(default=0)  # the window that called it
    issued_at = Timestamptz()
    called_at = Timestamptz(null=True, default=None)
    check_in_record = Varchar(length=110, unique=True)


class Checkpoint(Table, tablename="civic_checkpoint"):
    """A health check point (健康检查点): a hospital entrance, a venue, a station."""

    code = Varchar(length=16, unique=True)
    name = Varchar(length=64)  # Chinese
    name_en = Varchar(length=128, default="")
    kind = Varchar(length=12, default="venue")  # hospital | venue | station


class Pass(Table, tablename="civic_pass"):
    """A citizen with a green health status let through a check point (the platform refuses the others
    before the mini-app is asked; their refusals are in the platform's scan records)."""

    id = UUID(primary_key=True)
    checkpoint = ForeignKey(references=Checkpoint, on_delete=OnDelete.cascade, index=True)
    openid = Varchar(length=40, index=True)
    day = Varchar(length=10, index=True)  # China date: the dashboard counts today's
    passed_at = Timestamptz()
    record = Varchar(length=110, unique=True)


TABLES = [Hall, Service, QueueTicket, Checkpoint, Pass]
