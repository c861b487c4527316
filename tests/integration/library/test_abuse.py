"""一码借阅 under abuse: what an adversary outside found (two workers, impatient readers, odd kiosks), each
kept from coming back. One app for the module; every test lends copies of its own."""

import asyncio
import json
import socket
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from backend.clock import FrozenClock
from tests.conftest import basic_auth
from tests.integration.library.conftest import desk_scan

pytestmark = pytest.mark.storage

API = "/api/v1/apps/library"


@pytest.fixture(scope="module")
async def lib(make_module_client, login, new_phone, enrol_scanner):
    clock = FrozenClock(datetime(2026, 11, 25, 8, tzinfo=UTC))
    async with make_module_client(clock=clock, access_token_ttl=90 * 86400) as client:
        await client.services.miniapps.apps["library"].seed_demo()
        desk = await enrol_scanner(client, "library", context="library-desk", place="LN-MAIN")
        ils = basic_auth(
            await client.services.auth.machines.create("miniapp", app_id="library", name="辽图 ILS")
        )

        async def citizen() -> dict[str, str]:
            pair = await login(client, new_phone())
            return {"Authorization": f"Bearer {pair['access_token']}"}

        async def new_copy(
            isbn: str = "9787536692930", branch: str = "LN-MAIN", library: str = "LNLIB"
        ) -> str:
            barcode = f"T{uuid.uuid4().hex[:12].upper()}"
            r = await client.post(
                f"{API}/copies",
                json={"library": library, "isbn": isbn, "branch": branch, "barcode": barcode},
                headers=ils,
            )
            assert r.status_code == 201, r.text
            return barcode

        yield client, citizen, desk, clock, ils, new_copy


async def _fined(lib) -> dict[str, str]:
    """A reader who returned a copy late: an unpaid fine, out of good standing."""
    client, citizen, desk, clock, _, new_copy = lib
    reader, barcode = await citizen(), await new_copy()
    assert (await desk_scan(client, reader, desk, clock, action="checkout", item=barcode))[
        "result"
    ] == "allow"
    clock.advance(int(timedelta(days=40).total_seconds()))
    back = await desk_scan(client, reader, desk, clock, action="checkin", item=barcode)
    assert back["data"]["fine"] > 0
    return reader


async def _deposit_orders(client, reader) -> list[dict]:
    orders = (await client.get("/api/v1/me/orders", headers=reader)).json()["items"]
    return [o for o in orders if o["description"].endswith("借阅押金")]


async def test_asking_for_the_deposit_twice_at_once_makes_one_order(lib):
    """Two taps on 'pay the deposit' (two workers) made two orders: the second, payable, was money the
    citizen could pay and never get back (the reader remembers one order only)."""
    client = lib[0]
    reader = await _fined(lib)
    answers = await asyncio.gather(
        *[client.post(f"{API}/deposit", json={"library": "LNLIB"}, headers=reader) for _ in range(10)]
    )
    assert [a.status_code for a in answers] == [201] * 10, [a.text for a in answers]
    assert len({a.json()["deposit"]["order_id"] for a in answers}) == 1
    orders = await _deposit_orders(client, reader)
    assert [o["order_id"] for o in orders] == [answers[0].json()["deposit"]["order_id"]]


async def _openid(lib, reader) -> str:
    """The reader's openid as the library's backend knows it: from a loan of theirs."""
    client, _, desk, clock, ils, new_copy = lib
    barcode = await new_copy()
    assert (await desk_scan(client, reader, desk, clock, action="checkout", item=barcode))[
        "result"
    ] == "allow"
    loans = (await client.get(f"{API}/libraries/LNLIB/loans", headers=ils, params={"limit": 100})).json()
    return str(next(x["openid"] for x in loans["items"] if x["barcode"] == barcode))


