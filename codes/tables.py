"""What the citizen code keeps: whom each issued code stands for."""

from piccolo.columns import Timestamptz, Varchar
from piccolo.table import Table


class IssuedCode(Table, tablename="issued_code"):
    """Whom a code stands for (its cti), for as long as a scan of it may still be uploaded. The store holds
    the same mapping for the scan path; this copy is what survives a store that loses its data, so an
    offline terminal's upload after a Redis restart is still charged to the right citizen."""

    cti = Varchar(length=32, unique=True)  # hex of the code's 12-byte cti
    citizen_id = Varchar(length=36)
    session_id = Varchar(length=36)
    device_id = Varchar(length=128, default="")
    expires_at = Timestamptz(index=True)  # after this no scan of the code is accepted (then purged)


TABLES = [IssuedCode]
