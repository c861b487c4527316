"""One exception hierarchy, mapped once to RFC 9457 ``application/problem+json``.

Services raise :class:`AppError` subclasses (no HTTP types in services beyond the status they imply);
Litestar's own errors (validation, 404, 405, 413, ...) are mapped by the same handler, and anything
unexpected becomes a 500 problem that names only the request id — never the exception's text.
"""

from __future__ import annotations

import logging
import re
from typing import Any, ClassVar

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from backend import db
from backend.context import request_id_var
from backend.i18n import Locale, current_locale, negotiate, problem_text
from backend.store.base import StoreUnavailable

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "urn:shengshitong:problem:"
log = logging.getLogger("shengshitong.errors")


class AppError(Exception):
    """Base of every error a service may raise on purpose."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    title: ClassVar[str] = "Bad request"

    def __init__(
        self,
        detail: str = "",
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        if code is not None:
            self.code = code  # type: ignore[misc]
        self.headers = headers or {}
        self.extra = extra


class InvalidInput(AppError):
    status, code, title = 422, "invalid_input", "The request is not valid"


class Unauthorized(AppError):
    status, code, title = 401, "unauthorized", "Authentication required"


class Forbidden(AppError):
    status, code, title = 403, "forbidden", "Not allowed"


class NotFound(AppError):
    status, code, title = 404, "not_found", "Not found"


class UnsupportedMediaType(AppError):
    status, code, title = 415, "unsupported_media_type", "Unsupported media type"


class RequestTimeout(AppError):
    status, code, title = 408, "request_timeout", "The request took too long to arrive"


class PayloadTooLarge(AppError):
    status, code, title = 413, "body_too_large", "Request body too large"


class Conflict(AppError):
    status, code, title = 409, "conflict", "Conflicts with the current state"


class Gone(AppError):
    status, code, title = 410, "gone", "No longer available"


class RateLimited(AppError):
    status, code, title = 429, "rate_limited", "Too many requests"

    def __init__(self, detail: str = "", *, retry_after: int, **extra: Any) -> None:
        super().__init__(
            detail, headers={"Retry-After": str(max(1, retry_after))}, retry_after=retry_after, **extra
        )


class ServiceUnavailable(AppError):
    status, code, title = 503, "unavailable", "Service unavailable"


_HTTP_CODES = {
    400: ("malformed_request", "The request could not be read"),
    401: ("unauthorized", "Authentication required"),
    403: ("forbidden", "Not allowed"),
    404: ("not_found", "Not found"),
    405: ("method_not_allowed", "Method not allowed"),
    413: ("body_too_large", "Request body too large"),
    415: ("unsupported_media_type", "Unsupported media type"),
    429: ("rate_limited", "Too many requests"),
    500: ("internal_error", "Internal server error"),
    503: ("unavailable", "Service unavailable"),
}


class ProblemError(msgspec.Struct):
    message: str
    key: str | None = None  # the field (``records[0].token``) or parameter (``day``)
    source: str | None = None  # body, query, path, header


class Problem(msgspec.Struct):
    """The problem+json document (RFC 9457) every error answer is, as the OpenAPI document shows it;
    some carry more members (``retry_after``, ``checks``, the resource's id)."""

    type: str
    code: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    request_id: str | None = None
    errors: list[ProblemError] | None = None


def problem_body(
    status: int,
    code: str,
    detail: str,
    *,
    title: str | None = None,
    locale: Locale | None = None,
    params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The problem+json document (RFC 9457) for ``status``/``code``; also used outside Litestar (the
    console's ASGI gate). ``title`` and ``detail`` come in ``locale`` (the request's language when not
    given; see backend/i18n.py); the ``code`` is the same in every language."""
    title, detail = problem_text(
        status,
        code,
        title or _HTTP_CODES.get(status, ("", "Error"))[1],
        detail,
        locale or current_locale(),
        params,
    )
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + code,
        "code": code,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if rid := request_id_var.get():
        body["request_id"] = rid
    return body


def problem_response(
    request: Request[Any, Any, Any] | None,
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Response[dict[str, Any]]:
    locale = negotiate(request.headers.get("accept-language")) if request is not None else current_locale()
    params = {**(extra or {})}
    if request is not None:
        params.update(method=request.method, path=request.url.path)
    body = problem_body(status, code, detail, title=title, locale=locale, params=params)
    if request is not None:
        body["instance"] = request.url.path
    if extra:
        body.update({k: v for k, v in extra.items() if k not in body})
    headers = {**(headers or {}), "Content-Language": locale, "Vary": "Accept-Language"}
    return Response(body, status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


def app_error_handler(request: Request[Any, Any, Any], exc: AppError) -> Response[dict[str, Any]]:
    return problem_response(
        request,
        status=exc.status,
        code=exc.code,
        title=exc.title,
        detail=exc.detail,
        headers=exc.headers,
        extra=exc.extra,
    )


_PARAMETER_SOURCES = frozenset({"query", "path", "header", "cookie"})
# Litestar says a required parameter is missing only in words: "Missing required query parameter 'day'"
_MISSING = re.compile(r"Missing required (?P<source>\w+) parameter '(?P<key>[^']*)'")


def _validation_errors(exc: ValidationException) -> list[dict[str, Any]]:
    """Each error as ``{key, message, source}``: which field or parameter, and where it was."""
    raw = exc.extra if isinstance(exc.extra, list) else []
    errors = [
        {k: v for k, v in e.items() if k in ("key", "message", "source")} for e in raw if isinstance(e, dict)
    ]
    if not errors and (m := _MISSING.search(exc.detail or "")):
        errors = [{"key": m.group("key"), "message": "is required", "source": m.group("source")}]
    for e in errors:
        if "source" in e:  # Litestar's ParamType is a str enum: its value, not "ParamType.QUERY"
            e["source"] = getattr(e["source"], "value", e["source"])
        if e.get("source") == "body" and isinstance(e.get("key"), str):
            if e["key"] == "data":  # Litestar's name for the body itself: it is missing
                del e["key"]
                e["message"] = "a JSON body is required"
            elif e["key"].startswith("data."):
                e["key"] = e["key"][len("data.") :]
    return errors


def http_exception_handler(request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    status = exc.status_code
    code, title = _HTTP_CODES.get(status, ("http_error", "HTTP error"))
    extra: dict[str, Any] = {}
    detail = exc.detail or title
    if isinstance(exc, ValidationException):
        errors = _validation_errors(exc)
        # a query, path or header value that is wrong is the caller's parameter; anything else, its body
        in_parameters = any(e.get("source") in _PARAMETER_SOURCES for e in errors)
        code = "invalid_parameters" if in_parameters else "invalid_body"
        title = "The request is not valid"
        extra["errors"] = errors
        named = [f"{e['key']} ({e['source']})" for e in errors if "key" in e and "source" in e]
        if named and detail.startswith("Validation failed for"):  # Litestar's words name no field
            detail = "not valid: " + ", ".join(named)
    elif status == 405:
        detail = f"{request.method} is not allowed on {request.url.path}"
    elif status == 404:
        detail = f"nothing at {request.url.path}"
    headers = dict(exc.headers or {})
    if status >= 500:
        log.error("server error %d: %s", status, exc.detail, exc_info=exc)
        detail = "Something went wrong on our side; quote the request id if you report it."
    return problem_response(
        request, status=status, code=code, title=title, detail=detail, headers=headers, extra=extra
    )


def internal_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    log.exception("unhandled error", extra={"path": request.url.path})
    return problem_response(
        request,
        status=HTTP_500_INTERNAL_SERVER_ERROR,
        code="internal_error",
        title="Internal server error",
        detail="Something went wrong on our side; quote the request id if you report it.",
    )


def store_unavailable_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    log.error("store unavailable: %s", type(exc).__name__)
    return problem_response(
        request,
        status=503,
        code="store_unavailable",
        title="Service unavailable",
        detail="A backing service is not answering; try again shortly.",
        headers={"Retry-After": "2"},
    )


def database_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """PostgreSQL not answering, or SQLite still locked after its busy timeout: 503, try again."""
    if not db.unavailable(exc):
        return internal_error_handler(request, exc)
    log.error("database unavailable: %s", type(exc).__name__, extra={"path": request.url.path})
    return problem_response(
        request,
        status=503,
        code="database_unavailable",
        title="Service unavailable",
        detail="The database is not answering; try again shortly.",
        headers={"Retry-After": "2"},
    )


EXCEPTION_HANDLERS: dict[Any, Any] = {
    AppError: app_error_handler,
    StoreUnavailable: store_unavailable_handler,
    **dict.fromkeys(db.UNAVAILABLE_ERRORS, database_error_handler),
    HTTPException: http_exception_handler,
    Exception: internal_error_handler,
}
