"""Every conformance vector runs through the offline verifier; the vectors are reproducible."""

import importlib.util
import json
from pathlib import Path

import pytest

from codes.trustlist import TrustList, public_key_from_jwk, verify_document
from codes.verifier import describe, verify

HERE = Path(__file__).parent
VECTORS = sorted(HERE.glob("*.json"))


def test_the_required_cases_are_present():
    names = {p.stem for p in VECTORS}
    required = {
        "valid_es256",
        "valid_eddsa",
        "tampered_payload",
        "tampered_signature",
        "unknown_kid",
        "wrong_alg_es384",
        "expired",
        "not_yet_valid",
        "skew_inside_tolerance",
        "skew_outside_tolerance",
        "bad_base45",
        "bad_prefix",
        "truncated",
        "oversized",
    }
    assert required <= names


@pytest.mark.parametrize("path", VECTORS, ids=[p.stem for p in VECTORS])
def test_vector(path):
    v = json.loads(path.read_text())
    doc = verify_document(v["trust_list"], public_key_from_jwk(v["trust_root"]))
    trust = TrustList.from_document(doc)
    result = verify(
        v["token"], trust, now=v["validation_clock"], skew=v["clock_skew"], requirement=v["requirement"]
    )
    assert describe(result) == v["expected"]


def test_generating_again_gives_the_same_bytes(tmp_path):
    spec = importlib.util.spec_from_file_location("vector_generator", HERE / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for fresh in module.write(tmp_path):
        assert fresh.read_bytes() == (HERE / fresh.name).read_bytes(), fresh.name
