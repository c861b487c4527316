"""Alipay: its asynchronous notifications (RSA2) and the calls we make to its OpenAPI gateway.

Alipay has two signing rules, and they differ:

- a **notification** is verified over every parameter but ``sign`` and ``sign_type``, sorted by key,
  joined ``k=v`` with ``&`` (values as decoded from the form), empty values included (as Alipay's own
  SDKs do), with SHA256withRSA and Alipay's public key;
- a **request** (the order string the app hands to the Alipay SDK) is signed over every non-empty
  parameter but ``sign``, so ``sign_type`` is signed too, with the app's private key.

The reply is the plain text ``success``; anything else makes Alipay resend (about 8 times over 25
hours, with the same ``notify_id``).

Refund notifications carry ``refund_fee``, the trade's **total** refunded so far (not this refund's
amount); the payment centre turns it into an increment against what it has already booked.

Calls go to the OpenAPI gateway (``SHENGSHI_ALIPAY_GATEWAY``) as form-encoded POSTs of the common
parameters (``app_id``, ``method``, ``format``, ``charset``, ``sign_type``, ``timestamp`` in China time,
``version``, ``notify_url`` where the API takes one, ``biz_content`` as compact JSON) signed by the
request rule. The answer is JSON: ``{"<method with . as _>_response": {...}, "sign": "..."}``, and
Alipay signs the exact text of that value as it stands in the body; we verify that substring of the raw
bytes (never a re-serialisation) with Alipay's public key, and an answer that does not verify is
treated as no answer (:func:`channel_busy`: the outcome is unknown and the same call is retried).
``code`` 10000 is success; 40004 with a ``sub_code`` (``ACQ.TRADE_NOT_EXIST``...) is a refusal each
call maps; 20000 and ``*.SYSTEM_ERROR`` mean try again.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
import re
import time as _time
import zipfile
import zlib
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, quote_plus, urlencode

import httpx
import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from backend.errors import AppError, Conflict, InvalidInput, ServiceUnavailable
from payments.channels.base import (
    Capability,
    Channel,
    ChannelContext,
    ChannelPlugin,
    Notification,
    NotificationRejected,
    Reply,
    SettingsProblem,
    Statement,
    StatementRow,
    channel_busy,
    channel_time,
)

CHINA = timezone(timedelta(hours=8))


# an amount as Alipay writes one: yuan, at most two decimals (``10``, ``10.5``, ``10.50``); nothing else
# (no sign, exponent, NaN, Infinity, digits of another script) is an amount
YUAN = re.compile(r"([0-9]{1,12})(?:\.([0-9]{1,2}))?")


def yuan_to_fen(value: str) -> int:
    m = YUAN.fullmatch(value)
    if m is None:
        raise NotificationRejected("bad_amount", f"not an amount in yuan: {value[:32]!r}")
    return int(m.group(1)) * 100 + int((m.group(2) or "").ljust(2, "0"))


def fen_to_yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def notification_signing_string(params: Mapping[str, str]) -> str:
    """What Alipay signed in a notification: all but ``sign`` and ``sign_type``, empty values kept."""
    return "&".join(f"{k}={params[k]}" for k in sorted(params) if k not in ("sign", "sign_type"))


def request_signing_string(params: Mapping[str, str]) -> str:
    """What an app signs in a request: every non-empty parameter but ``sign`` (``sign_type`` included)."""
    return "&".join(f"{k}={params[k]}" for k in sorted(params) if k != "sign" and params[k] != "")


DEFAULT_GATEWAY = "https://openapi.alipay.com/gateway.do"
# answers that mean "try again": the outcome is unknown
BUSY_CODES = frozenset({"20000", "20001"})  # service unavailable; authorisation lapsed at Alipay's side
BUSY_SUB_CODES = frozenset({"ACQ.SYSTEM_ERROR", "isp.unknow-error", "aop.ACQ.SYSTEM_ERROR"})


def china_time(when: datetime) -> str:
    """A time as Alipay's parameters write one: ``yyyy-MM-dd HH:mm:ss`` in China time (naive = UTC)."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S")


