"""The operators' console at /admin: piccolo-admin behind roles, per-table rules, audit and masking."""

import json

import httpx
import pytest

from auth.tables import MachineClient
from backend.tables import AuditEvent

pytestmark = pytest.mark.storage


async def _audit(action: str) -> list[dict]:
    return await AuditEvent.select().where(AuditEvent.action == action).order_by(AuditEvent.at)


async def test_a_readonly_operator_sees_tables_but_cannot_change_anything(
    client, console_login, enrol_scanner
):
    gate = await enrol_scanner(client, place="north gate")
    headers = await console_login(client, "watcher", "readonly")

    rows = (await client.get("/admin/api/tables/machine_client/", params={"__readable": "true"})).json()[
        "rows"
    ]
    assert [r["client_id"] for r in rows] == [gate["client_id"]]
    stored = (
        await MachineClient.select(MachineClient.secret_hash).where(MachineClient.id == gate["id"]).first()
    )
    assert rows[0]["secret_hash"] is None  # secret columns never leave piccolo-api
    assert (
        stored["secret_hash"]
        not in (await client.get(f"/admin/api/tables/machine_client/{gate['id']}/")).text
    )

    r = await client.patch(
        f"/admin/api/tables/machine_client/{gate['id']}/", json={"name": "renamed"}, headers=headers
    )
    assert r.status_code == 403
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "read_only"
    r = await client.delete(f"/admin/api/tables/machine_client/{gate['id']}/", headers=headers)
    assert r.status_code == 403
    row = await MachineClient.select(MachineClient.name).where(MachineClient.id == gate["id"]).first()
    assert row["name"] == "north gate"
    refused = await _audit("console.change_refused")
    assert [e["actor_id"] for e in refused] == ["watcher", "watcher"]


