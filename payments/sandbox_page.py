"""The sandbox's payment page: what ``pay_url`` of a sandbox payment opens in a browser.

``GET /sandbox/pay/{order_id}`` is a static page (Chinese first, with English; no external assets, strict
CSP) that signs the citizen in if needed (the same SMS login and tab-scoped token as the web wallet),
shows the order — amount in yuan, description, mini-app or merchant, state — and pays it with one button
through the existing API, ``POST /api/v1/payments/sandbox/orders/{order_id}/pay``. Served only while the
sandbox channel is enabled (never in production).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Controller, Response, get
from litestar.params import FromPath
from litestar.static_files import create_static_files_router

from backend.pages import html_page
from payments.channels.sandbox import PAGE_PATH

STATIC = Path(__file__).parent / "static"


class SandboxPayPage(Controller):
    path = PAGE_PATH
    include_in_schema = False

    @get("/{order_id:str}", summary="The sandbox payment page (a person opens pay_url here)")
    async def page(self, order_id: FromPath[str]) -> Response[bytes]:
        return html_page(STATIC / "sandbox-pay.html")  # the page reads the order id from its URL


def sandbox_page_handlers() -> list[Any]:
    """The page and its script and stylesheet, for the payments plugin to mount with the sandbox."""
    return [
        SandboxPayPage,
        create_static_files_router(
            path="/static/payments", directories=[STATIC], include_in_schema=False, send_as_attachment=False
        ),
    ]