def response_content(raw: bytes, method: str) -> tuple[str, dict[str, Any], str]:
    """What Alipay signed in its answer to ``method``: the exact text of the top-level
    ``<method>_response`` value (``error_response`` when Alipay refused the call before reaching it) as it
    stands in ``raw``, that value decoded, and the ``sign`` (empty when there is none). Raises ValueError
    for a body that is not such an answer."""
    text = raw.decode("utf-8")
    top = json.loads(text)
    if not isinstance(top, dict):
        raise ValueError("the answer is not a JSON object")
    key = method.replace(".", "_") + "_response"
    if key not in top:
        key = "error_response"
    value = top.get(key)
    if not isinstance(value, dict):
        raise ValueError(f"the answer has no {method.replace('.', '_')}_response object")
    sign = top.get("sign", "")
    if not isinstance(sign, str):
        raise ValueError("the answer's sign is not a string")
    # the key's occurrences in the text (a quoted key cannot stand inside a JSON string, where quotes
    # are escaped); the top-level one is the one whose value decodes to what the whole body holds
    decoder = json.JSONDecoder()
    for found in re.finditer(rf'"{re.escape(key)}"\s*:\s*', text):
        try:
            candidate, end = decoder.raw_decode(text, found.end())
        except ValueError:
            continue
        if candidate == value:
            return text[found.end() : end], value, sign
    raise ValueError("the signed value could not be found in the answer")


class Refused(Exception):
    """Alipay answered the call with a business refusal (code 40004 and the like): nothing was done."""

    def __init__(self, answer: Mapping[str, Any]) -> None:
        self.code = str(answer.get("code", ""))
        self.sub_code = str(answer.get("sub_code", ""))
        self.sub_msg = str(answer.get("sub_msg", "") or answer.get("msg", ""))
        super().__init__(f"{self.code} {self.sub_code}: {self.sub_msg}")

    def error(self, channel: str) -> AppError:
        """The refusal as the API tells it (422 channel_refused, Alipay's sub_code kept)."""
        return InvalidInput(
            f"{channel} refused the call: {self.sub_code or self.code} {self.sub_msg[:200]}",
            code="channel_refused",
            channel=channel,
            channel_code=self.sub_code or self.code,
        )


# ---- the trade bill ------------------------------------------------------------------------------------
class BillProblem(ValueError):
    """The downloaded bill is not one we can read, or it does not add up to its own totals."""


# The detail file's columns (业务明细, trade bill, as Alipay documents them); a file is read by its
# header's names, so added or reordered columns are read as well:
# 支付宝交易号, 商户订单号, 业务类型 (交易 a payment, 退款 a refund), 商品名称, 创建时间, 完成时间, 门店编号,
# 门店名称, 操作员, 终端号, 对方账户, 订单金额（元）, 商家实收（元）, 支付宝红包（元）, 集分宝（元）,
# 支付宝优惠（元）, 商家优惠（元）, 券核销金额（元）, 券名称, 商家红包消费金额（元）, 卡消费金额（元）,
# 退款批次号/请求号, 服务费（元）, 分润（元）, 备注
BILL_NEEDS = (
    "支付宝交易号",
    "商户订单号",
    "业务类型",
    "完成时间",
    "订单金额（元）",
    "商家实收（元）",
    "退款批次号/请求号",
    "服务费（元）",
)
SIGNED_YUAN = re.compile(r"(-?)([0-9]{1,12})(?:\.([0-9]{1,2}))?")
TOTALS = re.compile(r"#(交易|退款)合计[：:]\s*([0-9]+)\s*笔[，,]\s*商家实收(?:退款)?共\s*(-?[0-9.]+)\s*元")


def _signed_fen(value: str, where: str) -> int:
    m = SIGNED_YUAN.fullmatch(value.strip() or "0")
    if m is None:
        raise BillProblem(f"{where}: not an amount in yuan: {value[:32]!r}")
    fen = int(m.group(2)) * 100 + int((m.group(3) or "").ljust(2, "0"))
    return -fen if m.group(1) else fen


def _zip_name(info: zipfile.ZipInfo) -> str:
    """A member's name: Alipay writes its zip's names in GBK without the UTF-8 flag (read as cp437)."""
    if info.flag_bits & 0x800:
        return info.filename
    try:
        return info.filename.encode("cp437").decode("gbk")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return info.filename


# the most a bill may be, downloaded and each file in it unpacked: a city's busiest day is a few hundred
# thousand rows (well under 100 MiB of CSV); anything larger is no bill but a zip bomb or a wrong URL
BILL_MAX_BYTES = 256 << 20


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """A member's bytes, at most :data:`BILL_MAX_BYTES` of them: its stated size is checked first, and
    zipfile never unpacks past the stated size (a member that lies about it fails its CRC)."""
    if info.file_size > BILL_MAX_BYTES:
        raise BillProblem(f"the detail file is larger than {BILL_MAX_BYTES} bytes unpacked")
    with archive.open(info) as member:
        data = member.read(BILL_MAX_BYTES + 1)
    if len(data) > BILL_MAX_BYTES:
        raise BillProblem(f"the detail file is larger than {BILL_MAX_BYTES} bytes unpacked")
    return data


