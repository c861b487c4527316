"""The merged entitlements carried in a code, and their compact CBOR form.

Compact form (the private claim ``-65537`` of the CWT): a CBOR map with small integer keys

| key | entitlement | value |
| --- | --- | --- |
| 1 | medical insurance (医保) | text: the insured region's 6-digit code; absent when not insured |
| 2 | transit (乘车) | uint: 1 allowed, 0 refused (unpaid fares); absent when unknown |
| 3 | health (健康码) | uint: 0 green, 1 yellow, 2 red |
| 4 | tickets (门票) | true when the citizen holds tickets (the gate looks them up online) |
| 5 | social security (社保) | true when insured |

The class lives in :mod:`codes.verifier` (the offline verifier is one self-contained file) and is
re-exported here for the rest of the project.
"""

from __future__ import annotations

from codes.verifier import ENTITLEMENT_NAMES, HEALTH_COLOURS, Entitlements

__all__ = ["ENTITLEMENT_NAMES", "HEALTH_COLOURS", "Entitlements"]
