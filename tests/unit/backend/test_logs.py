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


def test_numbers_written_in_groups_are_masked_too():
    cases = {
        "139-1234-5678": "139****5678",
        "139 1234 5678": "139****5678",
        "/api/v1/nope/139-1234-5678": "/api/v1/nope/139****5678",
        "+86 139 1234 5678": "+86 139****5678",
        "+86-139-1234-5678": "+86-139****5678",
        "0086 13912345678": "0086 139****5678",
        "008613912345678": "0086139****5678",
        "(+86)139-1234-5678": "(+86)139****5678",
        "tel:+8613912345678;": "tel:+86139****5678;",
        "210102-19491231-018X": "2101**********018X",
        "210102 19491231 018x": "2101**********018x",
        "210102 1949 1231 018X": "2101**********018X",
    }
    for text, masked in cases.items():
        assert mask_text(text) == masked, text


def test_ordinary_ids_and_times_are_left_alone():
    for text in [
        "2026-11-28T13:45:12.123Z",
        "1764321234567",  # a millisecond timestamp
        "13912345678901",  # more digits than a mobile number
        "ord-1391234-56789",  # digits grouped otherwise
        "550e8400-e29b-41d4-a716-446655440000",
        "12345678-1391-2345-6789-012345678901",
        "21010219491231018X1",  # one character too many for an ID number
        "amount 12345 fen, 139 items",
    ]:
        assert mask_text(text) == text, text
