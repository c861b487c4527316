"""Fast decisions (transit) written behind the answer, as in production with Redis: what the gates were
told reaches the books exactly once, whoever writes it and however often it is replayed; a worker that
dies before writing leaves the journal to the next holder of the drain lease; two scans of one rider at
once both count."""

import asyncio

import pytest

from miniapps import journal as journal_mod
from miniapps.journal import Journal

pytestmark = pytest.mark.storage


async def _riders(client, login, new_phone, auth_header, n):
    tokens = []
    for _ in range(n):
        pair = await login(client, new_phone())
        tokens.append((await client.get("/api/v1/codes/current", headers=auth_header(pair))).json()["token"])
    return tokens


async def _books():
    from miniapps.tables import ScanRecord
    from miniapps.transit.tables import TransitTrip
    from payments.tables import PaymentOrder

    return (
        await TransitTrip.count().run(),
        await PaymentOrder.count().where(PaymentOrder.app_id == "transit").run(),
        await ScanRecord.count()
        .where((ScanRecord.app_id == "transit") & (ScanRecord.result == "allow"))
        .run(),
    )


async def test_writes_behind_the_answer_reach_the_books_exactly_once(
    make_client, login, new_phone, enrol_scanner, auth_header
):
    async with make_client(gate_writes="behind") as client:
        await client.services.miniapps.apps["transit"].seed_demo()
        gate = client.services.miniapps.gate
        bus = await enrol_scanner(client, "transit", context="bus", place="B113")
        # no worker writes (this one's drainer stopped before any scan): the entries wait in the journal
        await gate.journal.stop()
        tokens = await _riders(client, login, new_phone, auth_header, 6)
        answers = await asyncio.gather(
            *(client.post("/api/v1/scans", json={"token": t}, headers=bus["headers"]) for t in tokens)
        )
        assert [a.json()["result"] for a in answers] == ["allow"] * 6
        assert await _books() == (0, 0, 0)  # told, not yet written
        waiting = await client.runtime.store.stream_read(journal_mod.STREAM, 100)
        assert len(waiting) == 6

        # two workers write the same entries at once (one's lease lapsed mid-batch): once in the books
        other = Journal(client.runtime.store, client.runtime.clock, gate.apps, gate.pairwise, inline=False)
        await asyncio.gather(gate.journal.drain(), other.drain())
        assert await _books() == (6, 6, 6)
        # a replay of entries already written (a crash between the write and the removal) changes nothing
        for _, raw in waiting:
            await other._apply([journal_mod._decoder.decode(raw)])
        assert await _books() == (6, 6, 6)
        assert await gate.journal.pending() == 0
        # the trips are the ones the gates were told
        from miniapps.transit.tables import TransitTrip

        told = {a.json()["data"]["trip_id"]: a.json()["data"]["charged"] for a in answers}
        rows = await TransitTrip.select(TransitTrip.id, TransitTrip.charged, TransitTrip.order_id).run()
        assert {str(r["id"]): r["charged"] for r in rows} == told and all(r["order_id"] for r in rows)


async def test_entries_a_dead_worker_left_are_written_by_the_next_lease_holder(
    make_client, login, new_phone, enrol_scanner, auth_header
):
    async with make_client(gate_writes="behind") as client:
        await client.services.miniapps.apps["transit"].seed_demo()
        store = client.runtime.store
        entry = await enrol_scanner(client, "transit", context="metro-entry", place="M1-01")
        leave = await enrol_scanner(client, "transit", context="metro-exit", place="M1-08")
        gate = client.services.miniapps.gate
        await gate.journal.stop()  # the worker that will die: it answers, and writes nothing
        (token,) = await _riders(client, login, new_phone, auth_header, 1)
        went_in = await client.post("/api/v1/scans", json={"token": token}, headers=entry["headers"])
        came_out = await client.post("/api/v1/scans", json={"token": token}, headers=leave["headers"])
        assert went_in.json()["result"] == came_out.json()["result"] == "allow"
        assert came_out.json()["data"]["charged"] == 400  # decided from the state the entry left
        assert await _books() == (0, 0, 0)
        assert await store.get(journal_mod.LEASE) is None  # nobody holds the lease (it lapsed)
        await gate.journal.start()  # the next worker's drainer takes the lease and writes what was left
        for _ in range(100):
            if await _books() == (1, 1, 2):
                break
            await asyncio.sleep(0.1)
        assert await _books() == (1, 1, 2)  # one trip, closed, one fare; both scans recorded
        from miniapps.transit.tables import TransitTrip

        trip = await TransitTrip.select().first().run()
        assert trip["state"] == "done" and trip["charged"] == 400 and trip["exit_code"] == "M1-08"


async def test_one_riders_scans_at_two_gates_at_once_both_count(
    make_client, login, new_phone, enrol_scanner, auth_header
):
    """A rider's state is compared when a decision commits: two decisions made from one state cannot
    both land; the second is made again from the state the first left."""
    from miniapps.journal import state_key
    from miniapps.transit.app import _state_decoder
    from miniapps.transit.tables import TransitTrip

    async with make_client(gate_writes="behind") as client:
        await client.services.miniapps.apps["transit"].seed_demo()
        bus = await enrol_scanner(client, "transit", context="bus", place="B113")
        metro = await enrol_scanner(client, "transit", context="metro-entry", place="M1-01")
        for round_ in range(5):
            (token,) = await _riders(client, login, new_phone, auth_header, 1)
            # one code is used once per context: the same code on a bus and at a metro gate at once
            answers = await asyncio.gather(
                *(
                    client.post("/api/v1/scans", json={"token": token}, headers=g["headers"])
                    for g in (bus, metro)
                )
            )
            assert [a.json()["result"] for a in answers] == ["allow", "allow"], round_
        await client.services.miniapps.gate.journal.drain()
        rows = await TransitTrip.select(TransitTrip.openid, TransitTrip.kind, TransitTrip.state).run()
        by_rider: dict[str, set[tuple[str, str]]] = {}
        for r in rows:
            by_rider.setdefault(r["openid"], set()).add((r["kind"], r["state"]))
        assert len(by_rider) == 5 and all(
            v == {("bus", "done"), ("metro", "open")} for v in by_rider.values()
        )
        # and each rider's state holds both: the bus fare spent, the metro trip open
        pairs = client.services.miniapps.gate.pairwise
        for openid in by_rider:
            citizen = await pairs.citizen("transit", openid)
            raw = await client.runtime.store.get(state_key("transit", citizen))
            state = _state_decoder.decode(raw)
            assert state.open is not None and sum(state.spent.values()) == 200
