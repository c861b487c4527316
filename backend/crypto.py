"""Small cryptographic helpers over `cryptography` (AES-256-GCM envelopes) and the standard library (HMAC)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


class DecryptionError(Exception):
    pass


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64u(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def seal(key: bytes, plaintext: bytes, aad: bytes) -> str:
    """AES-256-GCM: base64url(nonce(12) || ciphertext || tag(16))."""
    nonce = os.urandom(12)
    return b64u(nonce + AESGCM(key).encrypt(nonce, plaintext, aad))


def open_sealed(key: bytes, token: str, aad: bytes) -> bytes:
    try:
        raw = unb64u(token)
        return AESGCM(key).decrypt(raw[:12], raw[12:], aad)
    except (InvalidTag, ValueError) as exc:
        raise DecryptionError("cannot decrypt (wrong key, wrong context or tampered data)") from exc


def keyed_hash(key: bytes, purpose: str, value: str | bytes) -> str:
    """HMAC-SHA256 hex of ``value`` under ``key``, separated by purpose (phone index, secret hash, ...)."""
    data = value.encode() if isinstance(value, str) else value
    return hmac.new(key, purpose.encode() + b"\x00" + data, hashlib.sha256).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


class Keyring:
    """Versioned AES keys: the first encrypts, any decrypts; ciphertexts carry their key id (``kid.ct``)."""

    def __init__(self, keys: list[tuple[str, bytes]]) -> None:
        if not keys:
            raise ValueError("a keyring needs at least one key")
        self._current = keys[0]
        self._by_id = dict(keys)

    def encrypt(self, plaintext: str, context: str) -> str:
        kid, key = self._current
        return f"{kid}.{seal(key, plaintext.encode(), context.encode())}"

    def decrypt(self, token: str, context: str) -> str:
        kid, _, body = token.partition(".")
        key = self._by_id.get(kid)
        if key is None:
            raise DecryptionError(f"unknown key id {kid!r}")
        return open_sealed(key, body, context.encode()).decode()

    def needs_rotation(self, token: str) -> bool:
        return token.partition(".")[0] != self._current[0]
