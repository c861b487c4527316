"""One pagination convention for every list endpoint (docs/api-conventions.md).

Requests take ``limit`` (1-100, default 20) and ``offset`` (items to skip, default 0). Responses are
``{"items": [...], "next_offset": int | null, "next": str | null}``: ``next`` is the URL (path and query)
of the next page — the same request with ``offset`` moved on — and both are null on the last page, so a
client follows ``next`` until it is null. A handler fetches ``limit + 1`` rows (or slices a list it holds)
and hands them to :func:`page`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode

from litestar.connection import ASGIConnection
from litestar.params import QueryParameter

Limit = Annotated[int, QueryParameter(ge=1, le=100, description="page size")]
Offset = Annotated[int, QueryParameter(ge=0, le=1_000_000, description="items to skip")]
DEFAULT_LIMIT = 20
T = TypeVar("T")


def next_offset(offset: int, limit: int, fetched: int) -> int | None:
    """Fetch ``limit + 1`` rows; more than ``limit`` means there is a next page."""
    return offset + limit if fetched > limit else None


def next_url(connection: ASGIConnection[Any, Any, Any, Any], limit: int, offset: int | None) -> str | None:
    """The next page's URL: this request's path and query, with ``limit`` and ``offset`` set."""
    if offset is None:
        return None
    kept = [(k, v) for k, v in connection.query_params.multi_items() if k not in ("limit", "offset")]
    return f"{connection.url.path}?{urlencode([*kept, ('limit', limit), ('offset', offset)])}"


def page_parts(
    connection: ASGIConnection[Any, Any, Any, Any], fetched: Sequence[T], *, limit: int, offset: int
) -> tuple[list[T], int | None, str | None]:
    """``(items, next_offset, next)`` from the ``limit + 1`` rows fetched at ``offset`` (for page Structs)."""
    after = next_offset(offset, limit, len(fetched))
    return list(fetched[:limit]), after, next_url(connection, limit, after)


def page(
    connection: ASGIConnection[Any, Any, Any, Any], fetched: Sequence[Any], *, limit: int, offset: int
) -> dict[str, Any]:
    """The response body of one page from the ``limit + 1`` rows fetched at ``offset``."""
    items, after, link = page_parts(connection, fetched, limit=limit, offset=offset)
    return {"items": items, "next_offset": after, "next": link}


def window(rows: Sequence[T], *, limit: int, offset: int) -> Sequence[T]:
    """The ``limit + 1`` rows from ``offset`` of a list held in memory (what a query would fetch)."""
    return rows[offset : offset + limit + 1]
