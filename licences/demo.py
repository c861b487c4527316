"""Demo data for the e-licence centre (``shengshi seed-demo``, never in production): the city's traffic
police as an issuer, and the demo citizen's driving licence and vehicle licence, so the wallet's licences
(``/wallet#licences``) show something to view, show and share.

Idempotent: the issuer is registered once (its credential's secret is not kept: the demo's licences are
issued here, through the service), and each licence is issued once by its number."""

from __future__ import annotations

from datetime import UTC, datetime

from auth.demo import DEMO_ID_NUMBER, DEMO_NAME
from backend.errors import Conflict
from licences.setup import LicenceServices
from licences.tables import LicenceIssuer

ISSUER = "sy-traffic"
DRIVING = {
    "name": DEMO_NAME,
    "sex": "男",
    "nationality": "中国",
    "birth_date": "1990-03-07",
    "address": "辽宁省沈阳市和平区南京南街1号",
    "licence_number": DEMO_ID_NUMBER,
    "licence_class": "C1",
    "first_issued": "2012-06-18",
    "valid_from": "2022-06-18",
    "valid_until": "2032-06-18",
    "issuing_authority": "沈阳市公安局交通警察支队",
}
VEHICLE = {
    "plate_number": "辽A12345",
    "vehicle_type": "小型轿车",
    "owner": DEMO_NAME,
    "use_character": "非营运",
    "model": "红旗牌CA7200",
    "vin": "LFPH4ACC0K1A00001",
    "registered_on": "2019-05-20",
    "issued_on": "2019-05-20",
    "issuing_authority": "沈阳市公安局交通警察支队",
}


async def seed(services: LicenceServices) -> list[str]:
    if not await LicenceIssuer.exists().where(LicenceIssuer.code == ISSUER).run():
        await services.issuers.create(
            ISSUER,
            "沈阳市公安局交通警察支队",
            "Shenyang Traffic Police",
            "traffic_police",
            ["driving_licence", "vehicle_licence"],
            actor="demo",
        )
    issuer = await services.issuers.get(ISSUER)
    if issuer["status"] != "active":
        return ["licences: the demo issuer is revoked; no demo licences"]
    made = []
    for kind, fields in (("driving_licence", DRIVING), ("vehicle_licence", VEHICLE)):
        try:
            _, created = await services.book.issue(
                issuer, kind, DEMO_ID_NUMBER, fields, datetime(2032, 6, 18, tzinfo=UTC)
            )
        except Conflict:  # changed by hand since: left as it is
            created = False
        made.append(f"{kind} ({'issued' if created else 'already there'})")
    return [f"licences: {ISSUER} issued the demo citizen's {' and '.join(made)}"]
