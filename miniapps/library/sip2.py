"""3M SIP2 (2.00) for self-check kiosks: a small codec and an asyncio TCP server.

Why a codec of our own: of the packages on PyPI, ``sip2`` is a client only and ``pysip2`` (a codec and
server) had one alpha release (0.1.0) when this was written; the subset a kiosk needs is small and is
tested here against the independent ``sip2`` client (a dev dependency).

- Framing: a message ends with CR (a LF after it is skipped); a line longer than ``max_line`` bytes
  closes the connection; so does ``idle`` seconds without a message, or no good login
  ``login_seconds`` after connecting; a process keeps at most ``max_connections``. UTF-8.
- Error detection: a request with ``AY<n>AZ<hex>`` has its checksum verified (the low 16 bits of the
  sum of its bytes up to and including ``AZ``, plus the checksum, are 0; up to four hex digits are
  accepted, as some clients do not pad); a wrong one is answered ``96`` (resend). Answers carry the
  request's sequence number and a four-digit checksum when the request had them. ``97`` resends the
  last answer. A message that cannot be parsed is answered ``96``; three in a row close the connection.
- Login (93): CN/CO are the client id and secret of a scanner enrolled to the library app in context
  ``library-kiosk`` (``shengshi scanners add --app library --context library-kiosk --place <branch>``);
  a failed login is answered ``940`` and the connection closed; anything but 93 before a good login
  closes it too. Revoking the credential stops the kiosk
  at its next patron (the code is verified for the scanner each time).
- The patron identifier (AA) is the citizen code the kiosk scanned. The platform verifies it once
  (``Platform.identify``: signature, 60 s window, single use in the kiosk's context, account state);
  the session keeps AA -> openid until the patron's session ends (35), another patron's code comes, or
  the connection closes: a code lives for this session only, never in any store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from contextvars import ContextVar
from datetime import datetime, timedelta, timezone
from typing import Any

from miniapps.contract import Platform, Scanner
from miniapps.library.rules import REFUSALS, yuan
from miniapps.library.services import Lending, Refused
from miniapps.library.tables import Hold, Loan

log = logging.getLogger("shengshitong.miniapps.library.sip2")
CHINA = timezone(timedelta(hours=8))
# request id -> its fixed-length fields' lengths, before the variable fields
FIXED: dict[str, tuple[int, ...]] = {
    "93": (1, 1),
    "99": (1, 3, 4),
    "23": (3, 18),
    "63": (3, 18, 10),
    "11": (1, 1, 18, 18),
    "09": (1, 18, 18),
    "29": (1, 1, 18, 18),
    "17": (18,),
    "35": (18,),
    "97": (),
}
# BX, in the order of SIP2 2.00: 23 11 09 01 99 97 93 63 35 37 17 19 25 15 29 65
SUPPORTED = "YYYNYYYYYNYNNNYN"


# the platform's refusals of a scanned code, as a kiosk's screen shows them (``Platform.identify``)
CODE_REFUSALS = {
    "replayed": ("此码已使用，请刷新市民码", "Code already used: refresh it"),
    "expired": ("码已过期，请刷新市民码", "Code expired: refresh it"),
    "not_yet_valid": ("码尚未生效，请校准手机时间", "Code not yet valid: check the phone's clock"),
    "account_blocked": ("账户已冻结，请联系服务台", "Account blocked: ask at the desk"),
    "account_deleted": ("账户已注销", "Account closed"),
    "device_revoked": ("设备已退出登录", "Device signed out"),
    "scanner_revoked": ("自助机未授权", "This kiosk is not enrolled"),
    "patron_required": ("请扫描市民码", "Scan your citizen code"),
}
# the kiosk's language: Chinese, or English when its patron status or information request says 001
_lang: ContextVar[str] = ContextVar("sip2_lang", default="zh")


def say(zh: str, en: str) -> str:
    """One language per screen: the kiosk's."""
    return en if _lang.get() == "en" else zh


class BadMessage(Exception):
    pass


def checksum(data: bytes) -> str:
    return f"{(-sum(data)) & 0xFFFF:04X}"


