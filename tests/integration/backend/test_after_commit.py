"""``db.after_commit``: an action waits for the outermost transaction's commit, and never runs after a
rollback (what the code's freshness relies on: a cache dropped before the commit could be refilled
from the old rows)."""

import pytest

from backend import db


async def test_actions_run_after_the_outermost_commit_only(client):
    ran: list[str] = []

    async def note(what: str) -> None:
        ran.append(what)

    assert db.after_commit(lambda: note("no transaction")) is False
    async with db.transaction():
        assert db.after_commit(lambda: note("outer")) is True
        async with db.transaction():
            assert db.after_commit(lambda: note("inner")) is True
        assert ran == []  # the inner block's end is not the commit
    assert ran == ["outer", "inner"]

    ran.clear()
    with pytest.raises(RuntimeError):
        async with db.transaction():
            db.after_commit(lambda: note("rolled back"))
            raise RuntimeError("boom")
    assert ran == []
    assert db.after_commit(lambda: note("after")) is False  # nothing left open
