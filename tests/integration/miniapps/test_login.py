"""Mini-app login: pairwise openids, single-use codes bound to one app for 5 minutes, scoped tokens."""

import base64

import pytest

from miniapps.contract import Manifest, MiniApp, ScanDecision, ScanEvent


class OtherApp(MiniApp):
    manifest = Manifest(
        id="other", name_zh="另一个", name_en="Other", version="1.0", scopes=["openid", "phone"]
    )

    async def on_scan(self, scan: ScanEvent) -> ScanDecision:
        return ScanDecision(allow=True)


def _basic(cred):
    return {
        "Authorization": "Basic "
        + base64.b64encode(f"{cred['client_id']}:{cred['client_secret']}".encode()).decode()
    }


@pytest.fixture
async def world(make_client, frozen_clock, login, new_phone, testgate_app):
    async with make_client(miniapps=[testgate_app, OtherApp], clock=frozen_clock) as client:
        machines = client.services.auth.machines
        creds = {a: _basic(await machines.create("miniapp", app_id=a)) for a in ("testgate", "other")}
        pair = await login(client, new_phone())
        # a real name is the account's once verified, with its ID number (the development provider)
        r = await client.patch(
            "/api/v1/me",
            json={"real_name": "孙八", "id_number": "21010219491231018X"},
            headers={"Authorization": f"Bearer {pair['access_token']}"},
        )
        assert r.status_code == 200, r.text
        yield client, creds, pair, frozen_clock


async def _authorize(client, pair, app_id, scopes):
    r = await client.post(
        f"/api/v1/miniapps/{app_id}/authorize",
        json={"scopes": scopes},
        headers={"Authorization": f"Bearer {pair['access_token']}"},
    )
    assert r.status_code == 200, r.text
    return r.json()["code"]


async def test_pairwise_openids_differ_per_app_and_stay_stable(world):
    client, creds, pair, _ = world
    ids = {}
    for app in ("testgate", "other"):
        code = await _authorize(client, pair, app, ["openid"])
        r = await client.post(f"/api/v1/miniapps/{app}/token", json={"code": code}, headers=creds[app])
        assert r.status_code == 200, r.text
        ids[app] = r.json()["openid"]
        assert "phone" not in r.text
    assert ids["testgate"] != ids["other"]
    again = await _authorize(client, pair, "testgate", ["openid"])
    r = await client.post("/api/v1/miniapps/testgate/token", json={"code": again}, headers=creds["testgate"])
    assert r.json()["openid"] == ids["testgate"]


async def test_a_code_works_once_for_its_own_app_within_five_minutes(world):
    client, creds, pair, clock = world
    code = await _authorize(client, pair, "testgate", ["openid"])
    stolen = await client.post("/api/v1/miniapps/other/token", json={"code": code}, headers=creds["other"])
    assert stolen.status_code == 401 and stolen.json()["code"] == "invalid_grant"
    # the other app's attempt spent it: the rightful app must ask again
    assert (
        await client.post("/api/v1/miniapps/testgate/token", json={"code": code}, headers=creds["testgate"])
    ).status_code == 401

    code = await _authorize(client, pair, "testgate", ["openid"])
    assert (
        await client.post("/api/v1/miniapps/testgate/token", json={"code": code}, headers=creds["testgate"])
    ).status_code == 200
    assert (
        await client.post("/api/v1/miniapps/testgate/token", json={"code": code}, headers=creds["testgate"])
    ).status_code == 401

    late = await _authorize(client, pair, "testgate", ["openid"])
    clock.advance(301)
    r = await client.post(
        "/api/v1/miniapps/testgate/token",
        json={"code": late},
        headers={**creds["testgate"], "Accept-Language": "en"},
    )
    assert r.status_code == 401 and "expired" in r.json()["detail"]
    # one app's credential cannot exchange at another app's endpoint
    code = await _authorize(client, pair, "other", ["openid"])
    r = await client.post("/api/v1/miniapps/other/token", json={"code": code}, headers=creds["testgate"])
    assert r.status_code == 403 and r.json()["code"] == "wrong_miniapp"
    # ... and that refused attempt spent the code too: it is single use, whoever tries it
    r = await client.post("/api/v1/miniapps/other/token", json={"code": code}, headers=creds["other"])
    assert r.status_code == 401 and r.json()["code"] == "invalid_grant"


async def test_a_token_reads_only_its_scopes(world):
    client, creds, pair, _ = world
    code = await _authorize(client, pair, "testgate", ["profile"])
    token = (
        await client.post("/api/v1/miniapps/testgate/token", json={"code": code}, headers=creds["testgate"])
    ).json()["access_token"]
    bearer = {"Authorization": f"Bearer {token}"}
    info = (await client.get("/api/v1/miniapps/testgate/userinfo", headers=bearer)).json()
    assert info["name"] == "孙*" and "phone" not in info and "id_number" not in info
    denied = await client.get("/api/v1/miniapps/testgate/userinfo/phone", headers=bearer)
    assert denied.status_code == 403 and denied.json()["code"] == "insufficient_scope"
    assert (await client.get("/api/v1/miniapps/other/userinfo", headers=bearer)).status_code == 401

    code = await _authorize(client, pair, "testgate", ["profile", "phone"])
    token = (
        await client.post("/api/v1/miniapps/testgate/token", json={"code": code}, headers=creds["testgate"])
    ).json()["access_token"]
    phone = (
        await client.get(
            "/api/v1/miniapps/testgate/userinfo/phone", headers={"Authorization": f"Bearer {token}"}
        )
    ).json()["phone"]
    assert phone.startswith("+86")


async def test_an_app_cannot_be_granted_scopes_it_did_not_declare(world):
    client, _, pair, _ = world
    r = await client.post(
        "/api/v1/miniapps/testgate/authorize",
        json={"scopes": ["id_number"]},
        headers={"Authorization": f"Bearer {pair['access_token']}"},
    )
    assert r.status_code == 422 and r.json()["code"] == "invalid_scope"
    r = await client.post(
        "/api/v1/miniapps/nope/authorize",
        json={"scopes": []},
        headers={"Authorization": f"Bearer {pair['access_token']}"},
    )
    assert r.status_code == 404


async def test_the_citizen_lists_and_revokes_grants(world):
    client, creds, pair, _ = world
    me = {"Authorization": f"Bearer {pair['access_token']}"}
    code = await _authorize(client, pair, "testgate", ["profile"])
    token = (
        await client.post("/api/v1/miniapps/testgate/token", json={"code": code}, headers=creds["testgate"])
    ).json()["access_token"]
    grants = (await client.get("/api/v1/me/grants", headers=me)).json()["items"]
    assert [(g["app_id"], g["scopes"]) for g in grants] == [("testgate", ["openid", "profile"])]
    assert (await client.delete("/api/v1/me/grants/testgate", headers=me)).status_code == 204
    r = await client.get("/api/v1/miniapps/testgate/userinfo", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401 and r.json()["code"] == "grant_revoked"
    assert (await client.get("/api/v1/me/grants", headers=me)).json()["items"] == []
    assert (await client.delete("/api/v1/me/grants/testgate", headers=me)).status_code == 404