async def test_an_admin_edits_a_credential_and_the_change_is_audited(client, console_login, enrol_scanner):
    gate = await enrol_scanner(client, place="north gate")
    headers = await console_login(client, "chief", "admin")
    # the edit form sends every field, the blank secret hash and the client id included
    r = await client.patch(
        f"/admin/api/tables/machine_client/{gate['id']}/",
        json={"name": "North gate 1", "place": "north gate", "secret_hash": "", "client_id": "scn_hijacked"},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    row = await MachineClient.select().where(MachineClient.id == gate["id"]).first()
    assert row["name"] == "North gate 1"
    assert row["client_id"] == gate["client_id"]  # not editable here
    assert row["secret_hash"]  # untouched: the scanner still authenticates
    # it still authenticates: its scans are decided (this one refused as unreadable), not refused as 401
    scan = await client.post("/api/v1/scans", json={"token": "SC1:x"}, headers=gate["headers"])
    assert (scan.status_code, scan.json()["result"]) == (200, "deny")

    events = await _audit("console.patch")
    assert len(events) == 1
    assert events[0]["actor_id"] == "chief"
    assert events[0]["subject"] == f"machine_client:{gate['id']}"
    data = events[0]["data"]
    assert (json.loads(data) if isinstance(data, str) else data)["fields"] == ["name", "place"]


async def test_an_admin_revokes_a_scanner_from_the_console(client, console_login, enrol_scanner):
    gate = await enrol_scanner(client)
    headers = await console_login(client, "chief", "admin")
    r = await client.patch(
        f"/admin/api/tables/machine_client/{gate['id']}/",
        json={"revoked_at": "2026-01-01T00:00:00+00:00"},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    client.services.auth.machines._cache.clear()  # what the 5-second cache does by itself
    r = await client.post("/api/v1/scans", json={"token": "SC1:x"}, headers=gate["headers"])
    assert r.status_code == 401


async def test_money_and_the_audit_log_never_change_in_the_console(client, console_login, enrol_scanner):
    gate = await enrol_scanner(client)
    headers = await console_login(client, "chief", "admin")
    r = await client.post(
        "/admin/api/tables/machine_client/", json={"kind": "scanner", "client_id": "x"}, headers=headers
    )
    assert r.status_code == 405
    assert "密钥只显示一次" in r.json()["detail"]
    r = await client.delete(f"/admin/api/tables/machine_client/{gate['id']}/", headers=headers)
    assert r.status_code == 405
    for table in ("payment_order", "payment_refund", "audit_event", "webhook_delivery", "citizen"):
        r = await client.post(f"/admin/api/tables/{table}/", json={}, headers=headers)
        assert r.status_code == 405, (table, r.text)
    audit_rows = (await client.get("/admin/api/tables/audit_event/")).json()["rows"]
    assert audit_rows
    r = await client.patch(
        f"/admin/api/tables/audit_event/{audit_rows[0]['id']}/", json={"action": "x"}, headers=headers
    )
    assert r.status_code == 405
    assert await MachineClient.count() == 1
    assert not await _audit("console.post")


async def test_citizens_appear_masked(client, console_login, login, new_phone, auth_header):
    phone = new_phone()
    pair = await login(client, phone)
    await client.patch(
        "/api/v1/me", json={"real_name": "钱七", "id_number": "21010219491231018X"}, headers=auth_header(pair)
    )
    await console_login(client, "watcher", "readonly")
    r = await client.get("/admin/api/tables/citizen/")
    assert r.status_code == 200
    text = r.text
    assert phone not in text and "21010219491231018X" not in text and "钱七" not in text
    row = r.json()["rows"][0]
    assert row["phone_masked"] == phone[:3] + "****" + phone[-4:]
    assert all(v is None for k, v in row.items() if k.endswith("_sealed"))


async def test_without_a_session_the_console_api_answers_401(client):
    r = await client.get("/admin/api/tables/machine_client/")
    assert r.status_code == 401
    r = await client.patch("/admin/api/tables/machine_client/1/", json={})
    assert r.status_code == 401
    assert r.json()["code"] == "unauthorized"


async def test_sign_ins_are_audited_and_limited_per_address(client, console_login):
    await console_login(client, "chief", "admin")
    csrf = client.cookies.get("csrftoken")
    for _ in range(9):  # ten attempts per five minutes in all, the good one included
        r = await client.post(
            "/admin/public/login/",
            json={"username": "chief", "password": "wrong-password"},
            headers={"X-CSRFToken": csrf},
        )
        assert r.status_code == 401, r.text
    r = await client.post(
        "/admin/public/login/",
        json={"username": "chief", "password": "a-long-test-password"},
        headers={"X-CSRFToken": csrf},
    )
    assert r.status_code == 429
    assert r.json()["code"] == "rate_limited"
    assert len(await _audit("console.signed_in")) == 1
    assert len(await _audit("console.sign_in_failed")) == 9
    assert all("wrong-password" not in str(e["data"]) for e in await _audit("console.sign_in_failed"))


async def test_a_disabled_operator_is_signed_out_at_once(client, console_login):
    await console_login(client, "chief", "admin")
    assert (await client.get("/admin/dashboard/frame")).status_code == 200
    await client.services.console.operators.disable("chief", actor="test")
    assert (await client.get("/admin/dashboard/frame")).status_code == 401
    assert (await client.get("/admin/api/tables/machine_client/")).status_code == 401


async def test_the_console_cli_manages_operators(client, shengshi_cli):
    import json

    r = shengshi_cli("console", "add-operator", "duty", "--password-stdin", input="short\n")
    assert r.returncode == 1 and "password" in r.stderr.lower()
    r = shengshi_cli("console", "add-operator", "duty", "--password-stdin", input="a-long-duty-password\n")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1])["role"] == "readonly"
    assert "a-long-duty-password" not in r.stdout + r.stderr
    r = shengshi_cli("console", "set-role", "duty", "admin")
    assert r.returncode == 0, r.stderr
    r = shengshi_cli("console", "list-operators")
    listed = [json.loads(line) for line in r.stdout.strip().splitlines()]
    assert [(o["username"], o["role"], o["active"]) for o in listed] == [("duty", "admin", True)]
    r = shengshi_cli("console", "disable-operator", "duty")
    assert json.loads(r.stdout.strip().splitlines()[-1])["active"] is False
    assert shengshi_cli("console", "set-role", "nobody", "admin").returncode == 1
    assert len(await _audit("console.operator_added")) == 1


