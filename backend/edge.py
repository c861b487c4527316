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
- Query parameters are read strictly too: an integer parameter is decimal digits (``1.0``, ``1e2``,
  `` 1`` are not integers, though Litestar's loose conversion takes them), and a parameter the handler
  takes once may not come twice (Litestar would silently use the last one).
- ``OPTIONS`` is answered here with every method the path takes: Litestar 2 builds its automatic
  OPTIONS handler when a path's first handler is registered and keeps it when more handlers join the
  path, so its ``Allow`` named only the first ones (litestar-org/litestar#4169, fixed in 3.0).

Raw bodies are not touched: channel callbacks (WeChat Pay's JSON, Alipay's form) read ``request.body()``
and verify their signatures over exactly the bytes that came.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import unquote

import msgspec
from litestar import Litestar, Request
from litestar._parsers import parse_query_string
from litestar.enums import ScopeType
from litestar.exceptions import ClientException, HTTPException, ValidationException
from litestar.handlers import ASGIRouteHandler, HTTPRouteHandler
from litestar.middleware import ASGIMiddleware
from litestar.response.base import ASGIResponse
from litestar.routes import HTTPRoute
from litestar.serialization import default_deserializer
from litestar.types import ASGIApp, Empty, Receive, Scope, Send
from litestar.typing import FieldDefinition

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
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
            if not _is_utf8(body):
                raise not_utf8() from None
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
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        # bytes that are not UTF-8: msgspec before 0.23 raised UnicodeDecodeError, since then DecodeError
        if not _is_utf8(body):
            raise not_utf8() from None
        raise ClientException(f"the request body is not valid JSON: {exc}") from None


def _is_utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


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


# ---- what the edge knows of the app's routes ---------------------------------------------------------
_INTEGER = re.compile(r"-?[0-9]+")
_AUTOMATIC_OPTIONS = HTTPRoute.create_options_handler.__qualname__ + ".<locals>.options_handler"


@dataclass(frozen=True)
class QueryRules:
    once: frozenset[str]  # parameters the handler takes one value of
    integers: frozenset[str]  # parameters whose values are integers


@dataclass(frozen=True)
class RouteFacts:
    """Read from the app's final routes, once per app (at its first request)."""

    allow: dict[str, str]  # path template -> the Allow header of its OPTIONS answer
    query: dict[int, QueryRules]  # id of a route handler -> its query parameters' rules


def _is_integer(field: FieldDefinition) -> bool:
    if field.is_non_string_sequence and field.inner_types:
        field = field.inner_types[0]
    kinds = [t for t in (field.inner_types if field.is_union else (field,)) if not t.is_none_type]
    return bool(kinds) and all(t.annotation is int for t in kinds)


def route_facts(app: Litestar) -> RouteFacts:
    allow: dict[str, str] = {}
    query: dict[int, QueryRules] = {}
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        allow[route.path_format] = ", ".join(sorted(route.methods))
        for handler, kwargs_model in route.route_handler_map.values():
            signature = handler.parsed_fn_signature.parameters
            params = kwargs_model.expected_query_params
            query[id(handler)] = QueryRules(
                once=frozenset(p.field_alias for p in params if not p.is_sequence),
                integers=frozenset(
                    p.field_alias
                    for p in params
                    if p.field_name in signature and _is_integer(signature[p.field_name])
                ),
            )
    return RouteFacts(allow, query)


def _query_problem(key: str, message: str) -> ValidationException:
    return ValidationException(
        detail=f"the query parameter {key!r} {message}",
        extra=[{"key": key, "message": message, "source": "query"}],
    )


def check_query(scope: Scope, rules: QueryRules) -> None:
    """Refuse a parameter taken once that comes twice, and an integer that is not decimal digits."""
    pairs = parse_query_string(scope.get("query_string", b""))
    seen: set[str] = set()
    for key, _ in pairs:
        if key in rules.once:
            if key in seen:
                raise _query_problem(key, "is given more than once")
            seen.add(key)
    for key, value in pairs:
        if key in rules.integers and not _INTEGER.fullmatch(value):
            raise _query_problem(key, "must be a whole number written in decimal digits")


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


def replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands on ``body`` (already read) first, then the connection's own."""
    sent = False

    async def body_first() -> Any:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body_first


class EdgeMiddleware(ASGIMiddleware):
    """Runs after routing (so it knows the path parameters' names) and before guards and handlers.

    Litestar's own handlers read JSON through :class:`StrictRequest`. An ASGI app mounted inside ours
    (the console's piccolo-admin) reads its body itself, so here its JSON bodies are read (up to the
    app's size limit), checked like ours, and handed on unchanged."""

    def __init__(self) -> None:
        self._facts: tuple[Litestar, RouteFacts] | None = None

    def _route_facts(self, app: Litestar) -> RouteFacts:
        if self._facts is None or self._facts[0] is not app:
            self._facts = (app, route_facts(app))
        return self._facts[1]

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        if scope["type"] == ScopeType.HTTP:
            check_parameters(scope)
            handler = scope.get("route_handler")
            if isinstance(handler, HTTPRouteHandler):
                facts = self._route_facts(scope["litestar_app"])
                if scope.get("method") == "OPTIONS" and handler.fn.__qualname__ == _AUTOMATIC_OPTIONS:
                    allow = facts.allow.get(scope.get("path_template", ""))
                    if allow is not None:
                        await ASGIResponse(status_code=204, headers={"Allow": allow})(scope, receive, send)
                        return
                rules = facts.query.get(id(handler))
                if rules is not None and scope.get("query_string") and (rules.once or rules.integers):
                    check_query(scope, rules)
            if (
                isinstance(handler, ASGIRouteHandler)
                and scope.get("method") in _WITH_BODY
                and _json_content(scope)
            ):
                limit = scope["litestar_app"].request_max_body_size
                limit = limit if isinstance(limit, int) and limit > 0 else _NO_LIMIT
                body = await _read_body(receive, limit)
                if body:
                    check_json_text(body, utf8=True)
                receive = replay(body, receive)
        await next_app(scope, receive, send)


_WITH_BODY = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_NO_LIMIT = 1 << 62
