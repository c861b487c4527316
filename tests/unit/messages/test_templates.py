"""A template's link: a path of this site (with a query or a fragment), as the platform's own templates
write it, and never an address that opens another site."""

import msgspec
import pytest

from messages.setup import PLATFORM_TEMPLATES
from messages.templates import Template

BASE = {
    "category": "transactional",
    "title_zh": "已收款",
    "title_en": "Received",
    "body_zh": "已收款。",
    "body_en": "Received.",
}


def test_the_platforms_own_templates_decode_as_a_manifests_would():
    for name, template in PLATFORM_TEMPLATES.items():
        decoded = msgspec.convert(msgspec.to_builtins(template), Template)
        assert decoded == template and template.problems() == [], name


@pytest.mark.parametrize("link", ["", "/", "/wallet#orders", "/apps/parking?tab=reservations", "/a/b-c_d.e"])
def test_a_path_of_this_site_is_a_link(link):
    template = msgspec.convert({**BASE, "link": link}, Template)
    assert template.problems() == []


@pytest.mark.parametrize(
    "link", ["//evil.example/pay", "https://evil.example", "javascript:alert(1)", "wallet", "/a b", "/\\\\x"]
)
def test_another_sites_address_is_not(link):
    with pytest.raises(msgspec.ValidationError, match="link"):
        msgspec.convert({**BASE, "link": link}, Template)
    assert any("link" in p for p in Template(**BASE, link=link).problems())  # type: ignore[arg-type]