def parse_bill(data: bytes, day: date, channel: str = "alipay") -> Statement:
    """Alipay's trade bill for ``day`` as downloaded: a zip holding GBK CSVs, the detail file
    (``<account>_<yyyyMMdd>_业务明细.csv``) and a summary (``..._业务明细(汇总).csv``). The detail file
    has comment lines (``#``: account, period, and after the rows the totals
    ``#交易合计：N笔，商家实收共X元，...`` and ``#退款合计：N笔，商家实收退款共-Y元，...``), one header
    line and the rows; fields may end in spaces
    or tabs. A 交易 row is a payment, a 退款 row a refund (its amount positive here, our refund id in
    退款批次号/请求号). The rows must add up to the totals the file states; a bill that does not is refused
    (:class:`BillProblem`)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = {_zip_name(info): info for info in archive.infolist() if not info.is_dir()}
            detail = [n for n in members if n.endswith("业务明细.csv")]
            if len(detail) != 1:
                raise BillProblem(f"the bill holds {len(detail)} detail files (业务明细.csv), not one")
            text = _read_member(archive, members[detail[0]]).decode("gbk")
    # zlib.error / EOFError: a broken deflate stream; NotImplementedError: a compression method zipfile
    # lacks; RuntimeError: an encrypted member
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        KeyError,
        zlib.error,
        EOFError,
        NotImplementedError,
        RuntimeError,
        OSError,
    ):
        raise BillProblem("the bill is not a readable zip") from None
    except UnicodeDecodeError:
        raise BillProblem("the detail file is not GBK text") from None
    header: list[str] | None = None
    rows: list[StatementRow] = []
    stated: dict[str, tuple[int, int]] = {}
    summed = {"交易": [0, 0], "退款": [0, 0]}  # count, 商家实收 in fen
    fees = 0
    try:
        lines = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:  # a field past the csv module's limit, a NUL
        raise BillProblem(f"the detail file is not readable CSV ({exc})") from None
    for n, fields in enumerate(lines, 1):
        if not fields or not "".join(fields).strip():
            continue
        if fields[0].lstrip().startswith("#"):
            m = TOTALS.search(",".join(fields))
            if m:
                stated[m.group(1)] = (int(m.group(2)), abs(_signed_fen(m.group(3), f"line {n}")))
            continue
        fields = [f.strip(" \t\r\n") for f in fields]
        if header is None:
            header = fields
            missing = [c for c in BILL_NEEDS if c not in header]
            if missing:
                raise BillProblem(f"the detail file's header lacks {', '.join(missing)}")
            continue
        if len(fields) != len(header):
            raise BillProblem(f"line {n}: {len(fields)} fields, the header names {len(header)}")
        row = dict(zip(header, fields, strict=True))
        kind = row["业务类型"]
        if kind not in summed:
            raise BillProblem(f"line {n}: unknown business type {kind[:16]!r}")
        amount = abs(_signed_fen(row["订单金额（元）"], f"line {n}"))
        received = abs(_signed_fen(row["商家实收（元）"], f"line {n}"))
        fee = abs(_signed_fen(row["服务费（元）"], f"line {n}"))
        summed[kind][0] += 1
        summed[kind][1] += received
        fees += fee
        refund = kind == "退款"
        rows.append(
            StatementRow(
                txn_id=f"{row['支付宝交易号']}/{row['退款批次号/请求号']}" if refund else row["支付宝交易号"],
                order_id=row["商户订单号"],
                type="refund" if refund else "payment",
                amount=amount,
                refund_ref=row["退款批次号/请求号"] if refund else "",
                fee=fee,
                channel_time=channel_time(row["完成时间"] or row.get("创建时间"), default_tz=CHINA),
            )
        )
    if header is None:
        raise BillProblem("the detail file has no header line")
    for kind, (count, total) in stated.items():
        if (count, total) != tuple(summed[kind]):
            raise BillProblem(
                f"the bill's {kind} total says {count} rows and {fen_to_yuan(total)} yuan; its rows are "
                f"{summed[kind][0]} and {fen_to_yuan(summed[kind][1])} yuan"
            )
    totals = {
        "count": len(rows),
        "payments": sum(r.amount for r in rows if r.type == "payment"),
        "refunds": sum(r.amount for r in rows if r.type == "refund"),
        "fees": fees,
    }
    return Statement(
        channel=channel, day=day, rows=rows, totals=totals, raw=data, media_type="application/zip"
    )


class Alipay(Channel):
    name = "alipay"
    title_zh = "支付宝"
    capabilities = frozenset(
        {Capability.REFUNDS, Capability.QUERY, Capability.CLOSE, Capability.BILLS, Capability.DEFERRED_CHARGE}
    )
    pay_methods = ("app", "page", "precreate")

    def __init__(
        self,
        *,
        app_id: str,
        seller_id: str,
        alipay_public_key: rsa.RSAPublicKey,
        app_private_key: rsa.RSAPrivateKey | None = None,
        notify_url: str = "",
        gateway: str = DEFAULT_GATEWAY,
        timeout: float = 10.0,
        return_url: str = "",
        transport: httpx.AsyncBaseTransport | None = None,
        now: Callable[[], float] = _time.time,
    ) -> None:
        self.app_id = app_id
        self.seller_id = seller_id
        self._alipay_key = alipay_public_key
        self._app_key = app_private_key
        if app_private_key is None:
            # no call can be signed: the payment centre asks nothing of this channel but its notifications
            self.capabilities = frozenset()  # type: ignore[misc]
        self.notify_url = notify_url
        self.gateway = gateway
        self.timeout = timeout
        self.return_url = return_url
        # how calls reach the gateway: None is the network; a test sets the double's ASGI transport
        self.transport = transport
        self._now = now

    def verify(self, headers: Mapping[str, str], body: bytes, now: float) -> list[Notification]:
        try:
            params = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True))
        except (UnicodeDecodeError, ValueError):
            raise NotificationRejected("bad_body", "not a form-encoded Alipay notification") from None
        sign = params.get("sign", "")
        if not sign or params.get("sign_type", "RSA2") != "RSA2":
            raise NotificationRejected("bad_signature", "missing sign or sign_type is not RSA2")
        try:
            self._alipay_key.verify(
                base64.b64decode(sign, validate=True),
                notification_signing_string(params).encode("utf-8"),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except (InvalidSignature, binascii.Error, ValueError):
            raise NotificationRejected(
                "bad_signature", "the signature does not match the parameters"
            ) from None
        try:
            notify_id, order_ref, trade_no = params["notify_id"], params["out_trade_no"], params["trade_no"]
            status = params["trade_status"]
        except KeyError:
            raise NotificationRejected("bad_body", "required notification fields are missing") from None
        summary = {"trade_status": status, "gmt_payment": params.get("gmt_payment")}
        # genuine, but for another app or merchant: recorded and refused by the payment centre
        refusal = ""
        if params.get("app_id") != self.app_id:
            refusal = "app_mismatch"
        elif params.get("seller_id") != self.seller_id:
            refusal = "merchant_mismatch"
        refunded = yuan_to_fen(params["refund_fee"]) if params.get("refund_fee") else 0
        if refunded > 0:  # a refund (a partial one, or TRADE_CLOSED after a full one): the running total
            out_biz_no = params.get("out_biz_no", "")
            summary["gmt_refund"] = params.get("gmt_refund")
            return [
                Notification(
                    channel=self.name,
                    notify_id=notify_id + "/refund",
                    kind="refund",
                    order_ref=order_ref,
                    amount=refunded,
                    cumulative=True,
                    channel_txn=f"{trade_no}/{out_biz_no or notify_id}",
                    refund_ref=out_biz_no,
                    payment_txn=trade_no,
                    channel_time=channel_time(params.get("gmt_refund"), default_tz=CHINA),
                    refusal=refusal,
                    summary=summary,
                )
            ]
        if status in ("TRADE_SUCCESS", "TRADE_FINISHED"):
            kind: Literal["payment", "closed"] = "payment"
        elif status == "TRADE_CLOSED":
            kind = "closed"
        else:  # WAIT_BUYER_PAY and the like: acknowledged, nothing to do
            return []
        return [
            Notification(
                channel=self.name,
                notify_id=notify_id,
                kind=kind,
                order_ref=order_ref,
                amount=yuan_to_fen(params.get("total_amount", "0" if kind == "closed" else "")),
                channel_txn=trade_no,
                channel_time=channel_time(params.get("gmt_payment"), default_tz=CHINA),
                refusal=refusal,
                summary=summary,
            )
        ]

    def success(self) -> Reply:
        return Reply(status=200, body=b"success", media_type="text/plain")

    def failure(self, message: str, status: int = 400) -> Reply:
        return Reply(status=status, body=b"fail", media_type="text/plain")

    # ---- the calls ---------------------------------------------------------------------------------
    def _key(self) -> rsa.RSAPrivateKey:
        if self._app_key is None:
            raise ServiceUnavailable("Alipay is not configured for payments here", code="channel_unavailable")
        return self._app_key

    def signed_params(self, method: str, biz: Mapping[str, Any], **extra: str) -> dict[str, str]:
        """The common parameters of a call to ``method`` and its ``sign`` (the request rule)."""
        params = {
            "app_id": self.app_id,
            "method": method,
            "format": "JSON",
            "charset": "utf-8",
            "sign_type": "RSA2",
            "timestamp": china_time(datetime.fromtimestamp(self._now(), UTC)),
            "version": "1.0",
            # written as Alipay's SDKs write it (python-alipay-sdk: json.dumps with ensure_ascii, so a
            # Chinese subject travels as \u escapes of four hex digits): the order string is then theirs
            # byte for byte
            "biz_content": json.dumps(biz, separators=(",", ":")),
            **extra,
        }
        params = {k: v for k, v in params.items() if v != ""}
        content = request_signing_string(params).encode("utf-8")
        sign = self._key().sign(content, padding.PKCS1v15(), hashes.SHA256())
        return {**params, "sign": base64.b64encode(sign).decode()}

    def verified_answer(self, raw: bytes, method: str) -> dict[str, Any]:
        """The answer's ``<method>_response`` if Alipay's signature over its exact text verifies;
        else :func:`channel_busy` (an answer we cannot trust is no answer)."""
        try:
            content, value, sign = response_content(raw, method)
        except (UnicodeDecodeError, ValueError):
            raise channel_busy(self.name, "an answer that is not Alipay's JSON") from None
        if not sign:
            raise channel_busy(self.name, "an unsigned answer")
        try:
            self._alipay_key.verify(
                base64.b64decode(sign, validate=True),
                content.encode("utf-8"),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except (InvalidSignature, binascii.Error, ValueError):
            raise channel_busy(self.name, "an answer whose sign does not verify") from None
        return value

    async def call(
        self, method: str, biz: Mapping[str, Any], *, ok: tuple[str, ...] = ("10000",), **extra: str
    ) -> dict[str, Any]:
        """POST ``method`` to the gateway; its verified answer when its code is in ``ok``. Raises
        :class:`Refused` for a business refusal, :func:`channel_busy` when the outcome is unknown."""
        body = urlencode(self.signed_params(method, biz, **extra)).encode("ascii")
        try:
            async with httpx.AsyncClient(transport=self.transport, timeout=self.timeout) as http:
                r = await http.post(
                    self.gateway,
                    content=body,
                    headers={"Content-Type": "application/x-www-form-urlencoded;charset=utf-8"},
                )
        except httpx.HTTPError as exc:
            raise channel_busy(self.name, f"{method}: {type(exc).__name__}") from None
        if r.status_code != 200:
            raise channel_busy(self.name, f"{method}: HTTP {r.status_code}")
        answer = self.verified_answer(r.content, method)
        code = str(answer.get("code", ""))
        if code in ok:
            return answer
        if code in BUSY_CODES or str(answer.get("sub_code", "")) in BUSY_SUB_CODES:
            raise channel_busy(self.name, f"{method}: {code} {answer.get('sub_code', '')}")
        raise Refused(answer)

    def _subject(self, order: Mapping[str, Any]) -> str:
        return str(order.get("description") or "盛事通")[:256]

    async def start_payment(self, order: dict[str, Any]) -> dict[str, Any]:
        """``app``: the signed order string for alipay.trade.app.pay, which the app passes to the Alipay
        SDK; ``page``: the signed URL of alipay.trade.page.pay a browser opens; ``precreate``: the QR
        code (a URL) alipay.trade.precreate answers, which the citizen scans with Alipay."""
        self._key()
        method = order.get("method") or "app"
        biz: dict[str, Any] = {
            "out_trade_no": order["order_ref"],
            "total_amount": fen_to_yuan(order["amount"]),
            "subject": self._subject(order),
        }
        if method == "app":
            biz["product_code"] = "QUICK_MSECURITY_PAY"
        elif method == "page":
            biz["product_code"] = "FAST_INSTANT_TRADE_PAY"
        if order.get("expires_at") is not None:
            biz["time_expire"] = china_time(order["expires_at"])
        if method == "precreate":
            try:
                answer = await self.call("alipay.trade.precreate", biz, notify_url=self.notify_url)
            except Refused as exc:
                raise exc.error(self.name) from None
            return {"method": "precreate", "qr_code": answer.get("qr_code", "")}
        name = "alipay.trade.page.pay" if method == "page" else "alipay.trade.app.pay"
        extra = {"notify_url": self.notify_url}
        if method == "page":
            extra["return_url"] = str(order.get("return_url") or self.return_url)
        if method == "app":  # the order string has no format, as Alipay's SDKs write it
            extra["format"] = ""
        params = self.signed_params(name, biz, **extra)
        # form-encoded as Alipay's SDKs do: the signed parameters in order, then the signature
        items = [(k, params[k]) for k in sorted(params) if k != "sign"] + [("sign", params["sign"])]
        query = "&".join(f"{k}={quote_plus(v)}" for k, v in items)
        if method == "page":
            return {"method": "page", "url": f"{self.gateway}?{query}"}
        return {"method": "app", "order_string": query}

    def _paid(self, answer: Mapping[str, Any], order_ref: str, status: str) -> Notification:
        """A payment (or a closing) told by a call's verified answer: one notification per trade."""
        trade_no = str(answer.get("trade_no", ""))
        refusal = ""
        if answer.get("app_id") not in (None, self.app_id):
            refusal = "app_mismatch"
        elif answer.get("seller_id") not in (None, self.seller_id):
            refusal = "merchant_mismatch"
        elif answer.get("out_trade_no") not in (None, order_ref):
            refusal = "order_mismatch"
        paid_at = answer.get("gmt_payment") or answer.get("send_pay_date")
        closed = status == "TRADE_CLOSED"
        try:
            amount = yuan_to_fen(str(answer.get("total_amount", "0" if closed else "")))
        except NotificationRejected:
            raise channel_busy(self.name, "an answer without a readable total_amount") from None
        return Notification(
            channel=self.name,
            notify_id=f"query:{trade_no}" + ("/closed" if closed else ""),
            kind="closed" if closed else "payment",
            order_ref=order_ref,
            amount=amount,
            channel_txn=trade_no,
            channel_time=channel_time(paid_at, default_tz=CHINA),
            refusal=refusal,
            summary={"trade_status": status, "gmt_payment": paid_at},
        ).checked()

    async def query_payment(self, order: dict[str, Any]) -> list[Notification]:
        """alipay.trade.query: TRADE_SUCCESS or TRADE_FINISHED is a payment, TRADE_CLOSED a closing;
        WAIT_BUYER_PAY, or no such trade (ACQ.TRADE_NOT_EXIST), is nothing yet."""
        try:
            answer = await self.call("alipay.trade.query", {"out_trade_no": order["order_ref"]})
        except Refused as exc:
            if exc.sub_code == "ACQ.TRADE_NOT_EXIST":
                return []
            raise exc.error(self.name) from None
        status = str(answer.get("trade_status", ""))
        if status in ("TRADE_SUCCESS", "TRADE_FINISHED", "TRADE_CLOSED"):
            return [self._paid(answer, order["order_ref"], status)]
        return []

    async def close_payment(self, order: dict[str, Any]) -> None:
        """alipay.trade.close: a trade never opened (ACQ.TRADE_NOT_EXIST) is closed already; one that
        is paid (ACQ.TRADE_STATUS_ERROR) is a Conflict, channel_trade_paid."""
        try:
            await self.call("alipay.trade.close", {"out_trade_no": order["order_ref"]})
        except Refused as exc:
            if exc.sub_code == "ACQ.TRADE_NOT_EXIST":
                return
            if exc.sub_code == "ACQ.TRADE_STATUS_ERROR":
                raise Conflict(
                    "Alipay says the trade is paid or finished; it cannot be closed",
                    code="channel_trade_paid",
                    channel=self.name,
                ) from None
            raise exc.error(self.name) from None

    def _refunded(
        self,
        answer: Mapping[str, Any],
        refund: Mapping[str, Any],
        amount: int,
        *,
        cumulative: bool,
        when: Any,
    ) -> Notification:
        trade_no = str(answer.get("trade_no", "") or refund.get("channel_txn", ""))
        out_request_no = str(refund["refund_ref"])
        return Notification(
            channel=self.name,
            notify_id=f"query:{trade_no}/{out_request_no}",
            kind="refund",
            order_ref=str(refund["order_ref"]),
            amount=amount,
            cumulative=cumulative,
            channel_txn=f"{trade_no}/{out_request_no}",
            refund_ref=out_request_no,
            payment_txn=trade_no,
            channel_time=channel_time(when, default_tz=CHINA),
            summary={"gmt_refund": when},
        ).checked()

    async def request_refund(self, refund: dict[str, Any]) -> list[Notification]:
        """alipay.trade.refund with out_request_no = our refund id (asking twice refunds once). Its
        answer's ``refund_fee`` is the trade's refunded total (cumulative, as in the notifications);
        ``fund_change`` N means this call moved no money (a repeat, or not yet): the refund query
        completes it."""
        biz = {
            "out_trade_no": refund["order_ref"],
            "refund_amount": fen_to_yuan(refund["amount"]),
            "out_request_no": refund["refund_ref"],
            "refund_reason": str(refund.get("reason") or "")[:256],
        }
        try:
            answer = await self.call("alipay.trade.refund", {k: v for k, v in biz.items() if v})
        except Refused as exc:
            raise exc.error(self.name) from None
        if answer.get("fund_change") != "Y":
            return []
        try:
            total = yuan_to_fen(str(answer.get("refund_fee", "")))
        except NotificationRejected:
            raise channel_busy(self.name, "a refund answer without a readable refund_fee") from None
        return [self._refunded(answer, refund, total, cumulative=True, when=answer.get("gmt_refund_pay"))]

    async def query_refund(self, refund: dict[str, Any]) -> list[Notification]:
        """alipay.trade.fastpay.refund.query: REFUND_SUCCESS is the refund (this request's
        ``refund_amount``); an empty answer is a refund not (yet) made."""
        biz = {
            "out_trade_no": refund["order_ref"],
            "out_request_no": refund["refund_ref"],
            "query_options": ["gmt_refund_pay"],
        }
        try:
            answer = await self.call("alipay.trade.fastpay.refund.query", biz)
        except Refused as exc:
            if exc.sub_code == "ACQ.TRADE_NOT_EXIST":
                return []
            raise exc.error(self.name) from None
        if answer.get("refund_status") != "REFUND_SUCCESS":
            return []
        try:
            amount = yuan_to_fen(str(answer.get("refund_amount", "")))
        except NotificationRejected:
            raise channel_busy(self.name, "a refund answer without a readable refund_amount") from None
        return [self._refunded(answer, refund, amount, cumulative=False, when=answer.get("gmt_refund_pay"))]

    async def charge_agreement(self, order: dict[str, Any]) -> list[Notification]:
        """alipay.trade.pay (GENERAL_WITHHOLDING) against the citizen's agreement: 10000 is paid, 10003
        is waiting (its notification or a query completes it), 40004 a refusal."""
        if not order.get("agreement_no"):
            raise Conflict(
                "the citizen has no Alipay payment agreement", code="agreement_missing", channel=self.name
            )
        biz = {
            "out_trade_no": order["order_ref"],
            "total_amount": fen_to_yuan(order["amount"]),
            "subject": self._subject(order),
            "product_code": "GENERAL_WITHHOLDING",
            "agreement_params": {"agreement_no": order["agreement_no"]},
        }
        try:
            answer = await self.call(
                "alipay.trade.pay", biz, ok=("10000", "10003"), notify_url=self.notify_url
            )
        except Refused as exc:
            if exc.sub_code == "ACQ.TRADE_HAS_SUCCESS":
                # charged again (a till's retry after a 10003 or an unknown outcome) and the buyer has
                # paid meanwhile: Alipay's answer is "already paid", which is the payment, not a refusal
                return await self.query_payment(order)
            raise exc.error(self.name) from None
        if answer["code"] == "10003":
            return []
        return [self._paid(answer, order["order_ref"], "TRADE_SUCCESS")]

    def _alipays(self, url: str) -> bool:
        """Whether a bill URL is on the gateway's host or its domain (Alipay's gateway is
        openapi.alipay.com, its bills dwbillcenter.alipay.com; the sandbox's are both under
        alipaydev.com). An address, or a name of one label, must be the gateway's own."""
        try:
            host, gateway = httpx.URL(url).host.lower(), httpx.URL(self.gateway).host.lower()
        except httpx.InvalidURL:
            return False
        if not host:
            return False
        if host == gateway:
            return True
        labels = gateway.split(".")
        if len(labels) < 2 or labels[-1].isdigit() or ":" in gateway:
            return False
        return host.endswith("." + ".".join(labels[-2:]))

    async def download_bill(self, day: date) -> Statement:
        """alipay.data.dataservice.bill.downloadurl.query (bill_type trade), then the zip at the URL it
        answers (fetched unsigned), parsed by :func:`parse_bill`."""
        try:
            answer = await self.call(
                "alipay.data.dataservice.bill.downloadurl.query",
                {"bill_type": "trade", "bill_date": day.isoformat()},
            )
        except Refused as exc:
            if exc.sub_code in ("isp.bill_not_exist", "isp.bill_not_ready", "ACQ.BILL_NOT_EXIST"):
                raise ServiceUnavailable(
                    f"Alipay has no bill for {day} yet",
                    code="bill_not_ready",
                    channel=self.name,
                    day=str(day),
                ) from None
            raise exc.error(self.name) from None
        url = str(answer.get("bill_download_url", ""))
        if not url.startswith(("https://", "http://")):
            raise channel_busy(self.name, "a bill answer without a download URL")
        if not self._alipays(url):  # never fetched from anywhere else (our own network, a metadata service)
            raise channel_busy(self.name, "a bill download URL that is not Alipay's")
        try:
            async with (
                httpx.AsyncClient(transport=self.transport, timeout=self.timeout) as http,
                http.stream("GET", url) as r,
            ):
                if r.status_code != 200:
                    raise channel_busy(self.name, f"the bill download: HTTP {r.status_code}")
                content = bytearray()
                async for chunk in r.aiter_bytes():
                    content += chunk
                    if len(content) > BILL_MAX_BYTES:
                        raise channel_busy(self.name, f"the bill download: over {BILL_MAX_BYTES} bytes")
        except httpx.HTTPError as exc:
            raise channel_busy(self.name, f"the bill download: {type(exc).__name__}") from None
        try:
            return parse_bill(bytes(content), day, self.name)
        except BillProblem as exc:
            raise ServiceUnavailable(
                f"Alipay's bill for {day} cannot be used: {exc}", code="bill_invalid", channel=self.name
            ) from None


