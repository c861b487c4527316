"""一码借阅 at a self-check kiosk: 3M SIP2 over TCP, driven by the independent ``sip2`` client (PyPI) as a
kiosk would (login, status, patron by the scanned citizen code, checkout, item information, renew,
checkin, end of session), and by raw frames for what a client library never sends: bad checksums,
garbage, an over-long line, a message before login, a revoked kiosk."""

import asyncio
import json
from datetime import UTC, datetime

import pytest

from backend.clock import FrozenClock
from tests.integration.library.conftest import code_of

pytestmark = pytest.mark.storage


@pytest.fixture(scope="module")
async def sip2_app(make_module_client, free_port):
    """One app for the module, listening for SIP2 on a port of its own; each test enrols its own kiosks
    and makes its own citizens, and lends copies no other test of the module lends."""
    port = free_port()
    clock = FrozenClock(datetime(2026, 11, 25, 8, tzinfo=UTC))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(
            "SHENGSHI_MINIAPP_LIBRARY",
            json.dumps({"sip2_port": port, "sip2_idle_seconds": 5, "sip2_max_line": 1024}),
        )
        async with make_module_client(clock=clock, access_token_ttl=90 * 86400) as client:
            await client.services.miniapps.apps["library"].seed_demo()
            yield client, port, clock


async def enrol_kiosk(client, name="kiosk"):
    return await client.services.auth.machines.create(
        "scanner", app_id="library", place="SY-MAIN", context="library-kiosk", name=name
    )


@pytest.fixture
async def kiosk(sip2_app, login, new_phone):
    client, port, clock = sip2_app

    async def citizen():
        pair = await login(client, new_phone())
        return {"Authorization": f"Bearer {pair['access_token']}"}

    yield client, citizen, await enrol_kiosk(client), port, clock


def independent_client(port, tmp_path):
    from Sip2.sip2 import Sip2

    sip = Sip2()
    sip.hostName, sip.hostPort, sip.tlsEnable = "127.0.0.1", port, False
    sip.institutionId, sip.scLocation, sip.logfile_path = "SYLIB", "SY-MAIN", str(tmp_path)
    sip.socketTimeout = 10
    sip.connect()
    return sip


async def test_a_kiosk_session_with_the_independent_client(kiosk, tmp_path):
    client, citizen, cred, port, clock = kiosk
    reader = await citizen()
    token = await code_of(client, reader, clock)

    def session():
        sip = independent_client(port, tmp_path)
        out = {}
        try:
            out["login"] = sip.sip_login_response(
                sip.get_response(sip.sip_login_request(cred["client_id"], cred["client_secret"]))
            )
            out["status"] = sip.sip_sc_status_response(sip.get_response(sip.sip_sc_status_request()))
            sip.patron = token
            out["patron"] = sip.sip_patron_status_response(sip.get_response(sip.sip_patron_status_request()))
            out["checkout"] = sip.sip_checkout_response(
                sip.get_response(sip.sip_checkout_request("SY0000001"))
            )
            out["again"] = sip.sip_checkout_response(sip.get_response(sip.sip_checkout_request("SY0000002")))
            out["item"] = sip.sip_item_information_response(
                sip.get_response(sip.sip_item_information_request("SY0000001"))
            )
            out["info"] = sip.sip_patron_information_response(
                sip.get_response(sip.sip_patron_information_request("charged"))
            )
            out["renew"] = sip.sip_renew_response(sip.get_response(sip.sip_renew_request("SY0000001")))
            out["checkin"] = sip.sip_checkin_response(sip.get_response(sip.sip_checkin_request("SY0000001")))
            out["end"] = sip.sip_end_patron_session_response(
                sip.get_response(sip.sip_end_patron_session_request())
            )
            # the session forgot the code, and the code was used once: it is not accepted again
            out["after"] = sip.sip_checkout_response(sip.get_response(sip.sip_checkout_request("SY0000004")))
        finally:
            sip.disconnect()
        return out

    out = await asyncio.to_thread(session)
    assert out["login"]["fixed"]["Ok"] == "1"
    assert out["status"]["fixed"]["OnlineStatus"] == "Y" and out["status"]["variable"]["AO"] == ["SYLIB"]
    assert out["patron"]["variable"]["BL"] == ["Y"]
    assert out["checkout"]["fixed"]["Ok"] == "1", out["checkout"]
    assert out["checkout"]["variable"]["AJ"] == ["三体"]
    assert out["again"]["fixed"]["Ok"] == "1"  # several messages with the same AA: one identification
    assert out["item"]["variable"]["AJ"] == ["三体"] and out["item"]["fixed"]["CirculationStatus"] == "04"
    assert sorted(out["info"]["variable"]["AU"]) == ["SY0000001", "SY0000002"]
    assert out["renew"]["fixed"]["Ok"] == "1", out["renew"]
    assert out["checkin"]["fixed"]["Ok"] == "1"
    assert out["end"]["fixed"]["EndSession"] == "Y"
    assert out["after"]["fixed"]["Ok"] == "0"
    assert out["after"]["variable"]["AF"] == ["此码已使用，请刷新市民码"]  # the kiosk's language: Chinese

    loans = (await client.get("/api/v1/apps/library/loans", headers=reader)).json()["items"]
    by = {x["barcode"]: x for x in loans}
    assert by["SY0000001"]["returned_at"] is not None and by["SY0000001"]["renewals"] == 1
    assert by["SY0000002"]["returned_at"] is None
    scans = (await client.get("/api/v1/me/scans", headers=reader)).json()["items"]
    # the identification is in the citizen's scan history, as any scan is
    kiosk_scans = [(s["context"], s["place"], s["result"]) for s in scans]
    assert kiosk_scans.count(("library-kiosk", "SY-MAIN", "allow")) == 1


