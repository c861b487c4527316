"""Console operators (people, with a password and a role) and their sessions.

They are Piccolo's own user and session tables under our names, so piccolo-admin's login works on them
unchanged and they live in our migrations beside everything else."""

from piccolo.apps.user.tables import BaseUser
from piccolo.columns import Varchar
from piccolo.table import Table
from piccolo_api.session_auth.tables import SessionsBase

ROLES = ("readonly", "admin")


class ConsoleOperator(BaseUser, tablename="console_operator"):
    # readonly: sees everything the console shows; admin: may also change what the console lets change
    role = Varchar(length=16, default="readonly")


class ConsoleSession(SessionsBase, tablename="console_session"):
    pass


TABLES: list[type[Table]] = [ConsoleOperator, ConsoleSession]
