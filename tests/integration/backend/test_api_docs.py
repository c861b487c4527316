"""The API docs' pages come whole from the app itself: they work with no internet."""

from __future__ import annotations

import re

import pytest


@pytest.fixture(scope="module")
async def client(make_module_client):
    """One app for the module: its tests make citizens of their own and count nothing of another's."""
    async with make_module_client() as c:
        yield c


REFERENCE = re.compile(r"""(?:src|href|spec-url|data-spec-url)\s*=\s*["']([^"']+)["']""")


async def test_the_docs_page_and_everything_it_references_come_from_the_app(client):
    r = await client.get("/schema")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in r.headers["content-security-policy"]
    html = r.text
    assert "http://" not in html and "https://" not in html and "//cdn" not in html
    refs = REFERENCE.findall(html)
    assert any("swagger-ui-bundle.js" in ref for ref in refs), refs
    assert "/schema/openapi.json" in refs
    for ref in refs:
        assert ref.startswith("/"), ref  # this server, not another one
        asset = await client.get(ref)
        assert asset.status_code == 200, ref
        assert len(asset.content) > 100, ref
    assert "<script>" not in html  # no inline script: the CSP allows only files from here


async def test_the_assets_have_their_types(client):
    js = await client.get("/schema/assets/swagger-ui-bundle.js")
    assert "javascript" in js.headers["content-type"]
    css = await client.get("/schema/assets/swagger-ui.css")
    assert css.headers["content-type"].startswith("text/css")
    assert (await client.get("/schema/assets/nothing.js")).status_code == 404


async def test_the_old_scalar_address_leads_to_swagger_ui(client):
    r = await client.get("/schema/scalar")
    assert r.status_code == 308
    assert r.headers["location"] == "/schema"