async def test_a_blocked_reader_is_not_sold_a_deposit(lib):
    """A deposit lends nothing to a reader the library blocked: no order of 100 yuan for them to pay."""
    client, citizen, _, _, ils, _ = lib
    reader = await citizen()
    openid = await _openid(lib, reader)
    r = await client.post(
        f"{API}/libraries/LNLIB/readers/{openid}/block", json={"blocked": True}, headers=ils
    )
    assert r.status_code == 200, r.text
    r = await client.post(f"{API}/deposit", json={"library": "LNLIB"}, headers=reader)
    assert r.status_code == 409 and r.json()["code"] == "reader_blocked", r.text
    assert await _deposit_orders(client, reader) == []
    standing = (await client.get(f"{API}/standing", params={"library": "LNLIB"}, headers=reader)).json()
    assert standing["deposit"]["state"] == "none" and standing["blocked"] is True


async def test_an_operators_command_leaves_the_kiosks_port_to_the_server(lib, shengshi_cli, free_port):
    """With the SIP2 port set (as the server's environment has it), every command started the listener
    too: next to a running server `shengshi scanners add` (or `revoke`, to stop a stolen kiosk) failed
    with 'address already in use'; with `sip2_reuse_port` it took kiosks' connections while it ran."""
    port = free_port()
    server = socket.socket()
    server.bind(("127.0.0.1", port))
    server.listen()  # the server's SIP2 listener
    try:
        out = shengshi_cli(
            *("scanners", "add", "--app", "library", "--context", "library-kiosk", "--place", "SY-MAIN"),
            "--json",
            env={"SHENGSHI_MINIAPP_LIBRARY": json.dumps({"sip2_port": port})},
        )
    finally:
        server.close()
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout)["context"] == "library-kiosk"


async def test_the_same_title_sent_twice_at_once_is_one_title(lib):
    """POST /titles is idempotent by ISBN, but the same title sent at once (a catalogue sync retried, two
    workers) answered 500 to all but one: both looked, found nothing, and inserted."""
    client, _, _, _, ils, _ = lib
    isbn = "9787108009821"
    answers = await asyncio.gather(
        *[
            client.post(
                f"{API}/titles",
                json={"library": "SYLIB", "isbn": isbn, "title": f"三联版 {n}", "author": "钱锺书"},
                headers=ils,
            )
            for n in range(8)
        ]
    )
    assert [a.status_code for a in answers] == [201] * 8, [a.text for a in answers]
    found = (await client.get(f"{API}/titles", params={"library": "SYLIB", "q": isbn})).json()["items"]
    assert len(found) == 1 and found[0]["title"].startswith("三联版") and found[0]["author"] == "钱锺书"


async def test_the_catalogue_finds_a_title_by_the_isbn_printed_on_it(lib):
    """The ISBN as printed on the book (978-7-5366-9293-0, the form POST /titles and a desk's hold
    accept) found nothing in the catalogue's search."""
    client = lib[0]
    for q in ("978-7-5366-9293-0", "9787536692930"):
        found = (await client.get(f"{API}/titles", params={"library": "LNLIB", "q": q})).json()["items"]
        assert [t["title"] for t in found] == ["三体"], q


async def test_a_readers_open_loan_comes_first_however_many_returns_came_after(lib):
    """Loans were ordered by date page by page and open ones put first only within the page: a loan
    borrowed before the last 50 returns (the wallet reads 50) was missing from the wallet, overdue too."""
    client, citizen, desk, clock, _, new_copy = lib
    reader, kept, read = await citizen(), await new_copy(), await new_copy("9787544253994")
    assert (await desk_scan(client, reader, desk, clock, action="checkout", item=kept))["result"] == "allow"
    for _ in range(2):
        clock.advance(3600)
        assert (await desk_scan(client, reader, desk, clock, action="checkout", item=read))[
            "result"
        ] == "allow"
        assert (await desk_scan(client, reader, desk, clock, action="checkin", item=read))[
            "result"
        ] == "allow"
    first = (await client.get(f"{API}/loans", params={"limit": 2}, headers=reader)).json()
    got = [(x["barcode"], x["returned_at"] is None) for x in first["items"]]
    assert got == [(kept, True), (read, False)], got
    rest = (await client.get(first["next"], headers=reader)).json()["items"]
    assert [x["barcode"] for x in rest] == [read]
