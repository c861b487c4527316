"""扫码门禁 doors' own tables: places (a community, an office, a public building), their buildings and
doors, residents (by pairwise openid), visitor passes and the log of entries."""

from piccolo.columns import UUID, Boolean, ForeignKey, Integer, Text, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class Place(Table, tablename="doors_place"):
    """A residential community (小区), an office building or a public building."""

    code = Varchar(length=24, unique=True)
    name = Varchar(length=64)  # Chinese
    name_en = Varchar(length=128, default="")
    kind = Varchar(length=12, default="community")  # community | office | public
    district = Varchar(length=32, default="")  # Chinese: 和平区
    # the place's number in the code's keyed claims and in its doors' lists (unique, small)
    number = Integer(unique=True)
    # the offline key K_c: 32 random bytes sealed with the platform's key-encryption key. A rotation
    # publishes the next key in the doors' lists first and masks codes with it only from key_next_at (a
    # door's refresh period later); the previous one stays listed for codes masked before
    key_id = Integer(default=0)  # the id of key_sealed; the next is key_id + 1, the previous key_id - 1
    key_sealed = Varchar(length=200, default="")
    key_prev_sealed = Varchar(length=200, default="")
    key_next_sealed = Varchar(length=200, default="")
    key_next_at = Timestamptz(null=True, default=None)
    key_rotated_at = Timestamptz(null=True, default=None)  # when key_sealed began to mask codes


class Building(Table, tablename="doors_building"):
    code = Varchar(length=32, unique=True)
    place = ForeignKey(references=Place, on_delete=OnDelete.cascade, index=True)
    name = Varchar(length=64)
    name_en = Varchar(length=128, default="")


class Door(Table, tablename="doors_door"):
    """A door: its controller is a scanner enrolled with the door's code as its place."""

    code = Varchar(length=32, unique=True)
    place = ForeignKey(references=Place, on_delete=OnDelete.cascade, index=True)
    building = ForeignKey(references=Building, on_delete=OnDelete.cascade, null=True, default=None)
    name = Varchar(length=64)
    name_en = Varchar(length=128, default="")


class Resident(Table, tablename="doors_resident"):
    """A citizen living (or working) at a place: added by its manager, or asked for and approved."""

    id = UUID(primary_key=True)
    key = Varchar(length=80, unique=True)  # "<place id>:<openid>": one row per citizen and place
    place = ForeignKey(references=Place, on_delete=OnDelete.cascade, index=True)
    building = ForeignKey(references=Building, on_delete=OnDelete.set_null, null=True, default=None)
    openid = Varchar(length=40, index=True)
    state = Varchar(length=10, default="pending", index=True)  # pending | active | refused | removed
    source = Varchar(length=10, default="manager")  # manager | request
    # the offline handle H (hex of 8 random bytes), new each time the resident becomes active
    handle = Varchar(length=16, unique=True)
    created_at = Timestamptz(default=TimestamptzNow())
    decided_at = Timestamptz(null=True, default=None)
    removed_at = Timestamptz(null=True, default=None)


class VisitorPass(Table, tablename="doors_pass"):
    id = UUID(primary_key=True)
    place = ForeignKey(references=Place, on_delete=OnDelete.cascade, index=True)
    host = Varchar(length=40, index=True)  # the resident who invited
    visitor = Varchar(length=40, index=True)
    visitor_label = Varchar(length=16, default="")  # the phone the host typed, masked: 139****1234
    doors = Text()  # JSON list of door codes
    starts_at = Timestamptz()
    ends_at = Timestamptz()
    entries = Integer()
    used = Integer(default=0)  # moved only by a conditional UPDATE (used < entries)
    state = Varchar(length=10, default="active")  # active | cancelled
    created_at = Timestamptz(default=TimestamptzNow())
    cancelled_at = Timestamptz(null=True, default=None)


class Entry(Table, tablename="doors_entry"):
    """Every scan at a door, allowed or not, online or uploaded by an offline door."""

    id = UUID(primary_key=True)
    record = Varchar(length=110, unique=True)  # "<scanner>/<record id>"
    door = ForeignKey(references=Door, on_delete=OnDelete.cascade, index=True)
    place = ForeignKey(references=Place, on_delete=OnDelete.cascade, index=True)
    openid = Varchar(length=40, index=True)
    kind = Varchar(length=10, default="")  # resident | visitor | "" (refused, neither)
    visitor_pass = ForeignKey(references=VisitorPass, on_delete=OnDelete.set_null, null=True, default=None)
    allowed = Boolean(default=False)
    reason = Varchar(length=24, default="ok")
    at = Timestamptz(index=True)
    offline = Boolean(default=False)


TABLES = [Place, Building, Door, Resident, VisitorPass, Entry]
