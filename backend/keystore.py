"""Signing keys with ids, kept in the database with the private half sealed by the key-encryption key.

One :class:`KeyStore` per purpose (``access`` tokens, citizen ``code`` issuer keys, the trust-list
``trust-root``). Rotation adds a new key that signs from then on and keeps the old public key published
until everything it signed has expired. Workers pick up a rotation on their next reload (at most
``reload_interval`` seconds later) or at once when they meet a kid they do not know.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from backend import db
from backend.clock import Clock
from backend.crypto import b64u, open_sealed, seal
from backend.tables import SigningKey

Alg = Literal["ES256", "EdDSA"]
PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey


def generate_private_key(alg: Alg) -> PrivateKey:
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(f"unsupported algorithm {alg!r}")


def public_jwk(public: PublicKey, kid: str, alg: str) -> dict[str, Any]:
    if isinstance(public, ec.EllipticCurvePublicKey):
        numbers = public.public_numbers()
        return {
            "kty": "EC",
            "crv": "P-256",
            "x": b64u(numbers.x.to_bytes(32, "big")),
            "y": b64u(numbers.y.to_bytes(32, "big")),
            "kid": kid,
            "alg": alg,
            "use": "sig",
        }
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "x": b64u(raw), "kid": kid, "alg": alg, "use": "sig"}


@dataclass(frozen=True)
class LoadedKey:
    kid: str
    alg: str
    private: PrivateKey
    public: PublicKey
    jwk: dict[str, Any]
    created_at: datetime
    retired_at: datetime | None
    publish_until: datetime | None

    @property
    def kid_bytes(self) -> bytes:
        from backend.crypto import unb64u

        return unb64u(self.kid)


class KeyStore:
    def __init__(
        self,
        purpose: str,
        kek: bytes,
        clock: Clock,
        *,
        default_alg: Alg = "ES256",
        publish_overlap: float = 3600,
        reload_interval: float = 60,
        kid_bytes: int = 6,
    ) -> None:
        self.purpose = purpose
        self._kek = kek
        self._clock = clock
        self.default_alg = default_alg
        self.publish_overlap = publish_overlap
        self.reload_interval = reload_interval
        self._kid_bytes = kid_bytes
        self._keys: dict[str, LoadedKey] = {}
        self._active: LoadedKey | None = None
        self._loaded_at = float("-inf")
        self._unknown_kid_reload_at = float("-inf")

    # ---- loading ---------------------------------------------------------------------------------
    def _aad(self, kid: str) -> bytes:
        return f"{self.purpose}:{kid}".encode()

    async def load(self) -> None:
        rows = (
            await SigningKey.select()
            .where(SigningKey.purpose == self.purpose)
            .order_by(SigningKey.created_at)
            .run()
        )
        now = self._clock.now()
        keys: dict[str, LoadedKey] = {}
        active = None
        for row in rows:
            if row["publish_until"] is not None and row["publish_until"] <= now:
                continue
            pem = open_sealed(self._kek, row["private_sealed"], self._aad(row["kid"]))
            private = serialization.load_der_private_key(pem, password=None)
            assert isinstance(private, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey)
            key = LoadedKey(
                kid=row["kid"],
                alg=row["alg"],
                private=private,
                public=private.public_key(),
                jwk=_as_dict(row["public_jwk"]),
                created_at=row["created_at"],
                retired_at=row["retired_at"],
                publish_until=row["publish_until"],
            )
            keys[key.kid] = key
            if key.retired_at is None:
                active = key  # the newest unretired key signs
        self._keys, self._active = keys, active
        self._loaded_at = time.monotonic()

    async def _maybe_reload(self) -> None:
        if time.monotonic() - self._loaded_at > self.reload_interval:
            await self.load()

    async def ensure(self) -> LoadedKey:
        """Load the keys; create the first one if there is none (idempotent)."""
        await self.load()
        if self._active is None:
            await self.rotate()
        assert self._active is not None
        return self._active

    async def rotate(self, alg: Alg | None = None) -> LoadedKey:
        """Add a new signing key; the previous one stops signing but stays published for the overlap."""
        alg = alg or self.default_alg
        private = generate_private_key(alg)
        kid = b64u(os.urandom(self._kid_bytes))
        der = private.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        now = self._clock.now()
        async with db.transaction():
            await (
                SigningKey.update(
                    {
                        SigningKey.retired_at: now,
                        SigningKey.publish_until: now + timedelta(seconds=self.publish_overlap),
                    }
                )
                .where((SigningKey.purpose == self.purpose) & SigningKey.retired_at.is_null())
                .run()
            )
            await SigningKey.insert(
                SigningKey(
                    purpose=self.purpose,
                    kid=kid,
                    alg=alg,
                    created_at=now,
                    private_sealed=seal(self._kek, der, self._aad(kid)),
                    public_jwk=public_jwk(private.public_key(), kid, alg),
                )
            ).run()
        await self.load()
        assert self._active is not None and self._active.kid == kid
        return self._active

    # ---- use -------------------------------------------------------------------------------------
    async def active(self) -> LoadedKey:
        await self._maybe_reload()
        if self._active is None:
            raise RuntimeError(
                f"no active {self.purpose} signing key: run 'shengshi migrate' (it creates one)"
            )
        return self._active

    async def find(self, kid: str) -> LoadedKey | None:
        """The key with this id, reloading once (rate-limited) when it is unknown: another worker may
        have rotated."""
        key = self._keys.get(kid)
        if key is None and time.monotonic() - self._unknown_kid_reload_at > 5:
            self._unknown_kid_reload_at = time.monotonic()
            await self.load()
            key = self._keys.get(kid)
        return key

    async def published(self) -> list[LoadedKey]:
        await self._maybe_reload()
        now = self._clock.now()
        return [k for k in self._keys.values() if k.publish_until is None or k.publish_until > now]


def _as_dict(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        import json

        return dict(json.loads(value))
    return dict(value)
