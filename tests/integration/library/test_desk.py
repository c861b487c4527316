"""一码借阅 at the desk, through the public API with scanned codes: borrow, renew, a hold that stops a
renewal and takes the returned copy (its reader told), return, and the reader's own view."""

from datetime import timedelta

import pytest

from tests.integration.library.conftest import desk_scan
from tests.integration.messages.citizen import approve, inbox

pytestmark = pytest.mark.storage
LOANS = "/api/v1/apps/library/loans"


async def test_borrow_hold_renew_return_at_the_desk(bench):
    client, citizen, desk, clock = bench
    await approve(client, "library.hold_ready")
    reader, waiting, other = await citizen(), await citizen(), await citizen()

    lent = await desk_scan(client, reader, desk, clock, action="checkout", item="LN0000003")
    assert lent["result"] == "allow", lent
    assert lent["data"]["title"] == "三体" and lent["data"]["due_at"].startswith("2026-12-25T23:59:59")
    assert lent["display"]["title"] == "借阅成功"
    again = await desk_scan(client, other, desk, clock, action="checkout", item="LN0000003")
    assert (again["result"], again["reason"]) == ("deny", "on_loan")
    assert again["display"]["title"] == "此书已被借出"

    # nothing of 三体 on the shelf at 辽宁省图书馆: a hold waits for it
    r = await client.post(
        "/api/v1/apps/library/holds", json={"library": "LNLIB", "isbn": "978-7-5366-9293-0"}, headers=waiting
    )
    assert r.status_code == 201 and r.json()["state"] == "waiting", r.text
    r = await client.post(
        "/api/v1/apps/library/holds", json={"library": "LNLIB", "isbn": "9787536692930"}, headers=waiting
    )
    assert r.status_code == 409 and r.json()["code"] == "already_held"
    r = await client.post(
        "/api/v1/apps/library/holds", json={"library": "LNLIB", "isbn": "9787536692931"}, headers=waiting
    )
    assert r.status_code == 422 and r.json()["code"] == "invalid_isbn"
    r = await client.post(
        "/api/v1/apps/library/holds", json={"library": "LNLIB", "isbn": "9787020002207"}, headers=waiting
    )
    assert r.status_code == 409 and r.json()["code"] == "copy_available"  # 红楼梦 is on the shelf

    # the holder's wait stops the reader's renewal, at the desk and in the app
    held = await desk_scan(client, reader, desk, clock, action="renew", item="LN0000003")
    assert (held["result"], held["reason"]) == ("deny", "held")
    loan = (await client.get(LOANS, headers=reader)).json()["items"][0]
    r = await client.post(f"{LOANS}/{loan['loan_id']}/renew", headers=reader)
    assert r.status_code == 409 and r.json()["code"] == "held"
    r = await client.post(f"{LOANS}/{loan['loan_id']}/renew", headers=other)
    assert r.status_code == 404 and r.json()["code"] == "not_your_loan"

    # returned: the copy goes to the hold's shelf, the holder is told, nobody else may take it
    back = await desk_scan(client, reader, desk, clock, action="checkin", item="LN0000003")
    assert back["result"] == "allow" and back["data"]["to_hold"] is True and back["data"]["fine"] == 0
    holds = (await client.get("/api/v1/apps/library/holds", headers=waiting)).json()["items"]
    assert holds[0]["state"] == "ready" and holds[0]["ready_until"].startswith("2026-12-")
    told = await inbox(client, waiting)
    assert any("三体" in m["body"] for m in told), told
    taken = await desk_scan(client, other, desk, clock, action="checkout", item="LN0000003")
    assert taken["reason"] == "held_for_another"
    got = await desk_scan(client, waiting, desk, clock, action="checkout", item="LN0000003")
    assert got["result"] == "allow"
    assert (await client.get("/api/v1/apps/library/holds", headers=waiting)).json()["items"][0][
        "state"
    ] == "collected"

    # nobody waits now: the new reader renews in the app, once per renewal allowed
    mine = (await client.get(LOANS, headers=waiting)).json()["items"][0]
    clock.advance(int(timedelta(days=10).total_seconds()))
    r = await client.post(f"{LOANS}/{mine['loan_id']}/renew", headers=waiting)
    assert r.status_code == 200 and r.json()["renewals"] == 1, r.text
    assert r.json()["due_at"] > mine["due_at"]
    r = await client.post(f"{LOANS}/{mine['loan_id']}/renew", headers=waiting)
    assert r.status_code == 200 and r.json()["renewals"] == 2
    r = await client.post(f"{LOANS}/{mine['loan_id']}/renew", headers=waiting)
    assert r.status_code == 409 and r.json()["code"] == "renewal_limit"

    # the first reader's history: returned on time, no fine
    past = (await client.get(LOANS, headers=reader)).json()["items"]
    assert past[0]["returned_at"] is not None and past[0]["fine"] == 0
    assert past[0]["library_name"] == "辽宁省图书馆"


