"""A package outside miniapps/, registered through the entry point, is discovered, mounted, gets scans
routed to it and its routes served; removing it from settings removes it."""

from importlib.metadata import entry_points

import pytest

from miniapps.registry import ENTRY_POINT_GROUP


@pytest.fixture
def hello_installed(hello_migrated):
    """The example is installed as a package of its own (``make install``: pip install -e
    examples/hello-miniapp), so its entry point is there; its migrations are applied (its on_scan keeps
    visits in its table)."""
    (hello,) = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == "hello"]
    assert hello.value == "hello_miniapp:HelloApp" and hello.dist is not None
    assert hello.dist.name == "hello-miniapp"


async def _code(client, login, new_phone):
    pair = await login(client, new_phone())
    r = await client.get("/api/v1/codes/current", headers={"Authorization": f"Bearer {pair['access_token']}"})
    return pair, r.json()["token"]


async def test_entry_point_app_is_discovered_mounted_and_routed(
    hello_installed, make_client, login, new_phone, enrol_scanner
):
    async with make_client(miniapps=[], miniapps_enabled="hello") as client:
        catalogue = (await client.get("/api/v1/miniapps")).json()
        assert [a["id"] for a in catalogue["items"]] == ["hello"]
        assert catalogue["items"][0]["name_zh"] == "你好门"
        assert (await client.get("/api/v1/apps/hello/ping")).json() == {"app": "hello", "pong": True}

        pair, token = await _code(client, login, new_phone)
        door = await enrol_scanner(client, "hello", context="hello-door", place="front door")
        r = await client.post("/api/v1/scans", json={"token": token}, headers=door["headers"])
        assert r.status_code == 200
        body = r.json()
        assert body["result"] == "allow" and body["app_id"] == "hello"
        assert body["display"]["title"] == "你好!" and body["data"] == {"visits": 1}

        mine = await client.get(
            "/api/v1/apps/hello/visits", headers={"Authorization": f"Bearer {pair['access_token']}"}
        )
        assert mine.status_code == 200 and mine.json()["openid"].startswith("o_")
        assert (await client.get("/api/v1/apps/hello/visits")).status_code == 401


async def test_removing_it_from_settings_removes_it(hello_installed, make_client):
    async with make_client(miniapps=[], miniapps_enabled="") as client:
        assert (await client.get("/api/v1/miniapps")).json()["items"] == []
        assert (await client.get("/api/v1/apps/hello/ping")).status_code == 404


async def test_its_settings_come_from_the_environment(
    hello_installed, make_client, monkeypatch, login, new_phone, enrol_scanner
):
    monkeypatch.setenv("SHENGSHI_MINIAPP_HELLO", '{"greeting": "欢迎"}')
    async with make_client(miniapps=[], miniapps_enabled="hello") as client:
        _, token = await _code(client, login, new_phone)
        door = await enrol_scanner(client, "hello", context="hello-door")
        r = await client.post("/api/v1/scans", json={"token": token}, headers=door["headers"])
        assert r.json()["display"]["title"] == "欢迎!"


def test_an_unknown_enabled_app_stops_start_up(make_runtime):
    from backend.app import create_app
    from miniapps.registry import MiniAppError

    with pytest.raises(MiniAppError, match="'nosuchapp', which is not installed"):
        create_app(runtime=make_runtime(miniapps="nosuchapp"))


async def test_its_tables_use_the_apps_database_engine(hello_installed, make_client):
    from hello_miniapp.tables import HelloDoor, HelloVisit
    from piccolo.conf.apps import Finder

    async with make_client(miniapps=[], miniapps_enabled="hello") as client:
        engine = client.runtime.engine
        assert HelloDoor._meta.db is engine and HelloVisit._meta.db is engine
        assert Finder().get_engine() is engine  # Piccolo's own lookup (its migrations use it)
