"""The Web Push sender against the local push service double, in-process (an httpx MockTransport): the
double checks VAPID with joserfc and decrypts as a browser would with its own RFC 8291 code, so a test
passes only when a browser would read the payload and a push service would take the request."""

import logging
from datetime import UTC, datetime
from email.utils import format_datetime

import http_ece
import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from backend.errors import InvalidInput
from messages.webpush import (
    JWT_LIFETIME,
    MAX_PAYLOAD,
    PushTarget,
    WebPushSender,
    application_server_key,
    check_target,
)
from tests.integration.messages.pushservice import PushService, UserAgent, b64url, unb64url

MOZILLA = "https://updates.push.services.mozilla.com"
DEFAULT_HOSTS = (
    "fcm.googleapis.com",
    "updates.push.services.mozilla.com",
    "push.services.mozilla.com",
    "notify.windows.com",
    "web.push.apple.com",
)
SUBJECT = "mailto:push@shengshitong.example"
T0 = 1_790_000_000.0


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def vapid_key():
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def clock():
    return Clock(T0)


@pytest.fixture
def service(clock):
    return PushService(MOZILLA, clock=clock)


@pytest.fixture
async def sender(vapid_key, service, clock):
    sender = WebPushSender(
        vapid_key, SUBJECT, allowed_hosts=DEFAULT_HOSTS, transport=service.transport(), clock=clock
    )
    yield sender
    await sender.close()


def target_for(service, vapid_key=None):
    """A subscription as a browser makes it: its own key pair and 16 random auth bytes."""
    key = application_server_key(vapid_key) if vapid_key is not None else None
    endpoint, ua = service.subscribe(application_server_key=key)
    return PushTarget(endpoint, ua.p256dh, ua.auth_b64), ua


async def test_a_push_arrives_as_the_browser_reads_it(sender, service, vapid_key):
    target, ua = target_for(service, vapid_key)
    payload = '{"title": "您的订单已支付", "body": "沈阳故宫 10:00"}'.encode()

    outcome = await sender.send(target, payload, ttl=3600, urgency="high", topic="order-42")

    assert outcome == (True, False, 201, "", None)
    [got] = service.received
    assert (got.status, got.refusal) == (201, "")
    assert got.plaintext == payload  # the double's own RFC 8291 decrypter
    assert got.headers["ttl"] == "3600"
    assert got.headers["urgency"] == "high"
    assert got.headers["topic"] == "order-42"
    assert got.headers["content-encoding"] == "aes128gcm"
    assert got.claims == {"aud": MOZILLA, "exp": int(T0) + JWT_LIFETIME, "sub": SUBJECT}
    assert got.headers["authorization"].endswith(f", k={application_server_key(vapid_key)}")
    # and the web-push-libs decrypter reads the same body
    assert http_ece.decrypt(got.body, private_key=ua.private_key, auth_secret=ua.auth) == payload
    # one record of 4096, the keyid being a fresh P-256 point that is not our VAPID key
    assert int.from_bytes(got.body[16:20], "big") == 4096
    assert got.body[20] == 65 and got.body[21] == 0x04
    assert b64url(got.body[21:86]) != application_server_key(vapid_key)


async def test_every_message_has_its_own_salt_and_ephemeral_key(sender, service):
    target, _ = target_for(service)
    for _ in range(3):
        assert (await sender.send(target, b"same words")).ok
    salts = {r.body[:16] for r in service.received}
    keys = {r.body[21:86] for r in service.received}
    assert len(salts) == len(keys) == 3
    assert [r.plaintext for r in service.received] == [b"same words"] * 3


async def test_the_largest_payload_and_one_byte_more(sender, service):
    target, _ = target_for(service)
    largest = bytes(range(256)) * 15 + b"x" * (MAX_PAYLOAD - 3840)
    assert len(largest) == 3993

    assert (await sender.send(target, largest)).ok
    assert service.received[-1].plaintext == largest
    assert len(service.received[-1].body) == 4096  # exactly what a push service must accept

    with pytest.raises(ValueError, match="3993"):
        await sender.send(target, largest + b"!")
    assert len(service.received) == 1  # nothing was sent