async def test_the_loan_limit_and_the_librarys_backend(bench, shengshi_cli):
    client, citizen, desk, clock = bench
    reader = await citizen()
    cred = await client.services.auth.machines.create("miniapp", app_id="library", name="辽图 ILS")
    from tests.conftest import basic_auth

    ils = basic_auth(cred)
    r = await client.post(
        "/api/v1/apps/library/titles",
        json={"library": "LNLIB", "isbn": "978-7-02-002475-9", "title": "围城", "author": "钱锺书"},
        headers=ils,
    )
    assert r.status_code == 201, r.text
    r = await client.post(
        "/api/v1/apps/library/titles",
        json={"library": "LNLIB", "isbn": "9787020024758", "title": "x"},
        headers=ils,
    )
    assert r.status_code == 422 and r.json()["code"] == "invalid_isbn"
    for n in range(3):
        r = await client.post(
            "/api/v1/apps/library/copies",
            json={"library": "LNLIB", "isbn": "9787020024759", "branch": "LN-MAIN", "barcode": f"LNX{n}"},
            headers=ils,
        )
        assert r.status_code == 201, r.text
    r = await client.post(
        "/api/v1/apps/library/copies",
        json={"library": "LNLIB", "isbn": "9787020024759", "branch": "LN-MAIN", "barcode": "LNX0"},
        headers=ils,
    )
    assert r.status_code == 409 and r.json()["code"] == "barcode_taken"
    r = await client.post(
        "/api/v1/apps/library/copies",
        json={"library": "LNLIB", "isbn": "9787020024759", "branch": "SY-MAIN", "barcode": "LNX9"},
        headers=ils,
    )
    assert r.status_code == 409 and r.json()["code"] == "other_library"
    assert (await client.post("/api/v1/apps/library/titles", json={}, headers=reader)).status_code in (
        401,
        403,
    )

    from miniapps.library.tables import Library

    await Library.update({Library.max_loans: 2}).where(Library.code == "LNLIB").run()
    for n in range(2):
        assert (await desk_scan(client, reader, desk, clock, action="checkout", item=f"LNX{n}"))[
            "result"
        ] == "allow"
    over = await desk_scan(client, reader, desk, clock, action="checkout", item="LNX2")
    assert over["reason"] == "loan_limit"
    other_lib = await desk_scan(client, reader, desk, clock, action="checkout", item="SY0000001")
    assert other_lib["reason"] == "other_library"

    loans = (await client.get("/api/v1/apps/library/libraries/LNLIB/loans", headers=ils)).json()["items"]
    assert {x["barcode"] for x in loans} == {"LNX0", "LNX1"} and all(x["via"] == "desk" for x in loans)
    assert "phone" not in str(loans) and all(len(x["openid"]) > 10 for x in loans)

    # the book drop returns without a reader; blocking a reader stops their loans
    r = await client.post("/api/v1/apps/library/checkin", json={"barcode": "LNX0"}, headers=ils)
    assert r.status_code == 200 and r.json()["title"] == "围城"
    r = await client.post("/api/v1/apps/library/checkin", json={"barcode": "LNX0"}, headers=ils)
    assert r.status_code == 409 and r.json()["code"] == "not_on_loan"
    openid = loans[0]["openid"]
    r = await client.post(
        f"/api/v1/apps/library/libraries/LNLIB/readers/{openid}/block", json={"blocked": True}, headers=ils
    )
    assert r.status_code == 200
    blocked = await desk_scan(client, reader, desk, clock, action="checkout", item="LNX2")
    assert blocked["reason"] == "reader_blocked"
    status = await desk_scan(client, reader, desk, clock)
    assert status["result"] == "allow" and status["data"]["blocked"] is True and status["data"]["loans"] == 1


