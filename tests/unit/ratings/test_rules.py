"""The pure parts of the evaluation centre: levels and rates, texts, the CSV a spreadsheet opens."""

from ratings import rules
from ratings._stats import COLUMNS, to_csv


def test_three_levels_are_good_and_two_bad():
    assert [rules.is_bad(level) for level in (5, 4, 3, 2, 1)] == [False, False, False, True, True]
    assert sorted(rules.LEVELS.values()) == [1, 2, 3, 4, 5]


def test_a_rate_of_nothing_is_no_rate():
    assert rules.rate(0, 0) is None and rules.rate(1, 3) == 0.3333 and rules.rate(3, 3) == 1.0


def test_texts_with_control_or_direction_characters_are_refused():
    assert rules.clean_text("  排队太久\n态度差 ") == "排队太久\n态度差"
    assert rules.clean_text("好\u202e评") is None and rules.clean_text("a\x00b") is None


def test_the_csv_opens_in_a_spreadsheet_without_running_anything():
    row = dict.fromkeys(COLUMNS, 0) | {
        "key": "platform/x",
        "name": '=HYPERLINK("http://evil")',
        "rank": 1,
        "satisfaction_rate": 0.8765,
        "bad_rate": None,
    }
    text = to_csv([row])
    assert text.startswith("\ufeffkey,name,rank")
    line = text.splitlines()[1]
    assert "'=HYPERLINK" in line and "87.65%" in line and ",," in line
