"""Rotating the citizen-code issuer key with several workers and offline scanners (issue 13).

Two app instances (two workers) share the database and the store, and one clock that the test moves.
After ``keys rotate --codes`` no worker may sign a code with a key that any worker's trust list does not
publish yet, and an offline scanner that refreshes its trust list every ``refresh_after`` seconds must
know a key before the first code it signs reaches a gate."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from backend.app import create_app, services_of
from backend.keystore import RELOAD_INTERVAL
from codes.trustlist import public_key_from_jwk, verify_document
from codes.verifier import TrustList, verify
from tests.conftest import AppClient, TestGate, running

TTL = 7 * 86400  # the citizens' access tokens outlive the hours this test moves the clock through


@pytest.fixture
async def workers(make_client, make_runtime, settings, frozen_clock) -> AsyncIterator[tuple[Any, Any]]:
    async with make_client(clock=frozen_clock, access_token_ttl=TTL) as a:
        if settings.uses_redis:
            from backend.store import RedisStore

            store = RedisStore(settings.redis_url, prefix=a.runtime.store._prefix)
        else:
            store = a.runtime.store  # the in-process store, shared by two app instances in one process
        # a second worker on the same database and store (not through make_client: that empties tables)
        runtime = make_runtime(clock=frozen_clock, store=store, access_token_ttl=TTL)
        app = create_app(runtime=runtime, extra_miniapps=[TestGate])
        async with running(app):
            async with AppClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as b:
                b.app, b.runtime, b.services = app, runtime, services_of(app)
                yield a, b


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Scanner:
    """An offline scanner: pins the root key, keeps the last trust list it fetched and its ETag."""

    def __init__(self) -> None:
        self.etag = ""
        self.document: dict[str, Any] = {}

    async def refresh(self, worker) -> int:
        root = (await worker.get("/api/v1/codes/trust-root")).json()["keys"][0]
        r = await worker.get("/api/v1/codes/trust-list", headers={"If-None-Match": self.etag})
        if r.status_code == 200:
            self.document = verify_document(r.json(), public_key_from_jwk(root))
            self.etag = r.headers["etag"]
        else:
            assert r.status_code == 304, r.text
        return r.status_code

    @property
    def kids(self) -> set[str]:
        return {k["kid"] for k in self.document["keys"]}

    def accepts(self, token: str, now: float) -> str | None:
        result = verify(token, TrustList.from_document(self.document), now=now)
        return None if result.valid else result.reason


async def new_code(worker, login, phone: str) -> dict[str, Any]:
    """A code issued by ``worker`` to a citizen signed in there (a new session: a code of its own)."""
    pair = await login(worker, phone, device_id=f"phone-{phone}")
    r = await worker.get("/api/v1/codes/current", headers={"Authorization": f"Bearer {pair['access_token']}"})
    assert r.status_code == 200, r.text
    return dict(r.json())


@pytest.mark.storage
async def test_no_worker_signs_with_a_code_key_a_trust_list_does_not_publish(
    workers, login, new_phone, frozen_clock, settings
):
    a, b = workers
    old_kid = (await new_code(a, login, new_phone()))["kid"]

    async def every_code_verifies_with_every_list() -> set[str]:
        """Each worker's code, checked with each worker's trust list as a scanner holds it."""
        lists = []
        for worker in (a, b):
            scanner = Scanner()
            await scanner.refresh(worker)
            lists.append(scanner)
        kids = set()
        for worker in (a, b):
            code = await new_code(worker, login, new_phone())
            kids.add(code["kid"])
            for scanner in lists:
                assert scanner.accepts(code["token"], frozen_clock.time()) is None, (
                    code["kid"],
                    scanner.kids,
                )
        return kids

    # an offline scanner fetched its list from worker B before the rotation
    scanner = Scanner()
    assert await scanner.refresh(b) == 200
    assert scanner.kids == {old_kid}

    # the operator rotates; worker A sees it at once, worker B keeps its copy of the keys for a while
    new_key = await a.services.codes.keys.issuer.rotate()
    assert await every_code_verifies_with_every_list() == {old_kid}  # nobody signs with the new key yet
    assert await scanner.refresh(b) == 304  # B does not know the new key yet, and that is harmless

    # every worker publishes the new key after its next reload; still nobody signs with it
    frozen_clock.advance(RELOAD_INTERVAL + 1)
    assert await every_code_verifies_with_every_list() == {old_kid}
    for worker in (a, b):
        listed = Scanner()
        await listed.refresh(worker)
        assert listed.kids == {old_kid, new_key.kid}

    # the scanner refreshes when its list is refresh_after old: it gets the new key before it signs
    frozen_clock.advance(settings.trust_list_refresh - RELOAD_INTERVAL - 1)
    assert await scanner.refresh(b) == 200
    assert scanner.kids == {old_kid, new_key.kid}
    last_old = await new_code(a, login, new_phone())
    assert last_old["kid"] == old_kid

    # the new key takes over on every worker at the same moment, and the scanner accepts its codes
    frozen_clock.set(new_key.active_from)
    assert await every_code_verifies_with_every_list() == {new_key.kid}
    for worker in (a, b):
        code = await new_code(worker, login, new_phone())
        assert scanner.accepts(code["token"], frozen_clock.time()) is None
    # and a code the old key signed just before is still good until it expires
    assert scanner.accepts(last_old["token"], frozen_clock.time()) is None


@pytest.mark.storage
async def test_the_trust_list_says_when_a_new_code_key_starts_signing(
    workers, login, new_phone, frozen_clock
):
    a, _ = workers
    old_kid = (await new_code(a, login, new_phone()))["kid"]
    new_key = await a.services.codes.keys.issuer.rotate()
    scanner = Scanner()
    await scanner.refresh(a)
    by_kid = {k["kid"]: k for k in scanner.document["keys"]}
    starts = int(new_key.active_from.timestamp())
    assert by_kid[new_key.kid]["valid_from"] == starts
    assert by_kid[new_key.kid]["valid_until"] is None
    assert by_kid[old_kid]["valid_until"] == starts  # the old key signs until the new one takes over


@pytest.mark.storage
async def test_a_worker_whose_clock_is_behind_the_first_key_still_signs(make_client, frozen_clock):
    """Another machine made the first key a moment ago, by its clock: this worker signs with it."""
    async with make_client(clock=frozen_clock) as client:
        keys = client.services.codes.keys.issuer
        first = await keys.active()
        frozen_clock.advance(-5)
        assert (await keys.active()).kid == first.kid
        # and an access-token rotation (no delay) signs from the moment it is made
        tokens = client.services.auth.keys
        new = await tokens.rotate()
        assert (await tokens.active()).kid == new.kid
