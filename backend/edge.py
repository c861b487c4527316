"""What every request passes at the edge, before any handler, guard or database sees it.

- JSON bodies are decoded **strictly** into the handler's declared type: a string is not an int, an int
  is not a bool, an unknown field is refused when the Struct says so. Litestar decodes a body to plain
  Python values and converts them together with the query parameters, loosely (``strict=False``, which
  query strings need); :class:`StrictRequest` decodes the body itself with msgspec, straight into the
  type, strictly, and the signature model then passes the ready Struct through unchanged.
- JSON nested deeper than :data:`MAX_JSON_DEPTH` is refused before it is decoded (the decoder would
  recurse until Python's recursion limit).
- Control characters are refused in JSON strings (values and keys), query parameters and path
  parameters: PostgreSQL cannot store NUL in text at all, and no field of this API means any of them.
  Free text in bodies (a description, a name) may hold TAB, LF and CR; nothing else of Unicode's
  category Cc (C0 controls, DEL, C1 controls). Query and path parameters hold none at all.

Raw bodies are not touched: channel callbacks (WeChat Pay's JSON, Alipay's form) read ``request.body()``
and verify their signatures over exactly the bytes that came.
"""

from __future__ import annotations

import re
from functools import partial
from typing import Any
from urllib.parse import unquote

import msgspec
from litestar import Request
from litestar.exceptions import ClientException, HTTPException, ValidationException
from litestar.handlers import ASGIRouteHandler
from litestar.middleware import ASGIMiddleware
from litestar.serialization import default_deserializer
from litestar.types import ASGIApp, Empty, Receive, Scope, Send

MAX_JSON_DEPTH = 32
"""Arrays and objects nested deeper than this are refused (this API's deepest body is 4 levels)."""

# ---- JSON bodies ------------------------------------------------------------------------------------
# A JSON string; brackets inside one do not nest.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_OPENERS = frozenset(b"[{")
# A control character in a JSON text: escaped (\u0000-\u001f but \t \n \r, \u007f-\u009f, \b, \f)
# behind an odd number of backslashes, or raw DEL or a raw C1 control (UTF-8 C2 80-9F). Raw C0 bytes
# are not valid JSON and the decoder refuses them.
_JSON_CONTROL = re.compile(
    rb"(?<!\\)(?:\\\\)*\\(?:u00(?:0[0-8bBcCeEfF]|1[0-9a-fA-F]|7[fF]|[89][0-9a-fA-F])|[bf])|\x7f|\xc2[\x80-\x9f]"
)
_TEXT_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_ANY_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_MSGSPEC_PATH = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)
_FIELD_NAME = re.compile(r"field `(?P<name>[^`]*)`")