async def _forms(client):
    return {f["name"].split(" ")[0]: f["slug"] for f in (await client.get("/admin/api/forms/")).json()}


async def test_an_admin_enrols_and_revokes_a_scanner_with_the_console_forms(client, console_login):
    import re

    headers = await console_login(client, "chief", "admin")
    forms = await _forms(client)
    r = await client.post(
        f"/admin/api/forms/{forms['登记扫码设备']}/",
        json={"app_id": "testgate", "context": "testgate-bus", "place": "bus 7", "name": "Bus 7 front door"},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    message = r.json()["custom_form_success"]
    client_id, secret = re.search(r"客户端编号 (\S+) ，密钥 (\S+)", message).groups()
    basic = httpx.BasicAuth(client_id, secret)
    r = await client.post("/api/v1/scans", json={"token": "SC1:x"}, auth=basic)
    assert r.status_code == 200  # the scanner is enrolled (and refuses a bad code)
    row = await MachineClient.select().where(MachineClient.client_id == client_id).first()
    assert (row["context"], row["place"]) == ("testgate-bus", "bus 7")
    created = await _audit("credential_created")
    assert [e["actor_id"] for e in created] == ["chief"]
    assert secret not in str(await AuditEvent.select())

    bad = await client.post(
        f"/admin/api/forms/{forms['登记扫码设备']}/",
        json={"app_id": "nope", "place": "x"},
        headers=headers,
    )
    assert bad.status_code == 422 and "小程序 nope 未启用" in bad.json()["custom_form_error"]

    r = await client.post(
        f"/admin/api/forms/{forms['吊销凭证']}/", json={"client_id": client_id}, headers=headers
    )
    assert r.status_code == 200 and r.json()["custom_form_success"] == f"已吊销 {client_id}"
    r = await client.post("/api/v1/scans", json={"token": "SC1:x"}, auth=basic)
    assert r.status_code == 401


async def test_a_readonly_operator_cannot_use_the_forms(client, console_login):
    headers = await console_login(client, "watcher", "readonly")
    forms = await _forms(client)
    r = await client.post(
        f"/admin/api/forms/{forms['轮换签名密钥']}/", json={"purpose": "code"}, headers=headers
    )
    assert r.status_code == 403
    r = await client.post(
        f"/admin/api/forms/{forms['登记扫码设备']}/",
        json={"app_id": "testgate", "place": "x"},
        headers=headers,
    )
    assert r.status_code == 403
    assert await MachineClient.count() == 0


async def test_an_admin_rotates_the_code_key_from_the_console(client, console_login):
    headers = await console_login(client, "chief", "admin")
    forms = await _forms(client)
    before = (await client.get("/api/v1/codes/trust-list")).json()
    r = await client.post(
        f"/admin/api/forms/{forms['轮换签名密钥']}/", json={"purpose": "code"}, headers=headers
    )
    assert r.status_code == 200, r.text
    assert len(await _audit("keys_rotated")) == 1
    after = (await client.get("/api/v1/codes/trust-list")).json()
    assert after != before


async def test_seed_demo_gives_the_simulator_scanners_and_the_console_an_operator(client, shengshi_cli):
    import re

    first = shengshi_cli("seed-demo")
    assert first.returncode == 0, first.stderr
    password = re.search(r"operator 'demo' \(admin\) for /admin — password (\S+)", first.stdout).group(1)
    again = shengshi_cli("seed-demo")
    demo_scanners = sum(len(app.demo_scanners) for app in client.services.miniapps.apps.values())
    assert f"{demo_scanners} demo scanners for /admin/scanner (0 new)" in again.stdout
    assert password not in again.stdout + again.stderr
    scanners = await client.services.console.simulator.scanners()
    assert {(s["app_id"], s["context"]) for s in scanners} >= {
        ("transit", "bus"),
        ("parking", "parking-exit"),
        ("doors", "door"),
    }

    await client.get("/admin/")
    csrf = {"X-CSRFToken": client.cookies.get("csrftoken")}
    r = await client.post(
        "/admin/public/login/", json={"username": "demo", "password": password}, headers=csrf
    )
    assert r.status_code == 200
    assert (await client.get("/admin/dashboard/frame")).status_code == 200

    r = shengshi_cli("console", "reset-password", "demo", "--password-stdin", input="another-long-password\n")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1])["sessions_ended"] == 1
    assert (await client.get("/admin/dashboard/frame")).status_code == 401  # signed out


