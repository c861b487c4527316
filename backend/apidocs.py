"""The API documentation pages, served entirely by this app: they work with no internet.

Litestar's render plugins point at CDNs by default. Here Swagger UI (``/schema``) loads its build from
``/schema/assets/``, taken from the ``fastapi-offline`` package (which ships Swagger UI's files, with
its licence), and a small start-up script of our own; the page runs no inline script and sends a
Content-Security-Policy that allows nothing but this server. Scalar, which no package ships, is gone:
``/schema/scalar`` redirects to ``/schema``. (ReDoc, which the same package ships, was tried and left
out: its sidebar loads a logo from its CDN, hard-coded.)
"""

from __future__ import annotations

import html
from importlib.resources import files
from pathlib import Path
from typing import Any

from litestar import Request, Router, get
from litestar.datastructures import ResponseHeader
from litestar.openapi.plugins import OpenAPIRenderPlugin
from litestar.response import Redirect
from litestar.static_files import create_static_files_router

OURS = Path(__file__).parent / "static"
VENDORED = Path(str(files("fastapi_offline") / "static"))
ASSETS = "/assets"
# nothing may come from elsewhere; Swagger UI's icons are data: URIs
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
HEADERS = [
    ResponseHeader(name="Content-Security-Policy", value=CSP),
    ResponseHeader(name="X-Content-Type-Options", value="nosniff"),
    ResponseHeader(name="Referrer-Policy", value="same-origin"),
]


def _page(title: str, head: str, body: str) -> bytes:
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title>{head}</head><body>{body}</body></html>"
    ).encode()


class _LocalPage(OpenAPIRenderPlugin):
    def __init__(self, *, path: str, docs_path: str) -> None:
        super().__init__(path=path, favicon="", style="")
        self.assets = docs_path.rstrip("/") + ASSETS
        self.spec_url = docs_path.rstrip("/") + "/openapi.json"

    def asset(self, name: str) -> str:
        return html.escape(f"{self.assets}/{name}")


class SwaggerPage(_LocalPage):
    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        return _page(
            openapi_schema["info"]["title"],
            f'<link rel="stylesheet" href="{self.asset("swagger-ui.css")}">',
            f'<div id="swagger-ui" data-spec-url="{html.escape(self.spec_url)}"></div>'
            f'<script src="{self.asset("swagger-ui-bundle.js")}"></script>'
            f'<script src="{self.asset("swagger-init.js")}"></script>',
        )

    def receive_router(self, router: Router) -> None:
        """The assets, and the old Scalar address, on the docs' own router."""
        router.register(
            create_static_files_router(
                path=ASSETS,
                directories=[OURS, VENDORED],
                include_in_schema=False,
                send_as_attachment=False,
            )
        )
        router.register(scalar_moved)


@get("/scalar", include_in_schema=False, sync_to_thread=False)
def scalar_moved(request: Request[Any, Any, Any]) -> Redirect:
    return Redirect(request.url.path.rsplit("/", 1)[0], status_code=308)


def render_plugins(docs_path: str) -> list[OpenAPIRenderPlugin]:
    return [SwaggerPage(path="/", docs_path=docs_path)]


def docs_router(docs_path: str) -> Router:
    """The router Litestar puts the docs' pages on: every answer under it carries the strict CSP."""
    return Router(docs_path, route_handlers=[], include_in_schema=False, response_headers=HEADERS)
