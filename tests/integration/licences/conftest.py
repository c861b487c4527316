"""The e-licence tests' office: the app at a frozen moment, an operator and a traffic police issuer."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from backend.clock import FrozenClock
from tests.integration.licences.office import Office

START = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)


@pytest.fixture
def open_office(make_client, login, new_phone, new_id_number, verify_real_name) -> Callable[..., Any]:
    """``async with open_office() as office``: the app at ``START`` (a frozen clock), issuer registered."""

    @contextlib.asynccontextmanager
    async def open_(start: datetime = START, **overrides: Any) -> AsyncIterator[Office]:
        clock = FrozenClock(start)
        async with make_client(clock=clock, access_token_ttl=60 * 86400, **overrides) as client:
            yield await Office(client, login, new_phone, new_id_number, verify_real_name).setup()

    return open_