async def test_an_admin_blocks_a_citizen_from_the_console(
    client, console_login, login, new_phone, auth_header
):
    pair = await login(client, new_phone())
    me = (await client.get("/api/v1/me", headers=auth_header(pair))).json()
    headers = await console_login(client, "chief", "admin")
    forms = await _forms(client)
    r = await client.post(
        f"/admin/api/forms/{forms['冻结或解冻市民账户']}/", json={"citizen_id": me["id"]}, headers=headers
    )
    assert r.status_code == 200, r.text
    r = await client.get("/admin/api/tables/citizen/")
    assert r.json()["rows"][0]["status"] == "blocked"
    assert [e["actor_id"] for e in await AuditEvent.select().where(AuditEvent.action.like("%block%"))] == [
        "chief"
    ]
    r = await client.post(
        f"/admin/api/forms/{forms['冻结或解冻市民账户']}/",
        json={"citizen_id": "00000000-0000-0000-0000-000000000000"},
        headers=headers,
    )
    assert r.status_code == 422


async def test_an_admin_enrols_a_merchant_and_a_miniapp_credential(client, console_login):
    headers = await console_login(client, "chief", "admin")
    slug = (await _forms(client))["登记商户、小程序或运营凭证"]
    r = await client.post(
        f"/admin/api/forms/{slug}/", json={"kind": "merchant", "name": "City Parks Ltd"}, headers=headers
    )
    assert r.status_code == 200 and "密钥仅显示这一次" in r.json()["custom_form_success"]
    r = await client.post(
        f"/admin/api/forms/{slug}/",
        json={"kind": "miniapp", "name": "gate backend", "app_id": "testgate"},
        headers=headers,
    )
    assert r.status_code == 200
    r = await client.post(
        f"/admin/api/forms/{slug}/", json={"kind": "miniapp", "name": "x", "app_id": "nope"}, headers=headers
    )
    assert r.status_code == 422
    r = await client.post(f"/admin/api/forms/{slug}/", json={"kind": "scanner", "name": "x"}, headers=headers)
    assert r.status_code == 422  # scanners have their own form (app, context, place)
    rows = await MachineClient.select(MachineClient.kind, MachineClient.app_id).order_by(MachineClient.kind)
    assert [(r["kind"], r["app_id"]) for r in rows] == [("merchant", ""), ("miniapp", "testgate")]


