"""The baseline for the online scan benchmark: a bare Litestar POST handler that decodes a JSON body
into a msgspec Struct and answers JSON, served by the same server the same way."""

import msgspec
from litestar import Litestar, post


class Scan(msgspec.Struct):
    token: str
    record_id: str = ""  # the gate's own id for the scan, as a scan body carries it


@post("/api/v1/scans", status_code=200, sync_to_thread=False)
def scan(data: Scan) -> dict[str, str]:
    return {
        "result": "allow",
        "reason": "ok",
        "app_id": "bare",
        "record_id": data.record_id,
        "token_chars": str(len(data.token)),
    }


app = Litestar([scan], logging_config=None)
