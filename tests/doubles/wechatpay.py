"""A local WeChat Pay API v3 server, written from WeChat Pay's published rules (签名认证, 平台证书, 基础支付,
退款, 账单), not from our client.

What it checks and does, as WeChat's servers do:

- every request carries ``Authorization: WECHATPAY2-SHA256-RSA2048 mchid="..",nonce_str="..",
  signature="..",timestamp="..",serial_no=".."``; the signature is SHA256withRSA (PKCS#1 v1.5) by the
  merchant's API key over ``METHOD\\nURL\\ntimestamp\\nnonce_str\\nbody\\n``, where URL is the request's
  absolute path with its query string as sent and body the raw bytes (empty for a GET). Anything off
  (the merchant id, the certificate serial, a timestamp more than 5 minutes off, one byte of the
  path, query or body) is ``401 SIGN_ERROR``;
- every answer (errors too, but not a bill file) is signed by the current platform key:
  ``Wechatpay-Timestamp``, ``-Nonce``, ``-Serial``, ``-Signature`` over ``timestamp\\nnonce\\nbody\\n``;
- ``GET /v3/certificates`` lists the platform certificates, each X.509 PEM encrypted with
  AEAD_AES_256_GCM under the APIv3 key (associated data ``certificate``);
- prepay (app, jsapi, native), query by out_trade_no, close, refund, refund query, trade and fund-flow
  bills (a ``download_url`` with its SHA1, then the file).

A test drives it: :meth:`WeChatPayDouble.pay` (and the signed notification, sent or "lost"),
:meth:`refund_processing`, :meth:`publish_bill`, :meth:`rotate`, :attr:`missign` (answers signed wrong).
It runs in a test through ``httpx.ASGITransport(app=double)``, or as a server::

    python -m tests.doubles.wechatpay --port 8099 [--mchid 1900000001 --appid wx..]

(it then prints the merchant key and APIv3 key it generated, for the channel's settings).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import secrets
import time
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs, unquote

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID

CHINA = timezone(timedelta(hours=8))
SCHEMA = "WECHATPAY2-SHA256-RSA2048"
AUTH_FIELDS = re.compile(r'(\w+)="([^"]*)"')


def _rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _certificate(key: rsa.RSAPrivateKey, serial: str) -> bytes:
    """A platform certificate as WeChat issues them: the serial_no is the certificate's serial, in hex."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Tenpay.com Root CA (double)")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(int(serial, 16))
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=5 * 365))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


# The day the channel does business on (which day's bill a trade lands on): today in China, unless a
# test pins it (pin_business_day), so that a run crossing midnight in China keeps its trades on one day.
_business_day: date | None = None


def pin_business_day(day: date | None) -> None:
    global _business_day
    _business_day = day


def _business_now() -> datetime:
    now = datetime.now(CHINA).replace(microsecond=0)
    return now if _business_day is None else datetime.combine(_business_day, now.timetz())


def _now_china() -> str:
    return _business_now().isoformat()


def _yuan(fen: int) -> str:
    return f"{'-' if fen < 0 else ''}{abs(fen) // 100}.{abs(fen) % 100:02d}"


