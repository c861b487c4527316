"""Pooled PostgreSQL connections are given back without asyncpg's reset query (backend.db.PooledConnection):
that is safe only while no code leaves session state on a connection. This reads every module of the
platform and its mini-apps for the statements that would."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = [
    "backend",
    "auth",
    "codes",
    "payments",
    "messages",
    "ratings",
    "licences",
    "miniapps",
    "console",
    "examples",
]
SESSION_STATE = re.compile(
    r"pg_advisory_lock|pg_try_advisory_lock\b|\bLISTEN\b|add_listener|\bSET\s+(SESSION|search_path|TIME ZONE)"
    r"|set_config\(|WITH HOLD|\bPREPARE\s+\w+\s+AS",
    re.IGNORECASE,
)


def test_no_module_leaves_session_state_on_a_pooled_connection():
    found = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if ".venv" in path.parts or path.name == "test_pooled_connections.py":
                continue
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if SESSION_STATE.search(line) and "get_reset_query" not in line:
                    found.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    # backend/db.py names them once, in the docstring explaining why none are used
    assert [f for f in found if not f.startswith("backend/db.py")] == []
