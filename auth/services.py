"""Identity services (business logic; no HTTP types). Parts live in ``_*.py`` modules."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from auth._machines import MachineCredentials, parse_basic
from auth._otp import OtpService
from auth._profile import ProfileService
from auth._sessions import SessionService, TokenPair
from auth._tokens import AUDIENCE, AccessTokens
from auth.pairwise import Pairwise
from auth.revocations import Revocations
from auth.sms import DevSmsGateway, HttpSmsGateway, SmsGateway
from backend.crypto import Keyring
from backend.keystore import KeyStore
from backend.runtime import Runtime, Slot

__all__ = [
    "AUDIENCE",
    "AUTH",
    "AccessTokens",
    "AuthServices",
    "MachineCredentials",
    "OtpService",
    "ProfileService",
    "Revocations",
    "SessionService",
    "TokenPair",
    "build_auth_services",
    "parse_basic",
]

ACCESS_KEYS = "access"


@dataclass
class AuthServices:
    sms: SmsGateway
    keys: KeyStore
    tokens: AccessTokens
    revocations: Revocations
    otp: OtpService
    sessions: SessionService
    profile: ProfileService
    machines: MachineCredentials
    pairwise: Pairwise


AUTH = Slot[AuthServices]("auth")


def create_sms_gateway(runtime: Runtime) -> SmsGateway:
    s = runtime.settings
    gateways: dict[str, Callable[[], SmsGateway]] = {
        "dev": lambda: DevSmsGateway(runtime.store),
        "http": lambda: HttpSmsGateway(s.sms_http_url, s.sms_http_token),
    }
    return gateways[s.sms_gateway]()


def build_auth_services(runtime: Runtime) -> AuthServices:
    s, clock, store = runtime.settings, runtime.clock, runtime.store
    pii = Keyring(s.pii_keyring())
    keys = KeyStore(
        ACCESS_KEYS, s.secret_bytes("key_encryption_key"), clock, publish_overlap=s.access_token_ttl + 300
    )
    sms = create_sms_gateway(runtime)
    revocations = Revocations(s, clock, store)
    tokens = AccessTokens(keys, s, clock, store, revocations)
    otp = OtpService(s, store, sms, clock)
    return AuthServices(
        sms=sms,
        keys=keys,
        tokens=tokens,
        revocations=revocations,
        otp=otp,
        sessions=SessionService(s, clock, otp, tokens, pii),
        profile=ProfileService(s, clock, pii),
        machines=MachineCredentials(s, clock, store),
        pairwise=Pairwise(s.secret_bytes("secret_key")),
    )
