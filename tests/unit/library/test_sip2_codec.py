"""The SIP2 codec: the 3M checksum (an example from the independent ``sip2`` client's source), frames we
write verify as a kiosk verifies them, a wrong checksum is refused, and no input whatever makes the
parser fail any other way than refusing it (the server answers 96 then, and lives on)."""

from hypothesis import given, settings
from hypothesis import strategies as st

from miniapps.library.sip2 import BadMessage, checksum, frame, parse

PROPERTY = settings(database=None, deadline=None, max_examples=500)


def test_the_checksum_of_a_known_message():
    # the sip2 package's own example: this checkin's checksum is EB80
    message = "09N20160419    12200820160419    122008APReading Room 1|AO830|AB830$28170815|AC|AY2AZ"
    assert checksum(message.encode()) == "EB80"


def test_a_request_with_its_checksum_parses_and_a_wrong_one_is_refused():
    raw = frame("1720261125    180000AOSYLIB|ABSY0000001|", "3", True).rstrip(b"\r")
    assert parse(raw) == ("17", ["20261125    180000"], {"AO": "SYLIB", "AB": "SY0000001"}, "3")
    wrong = raw[:-1] + (b"0" if raw[-1:] != b"0" else b"1")
    try:
        parse(wrong)
    except BadMessage as exc:
        assert str(exc) == "checksum"
    else:
        raise AssertionError("a wrong checksum was accepted")
    # without error detection: no sequence number, nothing to verify
    assert parse(b"9900302.00") == ("99", ["0", "030", "2.00"], {}, None)


@PROPERTY
@given(
    st.text(alphabet=st.characters(blacklist_characters="|\r", blacklist_categories=["Cs"]), max_size=40),
    st.integers(0, 9),
)
def test_what_we_frame_verifies(value, seq):
    out = frame(f"18030001{'20261125    180000'}AB{value}|", str(seq), True)
    body = out[: out.rindex(b"AZ") + 2]
    assert (sum(body) + int(out[-5:-1], 16)) & 0xFFFF == 0 and out.endswith(b"\r")


@PROPERTY
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode)))
def test_no_input_breaks_the_parser(raw):
    try:
        _command, fixed, fields, _seq = parse(raw)
    except (BadMessage, UnicodeDecodeError):
        return
    assert isinstance(fields, dict) and all(isinstance(f, str) for f in fixed)


async def test_several_workers_share_the_port_only_with_reuse_port(free_port):
    """Each worker of a multi-worker server binds the SIP2 port when ``sip2_reuse_port`` is set (the kernel
    spreads the kiosks' connections); without it the second bind fails at start-up."""
    import socket
    from types import SimpleNamespace

    import pytest

    from miniapps.library.sip2 import Sip2Server

    if not hasattr(socket, "SO_REUSEPORT"):
        pytest.skip("no SO_REUSEPORT here")
    port = free_port()

    def worker(reuse):
        config = {"sip2_reuse_port": reuse, "sip2_idle_seconds": 5, "sip2_max_line": 1024}
        return Sip2Server(SimpleNamespace(config=config), lending=None)  # type: ignore[arg-type]

    first, second = worker(True), worker(True)
    await first.start("127.0.0.1", port)
    try:
        await second.start("127.0.0.1", port)
        await second.stop()
        lone = worker(False)
        with pytest.raises(OSError):
            await lone.start("127.0.0.1", port)
    finally:
        await first.stop()
