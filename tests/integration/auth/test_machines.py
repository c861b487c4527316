"""Scanner, mini-app and merchant credentials: created from the CLI, HTTP Basic, revocable."""

import base64
import json
import os
from pathlib import Path
from urllib.parse import quote

import pytest
from litestar import get
from litestar.config.app import AppConfig
from litestar.di import NamedDependency
from litestar.plugins import InitPlugin

from auth.guards import merchant_or_miniapp, scanner_only
from auth.principals import MachinePrincipal
from backend.tables import AuditEvent


@get("/test/scanner-only", guards=[scanner_only], sync_to_thread=False)
def scanner_route(machine: NamedDependency[MachinePrincipal]) -> dict[str, str]:
    return {"client_id": machine.client_id, "app_id": machine.app_id, "place": machine.place}


@get("/test/partners-only", guards=[merchant_or_miniapp], sync_to_thread=False)
def partner_route(machine: NamedDependency[MachinePrincipal]) -> dict[str, str]:
    return {"kind": machine.kind}


class Probe(InitPlugin):
    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.route_handlers.extend([scanner_route, partner_route])
        return app_config


def basic(client_id: str, secret: str) -> dict[str, str]:
    raw = f"{quote(client_id)}:{quote(secret)}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


@pytest.fixture
async def probe(make_client):
    async with make_client(extra_plugins=[Probe()], machine_auth_cache_seconds=0) as c:
        yield c


async def test_scanner_authenticates_and_is_revocable(probe):
    machines = probe.services.auth.machines
    cred = await machines.create("scanner", app_id="transit", place="bus 42", context="transit")
    r = await probe.get("/test/scanner-only", headers=basic(cred["client_id"], cred["client_secret"]))
    assert r.status_code == 200
    assert r.json() == {"client_id": cred["client_id"], "app_id": "transit", "place": "bus 42"}
    listed = await machines.list("scanner")
    assert listed[0]["last_seen_at"] is not None and "secret_hash" not in listed[0]

    wrong = await probe.get(
        "/test/scanner-only", headers=basic(cred["client_id"], cred["client_secret"] + "x")
    )
    assert wrong.status_code == 401 and wrong.json()["code"] == "invalid_client"
    assert wrong.headers["www-authenticate"].startswith("Basic")

    await machines.revoke(cred["client_id"])
    r = await probe.get(
        "/test/scanner-only",
        headers={**basic(cred["client_id"], cred["client_secret"]), "Accept-Language": "en"},
    )
    assert r.status_code == 401 and "revoked" in r.json()["detail"]
    assert await AuditEvent.exists().where(AuditEvent.action == "credential_used_after_revocation").run()


async def test_a_route_admits_only_its_caller_kinds(probe):
    machines = probe.services.auth.machines
    scanner = await machines.create("scanner", app_id="parking", place="P1 barrier")
    merchant = await machines.create("merchant", name="City Parks Ltd")
    app = await machines.create("miniapp", app_id="parking")
    assert (
        await probe.get("/test/partners-only", headers=basic(scanner["client_id"], scanner["client_secret"]))
    ).status_code == 401
    for cred, kind in ((merchant, "merchant"), (app, "miniapp")):
        r = await probe.get("/test/partners-only", headers=basic(cred["client_id"], cred["client_secret"]))
        assert r.status_code == 200 and r.json() == {"kind": kind}
    assert (
        await probe.get("/test/scanner-only", headers=basic(merchant["client_id"], merchant["client_secret"]))
    ).status_code == 401


async def test_malformed_basic_headers(probe):
    for header in (
        "Basic",
        "Basic !!!",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Bearer x",
        "Basic " + base64.b64encode(b"\xff\xfe:x").decode(),
    ):
        r = await probe.get("/test/scanner-only", headers={"Authorization": header})
        assert r.status_code == 401, header
    r = await probe.get("/test/scanner-only")
    assert r.status_code == 401


async def test_revocation_reaches_a_cached_worker_within_the_cache_time(make_client):
    async with make_client(extra_plugins=[Probe()], machine_auth_cache_seconds=0.2) as probe:
        machines = probe.services.auth.machines
        cred = await machines.create("scanner", app_id="transit", place="gate 1")
        headers = basic(cred["client_id"], cred["client_secret"])
        assert (await probe.get("/test/scanner-only", headers=headers)).status_code == 200
        # revoke behind this worker's back (as another worker or the CLI would)
        from auth.tables import MachineClient

        await (
            MachineClient.update({MachineClient.revoked_at: probe.runtime.clock.now()})
            .where(MachineClient.client_id == cred["client_id"])
            .run()
        )
        entry = machines._cache[cred["client_id"]]
        entry.expires = 0  # the cache time has passed
        assert (await probe.get("/test/scanner-only", headers=headers)).status_code == 401


HELLO = Path(__file__).resolve().parents[3] / "examples" / "hello-miniapp"


async def test_cli_enrols_and_revokes_a_scanner(make_client, shengshi_cli, tmp_path):
    hello_env = {"PYTHONPATH": f"{tmp_path}{os.pathsep}{HELLO}", "SHENGSHI_MINIAPPS": "hello"}

    def _cli(*args, plugins_dir=None):
        return shengshi_cli(*args, env=hello_env if plugins_dir is not None else None)

    dist = tmp_path / "hello_miniapp-0.1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: hello-miniapp\nVersion: 0.1.0\n")
    (dist / "entry_points.txt").write_text("[shengshitong.miniapps]\nhello = hello_miniapp:HelloApp\n")
    async with make_client(extra_plugins=[Probe()], machine_auth_cache_seconds=0) as probe:
        unknown = _cli("scanners", "add", "--app", "transit", "--place", "x", "--json", plugins_dir=tmp_path)
        assert unknown.returncode != 0 and "'transit' is not enabled" in unknown.stderr
        wrong = _cli(
            "scanners",
            "add",
            "--app",
            "hello",
            "--context",
            "back-door",
            "--place",
            "x",
            plugins_dir=tmp_path,
        )
        assert wrong.returncode != 0 and "hello-door" in wrong.stderr
        added = _cli(
            "scanners",
            "add",
            "--app",
            "hello",
            "--place",
            "Front door",
            "--json",
            plugins_dir=tmp_path,
        )
        assert added.returncode == 0, added.stderr
        cred = json.loads(added.stdout)
        assert cred["client_id"].startswith("scn_") and cred["client_secret"].startswith("sk_")
        assert cred["app_id"] == "hello" and cred["place"] == "Front door" and cred["context"] == "hello-door"
        headers = basic(cred["client_id"], cred["client_secret"])
        assert (await probe.get("/test/scanner-only", headers=headers)).status_code == 200
        listed = _cli("scanners", "list")
        assert cred["client_id"] in listed.stdout and cred["client_secret"] not in listed.stdout
        revoked = _cli("scanners", "revoke", cred["client_id"])
        assert revoked.returncode == 0, revoked.stderr
        assert (await probe.get("/test/scanner-only", headers=headers)).status_code == 401
        missing = _cli("scanners", "revoke", "scn_nope")
        assert missing.returncode != 0

        merchant = json.loads(_cli("merchants", "add", "City Parks Ltd", "--json").stdout)
        app = json.loads(_cli("miniapps", "credentials", "hello", "--json", plugins_dir=tmp_path).stdout)
        assert merchant["client_id"].startswith("mch_") and app["client_id"].startswith("app_")
        for cred in (merchant, app):
            r = await probe.get(
                "/test/partners-only", headers=basic(cred["client_id"], cred["client_secret"])
            )
            assert r.status_code == 200
