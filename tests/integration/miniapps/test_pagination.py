"""The platform's lists follow the one pagination convention (backend/pagination.py)."""


async def test_the_catalogue_and_the_grants_page_to_the_end(
    client, login, new_phone, auth_header, walk_pages
):
    enabled = list(client.services.miniapps.apps)
    catalogue = await walk_pages(client, "/api/v1/miniapps", limit=2)
    assert [a["id"] for a in catalogue] == enabled and len(enabled) > 2
    me = auth_header(await login(client, new_phone()))
    for app_id in enabled:
        r = await client.post(f"/api/v1/miniapps/{app_id}/authorize", json={}, headers=me)
        assert r.status_code == 200, r.text
    grants = await walk_pages(client, "/api/v1/me/grants", limit=2, headers=me)
    assert sorted(g["app_id"] for g in grants) == sorted(enabled)


async def test_a_next_link_keeps_the_query_and_moves_the_offset(client, walk_pages):
    r = await client.get("/api/v1/miniapps", params={"limit": 1, "offset": 1})
    body = r.json()
    assert body["next_offset"] == 2 and body["next"] == "/api/v1/miniapps?limit=1&offset=2"
    last = await client.get("/api/v1/miniapps", params={"limit": 100})
    assert last.json()["next"] is None and last.json()["next_offset"] is None
