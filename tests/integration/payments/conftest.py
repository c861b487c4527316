"""Channel keys generated per test session, and helpers that play WeChat Pay and Alipay byte-exactly."""

import base64
import json
import secrets
import time
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

CHINA = timezone(timedelta(hours=8))


def _now_in_china(sep="T"):
    """The channels' own time of a payment or refund, as they write it (WeChat: RFC 3339 with the
    offset; Alipay: ``yyyy-MM-dd HH:mm:ss`` in China time). The players pay and refund now, so what
    they do lands on today's statement."""
    now = datetime.now(CHINA).replace(microsecond=0)
    return now.isoformat() if sep == "T" else now.strftime("%Y-%m-%d %H:%M:%S")


def _rsa():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pub_pem(key):
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


class WeChatPlayer:
    """Signs and encrypts notifications the way WeChat Pay's servers do."""

    def __init__(self, keys_dir):
        self.apiv3_key = secrets.token_urlsafe(24)[:32]
        self.platform = {
            "5157F09EFDC096DE15EBE81A47057A7232F1B8E1": _rsa(),
            "6F1A4C8E2B9D7A3E0C5B1D9F8E7A6B5C4D3E2F1A": _rsa(),
        }
        for serial, key in self.platform.items():
            (keys_dir / f"{serial}.pem").write_bytes(_pub_pem(key))
        self.serial = next(iter(self.platform))
        self.transactions = {}  # order id -> its first payment's transaction id

    def notification(self, event_type, resource_data, *, event_id=None, ts=None, serial=None, tamper=None):
        nonce = secrets.token_hex(6)  # 12 characters, as WeChat's are
        aad = "transaction" if event_type.startswith("TRANSACTION") else "refund"
        ct = AESGCM(self.apiv3_key.encode()).encrypt(
            nonce.encode(), json.dumps(resource_data).encode(), aad.encode()
        )
        if tamper == "ciphertext":
            ct = ct[:-1] + bytes([ct[-1] ^ 1])
        body = json.dumps(
            {
                "id": event_id or "EV-" + secrets.token_hex(8),
                "create_time": _now_in_china(),
                "resource_type": "encrypt-resource",
                "event_type": event_type,
                "summary": "支付成功",
                "resource": {
                    "original_type": aad,
                    "algorithm": "AEAD_AES_256_GCM",
                    "ciphertext": base64.b64encode(ct).decode(),
                    "associated_data": aad,
                    "nonce": nonce,
                },
            },
            ensure_ascii=False,
        ).encode()
        return self.signed(body, ts=ts, serial=serial), body

    def signed(self, body, *, ts=None, serial=None):
        """The headers WeChat Pay sends with ``body`` (any bytes: the platform key signs what it is given)."""
        ts = str(int(time.time()) if ts is None else ts)
        header_nonce = secrets.token_hex(16)
        serial = serial or self.serial
        key = self.platform.get(serial) or _rsa()
        sig = key.sign(f"{ts}\n{header_nonce}\n".encode() + body + b"\n", padding.PKCS1v15(), hashes.SHA256())
        headers = {
            "Wechatpay-Timestamp": ts,
            "Wechatpay-Nonce": header_nonce,
            "Wechatpay-Serial": serial,
            "Wechatpay-Signature": base64.b64encode(sig).decode(),
            "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
            "Content-Type": "application/json",
        }
        return headers

    def paid(self, order_id, amount, *, transaction_id=None, resource=None, **kw):
        """A payment of ``order_id``; WeChat keeps the order's transaction for its refunds' notices."""
        transaction_id = transaction_id or "4200000" + secrets.token_hex(6)
        self.transactions.setdefault(order_id, transaction_id)
        return self.notification(
            "TRANSACTION.SUCCESS",
            {
                "mchid": "1900000001",
                "appid": "wxd678efh567hg6787",
                "out_trade_no": order_id,
                "transaction_id": transaction_id,
                "trade_type": "APP",
                "trade_state": "SUCCESS",
                "success_time": _now_in_china(),
                "amount": {"total": amount, "payer_total": amount, "currency": "CNY"},
                **(resource or {}),
            },
            **kw,
        )

    def refunded(
        self, order_id, refund_id, amount, total, *, status="SUCCESS", transaction_id=None, refund=None, **kw
    ):
        """A refund's notice: ``status`` SUCCESS, ABNORMAL or CLOSED (the event type follows it)."""
        return self.notification(
            f"REFUND.{status}",
            {
                "mchid": "1900000001",
                "out_trade_no": order_id,
                "transaction_id": transaction_id or self.transactions.get(order_id, "4200000000"),
                "out_refund_no": refund_id,
                "refund_id": refund or "50000" + secrets.token_hex(6),
                "refund_status": status,
                "success_time": _now_in_china(),
                "amount": {"total": total, "refund": amount, "payer_total": total, "payer_refund": amount},
            },
            **kw,
        )


