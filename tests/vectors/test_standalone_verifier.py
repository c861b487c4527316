"""The offline verifier is one file a scanner vendor copies: it passes every conformance vector in a
virtual environment holding only the two packages docs/citizen-code.md names (cryptography and cbor2),
copied there alone, away from this project."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).parent
VERIFIER = HERE.parents[1] / "codes" / "verifier.py"
NEEDS = ("cryptography", "cbor2")  # what the documentation says a vendor installs

RUNNER = """
import json, sys
sys.path.insert(0, sys.argv[1])  # the vendor's folder, holding the copied verifier.py and nothing else
import verifier

out = {}
for path in sys.argv[2:]:
    v = json.load(open(path, encoding="utf-8"))
    doc = verifier.verify_document(v["trust_list"], verifier.public_key_from_jwk(v["trust_root"]))
    trust = verifier.TrustList.from_document(doc)
    result = verifier.verify(
        v["token"], trust, now=v["validation_clock"], skew=v["clock_skew"], requirement=v["requirement"]
    )
    out[path] = verifier.describe(result)
mods = {m.split(".")[0] for m in sys.modules}
out["_elsewhere"] = sorted(mods & {"msgspec", "base45", "litestar", "codes", "backend", "piccolo"})
print(json.dumps(out))
"""


@pytest.fixture(scope="session")
def vendor_python(vendor_venv):
    """A fresh virtual environment with only the documented packages (same versions as this project's)."""
    return vendor_venv(*NEEDS)


@pytest.mark.standalone
def test_the_copied_verifier_passes_every_vector_with_only_cryptography_and_cbor2(vendor_python, tmp_path):
    vendor = tmp_path / "vendor"
    vendor.mkdir()
    shutil.copy(VERIFIER, vendor / "verifier.py")
    (tmp_path / "run.py").write_text(RUNNER)
    vectors = sorted(HERE.glob("*.json"))
    assert len(vectors) >= 14
    run = subprocess.run(
        [str(vendor_python), "-I", str(tmp_path / "run.py"), str(vendor), *map(str, vectors)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads(run.stdout)
    assert results.pop("_elsewhere") == []  # nothing of this project or its other dependencies
    for path in vectors:
        assert results[str(path)] == json.loads(path.read_text())["expected"], path.name
    # the environment really holds nothing else: the project's own format module cannot even load there
    absent = subprocess.run(
        [str(vendor_python), "-I", "-c", "import msgspec"], capture_output=True, text=True, check=False
    )
    assert absent.returncode != 0 and "msgspec" in absent.stderr
