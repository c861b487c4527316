"""A local double of Alipay's OpenAPI gateway, written from Alipay's documentation (not from our client).

What it plays, as Alipay documents it:

- **the gateway** (``POST /gateway.do``, form-encoded; ``GET`` with a query for the page payment): the
  common parameters ``app_id``, ``method``, ``charset``, ``sign_type`` (RSA2), ``timestamp``, ``version``,
  ``biz_content`` (JSON) and ``sign``. The signature is checked byte for byte by the request rule:
  every parameter but ``sign``, empty values left out, sorted by name, ``name=value`` joined with ``&``,
  SHA256withRSA with the app's registered public key. A request that fails is answered code 40002
  (``isv.invalid-signature``, ``isv.invalid-app-id``, ...), unsigned, as Alipay answers it.
- **the answers**: ``{"<method, . as _>_response": {...}, "sign": "..."}``; the sign is SHA256withRSA, by
  Alipay's own key, over the exact text of that value. ``code`` 10000 success, 10003 waiting for the
  buyer, 40004 a business refusal (``sub_code`` ``ACQ.TRADE_NOT_EXIST``...), 20000 unavailable.
- **the methods**: alipay.trade.precreate (a QR code), alipay.trade.page.pay (the browser page: it opens
  the trade), alipay.trade.query, alipay.trade.close, alipay.trade.refund (``out_request_no`` makes it
  idempotent; ``refund_fee`` is the trade's refunded total), alipay.trade.fastpay.refund.query,
  alipay.trade.pay with ``GENERAL_WITHHOLDING`` against an agreement, and
  alipay.data.dataservice.bill.downloadurl.query, whose URL serves the day's bill: a zip of GBK CSVs
  with GBK file names (the detail file and its summary), ``#`` comment lines and the totals lines.
- **notifications**: form-encoded POSTs to the trade's ``notify_url``, signed over every parameter but
  ``sign`` and ``sign_type`` (empty values kept), sorted.

A test drives it: :meth:`AlipayDouble.open_order_string` (the app's SDK hands Alipay an order string),
:meth:`pay` (the citizen pays), :meth:`notification` / :meth:`deliver` (send the signed notify, or lose it
by not calling it), ``refund_later`` (a refund answered "no money moved yet", settled when queried),
:meth:`publish_bill`, ``missign_next`` (the next answer's sign is wrong), ``busy_next``. Reach it
through ``httpx.ASGITransport(app=double)``, or run it: ``python -m tests.doubles.alipay --port 8765``.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import csv
import io
import json
import secrets
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl, urlencode

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

CHINA = timezone(timedelta(hours=8))
COMMON = ("app_id", "method", "charset", "sign_type", "sign", "timestamp", "version")

# the bill's detail columns, as Alipay's 业务明细 file writes them
BILL_COLUMNS = [
    "支付宝交易号",
    "商户订单号",
    "业务类型",
    "商品名称",
    "创建时间",
    "完成时间",
    "门店编号",
    "门店名称",
    "操作员",
    "终端号",
    "对方账户",
    "订单金额（元）",
    "商家实收（元）",
    "支付宝红包（元）",
    "集分宝（元）",
    "支付宝优惠（元）",
    "商家优惠（元）",
    "券核销金额（元）",
    "券名称",
    "商家红包消费金额（元）",
    "卡消费金额（元）",
    "退款批次号/请求号",
    "服务费（元）",
    "分润（元）",
    "备注",
]


def yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


def fen(value: str) -> int:
    whole, _, part = value.partition(".")
    if not whole.isdigit() or len(part) > 2 or (part and not part.isdigit()):
        raise ValueError(value)
    return int(whole) * 100 + int(part.ljust(2, "0") or 0)


# The day the channel does business on (which day's bill a trade lands on): today in China, unless a
# test pins it (pin_business_day), so that a run crossing midnight in China keeps its trades on one day.
_business_day: date | None = None


def pin_business_day(day: date | None) -> None:
    global _business_day
    _business_day = day


def _business_now() -> datetime:
    now = datetime.now(CHINA).replace(microsecond=0)
    return now if _business_day is None else datetime.combine(_business_day, now.timetz())


def now_text() -> str:
    return _business_now().strftime("%Y-%m-%d %H:%M:%S")


@dataclass
class Refund:
    out_request_no: str
    amount: int
    settled: bool
    at: str = ""


@dataclass
class Trade:
    out_trade_no: str
    total: int
    subject: str
    notify_url: str = ""
    status: str = "WAIT_BUYER_PAY"
    trade_no: str = field(default_factory=lambda: "2026" + secrets.token_hex(10)[:24])
    created: str = field(default_factory=now_text)
    paid_at: str = ""
    refunds: dict[str, Refund] = field(default_factory=dict)

    @property
    def refunded(self) -> int:
        return sum(r.amount for r in self.refunds.values() if r.settled)


class Refusal(Exception):
    def __init__(self, code: str, msg: str, sub_code: str, sub_msg: str = "") -> None:
        super().__init__(sub_code)
        self.answer = {"code": code, "msg": msg, "sub_code": sub_code, "sub_msg": sub_msg or sub_code}


def business(sub_code: str, sub_msg: str = "") -> Refusal:
    return Refusal("40004", "Business Failed", sub_code, sub_msg)


class AlipayDouble:
    """Alipay's gateway for one app: ``app_public_key`` is the key the app registered with Alipay."""

    def __init__(
        self,
        app_id: str,
        seller_id: str,
        app_public_key: rsa.RSAPublicKey,
        alipay_key: rsa.RSAPrivateKey | None = None,
    ) -> None:
        self.app_id = app_id
        self.seller_id = seller_id
        self.app_public_key = app_public_key
        self.key = alipay_key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.trades: dict[str, Trade] = {}
        self.agreements: set[str] = set()
        self.bills: dict[str, bytes] = {}  # bill date -> the zip
        self.bill_host: str | None = None  # the bill URL's host, when not the gateway's own
        self.refund_later = False  # a refund answers fund_change N; the refund query settles it
        self.withhold_waiting = False  # alipay.trade.pay answers 10003 (the buyer must confirm)
        self.missign_next = False  # the next answer carries a sign that does not verify
        self.busy_next = False  # the next call answers 20000 (the outcome unknown)
        self.requests: list[dict[str, str]] = []  # every verified request's parameters

    # ---- keys -----------------------------------------------------------------------------------
    def public_pem(self) -> bytes:
        return self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def _sign(self, content: str) -> str:
        return base64.b64encode(self.key.sign(content.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()

    def check_request(self, params: dict[str, str]) -> None:
        """Alipay's checks of a request's common parameters and sign (the request rule)."""
        for name in COMMON:
            if not params.get(name):
                raise Refusal("40001", "Missing Required Arguments", f"isv.missing-{name.replace('_', '-')}")
        if params["app_id"] != self.app_id:
            raise Refusal("40002", "Invalid Arguments", "isv.invalid-app-id")
        if params["sign_type"] != "RSA2":
            raise Refusal("40002", "Invalid Arguments", "isv.invalid-signature-type")
        if params["charset"].lower() != "utf-8":
            raise Refusal("40002", "Invalid Arguments", "isv.invalid-charset")
        try:
            datetime.strptime(params["timestamp"], "%Y-%m-%d %H:%M:%S")
        except ValueError:
            raise Refusal("40002", "Invalid Arguments", "isv.invalid-timestamp") from None
        content = "&".join(f"{k}={params[k]}" for k in sorted(params) if k != "sign" and params[k] != "")
        try:
            self.app_public_key.verify(
                base64.b64decode(params["sign"], validate=True),
                content.encode("utf-8"),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except (InvalidSignature, binascii.Error, ValueError):
            raise Refusal("40002", "Invalid Arguments", "isv.invalid-signature", "验签出错") from None

    def answer(self, method: str, value: dict[str, Any], *, signed: bool = True) -> bytes:
        """The body Alipay answers: the value's text as it is signed, then the sign."""
        content = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        key = method.replace(".", "_") + "_response"
        if not signed:
            return f'{{"{key}":{content}}}'.encode()
        sign = self._sign(content)
        if self.missign_next:
            self.missign_next = False
            sign = self._sign(content + " ")
        return f'{{"{key}":{content},"sign":"{sign}"}}'.encode()

    # ---- what a test does -------------------------------------------------------------------------
    def open_order_string(self, order_string: str) -> Trade:
        """The Alipay SDK in the app hands Alipay the order string: checked like a request, and its trade
        opened (the citizen has not paid yet)."""
        params = dict(parse_qsl(order_string, keep_blank_values=True, strict_parsing=True))
        self.check_request(params)
        return self._open(json.loads(params["biz_content"]), params.get("notify_url", ""))

    def pay(self, out_trade_no: str) -> Trade:
        """The citizen pays the trade (opened by precreate, the page or the order string)."""
        trade = self.trades[out_trade_no]
        if trade.status == "WAIT_BUYER_PAY":
            trade.status, trade.paid_at = "TRADE_SUCCESS", now_text()
        return trade

    def notification(self, out_trade_no: str, *, refund: str = "") -> tuple[dict[str, str], bytes]:
        """The async notify of the trade's state (after refund ``refund``, its refund notify), signed."""
        trade = self.trades[out_trade_no]
        params = {
            "notify_time": now_text(),
            "notify_type": "trade_status_sync",
            "notify_id": "2026" + secrets.token_hex(12),
            "app_id": self.app_id,
            "seller_id": self.seller_id,
            "charset": "utf-8",
            "version": "1.0",
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
            "trade_status": trade.status,
            "total_amount": yuan(trade.total),
            "subject": trade.subject,
            "gmt_create": trade.created,
            "gmt_payment": trade.paid_at,
        }
        if refund:
            params.update(
                out_biz_no=refund, refund_fee=yuan(trade.refunded), gmt_refund=trade.refunds[refund].at
            )
        params = {k: v for k, v in params.items() if v}
        content = "&".join(f"{k}={params[k]}" for k in sorted(params))
        params.update(sign=self._sign(content), sign_type="RSA2")
        return {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}, urlencode(
            params
        ).encode()

    async def deliver(self, http: Any, out_trade_no: str, *, refund: str = "") -> Any:
        """Send the trade's notification to its notify_url with ``http`` (an httpx.AsyncClient; None: over
        the network). Not calling it loses the notification."""
        headers, body = self.notification(out_trade_no, refund=refund)
        url = self.trades[out_trade_no].notify_url
        if http is None:
            import httpx

            async with httpx.AsyncClient(timeout=10) as client:
                return await client.post(url, content=body, headers=headers)
        return await http.post(url, content=body, headers=headers)

    def publish_bill(self, day: date, *, account: str = "20881234567890120156", plant: int = 0) -> None:
        """The day's trade bill (China time): its payments and settled refunds. ``plant`` fen is added to
        the payments' stated total, so the bill does not add up."""
        stamp = day.strftime("%Y-%m-%d")
        rows: list[list[str]] = []
        paid = [0, 0, 0]  # count, 商家实收, 服务费
        back = [0, 0, 0]
        for t in self.trades.values():
            if t.paid_at.startswith(stamp):
                fee = t.total * 6 // 1000
                rows.append(self._bill_row(t, "交易", t.total, -fee, t.paid_at, ""))
                paid = [paid[0] + 1, paid[1] + t.total, paid[2] + fee]
            for r in t.refunds.values():
                if r.settled and r.at.startswith(stamp):
                    fee = r.amount * 6 // 1000
                    rows.append(self._bill_row(t, "退款", -r.amount, fee, r.at, r.out_request_no))
                    back = [back[0] + 1, back[1] + r.amount, back[2] + fee]
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\r\n")
        ymd = day.strftime("%Y年%m月%d日")
        out.write(f"#支付宝业务明细查询\r\n#账号：[{account}]\r\n")
        out.write(f"#起始日期：[{ymd} 00:00:00]   终止日期：[{ymd} 23:59:59]\r\n")
        out.write(
            "#-----------------------------------------业务明细列表----------------------------------------\r\n"
        )
        w.writerow(BILL_COLUMNS)
        w.writerows(rows)
        out.write(
            "#-----------------------------------------业务明细列表结束------------------------------------\r\n"
        )
        out.write(
            f"#交易合计：{paid[0]}笔，商家实收共{yuan(paid[1] + plant)}元，商家优惠共0.00元，"
            f"服务费共{yuan(paid[2])}元\r\n"
            f"#退款合计：{back[0]}笔，商家实收退款共{yuan(-back[1])}元，商家优惠退款共0.00元，"
            f"服务费退款共{yuan(back[2])}元\r\n"
            f"#导出时间：[{now_text()}]\r\n"
        )
        summary = (
            "#支付宝业务汇总查询\r\n门店编号,门店名称,交易订单总笔数,退款订单总笔数,订单金额（元）,商家实收（元）\r\n"
            f"合计,,{paid[0]},{back[0]},{yuan(paid[1] - back[1])},{yuan(paid[1] - back[1])}\r\n"
        )
        base = f"{account}_{day.strftime('%Y%m%d')}"
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, text in (
                (f"{base}_业务明细.csv", out.getvalue()),
                (f"{base}_业务明细(汇总).csv", summary),
            ):
                archive.writestr(_GbkName(name), text.encode("gbk"))
        self.bills[stamp] = buffer.getvalue()

    def _bill_row(self, t: Trade, kind: str, amount: int, fee: int, at: str, request_no: str) -> list[str]:
        values = dict.fromkeys(BILL_COLUMNS, "")
        values.update(
            {
                "支付宝交易号": t.trade_no + "\t",
                "商户订单号": t.out_trade_no + "\t",
                "业务类型": kind,
                "商品名称": t.subject,
                "创建时间": t.created,
                "完成时间": at,
                "对方账户": "138****0000",
                "订单金额（元）": yuan(amount),
                "商家实收（元）": yuan(amount),
                "支付宝红包（元）": "0.00",
                "集分宝（元）": "0.00",
                "支付宝优惠（元）": "0.00",
                "商家优惠（元）": "0.00",
                "券核销金额（元）": "0.00",
                "商家红包消费金额（元）": "0.00",
                "卡消费金额（元）": "0.00",
                "退款批次号/请求号": request_no + ("\t" if request_no else ""),
                "服务费（元）": yuan(fee),
                "分润（元）": "0.00",
            }
        )
        return [values[c] + ("  " if c == "商品名称" else "") for c in BILL_COLUMNS]

    # ---- the methods ----------------------------------------------------------------------------
    def _open(self, biz: dict[str, Any], notify_url: str) -> Trade:
        out_trade_no = str(biz.get("out_trade_no", ""))
        if not out_trade_no:
            raise Refusal("40002", "Invalid Arguments", "isv.missing-out-trade-no")
        try:
            total = fen(str(biz["total_amount"]))
        except (KeyError, ValueError):
            raise Refusal("40002", "Invalid Arguments", "isv.invalid-total-amount") from None
        trade = self.trades.get(out_trade_no)
        if trade is None:
            trade = self.trades[out_trade_no] = Trade(out_trade_no, total, str(biz.get("subject", "")))
        elif trade.total != total:
            raise business("ACQ.CONTEXT_INCONSISTENT", "交易信息被篡改")
        elif trade.status != "WAIT_BUYER_PAY":
            raise business(
                "ACQ.TRADE_HAS_SUCCESS" if trade.status != "TRADE_CLOSED" else "ACQ.TRADE_HAS_CLOSE"
            )
        trade.notify_url = notify_url or trade.notify_url
        return trade

    def _trade(self, biz: dict[str, Any]) -> Trade:
        trade = self.trades.get(str(biz.get("out_trade_no", "")))
        if trade is None:
            raise business("ACQ.TRADE_NOT_EXIST", "交易不存在")
        return trade

    def handle(self, params: dict[str, str], host: str) -> dict[str, Any]:
        method = params["method"]
        biz = json.loads(params.get("biz_content") or "{}")
        ok = {"code": "10000", "msg": "Success"}
        if method == "alipay.trade.precreate":
            trade = self._open(biz, params.get("notify_url", ""))
            return {
                **ok,
                "out_trade_no": trade.out_trade_no,
                "qr_code": f"https://qr.alipay.com/{trade.trade_no}",
            }
        if method == "alipay.trade.query":
            t = self._trade(biz)
            answer = {
                **ok,
                "trade_no": t.trade_no,
                "out_trade_no": t.out_trade_no,
                "buyer_logon_id": "138****0000",
                "trade_status": t.status,
                "total_amount": yuan(t.total),
            }
            if t.paid_at:
                answer.update(send_pay_date=t.paid_at, buyer_pay_amount=yuan(t.total))
            return answer
        if method == "alipay.trade.close":
            t = self._trade(biz)
            if t.status in ("TRADE_SUCCESS", "TRADE_FINISHED"):
                raise business("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
            t.status = "TRADE_CLOSED"
            return {**ok, "trade_no": t.trade_no, "out_trade_no": t.out_trade_no}
        if method == "alipay.trade.refund":
            t = self._trade(biz)
            if t.status not in ("TRADE_SUCCESS", "TRADE_FINISHED", "TRADE_CLOSED") or not t.paid_at:
                raise business("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
            request_no = str(biz.get("out_request_no") or t.trade_no)
            amount = fen(str(biz["refund_amount"]))
            known = t.refunds.get(request_no)
            if known is not None and known.amount != amount:
                raise business("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额与原请求不一致")
            moved = False
            if known is None:
                if t.refunded + amount > t.total:
                    raise business("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额超限")
                known = t.refunds[request_no] = Refund(request_no, amount, settled=not self.refund_later)
                if known.settled:
                    known.at, moved = now_text(), True
                    if t.refunded == t.total:
                        t.status = "TRADE_CLOSED"
            return {
                **ok,
                "trade_no": t.trade_no,
                "out_trade_no": t.out_trade_no,
                "buyer_logon_id": "138****0000",
                "fund_change": "Y" if moved else "N",
                "refund_fee": yuan(t.refunded),
                **({"gmt_refund_pay": known.at} if moved else {}),
            }
        if method == "alipay.trade.fastpay.refund.query":
            t = self._trade(biz)
            r = t.refunds.get(str(biz.get("out_request_no") or t.trade_no))
            if r is None:  # Alipay answers success, with no refund in it
                return {**ok, "trade_no": t.trade_no, "out_trade_no": t.out_trade_no}
            if not r.settled:  # the refund settles by the time it is asked about
                r.settled, r.at = True, now_text()
            answer = {
                **ok,
                "trade_no": t.trade_no,
                "out_trade_no": t.out_trade_no,
                "out_request_no": r.out_request_no,
                "total_amount": yuan(t.total),
                "refund_amount": yuan(r.amount),
                "refund_status": "REFUND_SUCCESS",
            }
            if "gmt_refund_pay" in (biz.get("query_options") or []):
                answer["gmt_refund_pay"] = r.at
            return answer
        if method == "alipay.trade.pay":
            if biz.get("product_code") != "GENERAL_WITHHOLDING":
                raise business(
                    "ACQ.PRODUCT_CODE_ERROR" if biz.get("product_code") else "ACQ.INVALID_PARAMETER"
                )
            agreement = (biz.get("agreement_params") or {}).get("agreement_no", "")
            if agreement not in self.agreements:
                raise business("ACQ.AGREEMENT_NOT_EXIST", "用户协议不存在")
            t = self._open(biz, params.get("notify_url", ""))
            if self.withhold_waiting:
                return {
                    "code": "10003",
                    "msg": " order success pay inprocess",
                    "out_trade_no": t.out_trade_no,
                    "trade_no": t.trade_no,
                }
            self.pay(t.out_trade_no)
            return {
                **ok,
                "trade_no": t.trade_no,
                "out_trade_no": t.out_trade_no,
                "total_amount": yuan(t.total),
                "gmt_payment": t.paid_at,
            }
        if method == "alipay.data.dataservice.bill.downloadurl.query":
            if biz.get("bill_type") != "trade":
                raise Refusal("40002", "Invalid Arguments", "isv.invalid-bill-type")
            day = str(biz.get("bill_date", ""))
            if day not in self.bills:
                raise business("isp.bill_not_exist", "账单不存在")
            where = self.bill_host or host  # bill_host: an answer naming another host (tests of our client)
            return {**ok, "bill_download_url": f"http://{where}/bill/{day}.zip?token={secrets.token_hex(8)}"}
        raise Refusal("40004", "Business Failed", "isv.invalid-method", f"不存在的方法名 {method}")

    # ---- ASGI -----------------------------------------------------------------------------------
    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                event = (await receive())["type"]
                if event == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif event == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        status, media, out = self.respond(
            scope["method"], scope["path"], scope["query_string"], body, headers
        )
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", media.encode()), (b"content-length", str(len(out)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": out})

    def respond(
        self, verb: str, path: str, query: bytes, body: bytes, headers: dict[str, str]
    ) -> tuple[int, str, bytes]:
        if verb == "GET" and path.startswith("/bill/") and path.endswith(".zip"):
            bill = self.bills.get(path[len("/bill/") : -len(".zip")])
            if bill is None:
                return 404, "text/plain", b"not found"
            return 200, "application/zip", bill
        if path != "/gateway.do":
            return 404, "text/plain", b"not found"
        raw = body if verb == "POST" else query
        try:
            params = dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=True))
        except (UnicodeDecodeError, ValueError):
            params = {}
        method = params.get("method", "")
        json_type = "application/json;charset=utf-8"
        try:
            self.check_request(params)
        except Refusal as exc:  # refused before the method: unsigned, as Alipay answers it
            return 200, json_type, self.answer(method or "error", exc.answer, signed=False)
        self.requests.append(params)
        if verb == "GET" or method == "alipay.trade.page.pay":  # the browser's page: the trade opens
            try:
                trade = self._open(json.loads(params["biz_content"]), params.get("notify_url", ""))
            except Refusal as exc:
                return 200, "text/html;charset=utf-8", f"<p>{exc.answer['sub_msg']}</p>".encode()
            return 200, "text/html;charset=utf-8", f"<p>pay {trade.out_trade_no}</p>".encode()
        if self.busy_next:
            self.busy_next = False
            value = {"code": "20000", "msg": "Service Currently Unavailable", "sub_code": "isp.unknow-error"}
            return 200, json_type, self.answer(method, value)
        try:
            value = self.handle(params, headers.get("host", "openapi.alipay.com"))
        except Refusal as exc:
            value = exc.answer
        except (ValueError, KeyError, TypeError):
            value = {"code": "40002", "msg": "Invalid Arguments", "sub_code": "isv.invalid-parameter"}
        return 200, json_type, self.answer(method, value)


class _GbkName(zipfile.ZipInfo):
    """A zip member whose name is written in GBK without the UTF-8 flag, as Alipay's bills are."""

    def __init__(self, name: str) -> None:
        super().__init__(name, date_time=datetime.now(CHINA).timetuple()[:6])
        self.compress_type = zipfile.ZIP_DEFLATED

    def _encodeFilenameFlags(self) -> tuple[bytes, int]:
        return self.filename.encode("gbk"), self.flag_bits & ~0x800


def main() -> None:
    parser = argparse.ArgumentParser(description="Alipay's OpenAPI gateway, played locally")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--app-id", default="2021000000000001")
    parser.add_argument("--seller-id", default="2088101122136241")
    parser.add_argument("--app-public-key", required=True, help="the PEM public key the app registered")
    parser.add_argument("--alipay-public-key-out", help="write the double's own public key (PEM) here")
    args = parser.parse_args()
    with open(args.app_public_key, "rb") as f:
        app_key = serialization.load_pem_public_key(f.read())
    assert isinstance(app_key, rsa.RSAPublicKey)
    double = AlipayDouble(args.app_id, args.seller_id, app_key)
    if args.alipay_public_key_out:
        with open(args.alipay_public_key_out, "wb") as f:
            f.write(double.public_pem())
    import uvicorn

    uvicorn.run(double, host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