class WeChatPayDouble:
    def __init__(
        self,
        *,
        mchid: str = "1900000001",
        appid: str = "wxd678efh567hg6787",
        apiv3_key: str | None = None,
        merchant_key: rsa.RSAPublicKey | None = None,
        merchant_serial: str = "",
        base_url: str = "https://api.mch.weixin.qq.com",
    ) -> None:
        self.mchid, self.appid = mchid, appid
        self.apiv3_key = apiv3_key or secrets.token_hex(16)  # 32 characters, as the console shows it
        self.merchant_private: rsa.RSAPrivateKey | None = None
        if merchant_key is None:  # a merchant of its own (for the server run from the command line)
            self.merchant_private = _rsa()
            merchant_key = self.merchant_private.public_key()
        self.merchant_key = merchant_key
        self.merchant_serial = merchant_serial or secrets.token_hex(20).upper()
        self.base_url = base_url.rstrip("/")
        self.platform: dict[str, tuple[rsa.RSAPrivateKey, bytes]] = {}
        self.serial = ""
        self.rotate()
        self.trades: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.bills: dict[tuple[str, str], bytes] = {}  # (kind, day) -> the file
        self.files: dict[str, bytes] = {}  # download token -> file
        self.missign = 0  # the next answers (this many) are signed wrong
        self.unsigned = 0  # the next answers (this many) carry no signature at all
        self.processing: set[str] = set()  # out_refund_no answered PROCESSING until queried once
        self.requests: list[tuple[str, str, bytes]] = []  # method, url, body as received
        self.sent: list[tuple[str, dict[str, str], bytes]] = []  # notifications made: url, headers, body

    # ---- what a test does ----------------------------------------------------------------------------
    def rotate(self) -> str:
        """A new platform certificate: listed from now on, and the one that signs from now on."""
        serial = f"{secrets.randbits(158) | 1 << 156:040X}"  # 40 hex digits; an X.509 serial is < 2**159
        key = _rsa()
        self.platform[serial] = (key, _certificate(key, serial))
        self.serial = serial
        return serial

    def public_pem(self, serial: str | None = None) -> bytes:
        key = self.platform[serial or self.serial][0]
        return key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def pay(self, out_trade_no: str, *, state: str = "SUCCESS") -> tuple[str, dict[str, str], bytes]:
        """The citizen paid (or ``state`` CLOSED, ...): the trade changes, and the signed notification
        WeChat would send is returned as (notify_url, headers, body); a test posts it, or loses it."""
        trade = self.trades[out_trade_no]
        trade["trade_state"] = state
        if state == "SUCCESS":
            trade["transaction_id"] = trade.get("transaction_id") or "4200" + secrets.token_hex(12)[:24]
            trade["success_time"] = _now_china()
            trade["paid_on"] = _business_now().date().isoformat()
        event = {"SUCCESS": "TRANSACTION.SUCCESS", "CLOSED": "TRANSACTION.CLOSED"}.get(
            state, "TRANSACTION.SUCCESS"
        )
        headers, body = self.notification(event, "transaction", self._transaction(trade))
        self.sent.append((trade["notify_url"], headers, body))
        return trade["notify_url"], headers, body

    def refund_processing(self, out_refund_no: str | None = None) -> None:
        """The refund (the next one requested, when None) answers PROCESSING, then SUCCESS on its query."""
        self.processing.add(out_refund_no or "*next*")

    def publish_bill(
        self, day: date, *, extra_rows: list[list[str]] | None = None, totals_off: int = 0
    ) -> bytes:
        """The day's trade bill (ALL) from the trades and refunds of that day (China time); ``extra_rows``
        adds detail rows as written, ``totals_off`` fen makes its totals line not add up."""
        header = (
            "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,"
            "货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,"
            "商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注"
        )
        rows: list[list[str]] = []
        for t in self.trades.values():
            if t.get("paid_on") == day.isoformat():
                fee = round(t["amount"]["total"] * 6 / 1000)
                rows.append(
                    [
                        t["success_time"][:19].replace("T", " "), self.appid, self.mchid, "0", "",
                        t["transaction_id"], t["out_trade_no"], "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
                        t["trade_type"], "SUCCESS", "OTHERS", "CNY", _yuan(t["amount"]["total"]), "0.00",
                        "0", "0", "0.00", "0.00", "", "", t["description"], "", _yuan(fee), "0.60%",
                        _yuan(t["amount"]["total"]), "0.00", "",
                    ]
                )  # fmt: skip
        for r in self.refunds.values():
            if r["status"] == "SUCCESS" and r.get("done_on") == day.isoformat():
                t = self.trades[r["out_trade_no"]]
                fee = -round(r["amount"]["refund"] * 6 / 1000)
                rows.append(
                    [
                        r["success_time"][:19].replace("T", " "), self.appid, self.mchid, "0", "",
                        r["transaction_id"], r["out_trade_no"], "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
                        t["trade_type"], "REFUND", "OTHERS", "CNY", "0.00", "0.00", r["refund_id"],
                        r["out_refund_no"], _yuan(r["amount"]["refund"]), "0.00", "ORIGINAL", "SUCCESS",
                        t["description"], "", _yuan(fee), "0.60%", "0.00", _yuan(r["amount"]["refund"]), "",
                    ]
                )  # fmt: skip
        rows += extra_rows or []
        raw = trade_bill(header, rows, totals_off=totals_off)
        self.bills[("trade", day.isoformat())] = raw
        return raw

    def publish_fund_flow_bill(self, day: date, raw: bytes) -> None:
        self.bills[("fundflow", day.isoformat())] = raw

    # ---- signing -------------------------------------------------------------------------------------
    def signed_headers(self, body: bytes, *, serial: str | None = None) -> dict[str, str]:
        serial = serial or self.serial
        ts, nonce = str(int(time.time())), secrets.token_hex(16)
        signature = self.platform[serial][0].sign(
            f"{ts}\n{nonce}\n".encode() + body + b"\n", padding.PKCS1v15(), hashes.SHA256()
        )
        return {
            "Wechatpay-Timestamp": ts,
            "Wechatpay-Nonce": nonce,
            "Wechatpay-Serial": serial,
            "Wechatpay-Signature": base64.b64encode(signature).decode(),
            "Wechatpay-Signature-Type": SCHEMA,
        }

    def notification(
        self, event_type: str, kind: str, resource: dict[str, Any]
    ) -> tuple[dict[str, str], bytes]:
        nonce = secrets.token_hex(6)
        ct = AESGCM(self.apiv3_key.encode()).encrypt(
            nonce.encode(), json.dumps(resource).encode(), kind.encode()
        )
        body = json.dumps(
            {
                "id": "EV-" + secrets.token_hex(8),
                "create_time": _now_china(),
                "resource_type": "encrypt-resource",
                "event_type": event_type,
                "summary": "支付成功" if event_type == "TRANSACTION.SUCCESS" else event_type,
                "resource": {
                    "original_type": kind,
                    "algorithm": "AEAD_AES_256_GCM",
                    "ciphertext": base64.b64encode(ct).decode(),
                    "associated_data": kind,
                    "nonce": nonce,
                },
            },
            ensure_ascii=False,
        ).encode()
        return {**self.signed_headers(body), "Content-Type": "application/json"}, body

    def _authorized(self, method: str, url: str, body: bytes, authorization: str) -> str:
        """Why the request's Authorization fails ("" when it holds), by WeChat's rules."""
        if not authorization.startswith(SCHEMA + " "):
            return "the Authorization schema is not " + SCHEMA
        fields = dict(AUTH_FIELDS.findall(authorization[len(SCHEMA) + 1 :]))
        missing = {"mchid", "nonce_str", "signature", "timestamp", "serial_no"} - set(fields)
        if missing:
            return f"the Authorization lacks {', '.join(sorted(missing))}"
        if fields["mchid"] != self.mchid:
            return "mchid is not the merchant's"
        if fields["serial_no"].upper() != self.merchant_serial.upper():
            return "serial_no is not the merchant certificate's"
        if not fields["timestamp"].isdigit() or abs(time.time() - int(fields["timestamp"])) > 300:
            return "the timestamp is more than 5 minutes off"
        message = f"{method}\n{url}\n{fields['timestamp']}\n{fields['nonce_str']}\n".encode() + body + b"\n"
        try:
            self.merchant_key.verify(
                base64.b64decode(fields["signature"]), message, padding.PKCS1v15(), hashes.SHA256()
            )
        except (InvalidSignature, ValueError):
            return "the signature does not verify"
        return ""

    # ---- the ASGI app --------------------------------------------------------------------------------
    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        # the URL as sent: ASGI's raw_path is the path (some servers leave the query on it)
        path = (scope.get("raw_path") or scope["path"].encode()).split(b"?")[0].decode("latin-1")
        query = scope.get("query_string", b"").decode("latin-1")
        url = path + (f"?{query}" if query else "")
        method = scope["method"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        self.requests.append((method, url, body))
        status, answer, raw = self._handle(method, unquote(path), parse_qs(query), url, body, headers)
        if raw is not None:  # a bill file: not signed
            out_headers = {"content-type": "text/plain; charset=utf-8"}
            payload = raw
        else:
            payload = b"" if answer is None else json.dumps(answer, ensure_ascii=False).encode()
            out_headers = {k.lower(): v for k, v in self.signed_headers(payload).items()}
            out_headers["request-id"] = secrets.token_hex(12)
            if payload:
                out_headers["content-type"] = "application/json"
            if self.unsigned:
                self.unsigned -= 1
                out_headers = {k: v for k, v in out_headers.items() if not k.startswith("wechatpay-")}
            elif self.missign:
                self.missign -= 1
                sig = bytearray(base64.b64decode(out_headers["wechatpay-signature"]))
                sig[0] ^= 1
                out_headers["wechatpay-signature"] = base64.b64encode(bytes(sig)).decode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(k.encode(), v.encode()) for k, v in out_headers.items()],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    @staticmethod
    def _error(status: int, code: str, message: str) -> tuple[int, Any, None]:
        return status, {"code": code, "message": message}, None

    def _handle(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        url: str,
        body: bytes,
        headers: dict[str, str],
    ) -> tuple[int, Any, bytes | None]:
        why = self._authorized(
            method, url, body if method != "GET" else b"", headers.get("authorization", "")
        )
        if why:
            return self._error(401, "SIGN_ERROR", f"签名错误: {why}")
        data: Any = {}
        if method == "POST":
            try:
                data = json.loads(body)
            except ValueError:
                return self._error(400, "PARAM_ERROR", "请求体不是 JSON")
            if not isinstance(data, dict):
                return self._error(400, "PARAM_ERROR", "请求体不是 JSON 对象")
        one = {k: v[0] for k, v in query.items()}
        if method == "GET" and path == "/v3/certificates":
            return 200, self._certificates(), None
        if m := re.fullmatch(r"/v3/pay/transactions/(app|jsapi|native)", path):
            if method == "POST":
                return self._prepay(m.group(1), data)
        if m := re.fullmatch(r"/v3/pay/transactions/out-trade-no/([^/]+)", path):
            if method == "GET":
                if one.get("mchid") != self.mchid:
                    return self._error(400, "PARAM_ERROR", "mchid 缺失或不符")
                trade = self.trades.get(m.group(1))
                if trade is None:
                    return self._error(404, "ORDER_NOT_EXIST", "订单不存在")
                return 200, self._transaction(trade), None
        if m := re.fullmatch(r"/v3/pay/transactions/out-trade-no/([^/]+)/close", path):
            if method == "POST":
                if data.get("mchid") != self.mchid:
                    return self._error(400, "PARAM_ERROR", "mchid 缺失或不符")
                trade = self.trades.get(m.group(1))
                if trade is None:
                    return self._error(404, "ORDER_NOT_EXIST", "订单不存在")
                if trade["trade_state"] == "SUCCESS":
                    return self._error(400, "ORDERPAID", "订单已支付")
                trade["trade_state"] = "CLOSED"
                return 204, None, None
        if path == "/v3/refund/domestic/refunds" and method == "POST":
            return self._refund(data)
        if m := re.fullmatch(r"/v3/refund/domestic/refunds/([^/]+)", path):
            if method == "GET":
                refund = self.refunds.get(m.group(1))
                if refund is None:
                    return self._error(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
                if refund["status"] == "PROCESSING":  # paid out by the time it is asked
                    self._refund_done(refund)
                return 200, self._refund_view(refund), None
        if path in ("/v3/bill/tradebill", "/v3/bill/fundflowbill") and method == "GET":
            kind = "trade" if path.endswith("tradebill") else "fundflow"
            day = one.get("bill_date", "")
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", day):
                return self._error(400, "PARAM_ERROR", "bill_date 格式错误")
            raw = self.bills.get((kind, day))
            if raw is None:
                return self._error(400, "NO_STATEMENT_EXIST", "账单文件不存在")
            token = secrets.token_urlsafe(16)
            self.files[token] = raw
            return (
                200,
                {
                    "hash_type": "SHA1",
                    "hash_value": hashlib.sha1(raw, usedforsecurity=False).hexdigest(),
                    "download_url": f"{self.base_url}/v3/billdownload/file?token={token}",
                },
                None,
            )
        if path == "/v3/billdownload/file" and method == "GET":
            raw = self.files.get(one.get("token", ""))
            if raw is None:
                return self._error(400, "INVALID_REQUEST", "下载链接已失效")
            return 200, None, raw
        return self._error(404, "NOT_FOUND", "无此接口")

    def _certificates(self) -> dict[str, Any]:
        data = []
        for serial, (_, pem) in self.platform.items():
            nonce = secrets.token_hex(6)
            ct = AESGCM(self.apiv3_key.encode()).encrypt(nonce.encode(), pem, b"certificate")
            data.append(
                {
                    "serial_no": serial,
                    "effective_time": _now_china(),
                    "expire_time": (datetime.now(CHINA) + timedelta(days=5 * 365))
                    .replace(microsecond=0)
                    .isoformat(),
                    "encrypt_certificate": {
                        "algorithm": "AEAD_AES_256_GCM",
                        "nonce": nonce,
                        "associated_data": "certificate",
                        "ciphertext": base64.b64encode(ct).decode(),
                    },
                }
            )
        return {"data": data}

    def _prepay(self, kind: str, data: dict[str, Any]) -> tuple[int, Any, None]:
        for name in ("appid", "mchid", "description", "out_trade_no", "notify_url", "amount"):
            if name not in data:
                return self._error(400, "PARAM_ERROR", f"缺少参数 {name}")
        if data["mchid"] != self.mchid or data["appid"] != self.appid:
            return self._error(400, "APPID_MCHID_NOT_MATCH", "AppID和mch_id不匹配")
        out = data["out_trade_no"]
        if not (isinstance(out, str) and re.fullmatch(r"[0-9A-Za-z_\-|*]{6,32}", out)):
            return self._error(400, "PARAM_ERROR", "out_trade_no 须为 6 至 32 位数字、字母、_-|*")
        total = data["amount"].get("total") if isinstance(data["amount"], dict) else None
        if not isinstance(total, int) or total < 1:
            return self._error(400, "PARAM_ERROR", "amount.total 须为正整数（分）")
        if not str(data["notify_url"]).startswith("https://") and not str(data["notify_url"]).startswith(
            "http"
        ):
            return self._error(400, "PARAM_ERROR", "notify_url 须为 http(s) 地址")
        if "time_expire" in data and not re.fullmatch(
            r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d([+-]\d\d:\d\d)", data["time_expire"]
        ):
            return self._error(
                400, "PARAM_ERROR", "time_expire 须为 RFC 3339 格式 yyyy-MM-DDTHH:mm:ss+TIMEZONE"
            )
        if kind == "jsapi" and not (isinstance(data.get("payer"), dict) and data["payer"].get("openid")):
            return self._error(400, "PARAM_ERROR", "JSAPI 下单须传 payer.openid")
        trade = self.trades.get(out)
        if trade is not None:
            if trade["trade_state"] == "SUCCESS":
                return self._error(400, "ORDERPAID", "该订单已支付")
            if trade["trade_state"] == "CLOSED":
                return self._error(400, "ORDER_CLOSED", "订单已关闭")
            if trade["amount"]["total"] != total:
                return self._error(403, "OUT_TRADE_NO_USED", "商户订单号重复")
        else:
            trade = self.trades[out] = {
                "out_trade_no": out,
                "trade_type": kind.upper(),
                "trade_state": "NOTPAY",
                "description": data["description"],
                "notify_url": data["notify_url"],
                "time_expire": data.get("time_expire"),
                "amount": {"total": total, "currency": data["amount"].get("currency", "CNY")},
                "payer": data.get("payer"),
                "prepay_id": "wx" + secrets.token_hex(16),
                "code_url": "weixin://wxpay/bizpayurl?pr=" + secrets.token_urlsafe(6),
            }
        if kind == "native":
            return 200, {"code_url": trade["code_url"]}, None
        return 200, {"prepay_id": trade["prepay_id"]}, None

    def _transaction(self, trade: dict[str, Any]) -> dict[str, Any]:
        paid = trade["trade_state"] == "SUCCESS"
        view: dict[str, Any] = {
            "appid": self.appid,
            "mchid": self.mchid,
            "out_trade_no": trade["out_trade_no"],
            "trade_type": trade["trade_type"],
            "trade_state": trade["trade_state"],
            "trade_state_desc": {"SUCCESS": "支付成功", "NOTPAY": "未支付", "CLOSED": "已关闭"}.get(
                trade["trade_state"], trade["trade_state"]
            ),
            "amount": {"total": trade["amount"]["total"], "currency": "CNY"},
        }
        if paid or trade.get("transaction_id"):
            view["transaction_id"] = trade["transaction_id"]
            view["success_time"] = trade["success_time"]
            view["bank_type"] = "OTHERS"
            view["payer"] = {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}
            view["amount"].update(payer_total=trade["amount"]["total"], payer_currency="CNY")
        return view

    def _refund(self, data: dict[str, Any]) -> tuple[int, Any, None]:
        for name in ("out_refund_no", "amount"):
            if name not in data:
                return self._error(400, "PARAM_ERROR", f"缺少参数 {name}")
        trade = self.trades.get(data.get("out_trade_no", ""))
        if trade is None or trade["trade_state"] not in ("SUCCESS", "REFUND"):
            return self._error(404, "RESOURCE_NOT_EXISTS", "订单不存在或未支付")
        amount = data["amount"]
        if amount.get("total") != trade["amount"]["total"]:
            return self._error(400, "PARAM_ERROR", "amount.total 与原订单金额不符")
        existing = self.refunds.get(data["out_refund_no"])
        if existing is not None:  # the same out_refund_no: the same refund
            return 200, self._refund_view(existing), None
        done = sum(
            r["amount"]["refund"] for r in self.refunds.values() if r["out_trade_no"] == trade["out_trade_no"]
        )
        if (
            not isinstance(amount.get("refund"), int)
            or amount["refund"] < 1
            or done + amount["refund"] > trade["amount"]["total"]
        ):
            return self._error(400, "INVALID_REQUEST", "退款金额超过可退金额")
        refund = self.refunds[data["out_refund_no"]] = {
            "refund_id": "50300" + secrets.token_hex(12)[:24],
            "out_refund_no": data["out_refund_no"],
            "transaction_id": trade["transaction_id"],
            "out_trade_no": trade["out_trade_no"],
            "status": "PROCESSING",
            "create_time": _now_china(),
            "amount": {"refund": amount["refund"], "total": amount["total"], "currency": "CNY"},
            "notify_url": data.get("notify_url"),
        }
        trade["trade_state"] = "REFUND"
        if "*next*" in self.processing:
            self.processing.discard("*next*")
        elif data["out_refund_no"] not in self.processing:
            self._refund_done(refund)
        return 200, self._refund_view(refund), None

    def _refund_done(self, refund: dict[str, Any]) -> None:
        refund["status"] = "SUCCESS"
        refund["success_time"] = _now_china()
        refund["done_on"] = _business_now().date().isoformat()

    @staticmethod
    def _refund_view(refund: dict[str, Any]) -> dict[str, Any]:
        view = {k: v for k, v in refund.items() if k not in ("notify_url", "done_on")}
        view.update(channel="ORIGINAL", user_received_account="支付用户零钱", funds_account="AVAILABLE")
        view["amount"] = {
            **refund["amount"],
            "payer_total": refund["amount"]["total"],
            "payer_refund": refund["amount"]["refund"],
        }
        return view


def trade_bill(header: str, rows: list[list[str]], *, totals_off: int = 0) -> bytes:
    """A trade bill as WeChat writes it: the header, each detail field prefixed by a backtick, the
    totals header and its line (amounts in yuan)."""

    def fen(value: str) -> int:
        sign = -1 if value.startswith("-") else 1
        whole, _, cents = value.lstrip("-").partition(".")
        return sign * (int(whole or 0) * 100 + int((cents + "00")[:2]))

    names = header.split(",")
    col = {n: i for i, n in enumerate(names)}
    paid = sum(fen(r[col["应结订单金额"]]) for r in rows if r[col["交易状态"]] == "SUCCESS")
    refunded = sum(fen(r[col["退款金额"]]) for r in rows if r[col["交易状态"]] == "REFUND")
    fees = sum(fen(r[col["手续费"]]) for r in rows)
    ordered = sum(fen(r[col["订单金额"]]) for r in rows)
    asked = sum(fen(r[col["申请退款金额"]]) for r in rows)
    lines = [header]
    lines += [",".join("`" + v for v in r) for r in rows]
    lines.append(
        "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"
    )
    totals = [
        str(len(rows)),
        _yuan(paid + totals_off),
        _yuan(refunded),
        "0.00",
        _yuan(fees),
        _yuan(ordered),
        _yuan(asked),
    ]
    lines.append(",".join("`" + v for v in totals))
    return ("\r\n".join(lines) + "\r\n").encode()


def main() -> None:  # pragma: no cover - the server for outside testing
    import uvicorn

    parser = argparse.ArgumentParser(description="A local WeChat Pay API v3 double")
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--mchid", default="1900000001")
    parser.add_argument("--appid", default="wxd678efh567hg6787")
    args = parser.parse_args()
    double = WeChatPayDouble(mchid=args.mchid, appid=args.appid, base_url=f"http://{args.host}:{args.port}")
    assert double.merchant_private is not None
    pem = double.merchant_private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    print(f"SHENGSHI_WECHATPAY_API_BASE=http://{args.host}:{args.port}")
    print(f"SHENGSHI_WECHATPAY_MCHID={double.mchid}\nSHENGSHI_WECHATPAY_APPID={double.appid}")
    print(
        f"SHENGSHI_WECHATPAY_APIV3_KEY={double.apiv3_key}\nSHENGSHI_WECHATPAY_CERT_SERIAL={double.merchant_serial}"
    )
    print(
        "merchant private key (SHENGSHI_WECHATPAY_PRIVATE_KEY_FILE), generated for this run:\n" + pem.decode()
    )
    uvicorn.run(double, host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
