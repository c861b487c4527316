import pytest

from miniapps.contract import Manifest, MiniApp, ScanDecision, ScanEvent
from miniapps.registry import MiniAppError, discover, enabled, load_config


def make(app_id, contexts=None, scopes=None, **kw):
    class App(MiniApp):
        manifest = Manifest(
            id=app_id,
            name_zh="甲",
            name_en="A",
            version="1.0",
            scopes=scopes or ["openid"],
            scan_contexts=contexts or {},
            **kw,
        )

        async def on_scan(self, scan: ScanEvent) -> ScanDecision:
            return ScanDecision(allow=True)

    return App


def test_two_apps_with_one_id_stop_start_up():
    with pytest.raises(MiniAppError, match="two mini-apps claim the id 'dup'"):
        discover([make("dup"), make("dup")])


def test_a_scan_context_claimed_twice_stops_start_up():
    apps = discover([make("aa", {"gate": None}), make("bb", {"gate": "transit"})])
    with pytest.raises(MiniAppError, match="scan context 'gate' is claimed by both"):
        enabled(["aa", "bb"], apps)


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"scopes": ["openid", "everything"]}, "unknown scopes"),
        ({"contexts": {"gate": "superpowers"}}, "unknown entitlement"),
        ({"entitlements": ["flying"]}, "unknown entitlements"),
    ],
)
def test_bad_manifests_are_named(kw, message):
    with pytest.raises(MiniAppError, match=message):
        discover([make("bad", **kw)])


def test_bad_ids_and_non_apps():
    with pytest.raises(MiniAppError, match="bad manifest"):
        discover([make("Bad Id!")])
    with pytest.raises(MiniAppError, match="not a MiniApp subclass"):
        discover([dict])  # type: ignore[list-item]


def test_order_follows_settings():
    apps = discover([make("aa"), make("bb"), make("cc")])
    assert [a.manifest.id for a in enabled(["cc", "aa"], apps)] == ["cc", "aa"]


def test_settings_schema():
    m = make(
        "cfg", settings_schema={"fare": {"type": "integer", "default": 200}, "name": {"type": "string"}}
    ).manifest
    assert load_config(m, {"SHENGSHI_MINIAPP_CFG": '{"name": "x"}'}) == {"fare": 200, "name": "x"}
    for bad, message in (
        ('{"name": 1}', "name must be string"),
        ("{}", "name is required"),
        ('{"name": "x", "extra": 1}', "unknown settings"),
        ("nope", "not JSON"),
        ('{"name": "x", "fare": true}', "fare must be integer"),
    ):
        with pytest.raises(MiniAppError, match=message):
            load_config(m, {"SHENGSHI_MINIAPP_CFG": bad})


def test_a_mini_app_declares_its_piccolo_app_by_module():
    from miniapps.registry import piccolo_apps
    from miniapps.transit import TransitApp

    nothing = make("notables")
    assert piccolo_apps([TransitApp, nothing]) == ["miniapps.transit.piccolo_app"]


@pytest.mark.parametrize(
    "module, message",
    [
        ("no_such_module_here", "its Piccolo app no_such_module_here cannot be loaded"),
        ("miniapps.contract", "miniapps.contract has no APP_CONFIG"),
        ("miniapps.parking.piccolo_app", "its Piccolo app is named 'parking'; name it 'badname'"),
    ],
)
def test_a_piccolo_app_that_does_not_fit_stops_start_up(module, message):
    from miniapps.registry import piccolo_apps

    app = make("badname")
    app.piccolo_app = module
    with pytest.raises(MiniAppError, match=message):
        piccolo_apps([app])
    app.piccolo_app = 42
    with pytest.raises(MiniAppError, match="piccolo_app must name a module"):
        discover([app])
