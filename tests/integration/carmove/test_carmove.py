"""扫码挪车 end to end, through the public API as people use it: the owner registers a car (proven with
their vehicle licence) and prints its sticker; a stranger scans it, asks the owner to move the car with
a reason and a photo; the owner is told at once, by SMS when a minute passes unanswered (never once
answered), and answers; the stranger sees the answer and may call through a privacy number. Limits per
sender, sticker and hour; a paused or regenerated sticker; reports to the operators; one answer per
request under concurrent answers on PostgreSQL."""

from __future__ import annotations

import asyncio
import io
import json
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import uvicorn
import zxingcpp
from PIL import Image

from backend.clock import FrozenClock
from miniapps.carmove.tables import MoveRequest, Sticker
from tests.conftest import BACKEND, basic_auth, bearer
from tests.integration.messages.citizen import approve, inbox

pytestmark = pytest.mark.storage
START = datetime(2026, 11, 30, 1, 0, 5, tzinfo=UTC)  # 09:00 China time, five seconds into the hour
API = "/api/v1/apps/carmove"
TEMPLATES = ("carmove.move_request", "carmove.move_waiting")
VEHICLE = {
    "vehicle_type": "小型轿车",
    "owner": "王小明",
    "use_character": "非营运",
    "model": "比亚迪牌BYD7152",
    "vin": "LGXCE4CB5N0123456",
    "registered_on": "2021-05-10",
    "issued_on": "2021-05-10",
    "issuing_authority": "沈阳市公安局交通警察支队",
}


@dataclass
class Owner:
    phone: str
    me: dict[str, str]
    id_number: str


