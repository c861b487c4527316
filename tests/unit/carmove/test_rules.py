"""扫码挪车's rules: plates written one way, shown masked to strangers; notes a person reads; the limits'
hour windows; when the SMS fallback fires; a waiting request closing by itself; what a sticker takes;
what a photo's bytes say it is. Examples, and invariants over any input."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from miniapps.carmove.rules import (
    ANSWERS,
    NOTE_MAX,
    REASONS,
    note,
    over,
    photo_type,
    plate,
    plate_checked,
    plate_masked,
    plate_purpose,
    plate_shown,
    request_state,
    sms_due,
    sms_fires,
    sticker_refusal,
    window,
)

PROPERTY = settings(database=None, deadline=None, max_examples=300)
T0 = datetime(2026, 11, 30, 1, tzinfo=UTC)
PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
plates = st.builds(
    lambda p, letter, rest: p + letter + rest,
    st.sampled_from(PROVINCES),
    st.sampled_from("ABCDEFGHJKLMNPQRSTUVWXYZ"),
    st.text("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789", min_size=5, max_size=6),
)


def test_plates_are_written_one_way_and_shown_masked():
    assert plate("辽a·12345") == plate("辽A 12345") == plate("辽A-12345") == "辽A12345"
    assert plate("辽AD12345") == "辽AD12345"  # new energy: six after the letter
    for bad in ("ABCDEFG", "辽A1234", "辽A1234567", "辽112345", "", "辽A12345\u202e"):
        with pytest.raises(ValueError):
            plate(bad)
    assert plate_shown("辽A12345") == "辽A·12345"
    assert plate_masked("辽A12345") == "辽A·***45"
    assert plate_checked("辽A12345", "辽A·12345") == "proven"
    assert plate_checked("辽A12345", "辽A12346") == "mismatch"
    assert plate_checked("辽A12345", "not a plate") == "mismatch"
    assert "辽A·12345" in plate_purpose("辽A12345")


def test_a_plate_typed_full_width_is_the_plate_and_a_look_alike_is_not():
    # a Chinese keyboard's full-width letters and digits (and its full stop) are the plate's own
    assert plate("辽Ａ·１２３４５") == plate("辽ａ．１２３４５") == "辽A12345"
    # not a province's name (any other Han character was taken), or a letter that only upper-casing
    # makes ASCII (dotless ı → I): not a plate
    for bad in ("一A12345", "中A12345", "辽Aı2345", "辽A12345\u0130"):
        with pytest.raises(ValueError):
            plate(bad)


@PROPERTY
@given(plates)
def test_any_plate_typed_full_width_is_the_same_plate(p):
    full_width = p[0] + "".join(chr(ord(c) + 0xFEE0) for c in p[1:])  # Ａ is A + 0xFEE0
    assert plate(full_width) == p


@PROPERTY
@given(plates, st.sampled_from(["", "·", " ", "-"]), st.booleans())
def test_any_plate_however_written_is_the_same_and_its_mask_hides_the_middle(p, sep, lower):
    written = p[:2] + sep + p[2:]
    if lower:
        written = written.lower()
    assert plate(written) == p == plate(p)  # idempotent, whatever the separator or case
    masked = plate_masked(p)
    assert masked.startswith(p[:2]) and masked.endswith(p[-2:])
    assert p[2:-2] not in masked.replace("·", "").replace("*", "")  # the middle never shows
    assert plate_checked(p, plate_shown(p)) == "proven"


def test_notes_are_short_and_visible():
    assert note("  我在出口  ") == "我在出口"
    assert note("x" * NOTE_MAX) == "x" * NOTE_MAX
    for bad in ("x" * (NOTE_MAX + 1), "a\u202eb", "a\x00b", "line\nbreak"):
        with pytest.raises(ValueError):
            note(bad)


@PROPERTY
@given(st.text(max_size=80))
def test_a_note_taken_is_within_bounds_and_taken_again_unchanged(text):
    try:
        out = note(text)
    except ValueError:
        return
    assert len(out) <= NOTE_MAX and note(out) == out


def test_the_hour_window_and_retry_after():
    assert window(3600 * 10 + 5, 3600) == (10, 3595)
    assert window(3600 * 10, 3600) == (10, 3600)
    assert window(3600 * 11 - 1, 3600) == (10, 1)
    assert not over(3, 3) and over(4, 3)


@PROPERTY
@given(st.floats(min_value=0, max_value=4e9, allow_nan=False), st.integers(min_value=1, max_value=86400))
def test_retry_after_always_reaches_the_next_window_and_windows_never_go_back(now, seconds):
    index, retry = window(now, seconds)
    assert 1 <= retry <= seconds
    assert window(now + retry, seconds)[0] == index + 1  # retrying then is in a fresh window
    assert window(now + 0.5, seconds)[0] >= index


def test_the_sms_fires_only_when_unanswered_by_its_time():
    due = sms_due(T0, 60)
    assert due == T0 + timedelta(minutes=1)
    assert not sms_fires(due, None, T0 + timedelta(seconds=59))
    assert sms_fires(due, None, due)
    assert not sms_fires(due, T0 + timedelta(seconds=30), due + timedelta(seconds=5))
    assert sms_fires(due, due + timedelta(seconds=1), due + timedelta(seconds=5))


@PROPERTY
@given(st.integers(0, 3600), st.one_of(st.none(), st.integers(0, 7200)), st.integers(0, 7200))
def test_the_sms_fires_exactly_when_no_answer_came_by_its_time(after, answered, now):
    due = sms_due(T0, after)
    answered_at = None if answered is None else T0 + timedelta(seconds=answered)
    at = T0 + timedelta(seconds=now)
    fired = sms_fires(due, answered_at, at)
    assert fired == (at >= due and (answered_at is None or answered_at > due))
    if fired:  # once it fired, it has fired at every later moment (a delivery round late is still due)
        assert sms_fires(due, answered_at, at + timedelta(seconds=1))


def test_a_waiting_request_closes_by_itself_and_an_answered_one_stays():
    assert request_state("waiting", T0, T0 + timedelta(minutes=119), 120) == "waiting"
    assert request_state("waiting", T0, T0 + timedelta(minutes=120), 120) == "expired"
    assert request_state("answered", T0, T0 + timedelta(days=3), 120) == "answered"


@PROPERTY
@given(st.sampled_from(["waiting", "answered"]), st.integers(0, 10_000), st.integers(1, 600))
def test_an_expired_request_stays_expired(state, minutes, open_minutes):
    at = T0 + timedelta(minutes=minutes)
    now_state = request_state(state, T0, at, open_minutes)
    if now_state == "expired":
        assert request_state(state, T0, at + timedelta(minutes=1), open_minutes) == "expired"
    assert now_state in ("waiting", "answered", "expired")


def test_stickers_and_photos():
    assert sticker_refusal("active") == ""
    assert sticker_refusal("paused") == "sticker_paused"
    assert sticker_refusal("suspended") == "sticker_suspended"
    assert sticker_refusal("replaced") == "sticker_replaced"
    assert photo_type(b"\xff\xd8\xff\xe0\x00\x10JFIF") == "image/jpeg"
    assert photo_type(b"\x89PNG\r\n\x1a\n\x00\x00") == "image/png"
    assert photo_type(b"GIF89a") == photo_type(b"<svg") == photo_type(b"") == ""


@PROPERTY
@given(st.binary(max_size=32))
def test_only_jpeg_and_png_bytes_pass_as_photos(head):
    kind = photo_type(head)
    assert kind in ("", "image/jpeg", "image/png")
    if kind == "image/jpeg":
        assert head[:3] == b"\xff\xd8\xff"
    if kind == "image/png":
        assert head[:8] == b"\x89PNG\r\n\x1a\n"


def test_every_reason_and_answer_reads_in_both_languages():
    for zh, en in (*REASONS.values(), *ANSWERS.values()):
        assert zh and en and len(zh) <= 64 and len(en) <= 64
