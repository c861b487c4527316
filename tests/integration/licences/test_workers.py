"""What must happen once happens once across real workers: two ``shengshi serve`` on PostgreSQL + Redis
(one with the in-process store), driven over HTTP from outside, callers spread over both.

- a device proof's nonce binds one credential, whichever worker each racing request reaches;
- a one-time consent gives one presentation to twenty racing calls, and the citizen's log shows one share;
- after revocations and suspensions racing on both workers (status lists fetched meanwhile), the status
  list each worker serves says, for every licence, what the database says."""

from __future__ import annotations

import asyncio
import time
import zlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from licences import holder, verifier
from licences.tables import Licence
from tests.conftest import basic_auth
from tests.integration.codes.test_live_code import _citizen, _env
from tests.integration.licences.office import DRIVING

pytestmark = [pytest.mark.storage, pytest.mark.timeout_sensitive, pytest.mark.asyncio]
STATUS_VALUES = {"valid": 0, "revoked": 1, "suspended": 2}


def _statuses(token: str) -> dict[int, int]:
    """Every non-zero entry of a Status List Token, read with nothing of ours but base64 decoding."""
    claims = verifier._parts(token)[1]
    data = zlib.decompress(verifier._unb64u(claims["status_list"]["lst"]))
    bits = claims["status_list"]["bits"]
    per_byte = 8 // bits
    return {
        i: (data[i // per_byte] >> ((i % per_byte) * bits)) & ((1 << bits) - 1)
        for i in range(len(data) * per_byte)
        if (data[i // per_byte] >> ((i % per_byte) * bits)) & ((1 << bits) - 1)
    }


async def test_once_is_once_and_status_lists_agree_across_workers(
    settings, make_client, tmp_path, free_port, serve, new_phone, new_id_number
):
    # the test's own process, on the same database: the register (an issuer, a relying party), and
    # afterwards the books to read back
    async with make_client() as local:
        made = await local.services.licences.issuers.create(
            "sy-traffic",
            "沈阳市公安局交通警察支队",
            "Shenyang Traffic Police",
            "traffic_police",
            ["driving_licence"],
            actor="test",
        )
        issuer = basic_auth(made)
        rp = basic_auth(await local.services.auth.machines.create("relying_party", name="政务服务中心"))
        env = {**_env(settings, tmp_path), "SHENGSHI_STORE_PREFIX": f"{settings.store_prefix}licw:"}
        ports = [free_port(), free_port()] if settings.redis_url else [free_port()]
        with ThreadPoolExecutor(len(ports)) as pool:
            procs = list(pool.map(lambda p: serve(env, p, log=tmp_path / f"serve-{p}.log"), ports))
        try:
            await _drive([f"http://127.0.0.1:{p}" for p in ports], issuer, rp, new_phone, new_id_number)
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(15)


async def _drive(bases: list[str], issuer: dict, rp: dict, new_phone: Any, new_id_number: Any) -> None:
    def at(i: int, path: str) -> str:
        return bases[i % len(bases)] + path

    async with httpx.AsyncClient(timeout=30) as http:
        number = new_id_number()
        me = await asyncio.to_thread(_citizen, bases[0], new_phone(), number)
        fields = {**DRIVING, "licence_number": number}
        r = await http.post(
            at(1, "/api/v1/licences/issued"),
            json={"type": "driving_licence", "id_number": number, "fields": fields},
            headers=issuer,
        )
        assert r.status_code == 201, r.text
        licence_id = r.json()["id"]

        # one proof, ten racing requests for a credential: one credential
        nonce = (await http.post(at(0, "/api/v1/me/licences/nonce"), headers=me)).json()
        key = holder.device_key()
        proof = holder.proof(key, audience=nonce["audience"], nonce=nonce["c_nonce"], iat=int(time.time()))
        path = f"/api/v1/me/licences/{licence_id}/credential"
        answers = await asyncio.gather(
            *(http.post(at(i, path), json={"proof": proof}, headers=me) for i in range(10))
        )
        assert Counter(r.status_code for r in answers) == {200: 1, 422: 9}
        assert {r.json()["code"] for r in answers if r.status_code == 422} == {"invalid_proof"}
        one = (await http.get(at(1, f"/api/v1/me/licences/{licence_id}"), headers=me)).json()
        assert len(one["devices"]) == 1

        # a one-time consent, twenty racing calls for it: one presentation, one share in the log
        ask = {
            "type": "driving_licence",
            "fields": ["licence_class"],
            "purpose": "核验准驾车型",
            "id_number": number,
        }
        request_id = (await http.post(at(0, "/api/v1/licences/requests"), json=ask, headers=rp)).json()["id"]
        r = await http.post(at(1, f"/api/v1/me/licence-requests/{request_id}/approve"), json={}, headers=me)
        assert r.json()["state"] == "approved"
        path = f"/api/v1/licences/requests/{request_id}/presentation"
        answers = await asyncio.gather(*(http.post(at(i, path), headers=rp) for i in range(20)))
        assert Counter(r.status_code for r in answers) == {200: 1, 409: 19}
        assert {r.json()["code"] for r in answers if r.status_code == 409} == {"consent_used"}
        uses = (await http.get(at(0, "/api/v1/me/licence-uses"), headers=me)).json()["items"]
        assert [(u["kind"], u["request"]) for u in uses] == [("shared", request_id)]

        # twelve more holders' licences; statuses changed on both workers at once (a suspension racing a
        # revocation too), the status list fetched from both meanwhile
        ids = [licence_id]
        for _ in range(12):
            other = new_id_number()
            body = {
                "type": "driving_licence",
                "id_number": other,
                "fields": {**DRIVING, "licence_number": other},
            }
            r = await http.post(at(len(ids), "/api/v1/licences/issued"), json=body, headers=issuer)
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
        plan = {0: ["revoke"], 1: ["suspend", "revoke"], 2: ["suspend"], 3: []}
        changes = [(action, lid) for n, lid in enumerate(ids) for action in plan[n % 4]]

        async def change(i: int, action: str, lid: str) -> httpx.Response:
            return await http.post(at(i, f"/api/v1/licences/issued/{lid}/{action}"), json={}, headers=issuer)

        async def fetch(i: int) -> httpx.Response:
            return await http.get(at(i, "/api/v1/licences/status/sy-traffic/1"))

        done = await asyncio.gather(
            *(change(i, action, lid) for i, (action, lid) in enumerate(changes)),
            *(fetch(i) for i in range(16)),
        )
        assert {r.status_code for r in done} <= {200, 409}, [r.text for r in done if r.status_code >= 400]

        # the books, read in this process, and the token each worker serves
        rows = await Licence.select(Licence.status_idx, Licence.status).where(Licence.id.is_in(ids)).run()
        assert Counter(r["status"] for r in rows) == {"revoked": 7, "suspended": 3, "valid": 3}
        want = {r["status_idx"]: STATUS_VALUES[r["status"]] for r in rows if r["status"] != "valid"}
        for base in bases:
            r = await http.get(base + "/api/v1/licences/status/sy-traffic/1")
            assert r.status_code == 200 and r.headers["content-type"].startswith("application/statuslist+jwt")
            assert _statuses(r.text) == want, base
