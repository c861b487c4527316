"""The store contract, on this pass's backend (in-process or Redis)."""

import asyncio

import pytest

from backend.store import MemoryStore, create_store


@pytest.fixture
async def store(settings):
    import secrets

    s = create_store(settings.redis_url, f"{settings.store_prefix}store-{secrets.token_hex(4)}:")
    await s.start()
    yield s
    await s.close()


async def test_get_set_delete(store):
    assert await store.get("a") is None
    await store.set("a", "1")
    assert await store.get("a") == b"1"
    await store.set("a", b"2", ttl=60)
    assert await store.get("a") == b"2"
    assert 0 < await store.ttl("a") <= 60
    assert await store.delete("a", "missing") == 1
    assert await store.get("a") is None


async def test_set_if_absent_once(store):
    assert await store.set_if_absent("cti:1", "scanner-a", ttl=90) is True
    assert await store.set_if_absent("cti:1", "scanner-b", ttl=90) is False
    assert await store.get("cti:1") == b"scanner-a"
    assert 89 < await store.ttl("cti:1") <= 90


async def test_concurrent_set_if_absent_exactly_one_wins(store):
    results = await asyncio.gather(*(store.set_if_absent("race", f"task{i}", ttl=30) for i in range(200)))
    assert results.count(True) == 1
    winner = results.index(True)
    assert await store.get("race") == f"task{winner}".encode()


async def test_claim_take_over_and_release(store):
    await store.set("flag", "1")
    outcome, before, reads = await store.claim("code", "r1#a", 60, read=("flag", "none"), retry_prefix="r1#")
    assert (outcome, before, reads) == ("claimed", None, [b"1", None])
    # another record: held, nothing changes
    assert (await store.claim("code", "r2#b", 60, retry_prefix="r2#"))[:2] == ("held", b"r1#a")
    # a retry of the same record takes it over
    assert (await store.claim("code", "r1#c", 30, retry_prefix="r1#"))[:2] == ("retry", b"r1#a")
    assert await store.get("code") == b"r1#c"
    assert 29 < await store.ttl("code") <= 30
    # the first attempt releasing late does not free the claim its retry holds
    assert await store.delete_if_equal("code", "r1#a") is False
    assert await store.get("code") == b"r1#c"
    assert await store.delete_if_equal("code", "r1#c") is True
    assert await store.get("code") is None


async def test_concurrent_claims_of_one_record_and_of_others(store):
    results = await asyncio.gather(
        *(store.claim("busy", f"rec{i % 2}#{i}", 60, retry_prefix=f"rec{i % 2}#") for i in range(40))
    )
    outcomes = [r[0] for r in results]
    assert outcomes.count("claimed") == 1
    winner = f"rec{outcomes.index('claimed') % 2}#"
    # every other attempt of the winning record took over; every attempt of the other record was refused
    for i, (outcome, _, _) in enumerate(results):
        if outcome != "claimed":
            assert outcome == ("retry" if f"rec{i % 2}#" == winner else "held")


async def test_set_many_with_own_ttls(store):
    await store.set_many({"m:a": "1", "m:b": b"2"}, {"m:a": 60, "m:b": None})
    assert await store.mget("m:a", "m:b") == [b"1", b"2"]
    assert 59 < await store.ttl("m:a") <= 60
    assert await store.ttl("m:b") is None


async def test_counter_with_fixed_window(store):
    values = await asyncio.gather(*(store.incr("otp:ip:1", ttl=3600) for _ in range(50)))
    assert sorted(values) == list(range(1, 51))
    ttl_first = await store.ttl("otp:ip:1")
    assert 3590 < ttl_first <= 3600
    assert await store.incr("otp:ip:1", ttl=5, amount=5) == 55
    # the window is fixed when the counter is created; later increments do not extend or shorten it
    assert await store.ttl("otp:ip:1") > 3500


async def test_keys_are_namespaced(settings):
    a = create_store(settings.redis_url, f"{settings.store_prefix}ns-a:")
    b = create_store(settings.redis_url, f"{settings.store_prefix}ns-b:")
    try:
        await a.set("k", "from-a")
        assert await b.get("k") is None
    finally:
        await a.delete("k")
        await a.close()
        await b.close()


async def test_memory_store_expiry_follows_its_clock():
    now = [1000.0]
    s = MemoryStore(prefix="m:", clock=lambda: now[0])
    await s.set("k", "v", ttl=10)
    assert await s.set_if_absent("once", "1", ttl=5)
    assert await s.incr("c", ttl=5) == 1
    now[0] += 5.0
    assert await s.get("k") == b"v"
    assert await s.set_if_absent("once", "2", ttl=5) is True  # expired: the next one wins
    assert await s.incr("c", ttl=5) == 1  # a new window
    now[0] += 5.01
    assert await s.get("k") is None
    assert await s.ttl("k") is None


