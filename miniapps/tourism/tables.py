"""Tourism's own tables."""

from piccolo.columns import UUID, ForeignKey, Integer, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class Attraction(Table, tablename="tourism_attraction"):
    code = Varchar(length=16, unique=True)  # gates are enrolled with it as their place
    name = Varchar(length=64)  # Chinese
    name_en = Varchar(length=128, default="")
    price = Integer()  # fen per ticket
    refund_days = Integer(default=1)  # refundable until this many days before the visit day


class TicketSession(Table, tablename="tourism_session"):
    id = UUID(primary_key=True)
    attraction = ForeignKey(references=Attraction, on_delete=OnDelete.cascade, index=True)
    day = Varchar(length=10, index=True)  # China date
    window = Varchar(length=11)  # "09:00-12:00": timed entry
    capacity = Integer()
    sold = Integer(default=0)


class Ticket(Table, tablename="tourism_ticket"):
    id = UUID(primary_key=True)
    session = ForeignKey(references=TicketSession, on_delete=OnDelete.cascade, index=True)
    openid = Varchar(length=40, index=True)  # the buyer, whose code admits the party one by one
    holder_name = Varchar(length=32)
    order_id = Varchar(length=36, index=True)
    state = Varchar(length=10, default="pending")  # pending | paid | used | refunded
    used_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())


class Hotel(Table, tablename="tourism_hotel"):
    code = Varchar(length=16, unique=True)
    name = Varchar(length=64)  # Chinese
    name_en = Varchar(length=128, default="")


class HotelBooking(Table, tablename="tourism_hotel_booking"):
    id = UUID(primary_key=True)
    hotel = ForeignKey(references=Hotel, on_delete=OnDelete.cascade, index=True)
    openid = Varchar(length=40, index=True)
    night = Varchar(length=10)  # China date of arrival
    guest_name = Varchar(length=32, default="")
    state = Varchar(length=12, default="booked")  # booked | checked_in
    checked_in_at = Timestamptz(null=True, default=None)


TABLES = [Attraction, TicketSession, Ticket, Hotel, HotelBooking]
