"""Parking's own tables."""

from piccolo.columns import UUID, ForeignKey, Integer, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class CarPark(Table, tablename="parking_car_park"):
    code = Varchar(length=16, unique=True)  # barrier scanners are enrolled with it as their place
    name = Varchar(length=64)  # Chinese
    name_en = Varchar(length=128, default="")
    district = Varchar(length=32, index=True)  # Chinese: 和平区
    district_en = Varchar(length=64, default="")  # Heping District
    capacity = Integer()
    occupied = Integer(default=0)  # cars inside
    reserved = Integer(default=0)  # spaces held by active reservations
    free_minutes = Integer(default=15)
    hourly_rate = Integer(default=500)  # fen per started hour
    daily_max = Integer(default=6000)  # fen per 24 hours


class Reservation(Table, tablename="parking_reservation"):
    id = UUID(primary_key=True)
    car_park = ForeignKey(references=CarPark, on_delete=OnDelete.cascade, index=True)
    openid = Varchar(length=40, index=True)
    plate = Varchar(length=16)
    starts_at = Timestamptz()
    expires_at = Timestamptz(index=True)  # the space is released if the car has not arrived by then
    state = Varchar(length=12, default="active", index=True)  # active | used | cancelled | expired
    created_at = Timestamptz(default=TimestamptzNow())


class ParkingSession(Table, tablename="parking_session"):
    id = UUID(primary_key=True)
    car_park = ForeignKey(references=CarPark, on_delete=OnDelete.cascade, index=True)
    openid = Varchar(length=40, index=True)
    plate = Varchar(length=16, default="")
    entry_at = Timestamptz()
    exit_at = Timestamptz(null=True, default=None)
    fee = Integer(default=0)
    order_id = Varchar(length=36, default="")
    state = Varchar(length=8, default="open")  # open | closed
    entry_record = Varchar(length=110, unique=True)
    exit_record = Varchar(length=110, null=True, default=None, unique=True)


class Plate(Table, tablename="parking_plate"):
    """A plate a citizen registered, checked against their vehicle licence (机动车行驶证) through the
    platform's consent sharing; one row per citizen and plate (a unique index, in a migration)."""

    id = UUID(primary_key=True)
    openid = Varchar(length=40)  # the unique (openid, plate) index serves the citizen's look-ups
    plate = Varchar(length=16)  # as rules.plate normalises it
    state = Varchar(length=12, default="pending")  # pending | verified | mismatch | refused | lapsed
    reason = Varchar(length=32, default="")  # why it is not verified (the platform's code), else ""
    request = Varchar(length=36, default="")  # the licence request (Platform.ask_licence)
    vehicle_type = Varchar(length=64, default="")  # 车辆类型 from the licence, once it was read
    created_at = Timestamptz(default=TimestamptzNow())
    settled_at = Timestamptz(null=True, default=None)


TABLES = [CarPark, Reservation, ParkingSession, Plate]
