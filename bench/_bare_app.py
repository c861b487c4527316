"""The baseline for the online scan benchmarks: a bare Litestar POST handler that decodes a JSON body
into a msgspec Struct and answers JSON, served by the same server the same way. Two routes: a gate's
scan (bench/gate.py, bench/codes.py) and a till's pay-code scan (bench/paycode.py), each with the body
its app route takes."""

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


class PayScan(msgspec.Struct):
    code: str
    amount: int
    reference: str
    description: str = ""


def pay_answer(data: PayScan, app_id: str) -> dict[str, object]:
    """An answer the size and shape of the pay code's (payments/merchant_schemas.py PayCodePayment)."""
    return {
        "result": "paid",
        "order_id": "00000000-0000-4000-8000-000000000000",
        "reference": data.reference,
        "amount": data.amount,
        "method": app_id,
        "order_state": "paid",
        "confirmation_id": None,
        "confirm_by": None,
        "reason": "",
        "code_chars": len(data.code),
    }


@post("/api/v1/payments/paycode", status_code=200, sync_to_thread=False)
def paycode(data: PayScan) -> dict[str, object]:
    return pay_answer(data, "bare")


app = Litestar([scan, paycode], logging_config=None)