async def frames(port, *lines, read=True, closes=True):
    """Send ``lines`` on one connection, reading an answer to each (``read``); then what comes until the
    server closes it (``closes``), else close it ourselves."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    answers = []
    try:
        for line in lines:
            writer.write(line)
            await writer.drain()
            if read:
                answers.append(await asyncio.wait_for(reader.readuntil(b"\r"), 5))
        if closes:
            answers.append(await asyncio.wait_for(reader.read(), 10))  # the server closes it
    finally:
        writer.close()
    return answers


def with_checksum(body: str, seq: int = 0) -> bytes:
    data = f"{body}AY{seq}AZ".encode()
    return data + f"{(-sum(data)) & 0xFFFF:04X}".encode() + b"\r"


async def test_bad_frames_are_answered_96_or_closed_and_the_server_lives_on(kiosk):
    client, _citizen, cred, port, _clock = kiosk
    login = with_checksum(f"9300CN{cred['client_id']}|CO{cred['client_secret']}|CPSY-MAIN|")
    bad = bytearray(with_checksum("9900302.00"))
    bad[-2:-1] = b"0" if bad[-2:-1] != b"0" else b"1"  # a wrong checksum
    answers = await frames(
        port, login, bytes(bad), b"xx garbage\r", with_checksum("9900302.00", 1), closes=False
    )
    assert answers[0].startswith(b"941AY0AZ")
    assert answers[1].startswith(b"96") and answers[2].startswith(b"96")
    assert answers[3].startswith(b"98YYYY") and b"AY1AZ" in answers[3]
    body = answers[3][: answers[3].rindex(b"AZ") + 2]
    assert (sum(body) + int(answers[3][-5:-1], 16)) & 0xFFFF == 0  # our checksum verifies

    # before a login: closed; a wrong secret: 940 and then closed; an over-long line: closed
    assert await frames(port, with_checksum("9900302.00"), read=False) == [b""]
    wrong = with_checksum(f"9300CN{cred['client_id']}|COsk_wrong|")
    first, rest = await frames(port, wrong)
    assert first.startswith(b"940") and rest == b""
    assert await frames(port, b"99" + b"0" * 5000 + b"\r", read=False) == [b""]

    # an unknown barcode is answered, not an error; a connection left idle is closed
    login2 = with_checksum(f"9300CN{cred['client_id']}|CO{cred['client_secret']}|")
    item = with_checksum("1720261125    180000AOSYLIB|ABNOPE|", 1)
    # a kiosk asking in English (language 001) is answered in English: not a citizen code
    english = with_checksum("63001" + "20261125    180000" + " " * 10 + "AOSYLIB|AANOT-A-CODE|", 2)
    _, info = await frames(port, login2, english, closes=False)
    assert info.startswith(b"64YYYY") and b"|BLN|" in info and b"AFNot a valid citizen code|" in info
    config = client.services.miniapps.apps["library"].platform.config
    config["sip2_idle_seconds"] = 0.3
    try:
        _, unknown, closed = await frames(port, login2, item)
    finally:
        config["sip2_idle_seconds"] = 5
    assert unknown.startswith(b"18010001") and "未知的图书条码".encode() in unknown and closed == b""

    # revoked: its next login fails
    await client.services.auth.machines.revoke(cred["client_id"])
    first, rest = await frames(port, login)
    assert first.startswith(b"940") and rest == b""
    # and the server still serves others
    other = await enrol_kiosk(client, "kiosk 2")
    (first,) = await frames(
        port, with_checksum(f"9300CN{other['client_id']}|CO{other['client_secret']}|"), closes=False
    )
    assert first.startswith(b"941")


async def test_two_kiosks_checking_out_one_copy_at_once_make_one_loan(kiosk):
    from miniapps.library.tables import Copy, Loan

    client, citizen, cred, port, clock = kiosk
    second = await enrol_kiosk(client, "kiosk 2")
    readers = [await citizen() for _ in range(2)]
    clock.advance(31)
    tokens = [(await client.get("/api/v1/codes/current", headers=r)).json()["token"] for r in readers]

    async def kiosk_checkout(credential, token):
        login = with_checksum(f"9300CN{credential['client_id']}|CO{credential['client_secret']}|")
        checkout = with_checksum(
            f"11NN20261125    180000                  AOSYLIB|AA{token}|ABSY0000004|AC|", 1
        )
        answers = await frames(port, login, checkout, closes=False)
        return answers[1]

    outs = await asyncio.gather(kiosk_checkout(cred, tokens[0]), kiosk_checkout(second, tokens[1]))
    assert sorted(o[2:3] for o in outs) == [b"0", b"1"], outs
    copy = await Copy.select().where(Copy.barcode == "SY0000004").first()
    loans = await Loan.select().where((Loan.copy == copy["id"]) & Loan.returned_at.is_null())
    assert len(loans) == 1 and copy["state"] == "on_loan" and loans[0]["via"] == "kiosk"


async def test_a_kiosk_returns_only_its_own_librarys_copies_and_reads_a_misread_barcode(kiosk, enrol_scanner):
    """A 沈阳市图书馆 kiosk closed a loan of 辽宁省图书馆: the book lay in the wrong library's bin while its
    own catalogue said it was on the shelf. And a barcode misread with a control character was answered
    96 (resend: the kiosk sends it again and again) with a traceback in the log, on PostgreSQL."""
    from tests.integration.library.conftest import desk_scan

    client, citizen, cred, port, clock = kiosk
    reader = await citizen()
    desk = await enrol_scanner(client, "library", context="library-desk", place="LN-MAIN")
    lent = await desk_scan(client, reader, desk, clock, action="checkout", item="LN0000004")
    assert lent["result"] == "allow", lent
    token = await code_of(client, reader, clock)
    login = with_checksum(f"9300CN{cred['client_id']}|CO{cred['client_secret']}|")
    checkin = with_checksum("09N20261125    18000020261125    180000APSY-MAIN|AOSYLIB|ABLN0000004|AC|", 1)
    misread = with_checksum(f"11NN20261125    180000                  AOSYLIB|AA{token}|ABSY\x000001|AC|", 2)
    _, back, out = await frames(port, login, checkin, misread, closes=False)
    assert back.startswith(b"100N") and "此书属于其他图书馆".encode() in back, back
    assert out.startswith(b"120NUN") and "未知的图书条码".encode() in out, out
    loans = (await client.get("/api/v1/apps/library/loans", headers=reader)).json()["items"]
    assert [(x["barcode"], x["returned_at"]) for x in loans] == [("LN0000004", None)]

    # nor does another library's desk; the library's own desk does
    sy_desk = await enrol_scanner(client, "library", context="library-desk", place="SY-MAIN")
    refused = await desk_scan(client, reader, sy_desk, clock, action="checkin", item="LN0000004")
    assert (refused["result"], refused["reason"]) == ("deny", "other_library")
    back = await desk_scan(client, reader, desk, clock, action="checkin", item="LN0000004")
    assert back["result"] == "allow" and back["data"]["title"]


async def test_sockets_opened_and_left_alone_are_not_kept(kiosk):
    """Anyone who reaches the port could open sockets and leave them: each was kept for the idle time
    (300 s) with no login, and there was no limit to how many (a process's file descriptors, shared with
    its HTTP server). A connection now has a few seconds to log in, and a process keeps only so many."""
    client, _citizen, cred, port, _clock = kiosk
    config = client.services.miniapps.apps["library"].platform.config
    login = with_checksum(f"9300CN{cred['client_id']}|CO{cred['client_secret']}|")
    config.update(sip2_login_seconds=0.5, sip2_max_connections=1)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"97\r")  # talking (but not logging in) does not keep it
        await writer.drain()
        assert (await asyncio.wait_for(reader.readuntil(b"\r"), 5)).startswith(b"96")
        # one more while the first is open: closed at once, unanswered
        extra_reader, extra_writer = await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(extra_reader.read(), 5) == b""
        extra_writer.close()
        assert await asyncio.wait_for(reader.read(), 5) == b""  # the first: closed, no login in time
        writer.close()
        config["sip2_login_seconds"] = 5
        # a kiosk that logs in keeps its connection past the login time
        (first,) = await frames(port, login, closes=False)
        assert first.startswith(b"941")
    finally:
        config.update(sip2_login_seconds=10, sip2_max_connections=200)


async def test_a_kiosk_enrolled_at_no_branch_is_refused_at_login(kiosk):
    """A kiosk enrolled with a mistyped place logged in, then every message failed inside (96, a
    traceback in the log each time) and the connection stayed open: its login is refused now."""
    client, _citizen, _cred, port, _clock = kiosk
    lost = await client.services.auth.machines.create(
        "scanner", app_id="library", place="SY-MIAN", context="library-kiosk", name="typo"
    )
    first, rest = await frames(port, with_checksum(f"9300CN{lost['client_id']}|CO{lost['client_secret']}|"))
    assert first.startswith(b"940") and rest == b""