async def test_malformed_bodies_are_refused_before_piccolo_admin_sees_them(
    client, console_login, enrol_scanner
):
    gate = await enrol_scanner(client)
    headers = {**await console_login(client, "chief", "admin"), "Content-Type": "application/json"}
    slug = next(iter((await _forms(client)).values()))
    for path in (
        "/admin/public/login/",
        f"/admin/api/forms/{slug}/",
        f"/admin/api/tables/machine_client/{gate['id']}/",
    ):
        for body in (b"[]", b"{not json", b"\xff\xfe", b""):
            method = "PATCH" if "tables" in path else "POST"
            r = await client.request(method, path, content=body, headers=headers)
            assert r.status_code == 400, (path, body, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
    row = await MachineClient.select(MachineClient.name).where(MachineClient.id == gate["id"]).first()
    assert row["name"] == "gate 1"


async def test_listing_queries_piccolo_cannot_answer_get_400(client, console_login, enrol_scanner):
    await enrol_scanner(client)
    await console_login(client, "watcher", "readonly")
    for table, query in (
        ("machine_client", {"__page_size": "-1"}),
        ("machine_client", {"__page": "0"}),
        ("machine_client", {"__order": "nope"}),
        ("machine_client", {"__order": "-secret_hash"}),
        ("audit_event", {"data": "x"}),
    ):
        r = await client.get(f"/admin/api/tables/{table}/", params=query)
        assert r.status_code == 400, (table, query, r.text)
        assert r.json()["code"] == "invalid_query"
    ok = await client.get(
        "/admin/api/tables/machine_client/", params={"__order": "-created_at", "__page_size": "5"}
    )
    assert ok.status_code == 200 and len(ok.json()["rows"]) == 1


async def test_the_console_lists_newest_first_and_tells_its_page_what_each_operator_may_change(
    client, console_login
):
    anonymous = (await client.get("/admin/console/texts")).json()
    assert anonymous["role"] is None and not any(t["editable"] for t in anonymous["tables"].values())
    await console_login(client, "watcher", "readonly")
    texts = (await client.get("/admin/console/texts")).json()
    assert texts["role"] == "readonly"
    assert not any(t["editable"] for t in texts["tables"].values())
    orders = texts["tables"]["payment_order"]
    assert orders["label"] == ["支付订单", "Payment orders"] and orders["money"] == ["amount", "refunded"]
    assert texts["columns"]["created_at"] == ["创建时间", "Created"]
    schema = (await client.get("/admin/api/tables/payment_order/schema/")).json()
    assert schema["extra"]["order_by"] == [{"column": "created_at", "ascending": False}]

    await console_login(client, "chief", "admin")
    texts = (await client.get("/admin/console/texts")).json()
    assert texts["role"] == "admin"
    assert [n for n, t in texts["tables"].items() if t["editable"]] == ["machine_client"]


async def test_operators_see_overpayments_failed_refunds_and_refused_notices(client, console_login):
    """What the payment centre holds for operators to act on: money to refund, refunds the channel
    could not make, callbacks refused for not matching the order."""
    import uuid
    from datetime import UTC, datetime

    from payments.tables import ChannelNotification, Overpayment, PaymentOrder, Refund

    now = datetime.now(UTC)
    oid = uuid.uuid4()
    await PaymentOrder.insert(
        PaymentOrder(
            id=oid,
            owner="miniapp:testgate",
            app_id="testgate",
            reference="op-1",
            owner_reference="miniapp:testgate/op-1",
            amount=1000,
            state="paid",
            channel="wechatpay",
        )
    ).run()
    await Overpayment.insert(
        Overpayment(
            order=oid,
            channel="alipay",
            channel_txn="2026112822001",
            txn_key="alipay/2026112822001",
            amount=1000,
            reason="already_paid",
            created_at=now,
        )
    ).run()
    await Refund.insert(
        Refund(order=oid, order_reference=f"{oid}/rf-1", amount=300, state="abnormal", failure="ABNORMAL")
    ).run()
    await ChannelNotification.insert(
        ChannelNotification(
            notify_key="wechatpay/EV-1",
            channel="wechatpay",
            kind="payment",
            order_ref=str(oid),
            amount=1000,
            status="rejected",
            reason="currency_mismatch",
            received_at=now,
        )
    ).run()
    headers = await console_login(client, "watcher", "readonly")
    over = (
        await client.get("/admin/api/tables/payment_overpayment/?state=to_refund", headers=headers)
    ).json()
    assert [(r["amount"], r["reason"], r["channel"]) for r in over["rows"]] == [
        (1000, "already_paid", "alipay")
    ]
    refunds = (await client.get("/admin/api/tables/payment_refund/?state=abnormal", headers=headers)).json()
    assert [(r["amount"], r["failure"]) for r in refunds["rows"]] == [(300, "ABNORMAL")]
    refused = (
        await client.get("/admin/api/tables/channel_notification/?status=rejected", headers=headers)
    ).json()
    assert [r["reason"] for r in refused["rows"]] == ["currency_mismatch"]
    texts = (await client.get("/admin/console/texts", headers=headers)).json()
    assert texts["tables"]["payment_overpayment"]["label"] == ["多付款项", "Overpayments"]
    assert texts["tables"]["payment_overpayment"]["money"] == ["amount"]
    assert texts["tables"]["channel_notification"]["label"] == ["渠道通知", "Channel notifications"]
    # nothing here is changed from the console: the payment centre and the channels own it
    admin = await console_login(client, "chief", "admin")
    for table in ("payment_overpayment", "channel_notification"):
        r = await client.post(f"/admin/api/tables/{table}/", json={}, headers=admin)
        assert r.status_code == 405, (table, r.text)