async def test_a_push_without_payload_has_no_body(sender, service):
    target, _ = target_for(service)
    assert (await sender.send(target, b"")).ok
    [got] = service.received
    assert got.body == b"" and got.plaintext == b""
    assert "content-encoding" not in got.headers


@pytest.mark.parametrize("status", [404, 410])
async def test_a_dead_subscription_is_gone(sender, service, status):
    target, _ = target_for(service)
    service.answer = (status, {})
    outcome = await sender.send(target, b"hello")
    assert (outcome.ok, outcome.gone, outcome.status, outcome.retry_after) == (False, True, status, None)


async def test_an_unknown_endpoint_is_gone_too(sender, service):
    """The push service forgot the subscription (the double answers 404 for a path it never gave)."""
    target, _ = target_for(service)
    outcome = await sender.send(target._replace(endpoint=f"{MOZILLA}/wpush/v2/forgotten"), b"hello")
    assert outcome.gone and outcome.status == 404


async def test_retry_after_in_seconds_or_as_a_date(sender, service, clock):
    target, _ = target_for(service)
    service.answer = (429, {"Retry-After": "120"})
    outcome = await sender.send(target, b"hello")
    assert (outcome.ok, outcome.gone, outcome.status, outcome.retry_after) == (False, False, 429, 120.0)
    assert outcome.error.startswith("HTTP 429 Too Many Requests")

    service.answer = (
        503,
        {"Retry-After": format_datetime(datetime.fromtimestamp(T0 + 90, UTC), usegmt=True)},
    )
    outcome = await sender.send(target, b"hello")
    assert (outcome.status, outcome.retry_after) == (503, 90.0)

    service.answer = (500, {"Retry-After": "30"})  # only 429 and 503 say when to come back
    outcome = await sender.send(target, b"hello")
    assert (outcome.ok, outcome.gone, outcome.status, outcome.retry_after) == (False, False, 500, None)
    assert outcome.error.startswith("HTTP 500 Internal Server Error")