def json_too_deep(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether ``body`` nests arrays/objects deeper than ``limit``, without decoding it."""
    if body.count(b"[") + body.count(b"{") <= limit:  # the usual case: too few brackets to be deep
        return False
    depth = 0
    for ch in _JSON_STRING.sub(b"", body).translate(None, _NOT_BRACKETS):
        if ch in _OPENERS:
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def json_has_control_character(body: bytes) -> bool:
    if b"\\" not in body and b"\x7f" not in body and b"\xc2" not in body:  # the usual case
        return False
    return _JSON_CONTROL.search(body) is not None


def _where_control(value: Any, path: str = "") -> str | None:
    """The path of the first string (value or key) holding a refused control character."""
    if isinstance(value, str):
        return path if _TEXT_CONTROL.search(value) else None
    if isinstance(value, dict):
        for k, v in value.items():
            here = f"{path}.{k}" if path else str(k)
            if _TEXT_CONTROL.search(str(k)):
                return here
            if (found := _where_control(v, here)) is not None:
                return found
    elif isinstance(value, list):
        for i, v in enumerate(value):
            if (found := _where_control(v, f"{path}[{i}]")) is not None:
                return found
    return None


def not_utf8() -> ClientException:
    """JSON text is UTF-8 (RFC 8259 section 8.1): other bytes are not JSON at all."""
    return ClientException("the request body is not valid JSON: it is not UTF-8 text")


def check_json_text(body: bytes, *, utf8: bool = False) -> None:
    """Refuse, before decoding, JSON that nests too deep or carries a control character in a string;
    with ``utf8``, also bytes that are not UTF-8 (for a reader other than ours, which checks that
    itself while it decodes)."""
    if utf8:
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            raise not_utf8() from None
    if json_too_deep(body):
        raise ValidationException(
            detail=f"JSON nested deeper than {MAX_JSON_DEPTH} levels",
            extra=[{"message": f"nested deeper than {MAX_JSON_DEPTH} levels", "source": "body"}],
        )
    if json_has_control_character(body):
        try:  # only on this error path: find the field to name it
            key = _where_control(msgspec.json.decode(body))
        except UnicodeDecodeError:
            raise not_utf8() from None
        except (msgspec.DecodeError, RecursionError):
            key = None
        error: dict[str, Any] = {"message": "contains a control character", "source": "body"}
        if key:
            error["key"] = key
        raise ValidationException(detail="a JSON string contains a control character", extra=[error])


def _validation_error(exc: msgspec.ValidationError) -> ValidationException:
    """msgspec's ``Expected `int`, got `str` - at `$.amount``` as Litestar's error list, naming the field."""
    m = _MSGSPEC_PATH.match(str(exc))
    message, path = (m.group("msg"), m.group("path") or "") if m else (str(exc), "")
    key = path.lstrip(".")
    if name := _FIELD_NAME.search(message):  # missing or unknown field: name it in the key too
        key = f"{key}.{name.group('name')}" if key else name.group("name")
    error: dict[str, Any] = {"message": message, "source": "body"}
    if key:
        error["key"] = key
    return ValidationException(detail="the request body is not valid", extra=[error])


_decoders: dict[tuple[Any, ...], msgspec.json.Decoder[Any]] = {}


def _decoder(target: Any, type_decoders: Any) -> msgspec.json.Decoder[Any]:
    key = (target, tuple(type_decoders or ()))
    decoder = _decoders.get(key)
    if decoder is None:
        hook = partial(default_deserializer, type_decoders=type_decoders)
        decoder = _decoders[key] = msgspec.json.Decoder(target, strict=True, dec_hook=hook)
    return decoder


def decode_json_body(body: bytes, target: Any = Any, type_decoders: Any = None) -> Any:
    """Check ``body`` at the edge, then decode it strictly into ``target``."""
    check_json_text(body)
    try:
        return _decoder(target, type_decoders).decode(body)
    except msgspec.ValidationError as exc:
        raise _validation_error(exc) from None
    except msgspec.DecodeError as exc:
        raise ClientException(f"the request body is not valid JSON: {exc}") from None
    except UnicodeDecodeError:  # msgspec's decoder raises it for bytes that are not UTF-8
        raise not_utf8() from None


class StrictRequest(Request[Any, Any, Any]):
    """A request whose JSON body is checked and decoded strictly into the handler's ``data`` type."""

    async def json(self) -> Any:
        if self._json is Empty:
            state = self._connection_state
            if state.json is not Empty:
                self._json = state.json
            else:
                body = await self.body()
                handler = self.route_handler
                field = handler.parsed_data_field
                target = field.annotation if field is not None else Any
                self._json = state.json = decode_json_body(
                    body or b"null", target, handler.resolve_type_decoders()
                )
        return self._json


# ---- query and path parameters ---------------------------------------------------------------------
# a percent-encoded C0 control or DEL, a percent-encoded C1 control (UTF-8 C2 80-9F), or a raw one
_QUERY_CONTROL = re.compile(rb"%(?:[01][0-9a-fA-F]|7[fF])|%[cC]2%[89][0-9a-fA-F]|[\x00-\x1f\x7f]")


def _bad_parameter(key: str, source: str) -> ValidationException:
    return ValidationException(
        detail=f"the {source} parameter {key!r} contains a control character",
        extra=[{"key": key, "message": "contains a control character", "source": source}],
    )


def check_parameters(scope: Scope) -> None:
    """Refuse control characters in the query string and the path parameters, naming the parameter."""
    query: bytes = scope.get("query_string", b"")
    if query and _QUERY_CONTROL.search(query):
        for pair in query.split(b"&"):
            name, _, value = pair.partition(b"=")
            if _QUERY_CONTROL.search(name) or _QUERY_CONTROL.search(value):
                key = unquote(name.decode("latin-1").replace("+", " "), errors="replace")
                raise _bad_parameter(_ANY_CONTROL.sub("?", key), "query")
    for param, text in (scope.get("path_params") or {}).items():
        if isinstance(text, str) and _ANY_CONTROL.search(text):
            raise _bad_parameter(param, "path")


_JSON_TYPE = re.compile(rb"^application/(?:[\w.+-]+\+)?json\b", re.I)


def _json_content(scope: Scope) -> bool:
    """JSON by its Content-Type, or no Content-Type at all (frameworks then read JSON)."""
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            return _JSON_TYPE.match(value) is not None
    return True


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            raise ClientException("the request ended before its body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise HTTPException(status_code=413, detail=f"the request body is larger than {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Any:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class EdgeMiddleware(ASGIMiddleware):
    """Runs after routing (so it knows the path parameters' names) and before guards and handlers.

    Litestar's own handlers read JSON through :class:`StrictRequest`. An ASGI app mounted inside ours
    (the console's piccolo-admin) reads its body itself, so here its JSON bodies are read (up to the
    app's size limit), checked like ours, and handed on unchanged."""

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        if scope["type"] == "http":
            check_parameters(scope)
            if (
                isinstance(scope.get("route_handler"), ASGIRouteHandler)
                and scope.get("method") in _WITH_BODY
                and _json_content(scope)
            ):
                limit = scope["litestar_app"].request_max_body_size
                limit = limit if isinstance(limit, int) and limit > 0 else _NO_LIMIT
                body = await _read_body(receive, limit)
                if body:
                    check_json_text(body, utf8=True)
                receive = _replay(body, receive)
        await next_app(scope, receive, send)


_WITH_BODY = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_NO_LIMIT = 1 << 62
