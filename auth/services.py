"""Identity services (business logic; no HTTP types). Parts live in ``_*.py`` modules."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from auth._machines import MachineCredentials, parse_basic
from auth._otp import OtpService
from auth._profile import ProfileService
from auth._realname import RealNameObserver, RealNameService
from auth._sessions import SessionService, TokenPair
from auth._tokens import AUDIENCE, AccessTokens
from auth.pairwise import Pairwise
from auth.realname import DevelopmentRealNameProvider, RealNameProvider
from auth.realname_http import HttpRealNameProvider
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
    "RealNameObserver",
    "RealNameService",
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
    realname: RealNameService
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


def create_realname_provider(runtime: Runtime) -> RealNameProvider:
    s = runtime.settings
    providers: dict[str, Callable[[], RealNameProvider]] = {
        "development": DevelopmentRealNameProvider,
        "http": lambda: HttpRealNameProvider(
            s.realname_http_url,
            s.realname_http_app_id,
            s.realname_http_secret,
            name=s.realname_http_name,
            timeout=s.realname_http_timeout,
            max_skew=s.realname_http_max_skew,
        ),
    }
    return providers[s.realname_provider]()


def build_auth_services(
    runtime: Runtime, realname_observers: list[RealNameObserver] | None = None
) -> AuthServices:
    """``realname_observers``: told (with the citizen id) when a citizen's real name is verified or
    cleared; a subscriber built later appends its own to ``AuthServices.realname.observers``."""
    s, clock, store = runtime.settings, runtime.clock, runtime.store
    pii = Keyring(s.pii_keyring())
    keys = KeyStore(
        ACCESS_KEYS, s.secret_bytes("key_encryption_key"), clock, publish_overlap=s.access_token_ttl + 300
    )
    sms = create_sms_gateway(runtime)
    revocations = Revocations(s, clock, store)
    tokens = AccessTokens(keys, s, clock, store, revocations)
    otp = OtpService(s, store, sms, clock)
    realname = RealNameService(s, clock, store, pii, create_realname_provider(runtime), realname_observers)
    return AuthServices(
        sms=sms,
        keys=keys,
        tokens=tokens,
        revocations=revocations,
        otp=otp,
        sessions=SessionService(s, clock, otp, tokens, pii, realname),
        profile=ProfileService(pii, realname),
        realname=realname,
        machines=MachineCredentials(s, clock, store),
        pairwise=Pairwise(s.secret_bytes("secret_key")),
    )
