"""A mini-app hears of its orders' payments through its payment-event handler, naming the citizen by the
pairwise openid it knows them by."""

import pytest

from miniapps.contract import Manifest, MiniApp, PaymentEvent, ScanDecision, ScanEvent

pytestmark = pytest.mark.storage


class Listening(MiniApp):
    manifest = Manifest(id="listening", name_zh="收听", name_en="Listening", version="1.0")
    heard: list[PaymentEvent] = []

    async def on_scan(self, scan: ScanEvent) -> ScanDecision:
        return ScanDecision(allow=True)

    async def on_payment_event(self, event: PaymentEvent) -> None:
        self.heard.append(event)


async def test_a_payment_event_names_the_citizen_by_the_apps_openid(
    pay_client, merchant_of, login, new_phone, auth_header
):
    Listening.heard = []
    async with pay_client(miniapps=[Listening]) as client:
        app_auth = await merchant_of(client, "listening")
        me = auth_header(await login(client, new_phone()))
        code = (
            await client.post("/api/v1/miniapps/listening/authorize", json={"scopes": []}, headers=me)
        ).json()["code"]
        openid = (
            await client.post("/api/v1/miniapps/listening/token", json={"code": code}, headers=app_auth)
        ).json()["openid"]
        oid = (
            await client.post(
                "/api/v1/payments/orders",
                json={"reference": "ev-1", "amount": 300, "openid": openid},
                headers=app_auth,
            )
        ).json()["order_id"]
        assert (
            await client.post(f"/api/v1/payments/sandbox/orders/{oid}/pay", headers=me)
        ).status_code == 200
        dispatcher = client.services.payments.webhooks
        await dispatcher.tick()
        await dispatcher.drain()
        assert [(e.type, e.order_id, e.reference, e.openid, e.amount) for e in Listening.heard] == [
            ("order.paid", oid, "ev-1", openid, 300)
        ]
