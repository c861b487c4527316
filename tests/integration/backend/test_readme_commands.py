"""The README's command-line examples are real: its scanner example (and the documents' ones for the
built-in mini-apps) enrol, through the real ``shengshi`` command, a scanner that then scans at a place
of the demo city."""

import json
import shlex
from pathlib import Path

import pytest

pytestmark = [pytest.mark.storage]

ROOT = Path(__file__).resolve().parents[3]
BUILT_IN = ("transit", "parking", "hospital", "tourism")


def documented(prefix: str, *docs: Path) -> list[tuple[str, list[str]]]:
    """Every line of a code block in ``docs`` that starts with ``prefix``: (document, argv)."""
    found = []
    for doc in docs:
        in_block = False
        for line in doc.read_text(encoding="utf-8").splitlines():
            if line.startswith("```"):
                in_block = not in_block
            elif in_block and line.startswith(prefix):
                found.append((doc.name, shlex.split(line, comments=True)))
    return found


async def enrol_and_scan(city, shengshi_cli, where: str, argv: list[str]) -> dict:
    client, me, clock = city
    made = shengshi_cli(*argv[1:])
    assert made.returncode == 0, f"{where}: {shlex.join(argv)}\n{made.stderr}"
    cred = json.loads(made.stdout.strip().splitlines()[-1])
    assert cred["client_id"].startswith("scn_") and cred["client_secret"]
    clock.advance(31)  # a fresh code for each scan (a code is used once per scan context)
    token = (await client.get("/api/v1/codes/current", headers=me)).json()["token"]
    scanned = await client.post(
        "/api/v1/scans", json={"token": token}, auth=(cred["client_id"], cred["client_secret"])
    )
    assert scanned.status_code == 200, scanned.text
    decision = scanned.json()
    # the mini-app knows the place: a gate of the demo city, not an unknown line, station or car park
    assert not decision["reason"].startswith("unknown"), (where, argv, decision)
    if cred["context"] in ("bus", "metro-entry", "parking-entry", "hospital-checkin"):
        assert decision["result"] == "allow", (where, argv, decision)
    return decision


@pytest.fixture
async def city(make_client, shengshi_cli, login, new_phone, auth_header, frozen_clock, verify_real_name):
    """The demo city (seeded by the real command) and an insured citizen of it."""
    async with make_client(clock=frozen_clock, access_token_ttl=86400) as client:
        assert shengshi_cli("seed-demo").returncode == 0
        pair = await login(client, new_phone())
        # a demo person the demo's medical-insurance bureau knows (codes/demo.py), for a hospital check-in
        await verify_real_name(client, pair, "沈一", "210103199003070018")
        yield client, auth_header(pair), frozen_clock


async def test_the_readme_scanner_example_enrols_a_scanner_that_scans(city, shengshi_cli):
    (example,) = documented("shengshi scanners add", ROOT / "README.md")
    decision = await enrol_and_scan(city, shengshi_cli, *example)
    assert decision["result"] == "allow" and decision["display"]["title"] == "请通行"


async def test_the_documents_scanner_examples_for_the_built_in_mini_apps_work(city, shengshi_cli):
    examples = [
        (where, argv)
        for where, argv in documented("shengshi scanners add", *sorted((ROOT / "docs").glob("*.md")))
        if argv[argv.index("--app") + 1] in BUILT_IN
    ]
    assert {argv[argv.index("--app") + 1] for _, argv in examples} == set(BUILT_IN)
    for where, argv in examples:
        await enrol_and_scan(city, shengshi_cli, where, argv)
