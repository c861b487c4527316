"""The licence rules: what an issuer may send, how a list shows a personal field, where a licence's
status lives in its list."""

import pytest

from backend.errors import InvalidInput
from licences.format import pack_statuses
from licences.rules import TYPES, check_fields_requested, clean_fields, mask, status_index
from licences.verifier import StatusList

DRIVING = TYPES["driving_licence"]
COMPLETE = {
    "name": "王小明",
    "sex": "男",
    "nationality": "中国",
    "birth_date": "1991-04-02",
    "address": "辽宁省沈阳市沈河区北京街9号",
    "licence_number": "210103199104020013",
    "licence_class": "C1",
    "first_issued": "2012-06-18",
    "valid_from": "2022-06-18",
    "issuing_authority": "沈阳市公安局交通警察支队",
}


def test_a_complete_licence_is_kept_as_sent_and_spaces_are_tidied():
    fields = clean_fields(DRIVING, {**COMPLETE, "address": "  辽宁省沈阳市   沈河区 "})
    assert fields["address"] == "辽宁省沈阳市 沈河区" and "valid_until" not in fields


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"colour": "red"}, "unknown_licence_field"),
        ({"birth_date": "1991-02-30"}, "licence_field_invalid"),
        ({"birth_date": "19910402"}, "licence_field_invalid"),
        ({"name": "王\u0000明"}, "licence_field_invalid"),
        ({"name": "王\u202e明"}, "licence_field_invalid"),
        ({"name": 12}, "licence_field_invalid"),
        ({"name": "x" * 513}, "licence_field_invalid"),
        ({"name": "   "}, "licence_field_invalid"),
    ],
)
def test_what_an_issuer_may_not_send(change, code):
    with pytest.raises(InvalidInput) as refused:
        clean_fields(DRIVING, {**COMPLETE, **change})
    assert refused.value.code == code


def test_a_missing_required_field_is_named_but_an_update_may_send_one():
    without = {k: v for k, v in COMPLETE.items() if k != "licence_class"}
    with pytest.raises(InvalidInput) as refused:
        clean_fields(DRIVING, without)
    assert refused.value.code == "licence_field_missing"
    assert clean_fields(DRIVING, {"licence_class": "A1"}, partial=True) == {"licence_class": "A1"}


def test_requested_fields_come_in_the_types_order_once():
    assert check_fields_requested(DRIVING, ["licence_class", "name", "name"]) == ["name", "licence_class"]
    with pytest.raises(InvalidInput):
        check_fields_requested(DRIVING, ["plate_number"])
    with pytest.raises(InvalidInput):
        check_fields_requested(DRIVING, [])


def test_a_list_masks_personal_fields_and_numbers():
    number = DRIVING.field("licence_number")
    assert mask(number, "210103199104020013") == "2101**********0013"
    assert mask(DRIVING.field("name"), "王小明") == "王**"
    assert mask(DRIVING.field("licence_class"), "C1") == "C1"


def test_status_indexes_are_scattered_and_never_shared():
    size = 1 << 12
    indexes = [status_index(n, size) for n in range(size)]
    assert sorted(indexes) == list(range(size))  # every entry once
    assert indexes[:4] != [indexes[0] + i for i in range(4)]  # neighbours in time are not in the list


def test_packed_statuses_read_back_as_the_verifier_reads_them():
    statuses = {0: 1, 3: 2, 4: 1, 4095: 2}
    data = pack_statuses(statuses, 4096, 2)
    assert len(data) == 1024
    listed = StatusList("uri", 2, data, None)
    assert [listed.status(i) for i in (0, 1, 2, 3, 4, 5, 4095)] == [1, 0, 0, 2, 1, 0, 2]
