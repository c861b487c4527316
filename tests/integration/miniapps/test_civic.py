"""市民服务 civic services through HTTP: the social-security hall's kiosk admits a citizen whose code carries
social security and gives a queue number the citizen sees in the app; the health check point lets
green through, logs the pass and counts it for the dashboard, and a yellow status is refused before the
mini-app is asked."""

import base64
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from backend.clock import FrozenClock
from tests.conftest import bearer

EN = {"Accept-Language": "en"}
INSURED = {"insured": True, "card_status": "active"}  # what the social-security bureau says


async def verified_by_a_provider(client, pair) -> None:
    """Stopgap until real-name verification (auth/, a helper's part of issue 16) is on main: there the
    development provider records the verification when the citizen gives name and ID number; until
    then this records it as the provider would (a no-op once it does)."""
    from auth.tables import Citizen

    me = str((await client.get("/api/v1/me", headers=bearer(pair))).json()["id"])
    await (
        Citizen.update({Citizen.real_name_verified_at: client.runtime.clock.now()})
        .where((Citizen.id == uuid.UUID(me)) & Citizen.real_name_verified_at.is_null())
        .run()
    )


@pytest.fixture
async def city(
    make_client, login, new_phone, enrol_scanner, new_id_number, verify_real_name, enrol_source, push_change
):
    clock = FrozenClock(datetime(2026, 11, 25, 1, 0, tzinfo=UTC))  # 09:00 in Shenyang
    async with make_client(clock=clock, access_token_ttl=30 * 86400) as client:
        await client.services.miniapps.apps["civic"].seed_demo()
        owners = {
            "social_security": await enrol_source(
                client, "social_security", name="沈阳市人力资源和社会保障局"
            ),
            "health": await enrol_source(client, "health", name="沈阳市卫生健康委员会"),
        }
        kiosk = await enrol_scanner(client, "civic", context="civic-hall", place="SS-HEPING")
        door = await enrol_scanner(client, "civic", context="health-check", place="HC-SHENGJING")

        async def citizen(**facts):
            """A real-name-verified citizen, and what the owners pushed about them (by ID number)."""
            pair = await login(client, new_phone())
            number = new_id_number()
            await verify_real_name(client, pair, "沈一", number)
            await verified_by_a_provider(client, pair)
            for kind, value in facts.items():
                await push_change(client, owners[kind], number, value)
            return {"Authorization": f"Bearer {pair['access_token']}"}

        async def scan(scanner, me, meta=None, headers=None):
            clock.advance(31)  # a fresh code for each scan
            token = (await client.get("/api/v1/codes/current", headers=me)).json()["token"]
            r = await client.post(
                "/api/v1/scans",
                json={"token": token, **({"meta": meta} if meta else {})},
                headers={**scanner["headers"], **(headers or {})},
            )
            assert r.status_code == 200, r.text
            return r.json()

        yield client, clock, kiosk, door, citizen, scan


def basic(cred) -> dict[str, str]:
    raw = f"{cred['client_id']}:{cred['client_secret']}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


async def test_the_hall_gives_queue_numbers_to_the_insured_only(city):
    _, _, kiosk, _, citizen, scan = city
    uninsured = await citizen(social_security={"insured": False})
    refused = await scan(kiosk, uninsured)
    assert refused["result"] == "deny" and refused["reason"] == "not_entitled"
    assert refused["data"]["required"] == "social_security"

    first = await citizen(social_security=INSURED)
    got = await scan(kiosk, first)
    assert got["result"] == "allow", got
    assert got["data"]["number"] == "A001" and got["data"]["ahead"] == 0 and got["data"]["again"] is False
    assert got["display"]["title"] == "您的号码 A001" and "综合业务" in got["display"]["subtitle"]
    # scanning again the same day shows the same number
    again = await scan(kiosk, first)
    assert again["data"]["number"] == "A001" and again["data"]["again"] is True

    pension = await citizen(social_security=INSURED)
    chosen = await scan(kiosk, pension, meta={"service": "B"}, headers=EN)  # the kiosk's 养老保险 button
    assert chosen["data"]["number"] == "B001"
    assert (
        chosen["display"]["title"] == "Your number: B001"
        and "Pension insurance" in chosen["display"]["subtitle"]
    )
    nowhere = await scan(kiosk, pension, meta={"service": "Z"})
    assert nowhere["result"] == "deny" and nowhere["reason"] == "unknown_service"

    second = await citizen(social_security=INSURED)
    behind = await scan(kiosk, second)
    assert behind["data"]["number"] == "A002" and behind["data"]["ahead"] == 1
    assert behind["data"]["wait_minutes"] == 2  # one person ahead, 3 windows, 6 minutes each


