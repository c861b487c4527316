"""Signing keys with ids, kept in the database with the private half sealed by the key-encryption key.

One :class:`KeyStore` per purpose (``access`` tokens, citizen ``code`` issuer keys, the trust-list
``trust-root``). Rotation adds a new key and keeps the old public key published until everything it
signed has expired. Workers pick up a rotation on their next reload (at most ``reload_interval`` seconds
later) or at once when they meet a kid they do not know.

A key is published from the moment it is added, and signs from its ``active_from``: at once, unless
the store has an ``activation_delay``. Citizen-code keys have one: an offline scanner only learns a key
from the trust list it fetches every ``refresh_after`` seconds, from a worker whose keys are up to
``reload_interval`` seconds old, so a new code key signs only once every scanner can know it. Which key
signs is decided by the time (the newest key whose ``active_from`` has come), so every worker switches
at the same moment, without telling each other.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from backend import db
from backend.clock import Clock
from backend.crypto import b64u, open_sealed, seal, unb64u
from backend.tables import SigningKey

Alg = Literal["ES256", "EdDSA"]
RELOAD_INTERVAL = 60.0  # seconds a worker keeps its copy of the keys before it reads them again
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
    created_at: datetime  # published from then on
    active_from: datetime  # signs from then on ...
    retired_at: datetime | None  # ... until then
    publish_until: datetime | None

    def signs_at(self, when: datetime) -> bool:
        return self.active_from <= when and (self.retired_at is None or when < self.retired_at)

    @property
    def kid_bytes(self) -> bytes:

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
        reload_interval: float = RELOAD_INTERVAL,
        activation_delay: float = 0,
        kid_bytes: int = 6,
    ) -> None:
        self.purpose = purpose
        self._kek = kek
        self._clock = clock
        self.default_alg = default_alg
        self.publish_overlap = publish_overlap
        self.reload_interval = reload_interval
        self.activation_delay = activation_delay
        self._kid_bytes = kid_bytes
        self._keys: dict[str, LoadedKey] = {}
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
                active_from=row["active_from"] or row["created_at"],
                retired_at=row["retired_at"],
                publish_until=row["publish_until"],
            )
            keys[key.kid] = key
        self._keys = keys
        self._loaded_at = self._clock.monotonic()

    async def _maybe_reload(self) -> None:
        if self._clock.monotonic() - self._loaded_at > self.reload_interval:
            await self.load()

    def _signing(self) -> LoadedKey | None:
        """The key that signs now: the newest one whose time has come (and not gone). A clock behind
        the first key's start (another machine's made it a moment ago) gets the first key."""
        now = self._clock.now()
        live = [k for k in self._keys.values() if k.signs_at(now)]
        if live:
            return max(live, key=lambda k: k.active_from)
        waiting = [k for k in self._keys.values() if k.retired_at is None or now < k.retired_at]
        return min(waiting, key=lambda k: k.active_from, default=None)

    async def ensure(self) -> LoadedKey:
        """Load the keys; create the first one, signing at once, if none signs (idempotent)."""
        await self.load()
        if self._signing() is None:
            await self.rotate(activation_delay=0)
        key = self._signing()
        assert key is not None
        return key

    async def rotate(self, alg: Alg | None = None, *, activation_delay: float | None = None) -> LoadedKey:
        """Add a new key, published from now on, that signs after ``activation_delay`` seconds (the
        store's own by default); the key signing until then stops at that moment and stays published
        for the overlap. Returns the new key."""
        alg = alg or self.default_alg
        delay = self.activation_delay if activation_delay is None else activation_delay
        private = generate_private_key(alg)
        kid = b64u(os.urandom(self._kid_bytes))
        der = private.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        now = self._clock.now()
        takes_over = now + timedelta(seconds=delay)
        async with db.transaction():
            await (
                SigningKey.update(
                    {
                        SigningKey.retired_at: takes_over,
                        SigningKey.publish_until: takes_over + timedelta(seconds=self.publish_overlap),
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
                    active_from=takes_over,
                    private_sealed=seal(self._kek, der, self._aad(kid)),
                    public_jwk=public_jwk(private.public_key(), kid, alg),
                )
            ).run()
        await self.load()
        return self._keys[kid]

    # ---- use -------------------------------------------------------------------------------------
    async def active(self) -> LoadedKey:
        """The key that signs now."""
        await self._maybe_reload()
        key = self._signing()
        if key is None:
            raise RuntimeError(
                f"no active {self.purpose} signing key: run 'shengshi migrate' (it creates one)"
            )
        return key

    async def find(self, kid: str) -> LoadedKey | None:
        """The key with this id, reloading once (rate-limited) when it is unknown: another worker may
        have rotated."""
        key = self._keys.get(kid)
        if key is None and self._clock.monotonic() - self._unknown_kid_reload_at > 5:
            self._unknown_kid_reload_at = self._clock.monotonic()
            await self.load()
            key = self._keys.get(kid)
        return key

    async def published(self) -> list[LoadedKey]:
        """The keys to publish: every key until its ``publish_until``, one that does not sign yet too."""
        await self._maybe_reload()
        now = self._clock.now()
        return [k for k in self._keys.values() if k.publish_until is None or k.publish_until > now]


def _as_dict(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        return dict(json.loads(value))
    return dict(value)
