"""OTP tries and sending limits, on this pass's store (in-process or Redis)."""

import re


async def _send(client, phone):
    return await client.post("/api/v1/auth/otp", json={"phone": phone})


async def test_sixth_wrong_try_fails_even_with_the_right_code(client, new_phone):
    phone = new_phone()
    assert (await _send(client, phone)).status_code == 202
    text = (await client.get("/api/v1/dev/sms", params={"phone": phone})).json()["text"]
    code = re.search(r"\d{6}", text).group(0)
    wrong = "111111" if code != "111111" else "222222"
    for _ in range(5):
        r = await client.post("/api/v1/auth/login", json={"phone": phone, "code": wrong, "device_id": "d"})
        assert r.status_code == 401 and r.json()["code"] == "otp_invalid"
    r = await client.post("/api/v1/auth/login", json={"phone": phone, "code": code, "device_id": "d"})
    assert r.status_code == 401 and r.json()["code"] == "otp_locked"
    # a new code starts over
    assert (await _send(client, phone)).status_code == 202
    code = re.search(r"\d{6}", (await client.get("/api/v1/dev/sms", params={"phone": phone})).json()["text"])[
        0
    ]
    r = await client.post("/api/v1/auth/login", json={"phone": phone, "code": code, "device_id": "d"})
    assert r.status_code == 200


async def test_sending_beyond_the_limits_gets_429_with_retry_after(make_client, new_phone):
    async with make_client(otp_resend_interval=60, otp_per_phone_per_hour=5, otp_per_ip_per_hour=8) as client:
        phone = new_phone()
        assert (await _send(client, phone)).status_code == 202
        cooldown = await _send(client, phone)
        assert cooldown.status_code == 429
        assert cooldown.headers["content-type"].startswith("application/problem+json")
        assert 1 <= int(cooldown.headers["retry-after"]) <= 60
        assert cooldown.json()["code"] == "rate_limited"
        # other phones from the same client: the per-IP limit (8 an hour) stops the 9th request
        statuses = [(await _send(client, new_phone())).status_code for _ in range(6)]
        assert statuses == [202] * 6
        r = await _send(client, new_phone())
        assert r.status_code == 429
        assert 3500 < int(r.headers["retry-after"]) <= 3600


async def test_per_phone_hourly_limit(make_client, new_phone):
    async with make_client(
        otp_resend_interval=0, otp_per_phone_per_hour=3, otp_per_ip_per_hour=100
    ) as client:
        phone = new_phone()
        assert [(await _send(client, phone)).status_code for _ in range(3)] == [202, 202, 202]
        r = await _send(client, phone)
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 3000
