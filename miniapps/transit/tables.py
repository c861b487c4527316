"""Transit's own tables (the platform's are not touched)."""

from piccolo.columns import UUID, ForeignKey, Integer, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class TransitLine(Table, tablename="transit_line"):
    code = Varchar(length=16, unique=True)  # B42, M1
    name = Varchar(length=64)  # Chinese: 113路, 地铁1号线
    name_en = Varchar(length=128, default="")  # English: Bus 113, Metro Line 1
    kind = Varchar(length=8)  # bus | metro
    flat_fare = Integer(default=0)  # fen, buses


class TransitStation(Table, tablename="transit_station"):
    line = ForeignKey(references=TransitLine, on_delete=OnDelete.cascade)
    code = Varchar(length=16, unique=True)  # M1-03: metro gates are enrolled with it as their place
    name = Varchar(length=64)  # Chinese: 十三号街 (stations of one name on two lines are an interchange)
    name_en = Varchar(length=128, default="")  # English, as on the signs: Shisanhao Jie
    meters = Integer()  # distance from the line's first station


class TransitTrip(Table, tablename="transit_trip"):
    id = UUID(primary_key=True)
    openid = Varchar(length=40, index=True)
    kind = Varchar(length=8)  # bus | metro
    line_code = Varchar(length=16)
    entry_code = Varchar(length=16, default="")
    exit_code = Varchar(length=16, default="")
    started_at = Timestamptz()
    ended_at = Timestamptz(null=True, default=None)
    day = Varchar(length=10, index=True)  # China date of the boarding
    state = Varchar(length=8, default="open")  # open (metro, inside) | done
    rule = Varchar(length=24, default="")  # how an unusual trip was priced (no_entry, no_exit)
    fare = Integer(default=0)  # the tariff's fare
    discount = Integer(default=0)  # transfer discount
    capped = Integer(default=0)  # waived by the daily cap
    charged = Integer(default=0)  # what the citizen pays
    order_id = Varchar(length=36, default="")
    entry_record = Varchar(length=110, unique=True)  # "<scanner>/<record>": each scan once
    exit_record = Varchar(length=110, null=True, default=None, unique=True)
    created_at = Timestamptz(default=TimestamptzNow())


TABLES = [TransitLine, TransitStation, TransitTrip]
