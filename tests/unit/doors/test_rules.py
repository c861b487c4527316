"""The doors rules by example, and their invariants over any input (hypothesis)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from miniapps.doors import rules
from miniapps.doors.rules import PassView, list_window, mask, opens, pass_decision, window_problem

T = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
H = timedelta(hours=1)


def a_pass(pid="p", doors=("N",), starts=T, ends=T + 2 * H, entries=2, used=0, cancelled=False) -> PassView:
    return PassView(pid, frozenset(doors), starts, ends, entries, used, cancelled)


def test_who_opens_which_door():
    assert opens(None, 7) and opens(3, None) and opens(3, 3)
    assert not opens(3, 4)


def test_pass_decisions_by_example():
    assert pass_decision([], "N", T) == ("not_resident", None)
    assert pass_decision([a_pass(doors=("S",))], "N", T) == ("wrong_door", None)
    assert pass_decision([a_pass()], "N", T - timedelta(seconds=1)) == ("pass_not_started", None)
    assert pass_decision([a_pass()], "N", T + 2 * H) == ("pass_expired", None)  # the end is exclusive
    assert pass_decision([a_pass(used=2)], "N", T + H) == ("pass_used_up", None)
    assert pass_decision([a_pass(cancelled=True)], "N", T + H) == ("pass_cancelled", None)
    ok, chosen = pass_decision([a_pass("late", ends=T + 5 * H), a_pass("soon")], "N", T)
    assert (ok, chosen and chosen.id) == ("ok", "soon")  # the one ending first is used first


def test_windows_by_example():
    kw = {"max_hours": 168, "ahead_days": 30}
    assert window_problem(T, T, T, **kw) == "bad_window"
    assert window_problem(T - 3 * H, T - H, T, **kw) == "window_over"
    assert window_problem(T, T + 169 * H, T, **kw) == "window_too_long"
    assert (
        window_problem(T + timedelta(days=31), T + timedelta(days=31, hours=1), T, **kw) == "window_too_far"
    )
    assert window_problem(T - H, T + H, T, **kw) is None


def test_the_screen_speaks_the_gate_language():
    assert rules.screen("pass_expired", "en") == "Visitor pass expired"
    assert rules.screen("pass_expired", "zh-CN") == "访客通行证已过期"
    assert set(rules.REASONS) >= {
        "not_resident",
        "wrong_door",
        "pass_not_started",
        "pass_used_up",
        "pass_cancelled",
    }


def test_the_claim_changes_with_every_code_and_gives_the_handle_back():
    key, handle = bytes(32), bytes.fromhex("0011223344556677")
    a, b = mask(handle, key, b"\x01" * 12), mask(handle, key, b"\x02" * 12)
    assert a != b and a != handle
    assert mask(a, key, b"\x01" * 12) == handle


moments = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 1, 1), timezones=st.just(UTC))
passes = st.builds(
    lambda pid, doors, starts, hours, entries, used, cancelled: PassView(
        pid, frozenset(doors), starts, starts + timedelta(hours=hours), entries, min(used, entries), cancelled
    ),
    st.text("abcdef", min_size=1, max_size=4),
    st.sets(st.sampled_from("NSEW"), min_size=1),
    moments,
    st.integers(0, 200),
    st.integers(1, 5),
    st.integers(0, 6),
    st.booleans(),
)


@given(st.lists(passes, max_size=5), st.sampled_from("NSEW"), moments)
def test_a_pass_admits_exactly_when_one_names_the_door_is_live_in_its_window_with_entries_left(ps, door, at):
    reason, chosen = pass_decision(ps, door, at)
    usable = [
        p
        for p in ps
        if door in p.doors and not p.cancelled and p.starts_at <= at < p.ends_at and p.used < p.entries
    ]
    assert (reason == "ok") == bool(usable)
    if chosen is not None:
        assert chosen in usable  # never outside its window, never past its count, never cancelled
    else:
        assert reason in rules.REASONS and reason != "ok"


@given(st.lists(passes, min_size=1, max_size=5, unique_by=lambda p: p.id), st.sampled_from("NSEW"), moments)
def test_entries_taken_one_by_one_never_exceed_a_pass_count(ps, door, at):
    """Scanning until refused takes from each pass exactly the entries it had left if it admits at that
    door and time (names the door, live, in its window), and nothing from any other."""
    held = {p.id: p for p in ps}
    taken: dict[str, int] = {}
    for _ in range(40):
        _, chosen = pass_decision(list(held.values()), door, at)
        if chosen is None:
            break
        taken[chosen.id] = taken.get(chosen.id, 0) + 1
        c = chosen
        held[c.id] = PassView(c.id, c.doors, c.starts_at, c.ends_at, c.entries, c.used + 1, c.cancelled)
    for p in ps:
        assert taken.get(p.id, 0) == (p.entries - p.used if p.admits(door, at) else 0)


@given(
    st.binary(min_size=8, max_size=8), st.binary(min_size=32, max_size=32), st.binary(min_size=8, max_size=16)
)
def test_masking_twice_gives_the_handle_back(handle, key, cti):
    claim = mask(handle, key, cti)
    assert len(claim) == 8 and mask(claim, key, cti) == handle


@given(st.integers(0, 2**40), st.integers(60, 86400), st.integers(3600, 7 * 86400))
def test_a_list_window_holds_now_and_stays_the_same_through_a_refresh_period(now, refresh, validity):
    issued, expires = list_window(now, refresh=refresh, validity=validity)
    assert issued <= now < issued + refresh and expires == issued + validity
    assert list_window(issued + refresh - 1, refresh=refresh, validity=validity) == (issued, expires)


@given(moments, moments, moments, st.integers(1, 400), st.integers(1, 60))
def test_an_accepted_window_ends_after_now_after_it_starts_and_within_the_limits(
    starts, ends, now, hours, days
):
    problem = window_problem(starts, ends, now, max_hours=hours, ahead_days=days)
    if problem is None:
        assert now < ends and starts < ends
        assert ends - starts <= timedelta(hours=hours) and starts <= now + timedelta(days=days)
