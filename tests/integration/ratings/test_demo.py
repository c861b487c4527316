"""``shengshi seed-demo`` and the evaluation centre: the demo citizen has a service to rate and a bad rating
whose unit answered (with the answer in the inbox), the same after a second run, and a new service to rate
once they rated the first; nothing in production."""

from datetime import UTC, datetime

import pytest

from backend.clock import FrozenClock
from backend.seed import seed_demo
from ratings.plugin import RatingsPlugin
from ratings.tables import Rating, RatingCase, RatingEvent
from tests.integration.messages.citizen import inbox

pytestmark = pytest.mark.storage


@pytest.fixture
async def demo(make_client, login):
    clock = FrozenClock(datetime(2026, 11, 24, 23, 0, tzinfo=UTC))
    async with make_client(clock=clock, access_token_ttl=60 * 86400) as client:
        yield client, clock


async def _lines(client) -> list[str]:
    return [line for line in await seed_demo(client.app) if line.startswith("ratings:")]


async def test_the_demo_citizen_has_a_service_to_rate_and_an_answered_bad_rating(demo, login):
    client, clock = demo
    assert await _lines(client) == [
        "ratings: a bad rating of a payment, answered by its unit, for the demo citizen (new)",
        "ratings: a payment to rate for the demo citizen (new)",
    ]
    pair = await login(client, "13800138000")
    me = {"Authorization": f"Bearer {pair['access_token']}"}
    (pending,) = (await client.get("/api/v1/me/ratings/pending", headers=me)).json()["items"]
    assert (pending["service_name"], pending["unit_name"], pending["state"]) == (
        "统一支付",
        "统一支付中心",
        "open",
    )
    (rated,) = (await client.get("/api/v1/me/ratings", headers=me)).json()["items"]
    assert (rated["level"], rated["unit_name"]) == ("dissatisfied", "统一支付中心")
    case = rated["case"]
    assert (case["state"], case["outcome"]) == ("answered", "rectified")
    assert case["answer"].startswith("已将支付结果查询改为每 10 秒一次")
    titles = [m["title"] for m in await inbox(client, me)]
    assert "您的评价已处理" in titles and "欢迎使用盛事通" in titles

    # a second run finds both and changes nothing
    counts = (await RatingEvent.count(), await Rating.count(), await RatingCase.count())
    assert await _lines(client) == [
        "ratings: a bad rating of a payment, answered by its unit, for the demo citizen (already there)",
        "ratings: a payment to rate for the demo citizen (already there)",
    ]
    assert (await RatingEvent.count(), await Rating.count(), await RatingCase.count()) == counts

    # rated: the next run gives the demo citizen another one to rate
    r = await client.post(
        "/api/v1/me/ratings", json={"event_id": pending["id"], "level": "satisfied"}, headers=me
    )
    assert r.status_code == 201, r.text
    assert (await client.get("/api/v1/me/ratings/pending", headers=me)).json()["items"] == []
    assert (await _lines(client))[1] == "ratings: a payment to rate for the demo citizen (new)"
    (again,) = (await client.get("/api/v1/me/ratings/pending", headers=me)).json()["items"]
    assert again["id"] != pending["id"]
    # its window closed: another one too
    clock.advance(16 * 86400)
    assert (await _lines(client))[1] == "ratings: a payment to rate for the demo citizen (new)"
    assert len((await client.get("/api/v1/me/ratings/pending", headers=me)).json()["items"]) == 1


async def test_no_demo_ratings_in_production(demo):
    client, _ = demo
    await seed_demo(client.app)  # the demo citizen exists
    before = await RatingEvent.count()
    assert await RatingsPlugin(client.services.ratings, env="prod").seed_demo() == []
    assert await RatingEvent.count() == before
