"""Demo people the demo city's owners know (``shengshi seed-demo``): a citizen who verifies their real
name with one of these ID numbers (the development provider accepts any valid one) finds in the wallet
what the medical-insurance bureau, the social-security bureau and the health authority said. Everyone
else is, as in the city, not known to them until they push a change."""

from __future__ import annotations

from typing import Any

import msgspec

from codes.owners import Facts

SINCE = "2026-01-01T00:00:00+08:00"
# (ID number, name for the README, what each owner says)
PEOPLE: list[tuple[str, str, dict[str, dict[str, Any]]]] = [
    (
        "210102199003070011",
        "沈阳 (the demo citizen 13800138000, verified by seed-demo): insured, social security, green",
        {
            "medical": {"insured": True, "region": "210102", "type": "employee"},
            "social_security": {"insured": True, "card_status": "active"},
            "health": {"status": "green"},
        },
    ),
    (
        "210103199003070018",
        "沈一: insured (employee), social security, green",
        {
            "medical": {"insured": True, "region": "210103", "type": "employee"},
            "social_security": {"insured": True, "card_status": "active"},
            "health": {"status": "green"},
        },
    ),
    (
        "210102198506120020",
        "沈二: insured (resident), social security with a lost card, yellow",
        {
            "medical": {"insured": True, "region": "210102", "type": "resident"},
            "social_security": {"insured": True, "card_status": "reported_lost"},
            "health": {"status": "yellow", "reason": "密接人员，请居家观察 / close contact: stay home"},
        },
    ),
    (
        "210104197809230030",
        "沈三: not insured, no social security, green",
        {
            "medical": {"insured": False},
            "social_security": {"insured": False},
            "health": {"status": "green"},
        },
    ),
]


async def seed(facts: Facts) -> list[str]:
    applied = 0
    for number, _, said in PEOPLE:
        for kind, value in said.items():
            raw = msgspec.json.encode(
                {
                    "record_id": f"demo-{kind}-{number[-4:]}",
                    "id_number": number,
                    "effective_at": SINCE,
                    "value": value,
                }
            )
            out = await facts.change(kind, raw, source="demo")
            applied += out["outcome"] == "applied"
    return [f"entitlement owners: {len(PEOPLE)} demo people known ({applied} new facts)"]