async def test_the_endpoint_is_in_no_error_and_no_log(vapid_key, service, clock, caplog):
    """A push service that quotes the request's path back, and a transport whose error names the URL:
    the outcome and the log keep the host only."""
    target, _ = target_for(service)
    secret = target.endpoint.rsplit("/", 1)[1]
    service.echo_path = True
    sender = WebPushSender(
        vapid_key, SUBJECT, allowed_hosts=DEFAULT_HOSTS, transport=service.transport(), clock=clock
    )
    service.answer = (400, {})
    # the app's logging (configured by earlier tests in the session) sets "shengshitong" to INFO
    with (
        caplog.at_level(logging.DEBUG),
        caplog.at_level(logging.DEBUG, logger="shengshitong.messages.webpush"),
    ):
        refused = await sender.send(target, b"hello")
        service.reset()
        sent = await sender.send(target, b"hello")
    await sender.close()

    def fail(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot reach {request.url}")

    broken = WebPushSender(
        vapid_key, SUBJECT, allowed_hosts=DEFAULT_HOSTS, transport=httpx.MockTransport(fail)
    )
    with caplog.at_level(logging.DEBUG):
        unreachable = await broken.send(target, b"hello")
    await broken.close()

    assert sent.ok
    assert refused.status == 400
    assert refused.error == "HTTP 400 Bad Request: refused for …"  # the service's words, redacted
    assert unreachable == (False, False, 0, "no answer (ConnectError)", None)
    for outcome in (refused, unreachable):
        assert secret not in outcome.error
    ours = [str(vars(r)) for r in caplog.records if r.name == "shengshitong.messages.webpush"]
    assert len(ours) == 3
    assert all("updates.push.services.mozilla.com" in line for line in ours)
    # httpx's own "HTTP Request: POST <url>" line (INFO, so in production logs) keeps the origin only
    assert f"HTTP Request: POST {MOZILLA}/… " in caplog.text
    assert not any(secret in str(vars(r)) or secret in r.getMessage() for r in caplog.records)


async def test_a_timeout_is_no_answer(vapid_key, service):
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    target, _ = target_for(service)
    sender = WebPushSender(
        vapid_key, SUBJECT, allowed_hosts=DEFAULT_HOSTS, transport=httpx.MockTransport(slow)
    )
    assert await sender.send(target, b"hello") == (False, False, 0, "timed out (ReadTimeout)", None)
    await sender.close()


async def test_the_jwt_is_signed_once_per_origin_for_hours(vapid_key, clock):
    mozilla, apple = PushService(MOZILLA, clock=clock), PushService("https://web.push.apple.com", clock=clock)

    def route(request: httpx.Request):
        return (
            (mozilla if request.url.host.endswith("mozilla.com") else apple)
            .transport()
            .handle_request(request)
        )

    sender = WebPushSender(
        vapid_key, SUBJECT, allowed_hosts=DEFAULT_HOSTS, transport=httpx.MockTransport(route), clock=clock
    )
    first, _ = target_for(mozilla)
    second, _ = target_for(mozilla)
    on_apple, _ = target_for(apple)
    for target in (first, second, first, on_apple):
        assert (await sender.send(target, b"hi")).ok
    clock.now += 5 * 3600  # still reused: 7 h of it left
    assert (await sender.send(second, b"hi")).ok
    clock.now += 3600 + 1  # now a new one: a push service must never see one about to expire
    assert (await sender.send(first, b"hi")).ok
    await sender.close()

    tokens = [r.jwt for r in mozilla.received]
    assert len(set(tokens[:4])) == 1 and tokens[4] != tokens[0]
    assert [r.claims["exp"] for r in mozilla.received] == [int(T0) + JWT_LIFETIME] * 4 + [
        int(T0) + 6 * 3600 + 1 + JWT_LIFETIME
    ]
    assert apple.received[0].claims["aud"] == "https://web.push.apple.com"
    assert apple.received[0].jwt != tokens[0]


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://push.example.net/wpush/v2/abc",  # not a push service we know
        "https://fcm.googleapis.com.evil.example/fcm/send/abc",  # looks like one
        "https://notfcm.googleapis.com/fcm/send/abc",  # a suffix, not a subdomain
        "https://fcm.googleapis.com@evil.example/fcm/send/abc",  # user info: the host is evil.example
        "https://fcm.googleapis.com:8443/fcm/send/abc",
        "http://fcm.googleapis.com/fcm/send/abc",  # plain http on a real push service
        "http://127.0.0.1:8080/wpush/abc",  # plain http on a loopback origin nobody allowed
        "ftp://fcm.googleapis.com/abc",
    ],
)
async def test_an_endpoint_off_the_allowed_push_services_is_refused(sender, service, endpoint):
    _, ua = target_for(service)
    target = PushTarget(endpoint, ua.p256dh, ua.auth_b64)
    with pytest.raises(InvalidInput) as refused:
        check_target(target, allowed_hosts=DEFAULT_HOSTS)
    assert refused.value.code == "push_endpoint_not_allowed"
    assert "abc" not in refused.value.detail
    with pytest.raises(InvalidInput):
        await sender.send(target, b"hello")
    assert service.received == []


def test_the_push_services_and_their_subdomains_are_allowed():
    ua = UserAgent()
    for endpoint in (
        "https://fcm.googleapis.com/fcm/send/dQw4w9WgXcQ:APA91bH",
        "https://updates.push.services.mozilla.com/wpush/v2/gAAAAAB",
        "https://wns2-par02p.notify.windows.com/w/?token=BQYAAAB",
        "https://web.push.apple.com/QGuQyavXutnMp",
        "https://FCM.googleapis.com/fcm/send/x",  # host names are not case sensitive
    ):
        check_target(PushTarget(endpoint, ua.p256dh, ua.auth_b64), allowed_hosts=DEFAULT_HOSTS)
    check_target(
        PushTarget("http://127.0.0.1:8123/wpush/x", ua.p256dh, ua.auth_b64),
        allowed_hosts=["http://127.0.0.1:8123"],
    )
    check_target(PushTarget("http://localhost/x", ua.p256dh, ua.auth_b64), allowed_hosts=["http://localhost"])


