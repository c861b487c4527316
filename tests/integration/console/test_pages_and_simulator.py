"""The wallet page, the QR in the code's JSON, and the scanner simulator (text and picture)."""

import io
import re

import pytest
import zxingcpp
from PIL import Image

from backend.tables import AuditEvent

pytestmark = pytest.mark.storage


async def test_pages_are_served_with_a_strict_policy_and_local_assets(client):
    r = await client.get("/wallet")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    # everything the page loads comes from this server: it works with no internet
    assets = re.findall(r'(?:src|href)="([^"]+)"', r.text)
    assert assets and all(a.startswith("/static/web/") for a in assets)
    for asset in assets:
        assert (await client.get(asset)).status_code == 200, asset
    assert "http://" not in r.text and "https://" not in r.text


async def test_the_wallets_service_worker_is_served_where_its_scope_covers_the_wallet(client):
    """A worker's scope cannot be wider than its own path: /static/web/… could never cover /wallet."""
    r = await client.get("/wallet-sw.js")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")
    assert "showNotification" in r.text and "notificationclick" in r.text
    assert "service-worker-allowed" not in r.headers  # not needed at this path
    wallet = await client.get("/wallet")
    assert "worker-src 'self'" in wallet.headers["content-security-policy"]
    script = (await client.get("/static/web/wallet-messages.js")).text
    assert 'register("/wallet-sw.js", { scope: "/wallet" })' in script


async def test_the_code_json_carries_its_own_qr(client, login, new_phone, auth_header):
    pair = await login(client, new_phone())
    code = (await client.get("/api/v1/codes/current", params={"qr": "svg"}, headers=auth_header(pair))).json()
    assert code["qr_svg"].startswith("<svg") and "viewBox" in code["qr_svg"]
    assert code["server_time"]
    plain = (await client.get("/api/v1/codes/current", headers=auth_header(pair))).json()
    assert plain["qr_svg"] is None and plain["token"] == code["token"]
    r = await client.get("/api/v1/codes/current", params={"qr": "gif"}, headers=auth_header(pair))
    assert r.status_code == 400 and r.headers["content-type"].startswith("application/problem+json")


@pytest.fixture
async def sim(client, console_login, login, new_phone, auth_header, enrol_scanner):
    gate = await enrol_scanner(client, place="east gate")
    pair = await login(client, new_phone())
    return client, gate, pair


async def test_an_admin_shows_a_code_to_a_scanner_and_sees_the_gate(sim, console_login, auth_header):
    client, gate, pair = sim
    headers = await console_login(client, "chief", "admin")
    scanners = (await client.get("/admin/scanner/scanners")).json()
    assert [s["client_id"] for s in scanners] == [gate["client_id"]]
    token = (await client.get("/api/v1/codes/current", headers=auth_header(pair))).json()["token"]

    first = await client.post(
        "/admin/scanner/scan", json={"scanner_id": gate["client_id"], "code": token}, headers=headers
    )
    assert first.status_code == 200, first.text
    assert first.json()["result"] == "allow" and first.json()["display"]["color"] == "green"
    again = await client.post(
        "/admin/scanner/scan", json={"scanner_id": gate["client_id"], "code": token}, headers=headers
    )
    assert (again.json()["result"], again.json()["reason"]) == ("deny", "replayed")
    audited = await AuditEvent.select().where(AuditEvent.action == "console.simulated_scan")
    assert [e["actor_id"] for e in audited] == ["chief", "chief"]

    bad = await client.post(
        "/admin/scanner/scan", json={"scanner_id": gate["client_id"], "code": "hello"}, headers=headers
    )
    assert bad.status_code == 200 and bad.json()["result"] == "deny"  # as the gate shows a bad code
    assert bad.json()["display"]["color"] == "red"
    empty = await client.post(
        "/admin/scanner/scan", json={"scanner_id": gate["client_id"], "code": ""}, headers=headers
    )
    assert empty.status_code == 400 and empty.headers["content-type"].startswith("application/problem+json")
    missing = await client.post(
        "/admin/scanner/scan", json={"scanner_id": "scn_nope", "code": token}, headers=headers
    )
    assert missing.status_code == 404


async def test_the_simulator_reads_a_picture_of_the_code(sim, console_login, auth_header):
    client, _gate, pair = sim
    headers = await console_login(client, "chief", "admin")
    token = (await client.get("/api/v1/codes/current", headers=auth_header(pair))).json()["token"]
    png = (await client.get("/api/v1/codes/current.png", headers=auth_header(pair))).content
    # a photo is bigger, greyer and not square to the camera: scale it and put it on a grey page
    img = Image.open(io.BytesIO(png)).convert("L").resize((700, 700))
    page = Image.new("L", (1000, 900), 200)
    page.paste(img, (150, 100))
    buf = io.BytesIO()
    page.save(buf, format="JPEG", quality=85)
    r = await client.post(
        "/admin/scanner/decode", content=buf.getvalue(), headers={**headers, "Content-Type": "image/jpeg"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["code"] == token
    assert zxingcpp.read_barcodes(page)  # the independent decoder agrees it is readable

    junk = await client.post("/admin/scanner/decode", content=b"not an image", headers=headers)
    assert junk.status_code == 422 and junk.headers["content-type"].startswith("application/problem+json")
    blank = io.BytesIO()
    Image.new("L", (200, 200), 255).save(blank, format="PNG")
    r = await client.post("/admin/scanner/decode", content=blank.getvalue(), headers=headers)
    assert r.status_code == 422 and r.json()["code"] == "no_qr_code"
    assert r.json()["detail"] == "图片中没有找到二维码"  # Chinese unless the request asks otherwise


async def test_the_simulator_refuses_readonly_operators_and_forged_requests(sim, console_login, auth_header):
    client, gate, pair = sim
    headers = await console_login(client, "watcher", "readonly")
    token = (await client.get("/api/v1/codes/current", headers=auth_header(pair))).json()["token"]
    r = await client.post(
        "/admin/scanner/scan", json={"scanner_id": gate["client_id"], "code": token}, headers=headers
    )
    assert r.status_code == 403 and r.json()["code"] == "read_only"
    # a page elsewhere cannot make the signed-in browser post: no CSRF token, no scan
    r = await client.post("/admin/scanner/decode", content=b"x")
    assert r.status_code == 403 and r.json()["code"] == "csrf_failed"
    # the code was not used by any of this
    gate_scan = await client.post("/api/v1/scans", json={"token": token}, headers=gate["headers"])
    assert gate_scan.json()["result"] == "allow"