class AlipaySettings(msgspec.Struct, frozen=True):
    """SHENGSHI_ALIPAY_*: the app, the merchant, Alipay's public key and the app's private key (files
    holding PEM keys; never in the repo)."""

    app_id: str
    seller_id: str  # the merchant's Alipay user id (2088...): notifications must name it
    public_key_file: str
    # without it every call is refused (503 channel_unavailable); notifications still work
    app_private_key_file: str = ""
    gateway: str = DEFAULT_GATEWAY  # the OpenAPI gateway (Alipay's sandbox, or a local double)
    timeout_seconds: float = 10.0  # per call; a call that times out is tried again later
    return_url: str = ""  # where Alipay's page payment (method page) sends the browser back


def _key_file(var: str, path: str, private: bool) -> Any:
    try:
        data = Path(path).read_bytes()
        key = (
            serialization.load_pem_private_key(data, None)
            if private
            else serialization.load_pem_public_key(data)
        )
    except OSError as exc:
        raise SettingsProblem(f"{var}: cannot read {path!r}: {exc.strerror}") from None
    except (ValueError, TypeError):
        raise SettingsProblem(
            f"{var}: {path!r} is not a PEM {'private' if private else 'public'} key"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey if private else rsa.RSAPublicKey):
        raise SettingsProblem(f"{var}: {path!r} is not an RSA key")
    return key


