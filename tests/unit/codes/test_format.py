import os

import base45
import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from codes import format as fmt
from codes import qr
from codes.entitlements import Entitlements


@pytest.mark.parametrize("n", [*range(0, 40), 64, 137, 255, 256, 600])
def test_fast_base45_matches_the_library(n):
    data = os.urandom(n)
    assert fmt.b45decode(base45.b45encode(data).decode()) == data


@pytest.mark.parametrize("bad", ["A", "ABCD", "abc", "GGW", ":::", "ÄÄÄ", "AB\n"])
def test_fast_base45_refuses_what_the_library_refuses(bad):
    with pytest.raises(ValueError):
        fmt.b45decode(bad)
    with pytest.raises((ValueError, KeyError)):
        base45.b45decode(bad)


def test_sig_structure_is_the_cbor_encoding():
    for n in (0, 5, 23, 24, 255, 256, 70000):
        payload = os.urandom(n)
        assert fmt.sig_structure(b"\xa1\x01\x26", payload) == cbor2.dumps(
            ["Signature1", b"\xa1\x01\x26", b"", payload]
        )


def test_entitlements_round_trip_and_grants():
    full = Entitlements(
        medical_region="440300", transit=False, health="yellow", tickets=True, social_security=True
    )
    assert Entitlements.from_compact(cbor2.loads(cbor2.dumps(full.to_compact()))) == full
    assert not full.grants("transit") and full.grants("medical") and full.grants(None)
    assert not Entitlements().grants("medical") and Entitlements().grants("transit")
    with pytest.raises(ValueError):
        Entitlements.from_compact({1: "12"})


@pytest.mark.parametrize(
    "ent",
    [
        Entitlements(),
        Entitlements(transit=True),
        Entitlements(medical_region="210100", transit=True, tickets=True, social_security=True),
    ],
)
def test_codes_fit_qr_version_8_at_level_m(ent):
    token, _ = fmt.encode(
        private_key=ec.generate_private_key(ec.SECP256R1()),
        alg="ES256",
        kid=os.urandom(6),
        issuer="SST",
        iat=1_800_000_000,
        exp=1_800_000_060,
        entitlements=ent,
    )
    version, modules = qr.version_of(token)
    assert version <= 8 and modules <= 49
    assert set(token) <= set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")