async def test_named_counts_add_up_and_read_back_together(store):
    await store.add_counts("dash:m:1", {"s|transit|allow": 2, "r|replayed": 1}, ttl=60)
    await store.add_counts("dash:m:1", {"s|transit|allow": 3}, ttl=60)
    await asyncio.gather(*(store.add_counts("dash:m:2", {"x": 1}, ttl=60) for _ in range(50)))
    assert await store.get_counts("dash:m:1", "dash:m:2", "dash:m:missing") == [
        {"s|transit|allow": 5, "r|replayed": 1},
        {"x": 50},
        {},
    ]
    assert 0 < await store.ttl("dash:m:1") <= 60
    await store.add_counts("dash:m:3", {}, ttl=60)
    assert await store.get_counts("dash:m:3") == [{}]


async def test_claim_through_a_lookup_reads_the_holders_keys(store):
    await store.set("code:cti:ab", '{"c": "citizen-1", "s": "session-1"}')
    await store.set("blocked:citizen-1", "1")
    await store.set("state:citizen-1", b"\x01\x02")
    read = ("blocked:{c}", "revoked:{s}", "state:{c}")
    outcome, found, values = await store.claim_through(
        "code:cti:ab", "used:bus:ab", "r1#a", 60, read=read, retry_prefix="r1#"
    )
    assert (outcome, found, values) == (
        "claimed",
        b'{"c": "citizen-1", "s": "session-1"}',
        [b"1", None, b"\x01\x02"],
    )
    assert (
        await store.claim_through("code:cti:ab", "used:bus:ab", "r2#b", 60, read=read, retry_prefix="r2#")
    )[0] == "held"
    assert (
        await store.claim_through("code:cti:ab", "used:bus:ab", "r1#c", 60, read=read, retry_prefix="r1#")
    )[0] == "retry"
    # an unknown code claims nothing
    assert await store.claim_through(
        "code:cti:zz", "used:bus:zz", "r3#d", 60, read=read, retry_prefix="r3#"
    ) == (
        "unknown",
        None,
        [None, None, None],
    )
    assert await store.get("used:bus:zz") is None


async def test_commit_is_once_per_decision_and_compares_the_state(store):
    async def commit(expected, state, once="answer:r1", entry=b"e1", add=0):
        return await store.commit(
            state_key="state:c1",
            expected=expected,
            state=state,
            state_ttl=60,
            once_key=once,
            once_value=b"allow",
            once_ttl=60,
            stream="journal",
            entry=entry,
            add_key="owed:c1",
            add=add,
        )

    await store.set("owed:c1", "100")
    first = await commit(None, b"s1", add=200)
    assert first not in ("decided", "changed") and first.split("-")[0].isdigit()
    assert await store.get("state:c1") == b"s1" and await store.get("answer:r1") == b"allow"
    assert await store.get("owed:c1") == b"300"  # a kept count rises with the decision
    assert await commit(None, b"s2", once="answer:r2") == "changed"  # the state is not absent any more
    assert await commit(b"s1", b"s2", once="answer:r1") == "decided"  # this record was decided
    assert await store.get("state:c1") == b"s1"
    second = await commit(b"s1", None, once="answer:r3", entry=b"e3", add=50)  # state unchanged
    assert await store.get("state:c1") == b"s1" and await store.get("owed:c1") == b"350"
    await store.delete("owed:c1")
    await commit(b"s1", b"s4", once="answer:r4", entry=b"e4", add=70)
    assert await store.get("owed:c1") is None  # a count that is not kept is not started here
    entries = await store.stream_read("journal", 10)
    assert (
        [e for _, e in entries] == [b"e1", b"e3", b"e4"]
        and entries[0][0] == first
        and entries[1][0] == second
    )
    assert await store.stream_length("journal") == 3
    assert await store.stream_delete("journal", first, "0-1") == 1
    assert [e for _, e in await store.stream_read("journal", 1)] == [b"e3"]


async def test_concurrent_commits_of_one_state_one_wins(store):
    outcomes = await asyncio.gather(
        *(
            store.commit(
                state_key="state:race",
                expected=None,
                state=f"s{i}".encode(),
                state_ttl=60,
                once_key=f"answer:{i}",
                once_value=b"x",
                once_ttl=60,
                stream="journal:race",
                entry=b"e",
            )
            for i in range(50)
        )
    )
    assert sum(o not in ("changed", "decided") for o in outcomes) == 1
    assert await store.stream_length("journal:race") == 1


async def test_a_lease_is_renewed_only_by_its_holder(store):
    assert await store.set_if_absent("lease", "me", 5) is True
    assert await store.expire_if_equal("lease", "you", 60) is False
    assert await store.expire_if_equal("lease", "me", 60) is True
    assert 59 < await store.ttl("lease") <= 60
