"""No log line or response carries an unmasked ID number, phone number or a raw token secret."""

import logging

import httpx

from auth.sms import HttpSmsGateway

ID_NUMBER = "21010219491231018X"


async def test_whole_flow_logs_nothing_secret(client, login, new_phone, auth_header, caplog):
    phone = new_phone()
    with caplog.at_level(logging.DEBUG):
        pair = await login(client, phone)
        await client.patch(
            "/api/v1/me", json={"real_name": "王五", "id_number": ID_NUMBER}, headers=auth_header(pair)
        )
        refreshed = (
            await client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
        ).json()
        await client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})  # reuse
        await client.get("/api/v1/me", headers=auth_header(refreshed))
        await client.delete("/api/v1/me", headers=auth_header(refreshed))
    # what the handlers wrote, formatted the way it leaves the process
    from backend.logs import JSONFormatter

    lines = "\n".join(JSONFormatter().format(r) for r in caplog.records)
    raw_messages = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("httpx"))
    for secret in (ID_NUMBER, phone, pair["access_token"], pair["refresh_token"], refreshed["refresh_token"]):
        assert secret not in lines
        assert secret not in raw_messages
    assert "otp sent to" in raw_messages and f"{phone[:3]}****{phone[-4:]}" in raw_messages


async def test_http_sms_gateway_posts_to_the_provider_and_reports_failures():
    seen = []

    def provider(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200 if len(seen) == 1 else 503)

    from datetime import UTC, datetime

    from backend.errors import ServiceUnavailable

    gateway = HttpSmsGateway("https://sms.example/send", "tok", transport=httpx.MockTransport(provider))
    await gateway.send("+8613812345678", "hello", at=datetime.now(UTC))
    assert seen[0].headers["authorization"] == "Bearer tok"
    assert seen[0].read() == b'{"phone":"+8613812345678","text":"hello"}'
    try:
        await gateway.send("+8613812345678", "again", at=datetime.now(UTC))
    except ServiceUnavailable as exc:
        assert exc.code == "sms_unavailable"
    else:
        raise AssertionError("a 503 from the provider must surface as ServiceUnavailable")
    finally:
        await gateway.close()


async def test_prod_configuration_has_no_dev_sms_route(make_client):
    async with make_client(sms_gateway="http", sms_http_url="http://127.0.0.1:9/none") as client:
        r = await client.get("/api/v1/dev/sms", params={"phone": "13812345678"})
        assert r.status_code == 404
        # the provider is unreachable: a clear 503, and nothing half-done (the citizen may ask again)
        sent = await client.post("/api/v1/auth/otp", json={"phone": "13812345678"})
        assert sent.status_code == 503 and sent.json()["code"] == "sms_unavailable"
