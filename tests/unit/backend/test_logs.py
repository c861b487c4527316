import json
import logging

from backend.context import request_id_var
from backend.logs import JSONFormatter, RequestIdFilter, mask_text


def test_mask_text_hides_phone_id_number_and_tokens():
    text = (
        "phone 13812345678 / +8613812345678 id 21010219491231018X "
        "auth Bearer abc.def.ghijklmnop jwt eyJhbGciOi.eyJzdWIiOiIx.c2lnbmF0dXJl"
    )
    masked = mask_text(text)
    assert "13812345678" not in masked and "138****5678" in masked
    assert "21010219491231018X" not in masked and "2101**********018X" in masked
    assert "abc.def.ghijklmnop" not in masked
    assert "eyJhbGciOi.eyJzdWIiOiIx" not in masked


def test_json_lines_carry_the_request_id_and_extra_fields():
    record = logging.makeLogRecord(
        {
            "name": "t",
            "levelno": 20,
            "levelname": "INFO",
            "msg": "hello %s",
            "args": ("13812345678",),
            "status": 201,
        }
    )
    token = request_id_var.set("req-12345678")
    try:
        RequestIdFilter().filter(record)
    finally:
        request_id_var.reset(token)
    line = json.loads(JSONFormatter().format(record))
    assert line["request_id"] == "req-12345678"
    assert line["status"] == 201
    assert line["msg"] == "hello 138****5678"
