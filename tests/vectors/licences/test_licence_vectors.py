"""The e-licence conformance vectors: every one through the inspector's verifier, here and copied alone
into a virtual environment holding only ``cryptography`` (what docs/licences.md says a vendor installs);
the vectors are reproducible byte for byte."""

import importlib.util
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from licences import verifier

HERE = Path(__file__).parent
VERIFIER = HERE.parents[2] / "licences" / "verifier.py"
VECTORS = sorted(HERE.glob("*.json"))

RUNNER = """
import json, sys
sys.path.insert(0, sys.argv[1])  # the vendor's folder, holding the copied verifier.py and nothing else
import verifier

def run(v):
    doc = verifier.verify_trust_list(v["trust_list"], verifier.public_key_from_jwk(v["trust_root"]))
    trust = verifier.IssuerTrustList.from_document(doc)
    lists = [verifier.StatusList.from_token(t, trust) for t in v["status_lists"]]
    statuses = {s.uri: s for s in lists}
    guard = verifier.ReplayGuard()
    out = []
    for step in v["steps"]:
        try:
            outcome = verifier.verify_presentation(
                step["presentation"], trust, statuses, now=v["validation_time"], audience=v["audience"],
                nonce=v["nonce"], replay=guard, key_binding=v["key_binding"],
            )
        except verifier.PresentationError as exc:
            outcome = exc
        out.append(verifier.describe(outcome))
    return out

if __name__ == "__main__":
    results = {p: run(json.load(open(p, encoding="utf-8"))) for p in sys.argv[2:]}
    mods = {m.split(".")[0] for m in sys.modules}
    ours = {"msgspec", "litestar", "licences", "backend", "piccolo", "jwcrypto", "jwt"}
    results["_elsewhere"] = sorted(mods & ours)
    print(json.dumps(results, ensure_ascii=False))
"""


def _run(v: dict) -> list[dict]:
    """The same ``run`` the vendor's copy executes, here with this project's module (only the function:
    the runner's preamble reads its command line)."""
    namespace: dict = {"verifier": verifier, "__name__": "vectors"}
    body = RUNNER[RUNNER.index("def run(v):") : RUNNER.index('if __name__ == "__main__":')]
    exec(body, namespace)  # noqa: S102
    return namespace["run"](v)


def test_the_required_cases_are_present():
    names = {p.stem for p in VECTORS}
    assert {
        "valid_name_and_class",
        "replayed",
        "spliced_disclosure",
        "disclosure_of_another_credential",
        "tampered_issuer_signature",
        "alg_none",
        "unknown_issuer",
        "kb_by_another_key",
        "no_key_binding",
        "revoked",
        "suspended",
        "status_list_expired",
        "challenge_nonce",
        "shared_on_consent",
        "stripped_key_binding",
        "status_list_of_another_issuer",
    } <= names


@pytest.mark.parametrize("path", VECTORS, ids=[p.stem for p in VECTORS])
def test_vector(path):
    v = json.loads(path.read_text(encoding="utf-8"))
    assert _run(v) == [s["expected"] for s in v["steps"]]


def test_generating_again_gives_the_same_bytes(tmp_path):
    spec = importlib.util.spec_from_file_location("licence_vector_generator", HERE / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(tmp_path)
    made = sorted(tmp_path.glob("*.json"))
    assert [p.name for p in made] == [p.name for p in VECTORS]
    for p in made:
        assert p.read_bytes() == (HERE / p.name).read_bytes(), p.name


@pytest.mark.standalone
def test_the_copied_verifier_passes_every_vector_with_only_cryptography(vendor_venv, tmp_path):
    python = vendor_venv("cryptography")
    vendor = tmp_path / "vendor"
    vendor.mkdir()
    shutil.copy(VERIFIER, vendor / "verifier.py")
    (tmp_path / "run.py").write_text(RUNNER)
    run = subprocess.run(
        [str(python), "-I", str(tmp_path / "run.py"), str(vendor), *map(str, VECTORS)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads(run.stdout)
    assert results.pop("_elsewhere") == []
    for path in VECTORS:
        v = json.loads(path.read_text(encoding="utf-8"))
        assert results[str(path)] == [s["expected"] for s in v["steps"]], path.name
    absent = subprocess.run(
        [str(python), "-I", "-c", "import cbor2"], capture_output=True, text=True, check=False
    )
    assert absent.returncode != 0  # the environment holds cryptography alone
