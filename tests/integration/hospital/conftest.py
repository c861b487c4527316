"""The hospital's test world: the demo hospital at 08:30 China time, its check-in kiosk, the hospital's
backend credentials, and patients (insured by the medical-insurance bureau's word, or not)."""

import base64
from datetime import UTC, datetime

import pytest

from backend.clock import FrozenClock


@pytest.fixture
async def hospital(
    make_client, login, new_phone, enrol_scanner, new_id_number, verify_real_name, enrol_source, push_change
):
    clock = FrozenClock(datetime(2026, 11, 25, 0, 30, tzinfo=UTC))  # 08:30 China time
    async with make_client(clock=clock, access_token_ttl=30 * 86400) as client:
        app = client.services.miniapps.apps["hospital"]
        await app.seed_demo()
        gate = await enrol_scanner(client, "hospital", context="hospital-checkin", place="H-SHENGJING")
        cred = await client.services.auth.machines.create("miniapp", app_id="hospital")
        backend = {
            "Authorization": "Basic "
            + base64.b64encode(f"{cred['client_id']}:{cred['client_secret']}".encode()).decode()
        }

        bureau = await enrol_source(client, "medical", name="沈阳市医疗保障局")

        async def patient(insured=True):
            pair = await login(client, new_phone())
            me = {"Authorization": f"Bearer {pair['access_token']}"}
            if insured:  # real-name verified, and insured in 沈阳市和平区 by the bureau's word
                number = new_id_number()
                await verify_real_name(client, pair, "周九", number)
                await push_change(
                    client, bureau, number, {"insured": True, "region": "210102", "type": "employee"}
                )
            return me

        yield client, clock, gate, backend, patient
