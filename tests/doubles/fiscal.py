"""A local double of the fiscal system (财政非税收入收缴系统): it receives the platform's payment
notifications over httpx (a transport, no port), verifies each signature with the platform's published
key set exactly as docs/fees.md tells an integrator to, answers with an e-receipt number, and can be told
to fail the next few deliveries."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable
from typing import Any

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

HEADER = "Shengshitong-Fiscal-Signature"


def _b64u(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def public_key(jwk: dict[str, Any]) -> ec.EllipticCurvePublicKey:
    assert jwk["kty"] == "EC" and jwk["crv"] == "P-256" and jwk["alg"] == "ES256"
    x = int.from_bytes(_b64u(jwk["x"]), "big")
    y = int.from_bytes(_b64u(jwk["y"]), "big")
    return ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()


def verify(
    header: str, body: bytes, keys: dict[str, ec.EllipticCurvePublicKey], *, now: float, tolerance: int = 300
) -> bool:
    """``t=<unix>,kid=<kid>,sig=<base64url r||s>``: ES256 over ``"<t>." + body`` with the key ``kid``."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        ts, kid, sig = int(parts["t"]), parts["kid"], _b64u(parts["sig"])
    except (KeyError, ValueError):
        return False
    key = keys.get(kid)
    if key is None or len(sig) != 64 or abs(now - ts) > tolerance:
        return False
    der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    try:
        key.verify(der, f"{ts}.".encode() + body, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


class FiscalDouble(httpx.AsyncBaseTransport):
    def __init__(self, jwks: dict[str, Any], now: Callable[[], float]) -> None:
        self.keys = {k["kid"]: public_key(k) for k in jwks["keys"]}
        self.now = now
        self.fail_next = 0  # answer this many deliveries 503 before accepting
        self.received: list[dict[str, Any]] = []  # the verified notifications accepted
        self.refused: list[str] = []  # why each other request was refused
        self.receipts: dict[str, str] = {}  # notice number -> the e-receipt number answered

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        if not verify(request.headers.get(HEADER, ""), body, self.keys, now=self.now()):
            self.refused.append("bad signature")
            return httpx.Response(401, json={"error": "bad signature"})
        if self.fail_next > 0:
            self.fail_next -= 1
            self.refused.append("unavailable")
            return httpx.Response(503, json={"error": "try later"})
        payload = json.loads(body)
        self.received.append(payload)
        receipt = self.receipts.setdefault(payload["notice_no"], "EP" + secrets.token_hex(6).upper())
        return httpx.Response(200, json={"receipt_no": receipt})
