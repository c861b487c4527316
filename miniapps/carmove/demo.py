"""Demo data for 扫码挪车 in Shenyang (沈阳): showcase stickers on cars of no citizen, so the public page
(what a stranger's phone opens) can be tried at once: ``/api/v1/apps/carmove/s/<code>``. Requests to
them are recorded and limited like any other, and reach nobody (no owner to tell). The owner's side is
tried with the demo citizen, whose vehicle licence (from the licences demo) is for 辽A12345: register
that plate in the wallet and approve the request for the licence."""

from __future__ import annotations

import uuid

from miniapps.carmove.tables import Car, Sticker
from miniapps.contract import tally, upsert_by_code

SHOWCASE = "demo-showcase"  # the openid of no citizen: the showcase cars' "owner"
# (sticker code, plate)
CARS = [
    ("DEMO-ZHONGJIE-01", "辽A12345"),  # 中街, 沈河区
    ("DEMO-TIEXI-0002", "辽AD67890"),  # a new-energy plate, 铁西区
]


async def seed() -> list[str]:
    done = []
    for code, registered in CARS:
        await (
            Car.insert(Car(id=uuid.uuid4(), openid=SHOWCASE, plate=registered, reason="demo"))
            .on_conflict(action="DO NOTHING")
            .run()
        )
        car = (
            await Car.select(Car.id).where((Car.openid == SHOWCASE) & (Car.plate == registered)).first().run()
        )
        assert car is not None
        done.append(
            await upsert_by_code(
                Sticker, code, {"car": car["id"], "openid": SHOWCASE, "state": "active", "replaced_at": None}
            )
        )
    return [
        f"carmove: {len(CARS)} showcase car stickers in Shenyang {tally(done)}, e.g."
        f" /api/v1/apps/carmove/s/{CARS[0][0]}"
    ]
