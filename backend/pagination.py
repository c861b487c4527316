"""Every list endpoint is paginated: ``limit`` (1-100, default 20) and ``offset``; responses carry
``next_offset`` (null on the last page)."""

from typing import Annotated

from litestar.params import QueryParameter

Limit = Annotated[int, QueryParameter(ge=1, le=100, description="page size")]
Offset = Annotated[int, QueryParameter(ge=0, le=1_000_000, description="items to skip")]
DEFAULT_LIMIT = 20


def next_offset(offset: int, limit: int, fetched: int) -> int | None:
    """Fetch ``limit + 1`` rows; more than ``limit`` means there is a next page."""
    return offset + limit if fetched > limit else None
