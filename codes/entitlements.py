"""The merged entitlements carried in a code, and their compact CBOR form.

Compact form (the private claim ``-65537`` of the CWT): a CBOR map with small integer keys

| key | entitlement | value |
| --- | --- | --- |
| 1 | medical insurance (医保) | text: the insured region's 6-digit code; absent when not insured |
| 2 | transit (乘车) | uint: 1 allowed, 0 refused (unpaid fares); absent when unknown |
| 3 | health (健康码) | uint: 0 green, 1 yellow, 2 red |
| 4 | tickets (门票) | true when the citizen holds tickets (the gate looks them up online) |
| 5 | social security (社保) | true when insured |
"""

from __future__ import annotations

from typing import Any

import msgspec

HEALTH_COLOURS = ("green", "yellow", "red")
ENTITLEMENT_NAMES = ("medical", "transit", "health", "tickets", "social_security")


class Entitlements(msgspec.Struct, frozen=True, omit_defaults=True):
    medical_region: str | None = None  # insured in this region (6-digit administrative code)
    transit: bool | None = None  # None: no standing known; False: refused (unpaid fares)
    health: str = "green"
    tickets: bool = False
    social_security: bool = False

    @property
    def medical(self) -> bool:
        return self.medical_region is not None

    def to_compact(self) -> dict[int, Any]:
        out: dict[int, Any] = {}
        if self.medical_region is not None:
            out[1] = self.medical_region
        if self.transit is not None:
            out[2] = 1 if self.transit else 0
        out[3] = HEALTH_COLOURS.index(self.health)
        if self.tickets:
            out[4] = True
        if self.social_security:
            out[5] = True
        return out

    @classmethod
    def from_compact(cls, data: Any) -> Entitlements:
        if not isinstance(data, dict):
            raise ValueError("entitlements must be a map")
        region = data.get(1)
        transit = data.get(2)
        health = data.get(3, 0)
        if region is not None and not (isinstance(region, str) and len(region) == 6 and region.isdigit()):
            raise ValueError("medical region must be a 6-digit code")
        if transit not in (None, 0, 1) or health not in (0, 1, 2):
            raise ValueError("bad transit or health value")
        return cls(
            medical_region=region,
            transit=None if transit is None else bool(transit),
            health=HEALTH_COLOURS[health],
            tickets=data.get(4) is True,
            social_security=data.get(5) is True,
        )

    def readable(self) -> dict[str, Any]:
        return {
            "medical": {"insured": self.medical, "region": self.medical_region},
            "transit": {
                "allowed": self.transit is not False,
                "refused_reason": None if self.transit is not False else "unpaid_fares",
            },
            "health": {"status": self.health},
            "tickets": {"has_tickets": self.tickets},
            "social_security": {"insured": self.social_security},
        }

    def grants(self, requirement: str | None) -> bool:
        """Whether this code entitles its holder to a scan context that requires ``requirement``."""
        if requirement is None:
            return True
        if requirement == "medical":
            return self.medical
        if requirement == "transit":
            return self.transit is not False and self.health != "red"
        if requirement == "tickets":
            return self.tickets
        if requirement == "social_security":
            return self.social_security
        if requirement == "health":
            return self.health == "green"
        raise ValueError(f"unknown entitlement requirement {requirement!r}")