async def test_the_catalogue_anyone_reads(bench):
    client, _, _, _ = bench
    libs = (await client.get("/api/v1/apps/library/libraries", headers={"Accept-Language": "en"})).json()[
        "items"
    ]
    sy = next(x for x in libs if x["code"] == "SYLIB")
    assert sy["name"] == "Shenyang Library" and sy["name_zh"] == "沈阳市图书馆"
    assert sy["rule"]["loan_days"] == 28 and {b["code"] for b in sy["branches"]} == {"SY-MAIN", "SY-TIEXI"}
    found = (await client.get("/api/v1/apps/library/titles", params={"library": "SYLIB", "q": "三体"})).json()
    assert [(t["isbn"], t["copies"], t["available"]) for t in found["items"]] == [("9787536692930", 2, 2)]
    r = await client.get("/api/v1/apps/library/titles", params={"library": "NOPE"})
    assert r.status_code == 404 and r.json()["code"] == "unknown_library"


async def test_a_hold_not_collected_in_time_lapses_and_the_copy_goes_to_the_next(bench):
    client, citizen, desk, clock = bench
    reader, first, second = await citizen(), await citizen(), await citizen()
    assert (await desk_scan(client, reader, desk, clock, action="checkout", item="LN0000004"))[
        "result"
    ] == "allow"
    for me in (first, second):
        clock.advance(60)
        r = await client.post(
            "/api/v1/apps/library/holds", json={"library": "LNLIB", "isbn": "9787544253994"}, headers=me
        )
        assert r.status_code == 201, r.text
    assert r.json()["ahead"] == 1
    await desk_scan(client, reader, desk, clock, action="checkin", item="LN0000004")
    mine = (await client.get("/api/v1/apps/library/holds", headers=first)).json()["items"][0]
    assert mine["state"] == "ready"
    clock.advance(int(timedelta(days=8).total_seconds()))  # kept 7 days, to the end of the day
    assert (await client.get("/api/v1/apps/library/holds", headers=first)).json()["items"][0][
        "state"
    ] == "expired"
    theirs = (await client.get("/api/v1/apps/library/holds", headers=second)).json()["items"][0]
    assert theirs["state"] == "ready"
    # the second gives it up: the copy goes back to the shelf for anyone
    r = await client.delete(f"/api/v1/apps/library/holds/{theirs['hold_id']}", headers=second)
    assert r.status_code == 204
    r = await client.delete(f"/api/v1/apps/library/holds/{theirs['hold_id']}", headers=second)
    assert r.status_code == 404 and r.json()["code"] == "hold_not_found"
    assert (await desk_scan(client, first, desk, clock, action="checkout", item="LN0000004"))[
        "result"
    ] == "allow"


async def test_one_reader_at_two_desks_at_once_stays_within_the_loan_limit(bench, enrol_scanner):
    import asyncio

    from miniapps.library.tables import Library, Loan

    client, citizen, desk, clock = bench
    other_desk = await enrol_scanner(client, "library", context="library-desk", place="LN-MAIN")
    await Library.update({Library.max_loans: 1}).where(Library.code == "LNLIB").run()
    reader = await citizen()
    # known to the library already (a first visit's row would make the two wait on its insert)
    assert (await desk_scan(client, reader, desk, clock))["data"]["loans"] == 0
    clock.advance(31)
    first = (await client.get("/api/v1/codes/current", headers=reader)).json()["token"]
    clock.advance(31)  # the next code; the first is still within its minute
    second = (await client.get("/api/v1/codes/current", headers=reader)).json()["token"]
    scans = await asyncio.gather(
        *(
            client.post(
                "/api/v1/scans",
                json={"token": t, "meta": {"action": "checkout", "item": item}},
                headers=d["headers"],
            )
            for t, item, d in ((first, "LN0000001", desk), (second, "LN0000003", other_desk))
        )
    )
    answers = sorted((r.json()["result"], r.json()["reason"]) for r in scans)
    assert answers == [("allow", "ok"), ("deny", "loan_limit")], answers
    assert await Loan.count().where(Loan.returned_at.is_null()) == 1