def _not_on_the_curve() -> str:
    point = bytearray(unb64url(UserAgent().p256dh))
    point[-1] ^= 1  # y no longer fits x
    return b64url(bytes(point))


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"p256dh": "not base64!"}, "not base64url"),
        ({"p256dh": b64url(b"\x04" + b"\x01" * 64)}, "not a point on P-256"),
        ({"p256dh": _not_on_the_curve()}, "not a point on P-256"),
        ({"p256dh": b64url(b"\x04" * 33)}, "a compressed-point length"),
        ({"p256dh": ""}, "empty"),
        ({"auth": b64url(b"\x00" * 15)}, "auth of 15 bytes"),
        ({"auth": b64url(b"\x00" * 17)}, "auth of 17 bytes"),
        ({"auth": "????"}, "auth not base64url"),
        ({"endpoint": "https://fcm.googleapis.com/fcm/send/" + "a" * 989}, "1025 characters"),
        ({"endpoint": "https://fcm.googleapis.com/fcm/send/a b"}, "a space"),
        ({"endpoint": "https://fcm.googleapis.com/fcm/send/a\nb"}, "a line break"),
        ({"endpoint": ""}, "no endpoint"),
        ({"endpoint": "fcm.googleapis.com/fcm/send/a"}, "not a URL"),
    ],
)
async def test_a_subscription_no_browser_would_give_is_refused(sender, service, change, why):
    target, _ = target_for(service)
    target = target._replace(endpoint="https://fcm.googleapis.com/fcm/send/abc")._replace(**change)
    with pytest.raises(InvalidInput) as refused:
        check_target(target, allowed_hosts=DEFAULT_HOSTS)
    assert refused.value.code == "invalid_push_subscription", why
    with pytest.raises(InvalidInput):
        await sender.send(target, b"hello")


def test_an_endpoint_of_1024_characters_is_fine():
    ua = UserAgent()
    endpoint = "https://fcm.googleapis.com/fcm/send/" + "a" * 988
    assert len(endpoint) == 1024
    check_target(PushTarget(endpoint, ua.p256dh, ua.auth_b64), allowed_hosts=DEFAULT_HOSTS)


@pytest.mark.parametrize(
    "kwargs",
    [{"ttl": -1}, {"ttl": 1.5}, {"urgency": "urgent"}, {"topic": ""}, {"topic": "a" * 33}, {"topic": "a b"}],
)
async def test_bad_arguments(sender, service, kwargs):
    target, _ = target_for(service)
    with pytest.raises(ValueError):
        await sender.send(target, b"hello", **kwargs)
    assert service.received == []


@pytest.mark.parametrize(
    ("key", "subject", "hosts"),
    [
        (ec.generate_private_key(ec.SECP384R1()), SUBJECT, DEFAULT_HOSTS),  # VAPID is P-256
        (ec.generate_private_key(ec.SECP256R1()), "push@shengshitong.example", DEFAULT_HOSTS),
        (ec.generate_private_key(ec.SECP256R1()), SUBJECT, ["http://10.0.0.5:8080"]),  # http off loopback
        (ec.generate_private_key(ec.SECP256R1()), SUBJECT, ["https://fcm.googleapis.com"]),
        (ec.generate_private_key(ec.SECP256R1()), SUBJECT, ["fcm.googleapis.com/fcm"]),
        (ec.generate_private_key(ec.SECP256R1()), SUBJECT, "fcm.googleapis.com"),  # one string
    ],
)
def test_a_misconfigured_sender_does_not_start(key, subject, hosts):
    with pytest.raises(ValueError):
        WebPushSender(key, subject, allowed_hosts=hosts)


def test_the_application_server_key_is_what_pushmanager_subscribe_takes(vapid_key):
    text = application_server_key(vapid_key)
    raw = unb64url(text)
    assert len(text) == 87 and "=" not in text
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
    assert public.public_numbers() == vapid_key.public_key().public_numbers()


async def test_a_subscription_made_for_another_server_key_is_refused_by_the_push_service(sender, service):
    """RFC 8292 §4.2: the double (like a real push service) refuses a k other than the subscription's."""
    target, _ = target_for(service, ec.generate_private_key(ec.SECP256R1()))
    outcome = await sender.send(target, b"hello")
    assert (outcome.ok, outcome.gone, outcome.status) == (False, False, 403)
    assert service.received[0].plaintext is None