def _build(s: AlipaySettings, platform: ChannelContext) -> Alipay:
    problems: list[str] = []
    keys: list[Any] = []
    for var, path, private in (
        ("SHENGSHI_ALIPAY_PUBLIC_KEY_FILE", s.public_key_file, False),
        ("SHENGSHI_ALIPAY_APP_PRIVATE_KEY_FILE", s.app_private_key_file, True),
    ):
        try:
            keys.append(_key_file(var, path, private) if path else None)
        except SettingsProblem as exc:
            problems += exc.problems
    if not s.gateway.startswith(("https://", "http://")):
        problems.append("SHENGSHI_ALIPAY_GATEWAY: must be an http(s) URL")
    if not 0 < s.timeout_seconds <= 120:
        problems.append("SHENGSHI_ALIPAY_TIMEOUT_SECONDS: must be more than 0 and at most 120")
    if problems:
        raise SettingsProblem(*problems)
    return Alipay(
        app_id=s.app_id,
        seller_id=s.seller_id,
        alipay_public_key=keys[0],
        app_private_key=keys[1],
        notify_url=platform.notify_url,
        gateway=s.gateway,
        timeout=s.timeout_seconds,
        return_url=s.return_url,
        now=platform.now,
    )


PLUGIN = ChannelPlugin(channel=Alipay, settings=AlipaySettings, build=_build)