def parse(raw: bytes) -> tuple[str, list[str], dict[str, str], str | None]:
    """(command, fixed fields, variable fields, sequence number or None); :class:`BadMessage` for a
    frame that is not a SIP2 request or whose checksum is wrong."""
    text = raw.decode("utf-8")
    seq = None
    az = text.rfind("AZ")
    if (
        az != -1
        and 0 < len(text) - az - 2 <= 4
        and all(c in "0123456789ABCDEFabcdef" for c in text[az + 2 :])
    ):
        head = raw[: raw.rfind(b"AZ") + 2]
        if (sum(head) + int(text[az + 2 :], 16)) & 0xFFFF != 0:
            raise BadMessage("checksum")
        text = text[:az]
        ay = text.rfind("AY")
        if ay != -1 and ay == len(text) - 3 and text[-1].isdigit():
            seq, text = text[-1], text[:ay]
    command = text[:2]
    if command not in FIXED:
        raise BadMessage("command")
    pos, fixed = 2, []
    for n in FIXED[command]:
        if len(text) < pos + n:
            raise BadMessage("short")
        fixed.append(text[pos : pos + n])
        pos += n
    fields: dict[str, str] = {}
    for part in text[pos:].split("|"):
        if len(part) >= 2:
            fields.setdefault(part[:2], part[2:])
    return command, fixed, fields, seq


def frame(body: str, seq: str | None, with_checksum: bool) -> bytes:
    """An answer: ``body`` with the request's sequence number and a checksum when it had them, CR."""
    data = body.encode()
    if with_checksum:
        data += (f"AY{seq}AZ" if seq is not None else "AZ").encode()
        data += checksum(data).encode()
    return data + b"\r"


def stamp(at: datetime) -> str:
    """A SIP2 date: YYYYMMDDZZZZHHMMSS, China time (the zone as four spaces: local)."""
    local = at.astimezone(CHINA)
    return local.strftime("%Y%m%d") + "    " + local.strftime("%H%M%S")


def clean(value: str) -> str:
    return value.replace("|", "/").replace("\r", " ").replace("\n", " ")


def var(tag: str, value: Any) -> str:
    return f"{tag}{clean(str(value))}|"


class Session:
    """One kiosk connection: its login, and the patron it serves now."""

    def __init__(self) -> None:
        self.scanner: Scanner | None = None
        self.patron: tuple[str, str] | None = None  # (AA as the kiosk sent it, openid)
        self.refused: tuple[str, str] | None = None  # (AA, why) for a code that was not accepted
        self.last: bytes = b""
        self.bad = 0