@dataclass
class Street:
    client: Any
    clock: FrozenClock
    issuer: dict[str, str]
    login: Any
    new_phone: Any
    new_id_number: Any
    verify: Any
    strangers: int = 0

    async def owner(self) -> Owner:
        phone = self.new_phone()
        pair = await self.login(self.client, phone)
        id_number = self.new_id_number()
        await self.verify(self.client, pair, "王小明", id_number)
        return Owner(phone, bearer(pair), id_number)

    async def licence(self, owner: Owner, plate_number: str) -> None:
        r = await self.client.post(
            "/api/v1/licences/issued",
            json={
                "type": "vehicle_licence",
                "id_number": owner.id_number,
                "fields": {**VEHICLE, "plate_number": plate_number},
            },
            headers=self.issuer,
        )
        assert r.status_code == 201, r.text

    async def car(self, owner: Owner, plate: str, *, prove: bool | None = True) -> dict[str, Any]:
        """The owner registers the car and (``prove``) approves or refuses sharing the licence."""
        r = await self.client.post(f"{API}/cars", json={"plate": plate}, headers=owner.me)
        assert r.status_code == 201, r.text
        car = dict(r.json())
        if prove is not None:
            verb = "approve" if prove else "refuse"
            r = await self.client.post(
                f"/api/v1/me/licence-requests/{car['licence_request']}/{verb}", json={}, headers=owner.me
            )
            assert r.status_code == 200, r.text
        return car

    async def cars(self, owner: Owner) -> dict[str, dict[str, Any]]:
        r = await self.client.get(f"{API}/cars", headers=owner.me)
        assert r.status_code == 200, r.text
        return {c["plate"]: c for c in r.json()["items"]}

    async def ask(
        self, code: str, reason: str = "blocking_exit", note: str = "", ip: str = "", me: Any = None
    ) -> Any:
        """A stranger at the car asks, no login (or in the citizen app as ``me``), from network address
        ``ip`` (a new one by default)."""
        self.strangers += 1
        peer = ip or f"203.0.113.{self.strangers % 250}"
        transport = httpx.ASGITransport(app=self.client.app, client=(peer, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as stranger:
            return await stranger.post(
                f"{API}/stickers/{code}/requests" + ("/signed-in" if me else ""),
                json={"reason": reason, "note": note},
                headers=me.me if me else {},
            )

    async def sms(self, phone: str) -> str:
        r = await self.client.get("/api/v1/dev/sms", params={"phone": phone})
        return str(r.json()["text"]) if r.status_code == 200 else ""

    async def deliver(self) -> None:
        deliveries = self.client.services.messages.deliveries
        await deliveries.tick()
        await deliveries.jobs.drain()


@pytest.fixture(scope="module")
async def town(make_module_client):
    """One app for the module (its tests make their own citizens, cars and stickers, and count only
    those): the app, its clock, the traffic police's credential, the templates approved."""
    config = {
        "per_sticker_hour": 3,
        "per_sender_hour": 5,
        "per_sender_sticker_hour": 2,
        "photo_max_bytes": 200_000,
        "sticker_base_url": "https://sst.shenyang.example/",
    }
    clock = FrozenClock(START)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SHENGSHI_MINIAPP_CARMOVE", json.dumps(config))
        async with make_module_client(
            clock=clock, access_token_ttl=30 * 86400, message_sms_after=600
        ) as client:
            op = basic_auth(await client.services.auth.machines.create("operator", name="证照办"))
            r = await client.post(
                "/api/v1/admin/licences/issuers",
                json={
                    "code": "sy-traffic",
                    "name_zh": "沈阳市公安局交通警察支队",
                    "name_en": "Shenyang Traffic Police",
                    "department": "traffic_police",
                    "types": ["vehicle_licence"],
                },
                headers=op,
            )
            assert r.status_code == 201, r.text
            await approve(client, *TEMPLATES)
            yield client, clock, basic_auth(r.json())


@pytest.fixture
async def street(town, login, new_phone, new_id_number, verify_real_name):
    """Each test starts five seconds into an hour of its own: the limits' windows are fresh."""
    client, clock, issuer = town
    hour = int(clock.now().timestamp()) // 3600 + 1
    clock.set(datetime.fromtimestamp(hour * 3600 + 5, UTC))
    yield Street(client, clock, issuer, login, new_phone, new_id_number, verify_real_name)


def _qr(png: bytes) -> str:
    [found] = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    return str(found.text)


async def test_a_stranger_asks_the_owner_answers_and_the_stranger_sees_the_answer(street):
    client = street.client
    owner = await street.owner()
    await street.licence(owner, "辽A12345")
    car = await street.car(owner, "辽a·12345")
    assert (car["plate"], car["plate_shown"], car["proof"]) == ("辽A12345", "辽A·12345", "unproven")
    listed = (await street.cars(owner))["辽A12345"]
    assert (listed["proof"], listed["vehicle_type"]) == ("proven", "小型轿车")  # the licence matched
    sticker = listed["sticker"]
    assert sticker["state"] == "active"

    # the printed sticker: a QR code of the public page's address, nothing else (no plate, no phone)
    png = await client.get(f"{API}/cars/{car['car_id']}/sticker.png", headers=owner.me)
    assert png.headers["content-type"] == "image/png"
    url = _qr(png.content)
    assert url == sticker["url"] == f"https://sst.shenyang.example{API}/s/{sticker['code']}"
    assert "12345" not in url and owner.phone not in url
    svg = await client.get(f"{API}/cars/{car['car_id']}/sticker.svg", headers=owner.me)
    assert svg.headers["content-type"].startswith("image/svg+xml") and b"<svg" in svg.content
    pdf = await client.get(f"{API}/cars/{car['car_id']}/sticker.pdf", headers=owner.me)
    assert pdf.headers["content-type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    stranger_owner = await street.owner()
    other = await client.get(f"{API}/cars/{car['car_id']}/sticker.png", headers=stranger_owner.me)
    assert other.status_code == 404 and other.json()["code"] == "car_not_found"

    # a phone camera opens the page (no login, a strict policy), which reads the sticker's state
    page = await client.get(url.removeprefix("https://sst.shenyang.example"))
    assert page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
    info = (await client.get(f"{API}/stickers/{sticker['code']}")).json()
    assert info["plate"] == "辽A·***45" and info["owner_verified"] is True and info["refusal"] == ""
    assert "blocking_exit" in [r["code"] for r in info["reasons"]]

    r = await street.ask(sticker["code"], "blocking_exit", "我在地库出口")
    assert r.status_code == 201, r.text
    sent = r.json()
    token = sent["request_token"]
    assert sent["state"] == "waiting" and sent["reason_text"] == "挡住了出口"
    assert "openid" not in sent and "辽A" not in json.dumps(sent, ensure_ascii=False)

    # the owner is told at once, in the inbox, the plate in full there
    [told] = await inbox(client, owner.me)
    assert told["title"] == "有人请您挪车" and "辽A12345" in told["body"] and "挡住了出口" in told["body"]
    [received] = (await client.get(f"{API}/requests", headers=owner.me)).json()["items"]
    assert (received["plate"], received["note"], received["state"]) == ("辽A12345", "我在地库出口", "waiting")

    polled = (await client.get(f"{API}/sent", headers={"X-Carmove-Token": token})).json()
    assert (polled["state"], polled["answer"]) == ("waiting", "")
    r = await client.post(
        f"{API}/requests/{received['request_id']}/answer",
        json={"answer": "coming_5", "note": "马上下楼"},
        headers=owner.me,
    )
    assert r.status_code == 200, r.text
    polled = (
        await client.get(f"{API}/sent", headers={"X-Carmove-Token": token, "Accept-Language": "en"})
    ).json()
    assert polled["state"] == "answered"
    assert (polled["answer"], polled["answer_text"], polled["answer_note"]) == (
        "coming_5",
        "coming, moving it within 5 minutes",
        "马上下楼",
    )
    again = await client.post(
        f"{API}/requests/{received['request_id']}/answer", json={"answer": "moved"}, headers=owner.me
    )
    assert again.status_code == 409 and again.json()["code"] == "already_answered"

    # answered in time: a minute later no "still waiting" message and no SMS
    street.clock.advance(120)
    await street.deliver()
    assert [m["title"] for m in await inbox(client, owner.me)] == ["有人请您挪车"]
    assert "挪车" not in await street.sms(owner.phone)
    [received] = (await client.get(f"{API}/requests", headers=owner.me)).json()["items"]
    assert received["sms_fallback"] is False and received["state"] == "answered"
    # a request to someone else's car is not the owner's to see or answer
    r = await client.post(
        f"{API}/requests/{received['request_id']}/answer", json={"answer": "moved"}, headers=stranger_owner.me
    )
    assert r.status_code == 404


async def test_an_unanswered_request_goes_by_sms_after_a_minute_masked(street):
    client = street.client
    owner = await street.owner()
    car = await street.car(owner, "辽B88888", prove=None)  # never proven: it still takes requests
    code = (await street.cars(owner))["辽B88888"]["sticker"]["code"]
    assert (await client.get(f"{API}/stickers/{code}")).json()["owner_verified"] is False
    assert (await street.ask(code, "lights_on")).status_code == 201

    street.clock.advance(59)
    await street.deliver()
    assert "挪车" not in await street.sms(owner.phone)  # not yet
    street.clock.advance(2)
    await street.deliver()
    text = await street.sms(owner.phone)
    assert "挪车请求仍在等待" in text and "车灯未关" in text
    assert "辽B***8" in text and "辽B88888" not in text  # masked in an SMS
    [received] = (await client.get(f"{API}/requests", headers=owner.me)).json()["items"]
    assert received["sms_fallback"] is True and received["state"] == "waiting"
    titles = [m["title"] for m in await inbox(client, owner.me)]
    assert titles == ["挪车请求仍在等待", "有人请您挪车"]
    # once only, whatever the rounds
    street.clock.advance(60)
    await street.deliver()
    assert [m["title"] for m in await inbox(client, owner.me)] == titles
    assert car["proof"] == "unproven"


async def test_limits_per_sticker_and_sender_answer_429_with_retry_after_until_the_hour_ends(street):
    client = street.client
    owner = await street.owner()
    codes = []
    for plate in ("辽A10001", "辽A10002", "辽A10003"):
        await street.car(owner, plate, prove=None)
        codes.append((await street.cars(owner))[plate]["sticker"]["code"])

    # three per sticker an hour, from anyone
    for n in range(3):
        r = await street.ask(codes[0], ip=f"10.0.0.{n}")
        assert r.status_code == 201, r.text
    r = await street.ask(codes[0], ip="10.0.0.9")
    assert r.status_code == 429 and r.json()["code"] == "carmove_rate_limited"
    assert int(r.headers["retry-after"]) == 3600 - 5  # the hour's window ends then
    # five per sender an hour, on any sticker
    for code in (codes[1], codes[1], codes[2], codes[2]):
        assert (await street.ask(code, ip="10.0.0.1")).status_code == 201
    r = await street.ask(codes[2], ip="10.0.0.1")
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    assert (await street.ask(codes[2], ip="10.0.0.2")).status_code == 201  # another sender may
    received = (await client.get(f"{API}/requests?limit=50", headers=owner.me)).json()["items"]
    assert len(received) == 3 + 4 + 1  # a refused request is not written

    street.clock.advance(3600)  # the next hour
    assert (await street.ask(codes[0], ip="10.0.0.9")).status_code == 201

    # in the citizen app, a citizen is one sender whatever network they come from
    sender = await street.owner()
    for n, code in enumerate((codes[1], codes[1], codes[0], codes[2], codes[2])):
        r = await street.ask(code, ip=f"10.2.0.{n}", me=sender)
        assert r.status_code == 201, r.text
    r = await street.ask(codes[2], ip="10.2.0.9", me=sender)
    assert r.status_code == 429 and r.json()["code"] == "carmove_rate_limited"
    assert (await street.ask(codes[2], ip="10.2.0.9")).status_code == 201  # not signed in: another sender


async def test_a_paused_or_regenerated_sticker_and_bad_input(street):
    client = street.client
    owner = await street.owner()
    car = await street.car(owner, "辽A66666", prove=None)
    old = (await street.cars(owner))["辽A66666"]["sticker"]["code"]
    sticker = f"{API}/cars/{car['car_id']}/sticker"

    r = await client.put(sticker, json={"paused": True}, headers=owner.me)
    assert r.status_code == 200 and r.json()["state"] == "paused"
    assert (await client.get(f"{API}/stickers/{old}")).json()["refusal"] == "sticker_paused"
    r = await street.ask(old)
    assert r.status_code == 409 and r.json()["code"] == "sticker_paused"
    assert (await client.put(sticker, json={"paused": False}, headers=owner.me)).json()["state"] == "active"
    assert (await street.ask(old)).status_code == 201

    r = await client.post(f"{sticker}/regenerate", headers=owner.me)
    assert r.status_code == 201
    new = r.json()["code"]
    assert new != old and (await street.cars(owner))["辽A66666"]["sticker"]["code"] == new
    assert (await client.get(f"{API}/stickers/{old}")).json()["refusal"] == "sticker_replaced"
    r = await street.ask(old)
    assert r.status_code == 410 and r.json()["code"] == "sticker_replaced"
    assert (await street.ask(new)).status_code == 201
    assert (await client.get(f"{API}/stickers/NoSuchSticker123")).status_code == 404

    # bad input changes nothing: 4xx problem+json
    before = len((await client.get(f"{API}/requests", headers=owner.me)).json()["items"])
    for body, status, code in (
        ({"reason": "speeding"}, 422, "unknown_reason"),
        ({"reason": "other", "note": "x" * 61}, 422, "invalid_note"),
        ({"reason": "other", "note": "a\u202eb"}, 422, "invalid_note"),
        ({"reason": 5}, 400, "invalid_body"),
        ({"reason": "other", "plate": "辽A66666"}, 400, "invalid_body"),
    ):
        r = await client.post(f"{API}/stickers/{new}/requests", json=body)
        assert (r.status_code, r.json()["code"]) == (status, code), r.text
        assert r.headers["content-type"].startswith("application/problem+json")
    assert len((await client.get(f"{API}/requests", headers=owner.me)).json()["items"]) == before
    r = await client.post(f"{API}/cars", json={"plate": "ABCDEFG"}, headers=owner.me)
    assert (r.status_code, r.json()["code"]) == (422, "invalid_plate")
    r = await client.post(f"{API}/cars", json={"plate": "辽A66666"}, headers=owner.me)
    assert r.status_code == 200 and r.json()["car_id"] == car["car_id"]  # registered already: the same

    # a car removed takes its stickers with it
    assert (await client.delete(f"{API}/cars/{car['car_id']}", headers=owner.me)).status_code == 204
    assert (await client.get(f"{API}/stickers/{new}")).status_code == 404


async def test_a_photo_is_checked_and_kept_without_exif_and_a_call_never_shows_a_number(street):
    client = street.client
    owner = await street.owner()
    await street.licence(owner, "辽A00000")  # another car's licence: the plate does not match
    car = await street.car(owner, "辽A77777")
    listed = (await street.cars(owner))["辽A77777"]
    assert (listed["proof"], listed["reason"]) == ("unproven", "mismatch")
    token = (await street.ask(listed["sticker"]["code"], "my_space")).json()["request_token"]
    photo_url = f"{API}/sent/photo"

    r = await client.put(
        photo_url,
        content=b"not an image at all",
        headers={"Content-Type": "image/jpeg", "X-Carmove-Token": token},
    )
    assert (r.status_code, r.json()["code"]) == (422, "photo_not_image")
    buf = io.BytesIO()
    exif = Image.Exif()
    exif[0x010F] = "SpyCamMaker"  # Make
    exif[0x010E] = "41.80N 123.43E"  # ImageDescription
    Image.new("RGB", (64, 48), (200, 30, 30)).save(buf, format="JPEG", exif=exif)
    jpeg = buf.getvalue()
    assert b"SpyCamMaker" in jpeg
    r = await client.put(
        photo_url, content=jpeg, headers={"Content-Type": "image/png", "X-Carmove-Token": token}
    )  # a lie
    assert r.json()["code"] == "photo_not_image"
    big = io.BytesIO()
    Image.frombytes("RGB", (400, 400), os.urandom(400 * 400 * 3)).save(big, format="PNG")  # ~480 kB
    r = await client.put(
        photo_url, content=big.getvalue(), headers={"Content-Type": "image/png", "X-Carmove-Token": token}
    )
    assert (r.status_code, r.json()["code"]) == (422, "photo_too_large")
    r = await client.put(
        photo_url, content=jpeg, headers={"Content-Type": "image/jpeg", "X-Carmove-Token": token}
    )
    assert r.status_code == 201, r.text
    r = await client.put(
        photo_url, content=jpeg, headers={"Content-Type": "image/jpeg", "X-Carmove-Token": token}
    )
    assert (r.status_code, r.json()["code"]) == (409, "photo_exists")

    [received] = (await client.get(f"{API}/requests", headers=owner.me)).json()["items"]
    assert received["photo"] is True
    kept = await client.get(f"{API}/requests/{received['request_id']}/photo", headers=owner.me)
    assert kept.headers["content-type"] == "image/jpeg"
    assert b"SpyCamMaker" not in kept.content and b"123.43E" not in kept.content
    with Image.open(io.BytesIO(kept.content)) as img:
        assert img.size == (64, 48) and len(img.getexif()) == 0

    # a privacy number bound to the owner for a few minutes: the caller never sees the owner's number
    r = await client.post(f"{API}/sent/call", headers={"X-Carmove-Token": token})
    assert r.status_code == 200, r.text
    call = r.json()
    assert owner.phone not in r.text and call["number"].startswith("+86170")
    dev = client.services.miniapps.privacy_numbers
    assert str(dev.dial(call["number"], street.clock.now())).endswith(owner.phone)
    assert (await client.post(f"{API}/sent/call", headers={"X-Carmove-Token": token})).json()[
        "number"
    ] == call["number"]  # the same
    street.clock.advance(6 * 60)
    assert dev.dial(call["number"], street.clock.now()) is None  # the binding ran out
    await client.post(
        f"{API}/requests/{received['request_id']}/answer", json={"answer": "moved"}, headers=owner.me
    )
    r = await client.post(f"{API}/sent/call", headers={"X-Carmove-Token": token})
    assert (r.status_code, r.json()["code"]) == (409, "move_request_closed")
    nobody = {"X-Carmove-Token": "not-a-token-of-anyone"}
    assert (await client.get(f"{API}/sent", headers=nobody)).status_code == 404
    # kept a week: a request eight days later takes the old photo away (the request stays)
    street.clock.advance(8 * 86400)
    assert (await street.ask(listed["sticker"]["code"], "other")).status_code == 201
    gone = await client.get(f"{API}/requests/{received['request_id']}/photo", headers=owner.me)
    assert (gone.status_code, gone.json()["code"]) == (404, "photo_not_found")
    assert car["proof"] == "unproven"


async def test_reports_reach_the_operators_who_may_pause_the_sticker(street):
    client = street.client
    owner = await street.owner()
    await street.car(owner, "辽A55555", prove=False)  # refused: unproven, with the reason
    listed = (await street.cars(owner))["辽A55555"]
    assert (listed["proof"], listed["reason"]) == ("unproven", "consent_refused")
    code = listed["sticker"]["code"]
    r = await client.post(
        f"{API}/stickers/{code}/reports", json={"kind": "fake_sticker", "note": "贴在我车上"}
    )
    assert r.status_code == 201, r.text
    street.clock.advance(30)
    token = (await street.ask(code, "alarm")).json()["request_token"]
    [received] = (await client.get(f"{API}/requests", headers=owner.me)).json()["items"]
    r = await client.post(
        f"{API}/requests/{received['request_id']}/report", json={"kind": "harassment"}, headers=owner.me
    )
    assert r.status_code == 201 and r.json()["by_owner"] is True

    backend = basic_auth(await client.services.auth.machines.create("miniapp", app_id="carmove"))
    assert (await client.get(f"{API}/reports", headers=owner.me)).status_code in (401, 403)
    every = (await client.get(f"{API}/reports?state=open&limit=100", headers=backend)).json()["items"]
    listed_reports = [r for r in every if r["sticker"] == code]
    assert [(r["kind"], r["plate"], r["by_owner"]) for r in listed_reports] == [
        ("harassment", "辽A·***55", True),
        ("fake_sticker", "辽A·***55", False),
    ]
    assert owner.phone not in json.dumps(listed_reports)
    r = await client.post(
        f"{API}/reports/{listed_reports[1]['report_id']}/close", json={"action": "pause"}, headers=backend
    )
    assert r.status_code == 200 and r.json()["action"] == "pause"
    again = await client.post(
        f"{API}/reports/{listed_reports[1]['report_id']}/close", json={"action": "none"}, headers=backend
    )
    assert again.status_code == 409
    assert (await client.get(f"{API}/stickers/{code}")).json()["refusal"] == "sticker_suspended"
    still = (await client.get(f"{API}/reports?state=open&limit=100", headers=backend)).json()["items"]
    assert [r["kind"] for r in still if r["sticker"] == code] == ["harassment"]
    assert (await client.get(f"{API}/sent", headers={"X-Carmove-Token": token})).json()["state"] == "waiting"


async def test_a_sticker_the_operators_suspend_stays_suspended_until_they_lift_it(street):
    """Closing a report with ``pause`` suspends the car's sticker: its owner can neither resume it,
    regenerate it nor remove the car to escape; strangers are refused; an operator lifts it."""
    client = street.client
    owner = await street.owner()
    car = await street.car(owner, "辽A24680", prove=None)
    mine = f"{API}/cars/{car['car_id']}"
    code = car["sticker"]["code"]
    report = (await client.post(f"{API}/stickers/{code}/reports", json={"kind": "harassment"})).json()
    token = (await street.ask(code, "alarm")).json()["request_token"]
    # the owner regenerates and pauses before the operators get to it: the car's sticker is suspended
    # whatever its code and state are now
    new = (await client.post(f"{mine}/sticker/regenerate", headers=owner.me)).json()["code"]
    assert (await client.put(f"{mine}/sticker", json={"paused": True}, headers=owner.me)).status_code == 200
    backend = basic_auth(await client.services.auth.machines.create("miniapp", app_id="carmove"))
    close = f"{API}/reports/{report['report_id']}/close"
    r = await client.post(close, json={"action": "pause", "by": "李运营"}, headers=backend)
    assert r.status_code == 200, r.text
    assert (r.json()["action"], r.json()["closed_by"], r.json()["lifted_at"]) == ("pause", "李运营", None)
    assert (await street.cars(owner))["辽A24680"]["sticker"]["state"] == "suspended"

    # the owner cannot lift it, nor escape it with a new code or by removing the car
    for attempt in (
        client.put(f"{mine}/sticker", json={"paused": False}, headers=owner.me),
        client.put(f"{mine}/sticker", json={"paused": True}, headers=owner.me),
        client.post(f"{mine}/sticker/regenerate", headers=owner.me),
        client.delete(mine, headers={**owner.me, "Accept-Language": "en"}),
    ):
        r = await attempt
        assert (r.status_code, r.json()["code"]) == (409, "sticker_suspended"), r.text
    assert "contact the service" in r.json()["detail"]
    held = (await street.cars(owner))["辽A24680"]["sticker"]
    assert (held["code"], held["state"]) == (new, "suspended")  # the car is still there, its code too
    # strangers are refused, at the page and at the request routes (a waiting request cannot call)
    info = (await client.get(f"{API}/stickers/{new}")).json()
    assert info["refusal"] == "sticker_suspended"
    r = await street.ask(new)
    assert (r.status_code, r.json()["code"]) == (409, "sticker_suspended")
    r = await client.post(f"{API}/sent/call", headers={"X-Carmove-Token": token})
    assert (r.status_code, r.json()["code"]) == (409, "sticker_suspended")
    assert (await street.ask(code)).json()["code"] == "sticker_replaced"

    # only the operators lift it, naming themselves, through a report that suspended it
    lift = f"{API}/reports/{report['report_id']}/lift"
    assert (await client.post(lift, json={"by": "车主"}, headers=owner.me)).status_code in (401, 403)
    r = await client.post(lift, json={"by": ""}, headers=backend)
    assert r.status_code == 400
    other = (await client.post(f"{API}/stickers/{new}/reports", json={"kind": "other"})).json()
    await client.post(f"{API}/reports/{other['report_id']}/close", json={"action": "none"}, headers=backend)
    r = await client.post(f"{API}/reports/{other['report_id']}/lift", json={"by": "李运营"}, headers=backend)
    assert (r.status_code, r.json()["code"]) == (409, "report_not_suspending")
    assert (await street.cars(owner))["辽A24680"]["sticker"]["state"] == "suspended"  # nothing changed
    street.clock.advance(600)
    r = await client.post(lift, json={"by": "张主管"}, headers=backend)
    assert r.status_code == 200, r.text
    assert r.json()["lifted_by"] == "张主管"
    assert datetime.fromisoformat(r.json()["lifted_at"]) == street.clock.now()
    again = await client.post(lift, json={"by": "张主管"}, headers=backend)
    assert (again.status_code, again.json()["code"]) == (409, "sticker_not_suspended")

    # it works again, and is the owner's to pause, regenerate or remove
    assert (await client.get(f"{API}/stickers/{new}")).json()["refusal"] == ""
    assert (await street.ask(new)).status_code == 201
    assert (await street.cars(owner))["辽A24680"]["sticker"]["state"] == "active"
    r = await client.put(f"{mine}/sticker", json={"paused": True}, headers=owner.me)
    assert r.json()["state"] == "paused"
    assert (await client.delete(mine, headers=owner.me)).status_code == 204


@pytest.mark.skipif(BACKEND != "postgres", reason="SQLite serialises writers: the race is PostgreSQL's")
async def test_an_owner_racing_the_operators_suspension_ends_suspended(street):
    """The owner resumes and regenerates while an operator suspends the sticker, at once, on several
    cars: each car ends with one current sticker, suspended."""
    client = street.client
    owner = await street.owner()
    backend = basic_auth(await client.services.auth.machines.create("miniapp", app_id="carmove"))
    cars = [await street.car(owner, f"辽A7000{n}", prove=None) for n in range(4)]
    races = []
    for car in cars:
        mine = f"{API}/cars/{car['car_id']}"
        await client.put(f"{mine}/sticker", json={"paused": True}, headers=owner.me)
        code = car["sticker"]["code"]
        report = (await client.post(f"{API}/stickers/{code}/reports", json={"kind": "harassment"})).json()
        races += [
            client.put(f"{mine}/sticker", json={"paused": False}, headers=owner.me),
            client.post(f"{mine}/sticker/regenerate", headers=owner.me),
            client.post(
                f"{API}/reports/{report['report_id']}/close", json={"action": "pause"}, headers=backend
            ),
            client.put(f"{mine}/sticker", json={"paused": False}, headers=owner.me),
        ]
    results = await asyncio.gather(*races)
    for r in results:
        assert r.status_code in (200, 201) or r.json()["code"] == "sticker_suspended", r.text
    assert all(r.status_code == 200 for r in results[2::4])  # every close went through
    for car in cars:
        current = await Sticker.select().where(
            (Sticker.car == uuid.UUID(car["car_id"])) & (Sticker.state != "replaced")
        )
        assert [s["state"] for s in current] == ["suspended"], current


@pytest.mark.skipif(BACKEND != "postgres", reason="SQLite serialises writers: the race is PostgreSQL's")
async def test_concurrent_answers_make_one_and_concurrent_requests_keep_the_limit(street):
    client = street.client
    owner = await street.owner()
    await street.car(owner, "辽A99999", prove=None)
    code = (await street.cars(owner))["辽A99999"]["sticker"]["code"]
    assert (await street.ask(code, "fire_lane")).status_code == 201
    [received] = (await client.get(f"{API}/requests", headers=owner.me)).json()["items"]
    answers = ["coming_5", "coming_15", "moved", "not_my_car", "cannot_come"] * 2
    results = await asyncio.gather(
        *(
            client.post(
                f"{API}/requests/{received['request_id']}/answer", json={"answer": a}, headers=owner.me
            )
            for a in answers
        )
    )
    statuses = sorted(r.status_code for r in results)
    assert statuses == [200] + [409] * 9, statuses
    [won] = [r.json()["answer"] for r in results if r.status_code == 200]
    row = await MoveRequest.select().where(MoveRequest.id == uuid.UUID(received["request_id"])).first()
    assert (row["state"], row["answer"]) == ("answered", won)

    # two more may go to this sticker this hour (three in all): twelve at once, from twelve senders
    results = await asyncio.gather(*(street.ask(code, ip=f"10.1.0.{n}") for n in range(12)))
    assert sorted(r.status_code for r in results) == [201] * 2 + [429] * 10
    assert await MoveRequest.count().where(MoveRequest.openid == row["openid"]) == 3


async def test_the_operators_cli_lists_and_closes_reports_through_the_api(street, free_port, monkeypatch):
    """``shengshi carmove reports|close``, run in-process against the app served on a local port."""
    from click.testing import CliRunner

    from miniapps.carmove.cli import carmove

    client = street.client
    owner = await street.owner()
    await street.car(owner, "辽A31415", prove=None)
    code = (await street.cars(owner))["辽A31415"]["sticker"]["code"]
    r = await client.post(f"{API}/stickers/{code}/reports", json={"kind": "wrong_car", "note": "不是这辆"})
    report_id = r.json()["report_id"]
    cred = await client.services.auth.machines.create("miniapp", app_id="carmove")
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(client.app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    for _ in range(1000):  # up in a few milliseconds
        if server.started:
            break
        await asyncio.sleep(0.01)
    try:
        url = f"http://127.0.0.1:{port}"
        runner = CliRunner()
        refused = await asyncio.to_thread(runner.invoke, carmove, ["reports", "--server", url])
        assert refused.exit_code != 0 and "SHENGSHI_CARMOVE_CLIENT_ID" in refused.output
        monkeypatch.setenv("SHENGSHI_CARMOVE_CLIENT_ID", cred["client_id"])
        monkeypatch.setenv("SHENGSHI_CARMOVE_CLIENT_SECRET", cred["client_secret"])
        monkeypatch.setenv("USER", "op-wang")  # --by's default: the operator's login name
        monkeypatch.setenv("LOGNAME", "op-wang")
        listed = await asyncio.to_thread(runner.invoke, carmove, ["reports", "--server", url, "--json"])
        assert listed.exit_code == 0, listed.output
        [line] = [x for x in map(json.loads, listed.output.splitlines()) if x["report_id"] == report_id]
        assert (line["report_id"], line["kind"], line["plate"]) == (report_id, "wrong_car", "辽A·***15")
        done = await asyncio.to_thread(
            runner.invoke, carmove, ["close", report_id, "--pause", "--server", url]
        )
        assert done.exit_code == 0 and "suspended" in done.output, done.output
        again = await asyncio.to_thread(runner.invoke, carmove, ["close", report_id, "--server", url])
        assert again.exit_code != 0 and "409" in again.output
        left = await asyncio.to_thread(runner.invoke, carmove, ["reports", "--server", url])
        assert left.exit_code == 0 and report_id not in left.output
        closed = (await client.get(f"{API}/reports?state=closed&limit=100", headers=basic_auth(cred))).json()
        [mine] = [x for x in closed["items"] if x["report_id"] == report_id]
        assert (mine["sticker_state"], mine["closed_by"]) == ("suspended", "op-wang")
        lifted = await asyncio.to_thread(runner.invoke, carmove, ["lift", report_id, "--server", url])
        assert lifted.exit_code == 0 and "by op-wang" in lifted.output, lifted.output
        nowhere = f"http://127.0.0.1:{free_port()}"  # no server there: said so, no traceback
        down = await asyncio.to_thread(runner.invoke, carmove, ["reports", "--server", nowhere])
        assert down.exit_code == 1 and f"cannot reach {nowhere}" in down.output, down.output
    finally:
        server.should_exit = True
        await task
    assert (await client.get(f"{API}/stickers/{code}")).json()["refusal"] == ""  # lifted


async def test_the_demo_showcase_stickers_open_the_page_and_reach_nobody(street):
    client = street.client
    app = client.services.miniapps.apps["carmove"]
    first = await app.seed_demo()
    assert "2 showcase car stickers in Shenyang (2 new, 0 updated)" in first[0]
    assert "(0 new, 0 updated)" in (await app.seed_demo())[0]  # idempotent
    info = (await client.get(f"{API}/stickers/DEMO-ZHONGJIE-01")).json()
    assert (info["plate"], info["refusal"], info["owner_verified"]) == ("辽A·***45", "", False)
    assert (await client.get(f"{API}/stickers/DEMO-TIEXI-0002")).json()["plate"] == "辽A·***90"
    r = await street.ask("DEMO-ZHONGJIE-01", "other", "演示")
    assert r.status_code == 201 and r.json()["state"] == "waiting"


# ---- found by attacking the scene from outside (two workers over one database and Redis) ------------------


def _png(width: int, height: int, pixels: bytes, *, broken: bool = False) -> bytes:
    """A PNG made by hand: its header says ``width`` × ``height`` whatever ``pixels`` hold, and
    (``broken``) its second pixel chunk has no valid type, so Pillow opens it and fails only while
    reading the pixels (with a SyntaxError, which once answered 500)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    packed = zlib.compress(pixels)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", packed[:10])
        + chunk(b"\x00\x01d." if broken else b"IDAT", packed[10:])
        + chunk(b"IEND", b"")
    )


async def test_a_photo_broken_past_its_header_is_refused_and_a_good_one_still_taken(street):
    client = street.client
    owner = await street.owner()
    await street.car(owner, "辽A24680", prove=None)
    code = (await street.cars(owner))["辽A24680"]["sticker"]["code"]
    token = (await street.ask(code, "lights_on")).json()["request_token"]
    sender = {"X-Carmove-Token": token}
    pixels = b"".join(b"\x00" + bytes([200, 30, 30]) * 8 for _ in range(8))
    as_png = {**sender, "Content-Type": "image/png"}
    r = await client.put(f"{API}/sent/photo", content=_png(8, 8, pixels, broken=True), headers=as_png)
    assert (r.status_code, r.json()["code"]) == (422, "photo_not_image"), r.text
    assert (await client.get(f"{API}/sent", headers=sender)).json()["photo"] is False  # nothing kept
    # a header of 20000 × 20000 pixels (Pillow's own limit refuses it as it opens): too many pixels, as
    # said of one of 5000 × 5000 (ours), not "not an image"
    for side in (20000, 5000):
        r = await client.put(f"{API}/sent/photo", content=_png(side, side, pixels), headers=as_png)
        assert (r.status_code, r.json()["code"]) == (422, "photo_too_large"), r.text
    r = await client.put(f"{API}/sent/photo", content=_png(8, 8, pixels), headers=as_png)
    assert r.status_code == 201, r.text
    # once a photo is there, another upload is refused before it is decoded (it would cost the server
    # a third of a second for a 4096 × 4096 image, as often as a sender repeats it)
    r = await client.put(f"{API}/sent/photo", content=_png(8, 8, pixels, broken=True), headers=as_png)
    assert (r.status_code, r.json()["code"]) == (409, "photo_exists"), r.text


async def test_a_plate_typed_full_width_is_the_plate_and_no_province_is_no_plate(street):
    client = street.client
    owner = await street.owner()
    r = await client.post(f"{API}/cars", json={"plate": "辽Ａ·１３５７９"}, headers=owner.me)
    assert (r.status_code, r.json()["plate"]) == (201, "辽A13579"), r.text
    again = await client.post(f"{API}/cars", json={"plate": "辽a13579"}, headers=owner.me)
    assert (again.status_code, again.json()["car_id"]) == (200, r.json()["car_id"])  # the same car
    for junk in ("一A12345", "辽Aı2345"):
        r = await client.post(f"{API}/cars", json={"plate": junk}, headers=owner.me)
        assert (r.status_code, r.json()["code"]) == (422, "invalid_plate"), r.text
    assert list(await street.cars(owner)) == ["辽A13579"]


@pytest.mark.skipif(BACKEND != "postgres", reason="SQLite serialises writers: the race is PostgreSQL's")
async def test_concurrent_calls_of_one_request_bind_one_privacy_number(street):
    client = street.client
    owner = await street.owner()
    await street.car(owner, "辽A86420", prove=None)
    code = (await street.cars(owner))["辽A86420"]["sticker"]["code"]
    sender = {"X-Carmove-Token": (await street.ask(code, "blocking_car")).json()["request_token"]}
    results = await asyncio.gather(*(client.post(f"{API}/sent/call", headers=sender) for _ in range(8)))
    assert [r.status_code for r in results] == [200] * 8, [r.text for r in results]
    numbers = {r.json()["number"] for r in results}
    assert len(numbers) == 1, numbers  # one binding, the same number for every tap
    dev = client.services.miniapps.privacy_numbers
    assert str(dev.dial(numbers.pop(), street.clock.now())).endswith(owner.phone)


async def test_a_removed_car_sends_no_reminder_of_its_unanswered_requests(street):
    client = street.client
    owner = await street.owner()
    car = await street.car(owner, "辽A11223", prove=None)
    kept = await street.car(owner, "辽A33221", prove=None)
    for plate in ("辽A11223", "辽A33221"):
        code = (await street.cars(owner))[plate]["sticker"]["code"]
        assert (await street.ask(code, "blocking_exit")).status_code == 201
    r = await client.delete(f"{API}/cars/{car['car_id']}", headers=owner.me)
    assert r.status_code == 204
    street.clock.advance(61)
    await street.deliver()
    # the kept car's request is still reminded of, by message and SMS; the removed car's is not
    assert "辽A***1" in await street.sms(owner.phone)  # the kept car, masked (辽A33221)
    titles = [m["title"] for m in await inbox(client, owner.me)]
    assert titles.count("挪车请求仍在等待") == 1, titles
    reminders = [m["body"] for m in await inbox(client, owner.me) if m["title"] == "挪车请求仍在等待"]
    assert "辽A33221" in reminders[0] and "辽A11223" not in reminders[0]
    assert [c["plate"] for c in (await street.cars(owner)).values()] == [kept["plate"]]


async def test_one_sender_alone_cannot_use_up_a_stickers_hour(street):
    """Two a sender to one sticker an hour in this module (three the sticker from anyone): a harasser's
    third is refused and spends nothing of the sticker's, so someone with a real need still gets through."""
    client = street.client
    owner = await street.owner()
    await street.car(owner, "辽A97531", prove=None)
    code = (await street.cars(owner))["辽A97531"]["sticker"]["code"]
    for _ in range(2):
        assert (await street.ask(code, "other", ip="10.3.0.1")).status_code == 201
    r = await street.ask(code, "other", ip="10.3.0.1")
    assert (r.status_code, r.json()["code"]) == (429, "carmove_rate_limited")
    assert int(r.headers["retry-after"]) > 0
    assert (await street.ask(code, "fire_lane", ip="10.3.0.2")).status_code == 201  # someone else
    assert (await street.ask(code, "fire_lane", ip="10.3.0.3")).status_code == 429  # the sticker's three
    received = (await client.get(f"{API}/requests", headers=owner.me)).json()["items"]
    assert sorted(r["reason"] for r in received) == ["fire_lane", "other", "other"]


async def test_a_portrait_photo_stored_on_its_side_reaches_the_owner_upright(street):
    client = street.client
    owner = await street.owner()
    await street.car(owner, "辽A13131", prove=None)
    code = (await street.cars(owner))["辽A13131"]["sticker"]["code"]
    token = (await street.ask(code, "window_open")).json()["request_token"]
    sideways = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: turn 90° clockwise to view (a phone held upright)
    Image.new("RGB", (64, 48), (30, 30, 200)).save(sideways, format="JPEG", exif=exif)
    r = await client.put(
        f"{API}/sent/photo",
        content=sideways.getvalue(),
        headers={"Content-Type": "image/jpeg", "X-Carmove-Token": token},
    )
    assert r.status_code == 201, r.text
    [received] = (await client.get(f"{API}/requests", headers=owner.me)).json()["items"]
    kept = await client.get(f"{API}/requests/{received['request_id']}/photo", headers=owner.me)
    with Image.open(io.BytesIO(kept.content)) as img:
        assert img.size == (48, 64) and len(img.getexif()) == 0  # upright, and still no EXIF

    # an EXIF block a sender broke on purpose (a text tag said to hold numbers: Pillow's exif_transpose
    # fails writing it again) leaves the photo as its orientation says, never a 500
    street.clock.advance(1)  # the newest request in the owner's list
    token = (await street.ask(code, "alarm")).json()["request_token"]
    exif = Image.Exif()
    exif[0x0112] = 8  # Orientation: turn 90° anticlockwise to view
    exif[0x8825] = {1: "N"}  # GPS: latitude north, an ASCII tag ...
    crafted = io.BytesIO()
    Image.new("RGB", (40, 30), (9, 9, 9)).save(crafted, format="JPEG", exif=exif)
    ascii_tag = b"\x00\x01\x00\x02\x00\x00\x00\x02N\x00"
    assert crafted.getvalue().count(ascii_tag) == 1
    broken = crafted.getvalue().replace(ascii_tag, b"\x00\x01\x00\x08" + ascii_tag[4:])  # ... said SSHORT
    r = await client.put(
        f"{API}/sent/photo", content=broken, headers={"Content-Type": "image/jpeg", "X-Carmove-Token": token}
    )
    assert r.status_code == 201, r.text
    newest = (await client.get(f"{API}/requests", headers=owner.me)).json()["items"][0]
    kept = await client.get(f"{API}/requests/{newest['request_id']}/photo", headers=owner.me)
    with Image.open(io.BytesIO(kept.content)) as img:
        assert img.size == (30, 40) and len(img.getexif()) == 0


@pytest.mark.skipif(BACKEND != "postgres", reason="SQLite serialises writers: the race is PostgreSQL's")
async def test_requests_sent_while_the_car_is_removed_are_refused_or_withdrawn_never_a_500(street):
    """Each removal races three requests to its car's sticker: a request is either in before the removal
    (which then withdraws its reminder) or refused after it, never a 500 for a request that vanished."""
    client = street.client
    owner = await street.owner()
    statuses = []
    for n in range(6):
        car = await street.car(owner, f"辽A5{n}5{n}5", prove=False)  # answered: not pending
        code = car["sticker"]["code"]
        asks = [street.ask(code, "blocking_exit", ip=f"10.4.{n}.{k}") for k in range(3)]
        removal = client.delete(f"{API}/cars/{car['car_id']}", headers=owner.me)
        results = await asyncio.gather(asks[0], removal, *asks[1:])
        assert results[1].status_code == 204, results[1].text
        statuses += [r.status_code for k, r in enumerate(results) if k != 1]
    assert set(statuses) <= {201, 404}, statuses
    street.clock.advance(61)
    await street.deliver()
    assert "挪车请求仍在等待" not in [m["title"] for m in await inbox(client, owner.me)]
    assert "挪车" not in await street.sms(owner.phone)  # no reminder of a car no longer there


async def test_a_sixth_car_while_five_licence_requests_wait_says_what_to_do(street):
    client = street.client
    owner = await street.owner()
    cars = [await street.car(owner, f"辽A6{n}6{n}6", prove=None) for n in range(5)]  # none answered
    r = await client.post(f"{API}/cars", json={"plate": "辽A77766"}, headers=owner.me)
    assert (r.status_code, r.json()["code"]) == (409, "licence_requests_pending"), r.text
    assert "行驶证授权申请" in r.json()["detail"] and "5" in r.json()["detail"]
    assert "辽A77766" not in await street.cars(owner)  # nothing registered
    r = await client.post(
        f"/api/v1/me/licence-requests/{cars[0]['licence_request']}/refuse", json={}, headers=owner.me
    )
    assert r.status_code == 200, r.text
    assert (await client.post(f"{API}/cars", json={"plate": "辽A77766"}, headers=owner.me)).status_code == 201
