"""Demo data for identity (``shengshi seed-demo``, never in production): a citizen whose real name the
development provider verified, so ``make run`` shows a verified citizen (log in to the wallet with the
phone below and the code from ``GET /api/v1/dev/sms``)."""

from __future__ import annotations

from auth.realname import DevelopmentRealNameProvider
from auth.services import AuthServices

DEMO_PHONE = "+8613800138000"
DEMO_NAME = "沈阳"  # a demo name: 沈 is a surname; the city is the demo's
DEMO_ID_NUMBER = "210102199003070011"  # 沈阳市和平区, born 1990-03-07, valid check digit (GB 11643)


async def seed(auth: AuthServices) -> list[str]:
    citizen_id = await auth.sessions.ensure_citizen(DEMO_PHONE)
    phone = DEMO_PHONE.removeprefix("+86")  # shown whole: it is the demo's
    if not isinstance(auth.realname.provider, DevelopmentRealNameProvider):
        return [f"identity: demo citizen {phone} (not verified: the provider is not the development one)"]
    await auth.realname.verify(citizen_id, real_name=DEMO_NAME, id_number=DEMO_ID_NUMBER, ip="")
    return [f"identity: demo citizen {phone}, real name verified (development provider, two_factor)"]
