"""The citizen code (市民码): format, issuer keys, offline verifier, trust list, QR rendering.

``codes.format``, ``codes.entitlements``, ``codes.verifier`` and ``codes.trustlist`` depend only on
cryptography, cbor2 and base45, so a gate vendor can embed them without the web app.
"""