async def test_the_citizen_follows_the_line_in_the_app_and_the_hall_calls_numbers(city):
    client, clock, kiosk, _, citizen, scan = city
    first, second = await citizen(social_security=INSURED), await citizen(social_security=INSURED)
    await scan(kiosk, first)
    await scan(kiosk, second)
    mine = (await client.get("/api/v1/apps/civic/queue", headers=second)).json()["items"]
    assert [(q["number"], q["state"], q["ahead"], q["hall"]) for q in mine] == [
        ("A002", "waiting", 1, "SS-HEPING")
    ]
    assert mine[0]["hall_name"] == "和平区社保服务大厅" and mine[0]["service_name_en"] == "General enquiries"
    halls = (await client.get("/api/v1/apps/civic/halls", headers=EN)).json()["items"]
    heping = next(h for h in halls if h["hall"] == "SS-HEPING")
    assert heping["name"] == "Heping District Social Security Service Hall"
    assert [(s["service"], s["waiting"]) for s in heping["services"]] == [
        ("A", 2),
        ("B", 0),
        ("C", 0),
        ("D", 0),
    ]

    hall = basic(await client.services.auth.machines.create("miniapp", app_id="civic"))
    url = "/api/v1/apps/civic/halls/SS-HEPING/services/A/call"
    assert (await client.post(url, json={"window": 3}, headers=first)).status_code == 401  # citizens cannot
    called = await client.post(url, json={"window": 3}, headers=hall)
    assert called.status_code == 200 and called.json()["number"] == "A001" and called.json()["window"] == 3
    mine = (await client.get("/api/v1/apps/civic/queue", headers=second)).json()["items"]
    assert mine[0]["ahead"] == 0 and mine[0]["wait_minutes"] == 0
    theirs = (await client.get("/api/v1/apps/civic/queue", headers=first)).json()["items"]
    assert theirs[0]["state"] == "called" and theirs[0]["window"] == 3
    # served at the window: the first may rate the hall's service (好差评); the second, not served, not yet
    [event] = (await client.get("/api/v1/me/ratings/pending", headers=first)).json()["items"]
    assert (event["service"], event["unit"]) == ("civic.hall", "civic/ss-heping")
    assert event["unit_name"] == "和平区社保服务大厅"
    assert (await client.get("/api/v1/me/ratings/pending", headers=second)).json()["items"] == []

    ticket = mine[0]["ticket_id"]
    assert (
        await client.delete(f"/api/v1/apps/civic/queue/{ticket}", headers=first)
    ).status_code == 404  # not theirs
    assert (await client.delete(f"/api/v1/apps/civic/queue/{ticket}", headers=second)).status_code == 204
    assert (await client.delete(f"/api/v1/apps/civic/queue/{ticket}", headers=second)).status_code == 404
    empty = await client.post(url, json={"window": 3}, headers=hall)
    assert empty.status_code == 404 and empty.json()["code"] == "queue_empty"

    # the next day the line starts again at 1
    clock.advance(24 * 3600)
    assert (await scan(kiosk, second))["data"]["number"] == "A001"
    old = (await client.get("/api/v1/apps/civic/queue", headers=first)).json()["items"]
    assert old[0]["state"] == "called" and old[0]["day"] == "2026-11-25"


async def test_the_check_point_lets_green_through_and_counts_passes(city):
    client, clock, _, door, citizen, scan = city
    civic = client.services.miniapps.apps["civic"]
    green = await citizen(health={"status": "green"})
    passed = await scan(door, green)
    assert passed["result"] == "allow" and passed["data"]["checkpoint"] == "HC-SHENGJING", passed
    assert passed["display"]["title"] == "健康状态正常 请通行"
    english = await scan(door, green, headers=EN)
    assert english["display"]["subtitle"] == "Shengjing Hospital, south entrance"

    yellow = await citizen(health={"status": "yellow", "reason": "密接"})
    refused = await scan(door, yellow)  # by the platform, before the mini-app is asked, with the reason
    assert (refused["result"], refused["reason"]) == ("deny", "not_entitled")
    assert refused["data"] == {"required": "health", "status": "yellow"}
    assert refused["display"]["title"] == "健康码黄码"
    unknown = await citizen()  # verified, but the health authority has said nothing: no colour
    assert (await scan(door, unknown))["data"] == {"required": "health", "status": "unknown"}

    points = (await client.get("/api/v1/apps/civic/checkpoints")).json()["items"]
    assert {p["checkpoint"]: p["passes_today"] for p in points} == {
        "HC-NORTH": 0,
        "HC-OLYMPIC": 0,
        "HC-SHENGJING": 2,
    }
    gauges = {g.name: g for g in await civic.gauges()}
    assert gauges["passes_today:HC-SHENGJING"].value == 2 and gauges["passes_today:HC-OLYMPIC"].value == 0
    assert gauges["passes_today:HC-SHENGJING"].label_en == "Shengjing Hospital, south entrance: passes today"
    assert "waiting:SS-HEPING" in gauges
    mine = (await client.get("/api/v1/apps/civic/passes", headers=green)).json()["items"]
    assert len(mine) == 2 and mine[0]["checkpoint"] == "HC-SHENGJING"
    assert (await client.get("/api/v1/apps/civic/passes", headers=yellow)).json()["items"] == []
    # tomorrow the count starts again
    clock.advance(timedelta(days=1).total_seconds())
    assert {g.name: g.value for g in await civic.gauges()}["passes_today:HC-SHENGJING"] == 0