def alipay_notification_content(params):
    """Alipay's rule for what a notification's ``sign`` covers, written out here independently of the
    code under test: every parameter but ``sign`` and ``sign_type``, sorted, ``k=v`` joined with ``&``,
    empty values included (python-alipay-sdk's ``verify`` checks the same; a test holds them together)."""
    return "&".join(f"{k}={params[k]}" for k in sorted(params) if k not in ("sign", "sign_type"))


class AlipayPlayer:
    def __init__(self, tmp):
        self.key = _rsa()
        self.app_id = "2021000000000001"
        self.seller_id = "2088101122136241"
        self.public_file = tmp / "alipay_public.pem"
        self.public_file.write_bytes(_pub_pem(self.key))
        # the app's own key pair: it signs the order strings the app hands to the Alipay SDK
        self.app_key = _rsa()
        self.app_private_file = tmp / "app_private.pem"
        self.app_private_file.write_bytes(
            self.app_key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )

    def notify(
        self,
        order_id,
        yuan,
        *,
        notify_id=None,
        status="TRADE_SUCCESS",
        extra=None,
        sign_with=None,
        trade_no=None,
    ):
        params = {
            "notify_time": _now_in_china(" "),
            "notify_type": "trade_status_sync",
            "notify_id": notify_id or "ac05" + secrets.token_hex(8),
            "app_id": self.app_id,
            "seller_id": self.seller_id,
            "charset": "utf-8",
            "version": "1.0",
            "trade_no": trade_no or "2026112522001" + secrets.token_hex(4),
            "out_trade_no": order_id,
            "trade_status": status,
            "total_amount": yuan,
            "subject": "盛事通 订单",
            "gmt_payment": _now_in_china(" "),
            **(extra or {}),
        }
        params = {k: v for k, v in params.items() if v is not None}  # extra={"k": None} leaves k out
        sig = (sign_with or self.key).sign(
            alipay_notification_content(params).encode(), padding.PKCS1v15(), hashes.SHA256()
        )
        params.update({"sign": base64.b64encode(sig).decode(), "sign_type": "RSA2"})
        return {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}, urlencode(
            params
        ).encode()


@pytest.fixture(scope="session")
def channel_keys(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("channels")
    keys_dir = tmp / "wechat"
    keys_dir.mkdir()
    return WeChatPlayer(keys_dir), AlipayPlayer(tmp), keys_dir


@pytest.fixture
def pay_client(make_client, channel_keys, testgate_app):
    wechat, alipay, keys_dir = channel_keys

    def make(**overrides):
        """The channels configured as the players play them; ``overrides`` may change any of it."""
        return make_client(
            **{
                "miniapps": [testgate_app],
                "payment_channels": "sandbox,wechatpay,alipay",
                "wechatpay_mchid": "1900000001",
                "wechatpay_appid": "wxd678efh567hg6787",
                "wechatpay_apiv3_key": wechat.apiv3_key,
                "wechatpay_platform_keys_dir": str(keys_dir),
                "alipay_app_id": alipay.app_id,
                "alipay_seller_id": alipay.seller_id,
                "alipay_public_key_file": str(alipay.public_file),
                "alipay_app_private_key_file": str(alipay.app_private_file),
                "webhook_interval": 0,
                "background": True,
                **overrides,
            }
        )

    return make


@pytest.fixture
def players(channel_keys):
    return channel_keys[0], channel_keys[1]


def basic(cred):
    return {
        "Authorization": "Basic "
        + base64.b64encode(f"{cred['client_id']}:{cred['client_secret']}".encode()).decode()
    }


@pytest.fixture
def merchant_of():
    async def make(client, app_id="testgate"):
        cred = await client.services.auth.machines.create("miniapp", app_id=app_id)
        return basic(cred)

    return make


@pytest.fixture
def paying_citizen(merchant_of, login, new_phone):
    """``await paying_citizen(client)`` → (the testgate backend's auth headers, a citizen's bearer headers,
    the citizen's openid at testgate): who an order is made by and for."""

    async def make(client):
        app_auth = await merchant_of(client)
        pair = await login(client, new_phone())
        me = {"Authorization": f"Bearer {pair['access_token']}"}
        code = (
            await client.post("/api/v1/miniapps/testgate/authorize", json={"scopes": ["openid"]}, headers=me)
        ).json()["code"]
        openid = (
            await client.post("/api/v1/miniapps/testgate/token", json={"code": code}, headers=app_auth)
        ).json()["openid"]
        return app_auth, me, openid

    return make
