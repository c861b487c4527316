"""The OpenAPI document tells the truth: schemathesis (a tool we did not write) generates requests from
it for every operation, against the real server with real credentials, and fails on any 5xx and on any
answer that the document does not describe (status, content type, body schema, headers).

Bounded: a fixed number of examples per operation and generation mode, derandomized (a fixed seed), on
one backend (the SQLite pass). Operations that end the citizen's session run last."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from backend.settings import new_key
from tests.conftest import BACKEND, ServedApp

pytestmark = [
    pytest.mark.storage,
    pytest.mark.timeout_sensitive,
    pytest.mark.skipif(BACKEND != "sqlite", reason="run once, on the SQLite pass"),
]

EXAMPLES = int(os.environ.get("SHENGSHI_TEST_API_EXAMPLES", "15"))  # per operation and generation mode
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
# an endless event stream (documented as text/event-stream) cannot be read to its end
SKIP = {("GET", "/admin/dashboard/stream"), ("GET", "/api/v1/me/events")}
# this ends the session the other operations use: it goes last (deleting the account uses another one)
LAST = [("POST", "/api/v1/auth/logout")]


@pytest.fixture(scope="module")
def server(free_port, serve) -> Iterator[ServedApp]:
    data_dir = Path(tempfile.mkdtemp(prefix="shengshi-schemathesis-"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHENGSHI_")}
    env.update(
        {
            "SHENGSHI_ENV": "test",
            "SHENGSHI_DATA_DIR": str(data_dir),
            "SHENGSHI_DATABASE_URL": f"sqlite:///{data_dir / 'api.sqlite3'}",
            "SHENGSHI_SECRET_KEY": new_key(),
            "SHENGSHI_KEY_ENCRYPTION_KEY": new_key(),
            "SHENGSHI_PII_KEYS": f"s1:{new_key()}",
            "SHENGSHI_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "SHENGSHI_LOG_LEVEL": "WARNING",
            "SHENGSHI_OTP_RESEND_INTERVAL": "0",
        }
    )
    s = ServedApp(f"http://127.0.0.1:{port}", env)
    s.cli("migrate")
    s.cli("seed-demo")
    proc = serve(env, port, log=data_dir / "server.log")
    try:
        yield s
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(data_dir, ignore_errors=True)


def _basic(cred: dict[str, Any]) -> str:
    import base64

    return "Basic " + base64.b64encode(f"{cred['client_id']}:{cred['client_secret']}".encode()).decode()


@pytest.fixture(scope="module")
def credentials(server: ServedApp) -> dict[str, Any]:
    """Real credentials of every kind, so generated requests reach past the guards."""
    cli = server.cli
    merchant = cli("merchants", "add", "API test merchant", "--json")
    creds: dict[str, Any] = {
        "scanner": _basic(
            cli("scanners", "add", "--app", "transit", "--place", "bus 42", "--context", "bus", "--json")
        ),
        "merchant": _basic(merchant),
        # the merchant's till: the pay code (/api/v1/payments/paycode)
        "till": _basic(cli("tills", "add", merchant["client_id"], "--place", "till 1", "--json")),
        "operator": _basic(cli("operators", "add", "finance", "--json")),
        # a department issuing non-tax fee notices (/api/v1/fees/notices)
        "department": _basic(cli("departments", "add", "API test bureau", "--code", "210100001", "--json")),
        "source": _basic(cli("sources", "add", "--kind", "health", "--name", "API test authority", "--json")),
        "issuer": _basic(
            cli(
                "licences",
                "add-issuer",
                "api-traffic",
                "--name-zh",
                "交警",
                "--name-en",
                "Traffic police",
                "--department",
                "traffic_police",
                "--type",
                "driving_licence",
                "--json",
            )
        ),
        "inspector": _basic(cli("licences", "credential", "inspector", "--name", "API inspector", "--json")),
        "relying_party": _basic(
            cli("licences", "credential", "relying_party", "--name", "API service", "--json")
        ),
        "miniapps": {
            app: _basic(cli("miniapps", "credentials", app, "--json"))
            for app in ("transit", "parking", "hospital", "tourism", "civic", "library", "carmove", "doors")
        },
        # a door's controller: its offline list (/api/v1/apps/doors/door-list)
        "door": _basic(
            cli("scanners", "add", "--app", "doors", "--place", "WK-GATE-N", "--context", "door", "--json")
        ),
    }
    with httpx.Client(base_url=server.url, timeout=10) as c:

        def citizen(phone: str) -> str:
            assert c.post("/api/v1/auth/otp", json={"phone": phone}).status_code == 202
            text = c.get("/api/v1/dev/sms", params={"phone": phone}).json()["text"]
            code = re.search(r"\b(\d{6})\b", text).group(1)  # type: ignore[union-attr]
            body = {"phone": phone, "code": code, "device_id": "phone-1", "device_name": "test"}
            return f"Bearer {c.post('/api/v1/auth/login', json=body).json()['access_token']}"

        creds["citizen"] = citizen("13912345678")
        creds["citizen_leaving"] = citizen("13912345679")  # DELETE /api/v1/me deletes this one
        grant = c.post(
            "/api/v1/miniapps/parking/authorize",
            json={"scopes": ["openid"]},
            headers={"Authorization": creds["citizen"]},
        ).json()["code"]
        token = c.post(
            "/api/v1/miniapps/parking/token",
            json={"code": grant},
            headers={"Authorization": creds["miniapps"]["parking"]},
        ).json()
        creds["miniapp_token"] = f"Bearer {token['access_token']}"
        # a console operator, signed in through piccolo-admin's own login (session and CSRF cookies)
        cli(
            "console",
            "add-operator",
            "api-admin",
            "--role",
            "admin",
            "--password-stdin",
            input="api-password-1\n",
        )
        c.get("/admin/")
        csrf = c.cookies.get("csrftoken")
        r = c.post(
            "/admin/public/login/",
            json={"username": "api-admin", "password": "api-password-1"},
            headers={"X-CSRFToken": csrf or ""},
        )
        assert r.status_code == 200, r.text
        creds["console"] = {"cookies": {"id": c.cookies.get("id"), "csrftoken": csrf}, "csrf": csrf}
    return creds


def _auth_for(operation: Any, creds: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """Headers and cookies for the first security alternative the operation declares."""
    security = operation.definition.raw.get("security") or []
    if not security:
        return {}, {}
    schemes = set(security[0])
    path = operation.path
    headers: dict[str, str] = {}
    cookies: dict[str, str] = {}
    if "citizenToken" in schemes:
        leaving = (operation.method.upper(), path) == ("DELETE", "/api/v1/me")
        headers["Authorization"] = creds["citizen_leaving" if leaving else "citizen"]
    if "miniappToken" in schemes:
        headers["Authorization"] = creds["miniapp_token"]
    if "machineCredential" in schemes:
        if path.startswith("/api/v1/payments/paycode"):
            headers["Authorization"] = creds["till"]
        elif path.startswith("/api/v1/scans"):
            headers["Authorization"] = creds["scanner"]
        elif path.startswith("/api/v1/entitlements"):
            headers["Authorization"] = creds["source"]
        elif path.startswith("/api/v1/licences/issued"):
            headers["Authorization"] = creds["issuer"]
        elif path.startswith("/api/v1/licences/handover"):
            headers["Authorization"] = creds["inspector"]
        elif path.startswith("/api/v1/licences/requests"):
            headers["Authorization"] = creds["relying_party"]
        elif path.startswith("/api/v1/fees/notices"):
            headers["Authorization"] = creds["department"]
        elif path.startswith(
            (
                "/api/v1/payments/reconciliation",
                "/api/v1/payments/statistics",
                "/api/v1/fees/fiscal-deliveries",
                "/api/v1/fees/reconciliations",
                "/api/v1/fees/statements",
                "/api/v1/admin/",
            )
        ):
            headers["Authorization"] = creds["operator"]
        elif path.startswith(("/api/v1/messages", "/api/v1/ratings/")):
            headers["Authorization"] = creds["miniapps"]["parking"]
        elif path == "/api/v1/apps/doors/door-list":
            headers["Authorization"] = creds["door"]
        elif m := re.match(r"/api/v1/apps/(\w+)/", path):
            headers["Authorization"] = creds["miniapps"][m.group(1)]
        elif path.startswith("/api/v1/miniapps/"):
            headers["Authorization"] = creds["miniapps"]["parking"]
        else:
            headers["Authorization"] = creds["merchant"]
    if "consoleSession" in schemes:
        cookies.update(creds["console"]["cookies"])
    if "consoleCsrf" in schemes:
        headers["X-CSRFToken"] = creds["console"]["csrf"]
    return headers, cookies


def _operations(schema: Any) -> list[Any]:
    ops = [r.ok() for r in schema.get_all_operations()]
    ops = [o for o in ops if (o.method.upper(), o.path) not in SKIP]

    def order(o: Any) -> int:
        key = (o.method.upper(), o.path)
        return LAST.index(key) if key in LAST else -1

    return sorted(ops, key=order)


def _exercise(
    operation: Any,
    mode: GenerationMode,
    url: str,
    headers: dict[str, str],
    cookies: dict[str, str],
    seen: list[tuple[str, int]],
) -> None:
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        response = case.call(base_url=url, headers=headers, cookies=cookies, timeout=20)
        seen.append((f"{operation.method.upper()} {operation.path}", response.status_code))
        case.validate_response(response, checks=CHECKS)

    run()


def test_every_operation_answers_as_the_document_says(server, credentials):
    schema = schemathesis.openapi.from_url(f"{server.url}/schema/openapi.json")
    failures: list[str] = []
    seen: list[tuple[str, int]] = []
    operations = _operations(schema)
    for operation in operations:
        headers, cookies = _auth_for(operation, credentials)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _exercise(operation, mode, server.url, headers, cookies, seen)
            except Unsatisfiable:  # nothing to make invalid: an operation without inputs
                pass
            except (Exception, BaseExceptionGroup) as exc:  # every operation's finding, then one failure
                failures.append(f"{operation.method.upper()} {operation.path} ({mode.value}): {exc}")
    assert not failures, "\n\n".join(failures)
    # the credentials worked: every guarded operation answered something else than 401 at least once
    statuses: dict[str, set[int]] = {}
    for name, status in seen:
        statuses.setdefault(name, set()).add(status)
    guarded = [f"{o.method.upper()} {o.path}" for o in operations if o.definition.raw.get("security")]
    refused = {g: statuses.get(g) for g in guarded if statuses.get(g, {401}) <= {401}}
    assert guarded and not refused, refused
