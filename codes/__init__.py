"""The citizen code (市民码): format, issuer keys, offline verifier, trust list, QR rendering.

``codes.verifier`` is the offline verifier in one self-contained file (the standard library,
cryptography and cbor2): a gate vendor copies it as it is. ``codes.format``, ``codes.entitlements`` and
``codes.trustlist`` re-export its names and add the issuer's side (they also need base45).
"""
