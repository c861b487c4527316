"""The rating tests' place: the demo car park at a given moment (see flow.Place)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

import pytest

from backend.clock import FrozenClock
from tests.integration.ratings.flow import Place


@pytest.fixture
def open_place(make_client, login, new_phone, enrol_scanner) -> Callable[[datetime], Any]:
    """``async with open_place(start) as place``: the app at ``start`` (a frozen clock), car park ready."""

    @contextlib.asynccontextmanager
    async def open_(start: datetime) -> AsyncIterator[Place]:
        clock = FrozenClock(start)
        async with make_client(clock=clock, access_token_ttl=60 * 86400) as client:
            yield await Place(client, clock, login, new_phone).setup(enrol_scanner)

    return open_
