"""The floor of the online scan benchmark: the bare handler (:mod:`bench._bare_app`) plus ONE ES256
verification, with raw ``cryptography``, of a real signature over a real message (a citizen code's COSE
Sig_structure): the one piece of a scan's work no design can skip. Served the same way as the others;
a gate's scan and a till's pay-code scan (:mod:`bench._bare_app`'s two routes)."""

import os
import time

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils
from litestar import Litestar, post

from bench._bare_app import PayScan, Scan, pay_answer
from codes import format as fmt
from codes.entitlements import Entitlements


def _signed() -> tuple[ec.EllipticCurvePublicKey, bytes, bytes]:
    """A code signed the way the issuer signs one: (public key, DER signature, the signed message)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = int(time.time())
    token, _ = fmt.encode(
        private_key=key,
        alg="ES256",
        kid=os.urandom(6),
        issuer="SST",
        iat=now,
        exp=now + 60,
        entitlements=Entitlements(transit=True),
    )
    decoded = fmt.decode(token)
    r, s = decoded.signature[:32], decoded.signature[32:]
    der = utils.encode_dss_signature(int.from_bytes(r, "big"), int.from_bytes(s, "big"))
    return key.public_key(), der, fmt.sig_structure(decoded.protected, decoded.payload)


PUBLIC, SIGNATURE, MESSAGE = _signed()
ECDSA = ec.ECDSA(hashes.SHA256())


@post("/api/v1/scans", status_code=200, sync_to_thread=False)
def scan(data: Scan) -> dict[str, str]:
    PUBLIC.verify(SIGNATURE, MESSAGE, ECDSA)  # raises InvalidSignature: never, the signature is real
    return {
        "result": "allow",
        "reason": "ok",
        "app_id": "floor",
        "record_id": data.record_id,
        "token_chars": str(len(data.token)),
    }


@post("/api/v1/payments/paycode", status_code=200, sync_to_thread=False)
def paycode(data: PayScan) -> dict[str, object]:
    PUBLIC.verify(SIGNATURE, MESSAGE, ECDSA)
    return pay_answer(data, "floor")


app = Litestar([scan, paycode], logging_config=None)
