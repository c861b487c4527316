"""The citizen's orders page to the end by the one pagination convention (backend/pagination.py)."""


async def test_my_orders_page_to_the_end(pay_client, paying_citizen, frozen_clock, walk_pages):
    async with pay_client(clock=frozen_clock) as client:
        app_auth, me, openid = await paying_citizen(client)
        made = []
        for i in range(5):
            body = {"reference": f"page-{i}", "amount": 100 + i, "description": "分页", "openid": openid}
            r = await client.post("/api/v1/payments/orders", json=body, headers=app_auth)
            assert r.status_code == 201, r.text
            made.append(r.json()["order_id"])
        orders = await walk_pages(client, "/api/v1/me/orders", limit=2, headers=me)
        assert sorted(o["order_id"] for o in orders) == sorted(made)
        unpaid = await walk_pages(client, "/api/v1/me/orders", limit=3, headers=me, params={"unpaid": "true"})
        assert len(unpaid) == 5