class Sip2Server:
    def __init__(self, platform: Platform, lending: Lending) -> None:
        self.platform = platform
        self.lending = lending
        self.server: asyncio.Server | None = None
        self.connections: set[asyncio.Task[Any]] = set()

    @property
    def idle(self) -> float:
        return float(self.platform.config["sip2_idle_seconds"])

    @property
    def max_line(self) -> int:
        return int(self.platform.config["sip2_max_line"])

    @property
    def login_seconds(self) -> float:
        return float(self.platform.config["sip2_login_seconds"])

    @property
    def max_connections(self) -> int:
        return int(self.platform.config["sip2_max_connections"])

    async def start(self, host: str, port: int) -> None:
        reuse = bool(self.platform.config.get("sip2_reuse_port")) and hasattr(socket, "SO_REUSEPORT")
        self.server = await asyncio.start_server(
            self._serve, host, port, limit=self.max_line + 2, reuse_port=reuse or None
        )
        log.info("SIP2 listening", extra={"host": host, "port": port})

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            for task in list(self.connections):
                task.cancel()
            await asyncio.gather(*self.connections, return_exceptions=True)
            await self.server.wait_closed()
            self.server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if len(self.connections) >= self.max_connections:  # a flood of sockets: no more for now
            log.warning("SIP2 connection refused: too many", extra={"limit": self.max_connections})
            writer.close()
            return
        self.connections.add(task)
        session = Session()
        peer = writer.get_extra_info("peername")
        loop = asyncio.get_running_loop()
        login_by = loop.time() + self.login_seconds
        try:
            while True:
                # a connection gets a short while to log in (from its start, whatever it sends
                # meanwhile), not the idle time: sockets opened and left alone are not kept
                wait = self.idle
                if session.scanner is None:
                    wait = max(0.0, min(wait, login_by - loop.time()))
                try:
                    raw = await asyncio.wait_for(reader.readuntil(b"\r"), wait)
                except (
                    TimeoutError,
                    asyncio.IncompleteReadError,
                    asyncio.LimitOverrunError,
                    ConnectionError,
                ):
                    break  # idle, closed, or a line over the limit: the connection ends
                raw = raw.rstrip(b"\r").lstrip(b"\n")
                if not raw:
                    continue
                answer = await self._answer(session, raw, peer)
                if answer is None:
                    break
                writer.write(answer)
                await writer.drain()
                if session.bad >= 3:
                    break
        except Exception:  # never the server's end: this connection only
            log.exception("SIP2 connection failed")
        finally:
            self.connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _answer(self, session: Session, raw: bytes, peer: Any) -> bytes | None:
        try:
            command, fixed, fields, seq = parse(raw)
        except (BadMessage, UnicodeDecodeError):
            session.bad += 1
            return frame("96", None, b"AZ" in raw)
        checked = b"AZ" in raw
        if command == "97":
            return session.last or frame("96", None, checked)
        if command == "93":
            session.scanner = await self.platform.scanner_login(
                fields.get("CN", ""), fields.get("CO", ""), ip=str(peer[0]) if peer else ""
            )
            ok = session.scanner is not None and session.scanner.context == "library-kiosk"
            if ok and session.scanner is not None and not await self._at_a_branch(session.scanner):
                ok = False  # enrolled at a place that is no branch: it could serve nobody
            if not ok:  # answered, then closed: one try per connection
                session.scanner = None
                session.bad = 3
            else:
                session.bad = 0
            body = f"94{'1' if ok else '0'}"
        elif session.scanner is None:
            return None  # nothing but a login before a good login
        else:
            try:
                body = await self._handle(session, command, fixed, fields)
            except Exception:
                log.exception("SIP2 request failed", extra={"command": command})
                session.bad += 1  # three in a row close the connection, as unreadable frames do
                return frame("96", None, checked)
            session.bad = 0
        out = frame(body, seq, checked)
        session.last = out
        return out

    async def _at_a_branch(self, scanner: Scanner) -> bool:
        try:
            await self.lending.branch(scanner.place)
        except Refused:
            log.warning(
                "SIP2 login refused: the kiosk's place is no branch",
                extra={"client_id": scanner.client_id, "place": scanner.place},
            )
            return False
        return True

    async def _patron(self, session: Session, code: str) -> tuple[str | None, str]:
        """The openid behind the kiosk's patron identifier, verified once per session; (None, why)."""
        if not code:
            return None, "patron_required"
        if session.patron is not None and session.patron[0] == code:
            return session.patron[1], ""
        if session.refused is not None and session.refused[0] == code:
            return None, session.refused[1]
        assert session.scanner is not None
        who = await self.platform.identify(code, scanner=session.scanner.client_id)
        if not who.allow:
            session.patron, session.refused = None, (code, who.reason)
            return None, who.reason
        session.patron, session.refused = (code, who.openid), None
        return who.openid, ""

    async def _handle(self, session: Session, command: str, fixed: list[str], fields: dict[str, str]) -> str:
        assert session.scanner is not None
        now = self.platform.now()
        branch = await self.lending.branch(session.scanner.place)
        institution = branch["library.code"]
        if command == "99":
            return (
                "98YYYYNN030003"
                + stamp(now)
                + "2.00"
                + var("AO", institution)
                + var("AM", branch["library.name"])
                + var("BX", SUPPORTED)
                + var("AN", session.scanner.place)
            )
        if command in ("23", "63") and fixed and fixed[0] in ("001", "019"):
            _lang.set("en" if fixed[0] == "001" else "zh")  # English, Chinese: for this session
        if command == "17":
            return await self._item(fields.get("AB", ""), institution, now)
        if command == "09":
            return await self._checkin(fields.get("AB", ""), session.scanner.place, institution, now)
        if command == "35":  # the patron is done: the session forgets their code
            session.patron = session.refused = None
            return (
                "36Y"
                + stamp(now)
                + var("AO", institution)
                + var("AA", "")
                + var("AF", say("再见", "Goodbye"))
            )
        openid, why = await self._patron(session, fields.get("AA", ""))
        if command in ("23", "63"):
            return await self._patron_status(command, openid, why, institution, now, fixed)
        if openid is None:
            screen = self._screen(why)
            if command == "11":
                return (
                    "120NUN"
                    + stamp(now)
                    + var("AO", institution)
                    + var("AA", "")
                    + var("AB", fields.get("AB", ""))
                    + var("AJ", "")
                    + var("AH", "")
                    + var("AF", screen)
                )
            return (
                "300NUN"
                + stamp(now)
                + var("AO", institution)
                + var("AA", "")
                + var("AB", fields.get("AB", ""))
                + var("AJ", "")
                + var("AH", "")
                + var("AF", screen)
            )
        barcode = fields.get("AB", "")
        if command == "11":
            try:
                loan = await self.lending.checkout(openid, barcode, session.scanner.place, via="kiosk")
            except Refused as exc:
                return (
                    "120NUN"
                    + stamp(now)
                    + var("AO", institution)
                    + var("AA", "")
                    + var("AB", barcode)
                    + var("AJ", "")
                    + var("AH", "")
                    + var("AF", self._screen(exc.code))
                )
            due = f"{loan['due_at'].astimezone(CHINA):%Y-%m-%d}"
            return (
                "121NNY"
                + stamp(now)
                + var("AO", institution)
                + var("AA", "")
                + var("AB", barcode)
                + var("AJ", loan["title"])
                + var("AH", stamp(loan["due_at"]))
                + var("AF", say(f"借阅成功，{due} 到期", f"Borrowed: due {due}"))
            )
        # 29 renew
        try:
            loan = await self.lending.renew(openid, barcode)
        except Refused as exc:
            return (
                "300NUN"
                + stamp(now)
                + var("AO", institution)
                + var("AA", "")
                + var("AB", barcode)
                + var("AJ", "")
                + var("AH", "")
                + var("AF", self._screen(exc.code))
            )
        due = f"{loan['due_at'].astimezone(CHINA):%Y-%m-%d}"
        return (
            "301YNY"
            + stamp(now)
            + var("AO", institution)
            + var("AA", "")
            + var("AB", barcode)
            + var("AJ", loan["title"])
            + var("AH", stamp(loan["due_at"]))
            + var("AF", say(f"续借成功，{due} 到期", f"Renewed: due {due}"))
        )

    @staticmethod
    def _screen(code: str) -> str:
        zh, en = CODE_REFUSALS.get(code) or REFUSALS.get(code, ("无效的市民码", "Not a valid citizen code"))
        return say(zh, en)

    async def _checkin(self, barcode: str, branch: str, institution: str, now: datetime) -> str:
        try:
            done = await self.lending.checkin(barcode, branch_code=branch)
        except Refused as exc:
            return (
                "100NUN"
                + stamp(now)
                + var("AO", institution)
                + var("AB", barcode)
                + var("AQ", "")
                + var("AF", self._screen(exc.code))
            )
        screen = say("归还成功", "Returned")
        if done["fine"]:
            screen += say(f"，逾期罚款 {yuan(done['fine'])}", f"; overdue fine {yuan(done['fine'])}")
        alert = "Y" if done["to_hold"] else "N"
        out = (
            f"101YN{alert}"
            + stamp(now)
            + var("AO", institution)
            + var("AB", barcode)
            + var("AQ", done["branch"])
            + var("AJ", done["title"])
        )
        if done["to_hold"]:
            out += var("CV", "01")  # hold for this library: put it on the hold shelf
            screen += say("，请放预约书架", "; to the hold shelf")
        return out + var("AF", screen)

    async def _item(self, barcode: str, institution: str, now: datetime) -> str:
        try:
            copy = await self.lending.copy(barcode)
        except Refused:
            return (
                "18010001"
                + stamp(now)
                + var("AB", barcode)
                + var("AJ", "")
                + var("AF", self._screen("unknown_item"))
            )
        status = {"available": "03", "on_loan": "04", "on_hold_shelf": "08", "lost": "12"}.get(
            copy["state"], "01"
        )
        queue = await Hold.count().where((Hold.title == copy["title.id"]) & (Hold.state == "waiting"))
        out = status + "0001" + stamp(now) + var("AB", barcode) + var("AJ", copy["title.title"])
        if copy["state"] == "on_loan":
            loan = (
                await Loan.select(Loan.due_at)
                .where((Loan.copy == copy["id"]) & Loan.returned_at.is_null())
                .first()
            )
            if loan is not None:
                out += var("AH", stamp(loan["due_at"]))
        return "18" + out + var("CF", queue) + var("AQ", copy["branch.code"]) + var("AO", institution)

    async def _patron_status(
        self, command: str, openid: str | None, why: str, institution: str, now: datetime, fixed: list[str]
    ) -> str:
        language = fixed[0] if fixed and len(fixed[0]) == 3 else "000"
        if openid is None:
            status = "Y" * 4 + " " * 10
            head = f"{'24' if command == '23' else '64'}{status}{language}{stamp(now)}"
            if command == "63":
                head += "0000" * 6
            return (
                head
                + var("AO", institution)
                + var("AA", "")
                + var("AE", "")
                + var("BL", "N")
                + var("AF", self._screen(why))
            )
        library = await self.lending.library(institution)
        st = await self.lending.standing(library, openid)
        denied = (
            "Y" if (st["blocked"] or (not st["good_standing"] and st["deposit"]["state"] != "paid")) else " "
        )
        status = (
            denied  # charge privileges denied
            + ("Y" if st["blocked"] else " ")  # renewal privileges denied
            + " "
            + ("Y" if st["blocked"] else " ")  # hold privileges denied
            + " "
            + ("Y" if st["loans"] >= st["max_loans"] else " ")  # too many items charged
            + ("Y" if st["overdue"] else " ")  # too many items overdue
            + "   "
            + ("Y" if st["unpaid_fines"] else " ")  # excessive outstanding fines
            + "   "
        )
        fines = var("BH", "CNY") + var("BV", f"{st['unpaid_fines'] / 100:.2f}")
        screen = (
            say("读者已识别", "Reader identified")
            if denied == " "
            else self._screen("reader_blocked" if st["blocked"] else "deposit_required")
        )
        if command == "23":
            return (
                f"24{status}{language}{stamp(now)}"
                + var("AO", institution)
                + var("AA", "")
                + var("AE", "")
                + var("BL", "Y")
                + fines
                + var("AF", screen)
            )
        loans = (
            await Loan.select(Loan.copy.barcode, Loan.due_at)
            .where((Loan.library == library["id"]) & (Loan.openid == openid) & Loan.returned_at.is_null())
            .order_by(Loan.due_at)
            .run()
        )
        overdue = [r for r in loans if r["due_at"] < now]
        fined = 1 if st["unpaid_fines"] else 0
        counts = f"{st['holds']:04d}{len(overdue):04d}{len(loans):04d}{fined:04d}00000000"
        out = (
            f"64{status}{language}{stamp(now)}{counts}"
            + var("AO", institution)
            + var("AA", "")
            + var("AE", "")
            + var("BZ", f"{9999:04d}")
            + var("CB", f"{st['max_loans']:04d}")
            + var("BL", "Y")
            + fines
        )
        for r in loans:
            out += var("AU", r["copy.barcode"])
        for r in overdue:
            out += var("AT", r["copy.barcode"])
        return out + var("AF", screen)
