"""Access tokens: short-lived JWTs (ES256 or EdDSA, ``kid`` in the header), revocable per session."""

from __future__ import annotations

import uuid
from typing import Any

import jwt

from auth.principals import CitizenPrincipal
from auth.revocations import TOKEN_LEEWAY, Revocations
from backend.clock import Clock
from backend.errors import Unauthorized
from backend.keystore import KeyStore
from backend.settings import Settings
from backend.store import Store

AUDIENCE = "shengshitong-app"
ALLOWED_ALGS = ("ES256", "EdDSA")
LEEWAY_SECONDS = TOKEN_LEEWAY
_BEARER = {"WWW-Authenticate": 'Bearer realm="shengshitong"'}


def invalid_token(detail: str = "the access token is not valid") -> Unauthorized:
    return Unauthorized(detail, code="invalid_token", headers=_BEARER)


class AccessTokens:
    def __init__(
        self, keys: KeyStore, settings: Settings, clock: Clock, store: Store, revocations: Revocations
    ) -> None:
        self.keys = keys
        self._settings = settings
        self._clock = clock
        self._store = store
        self.revocations = revocations

    @property
    def store(self) -> Store:
        return self._store

    @property
    def ttl(self) -> int:
        return self._settings.access_token_ttl

    async def issue(self, *, citizen_id: str, session_id: str, device_id: str) -> str:
        key = await self.keys.active()
        now = int(self._clock.time())
        claims = {
            "iss": self._settings.token_issuer,
            "aud": AUDIENCE,
            "sub": citizen_id,
            "sid": session_id,
            "did": device_id,
            "iat": now,
            "exp": now + self.ttl,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, key.private, algorithm=key.alg, headers={"kid": key.kid, "typ": "JWT"})

    async def verify(self, token: str) -> CitizenPrincipal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise invalid_token() from None
        kid, alg = header.get("kid"), header.get("alg")
        if not isinstance(kid, str) or alg not in ALLOWED_ALGS:
            raise invalid_token()
        key = await self.keys.find(kid)
        if key is None or key.alg != alg:
            raise invalid_token()
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.public,
                algorithms=[key.alg],
                audience=AUDIENCE,
                issuer=self._settings.token_issuer,
                leeway=LEEWAY_SECONDS,
                # time is checked below against the injected clock, the one authority on "now"
                options={
                    "require": ["exp", "iat", "sub", "sid", "jti", "aud", "iss"],
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.PyJWTError:
            raise invalid_token() from None
        if not isinstance(claims["exp"], int) or claims["exp"] + LEEWAY_SECONDS < self._clock.time():
            raise invalid_token("the access token has expired; refresh it")
        if await self.revocations.session_revoked(str(claims["sid"])):
            raise invalid_token("this session has been signed out")
        return CitizenPrincipal(
            citizen_id=claims["sub"],
            session_id=claims["sid"],
            device_id=str(claims.get("did", "")),
            token_id=claims["jti"],
        )

    async def revoke_sessions(self, session_ids: list[str]) -> None:
        """Access tokens of these sessions stop working at once (their refresh families are revoked in the
        database already; this is the cache every check reads)."""
        await self.revocations.sessions_revoked(session_ids)
