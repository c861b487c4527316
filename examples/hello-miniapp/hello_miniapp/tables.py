"""The hello door's own tables: its doors (demo data) and the visits its scanners let in."""

from piccolo.columns import UUID, Timestamptz, Varchar
from piccolo.table import Table


class HelloDoor(Table, tablename="hello_door"):
    code = Varchar(length=32, unique=True)  # scanners are enrolled with it as their place
    name = Varchar(length=64)  # Chinese
    name_en = Varchar(length=128, default="")


class HelloVisit(Table, tablename="hello_visit"):
    id = UUID(primary_key=True)
    openid = Varchar(length=64, index=True)  # the citizen's pairwise id for this mini-app
    place = Varchar(length=64)  # the scanner's place: a door's code
    at = Timestamptz()


TABLES = [HelloDoor, HelloVisit]
