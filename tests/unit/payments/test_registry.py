"""Payment channels are found through the ``shengshitong.payment_channels`` entry points (the built-in
ones too), enabled by SHENGSHI_PAYMENT_CHANNELS in order, and each one's own settings are checked at
start-up, every bad or missing value named at once, secrets never shown."""

import time
from importlib.metadata import entry_points

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from backend.settings import SettingsError, load_settings, new_key
from payments.channels.base import Capability, NoSettings
from payments.channels.sandbox import PLUGIN as SANDBOX
from payments.channels.sandbox import Sandbox
from payments.registry import ChannelError, build_channels, discover

PROD = {
    "SHENGSHI_ENV": "prod",
    "SHENGSHI_DATABASE_URL": "postgresql://app@db/shengshitong",
    "SHENGSHI_REDIS_URL": "redis://cache:6379/0",
    "SHENGSHI_SMS_GATEWAY": "http",
    "SHENGSHI_SMS_HTTP_URL": "https://sms.example/send",
    "SHENGSHI_REALNAME_PROVIDER": "http",
    "SHENGSHI_REALNAME_HTTP_URL": "https://idv.example/api",
    "SHENGSHI_REALNAME_HTTP_APP_ID": "sst-city",
    "SHENGSHI_REALNAME_HTTP_SECRET": "a-long-shared-secret-for-tests",
    "SHENGSHI_PRIVACY_NUMBER_PROVIDER": "off",
    "SHENGSHI_SECRET_KEY": new_key(),
    "SHENGSHI_KEY_ENCRYPTION_KEY": new_key(),
    "SHENGSHI_PII_KEYS": f"p1:{new_key()}",
}


def _settings(tmp_path, **env):
    return load_settings({"SHENGSHI_DATA_DIR": str(tmp_path), **env})


def _pem_files(tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (tmp_path / "wechat").mkdir()
    (tmp_path / "wechat" / "SERIAL1.pem").write_bytes(public)
    (tmp_path / "alipay.pem").write_bytes(public)
    return {
        "SHENGSHI_WECHATPAY_MCHID": "1900000001",
        "SHENGSHI_WECHATPAY_APPID": "wxd678efh567hg6787",
        "SHENGSHI_WECHATPAY_APIV3_KEY": "0123456789abcdef0123456789abcdef",
        "SHENGSHI_WECHATPAY_PLATFORM_KEYS_DIR": str(tmp_path / "wechat"),
        "SHENGSHI_ALIPAY_APP_ID": "2021000000000001",
        "SHENGSHI_ALIPAY_SELLER_ID": "2088101122136241",
        "SHENGSHI_ALIPAY_PUBLIC_KEY_FILE": str(tmp_path / "alipay.pem"),
    }


def test_the_built_in_channels_are_declared_in_the_entry_point_group_like_any_other():
    declared = {ep.name: ep.value for ep in entry_points(group="shengshitong.payment_channels")}
    assert declared["sandbox"] == "payments.channels.sandbox:PLUGIN"
    assert declared["wechatpay"] == "payments.channels.wechatpay:PLUGIN"
    assert declared["alipay"] == "payments.channels.alipay:PLUGIN"
    assert declared["examplebank"] == "example_channel:PLUGIN"  # examples/, installed by `make install`
    assert set(discover()) == set(declared)


def test_two_packages_claiming_one_name_is_an_error_naming_both():
    class Impostor(Sandbox):
        pass

    other = type(SANDBOX)(channel=Impostor, settings=NoSettings, build=lambda s, p: Impostor(b"k" * 32, ""))
    with pytest.raises(ChannelError) as err:
        discover([other])
    assert "two payment channels claim the name 'sandbox'" in str(err.value)
    assert "entry point sandbox = payments.channels.sandbox:PLUGIN" in str(err.value)
    assert (
        "test_registry.test_two_packages_claiming_one_name_is_an_error_naming_both.<locals>.Impostor"
        in str(err.value)
    )


def test_the_enabled_channels_come_in_the_configured_order(tmp_path):
    s = _settings(tmp_path, SHENGSHI_PAYMENT_CHANNELS="alipay, sandbox,wechatpay", **_pem_files(tmp_path))
    channels = build_channels(s, time.time)
    assert list(channels) == ["alipay", "sandbox", "wechatpay"]
    assert channels["sandbox"].capabilities == {
        Capability.REFUNDS,
        Capability.DEFERRED_CHARGE,
        Capability.PAY_PAGE,
        Capability.QUERY,
        Capability.CLOSE,
        Capability.BILLS,
    }
    assert channels["wechatpay"].capabilities == frozenset()
    assert channels["alipay"].notify_url == "http://127.0.0.1:8000/api/v1/payments/notify/alipay"


def test_an_unknown_name_stops_start_up_naming_the_installed_ones(tmp_path):
    with pytest.raises(SettingsError) as err:
        build_channels(_settings(tmp_path, SHENGSHI_PAYMENT_CHANNELS="sandbox,paypal"), time.time)
    assert err.value.problems == [
        "SHENGSHI_PAYMENT_CHANNELS names 'paypal', which is not installed "
        "(installed: alipay, examplebank, sandbox, wechatpay)"
    ]


def test_every_missing_value_of_every_enabled_channel_is_named_at_once(tmp_path):
    with pytest.raises(SettingsError) as err:
        build_channels(_settings(tmp_path, SHENGSHI_PAYMENT_CHANNELS="wechatpay,alipay"), time.time)
    assert err.value.problems == [
        f"SHENGSHI_{var} is required"
        for var in (
            "WECHATPAY_MCHID",
            "WECHATPAY_APPID",
            "WECHATPAY_APIV3_KEY",
            "ALIPAY_APP_ID",
            "ALIPAY_SELLER_ID",
            "ALIPAY_PUBLIC_KEY_FILE",
        )
    ]


def test_wechat_pay_needs_platform_keys_or_its_api_key(tmp_path):
    """The platform keys folder is optional once the merchant's API key is set (the keys are fetched);
    with neither, start-up names what is missing, and half of the API's settings is named too."""
    env = {**_pem_files(tmp_path), "SHENGSHI_WECHATPAY_PLATFORM_KEYS_DIR": ""}
    with pytest.raises(SettingsError) as err:
        build_channels(_settings(tmp_path, SHENGSHI_PAYMENT_CHANNELS="wechatpay", **env), time.time)
    assert [p.split(":")[0] for p in err.value.problems] == ["SHENGSHI_WECHATPAY_PLATFORM_KEYS_DIR"]
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "apiclient_key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    env["SHENGSHI_WECHATPAY_PRIVATE_KEY_FILE"] = str(tmp_path / "apiclient_key.pem")
    with pytest.raises(SettingsError) as err:
        build_channels(_settings(tmp_path, SHENGSHI_PAYMENT_CHANNELS="wechatpay", **env), time.time)
    assert "_CERT_SERIAL go together" in str(err.value)
    env["SHENGSHI_WECHATPAY_CERT_SERIAL"] = "3775B6A45ACD588826D15E583A95F5DD04A5F2A2"
    channel = build_channels(_settings(tmp_path, SHENGSHI_PAYMENT_CHANNELS="wechatpay", **env), time.time)[
        "wechatpay"
    ]
    assert channel.capabilities == {Capability.REFUNDS, Capability.QUERY, Capability.CLOSE, Capability.BILLS}
    assert channel.pay_methods == ("app", "jsapi", "native")


def test_unreadable_values_are_named_and_the_apiv3_key_never_shown(tmp_path):
    env = {**_pem_files(tmp_path), "SHENGSHI_WECHATPAY_APIV3_KEY": "a-secret-that-is-not-32-long"}
    s = _settings(tmp_path, SHENGSHI_PAYMENT_CHANNELS="wechatpay,alipay", **env)
    with pytest.raises(SettingsError) as err:
        build_channels(s, time.time)
    (problem,) = err.value.problems
    assert problem.startswith("SHENGSHI_WECHATPAY_APIV3_KEY=<hidden>: ")
    assert "a-secret-that-is-not-32-long" not in str(err.value)
    assert "a-secret-that-is-not-32-long" not in repr(s)  # nor in a dump of the settings


def test_unusable_files_of_every_channel_are_named_at_once(tmp_path):
    env = {
        **_pem_files(tmp_path),
        "SHENGSHI_WECHATPAY_PLATFORM_KEYS_DIR": str(tmp_path / "nowhere"),
        "SHENGSHI_ALIPAY_PUBLIC_KEY_FILE": str(tmp_path / "wechat"),
        "SHENGSHI_ALIPAY_APP_PRIVATE_KEY_FILE": str(tmp_path / "alipay.pem"),
    }
    with pytest.raises(SettingsError) as err:
        build_channels(_settings(tmp_path, SHENGSHI_PAYMENT_CHANNELS="wechatpay,alipay", **env), time.time)
    assert [p.split(":")[0] for p in err.value.problems] == [
        "SHENGSHI_WECHATPAY_PLATFORM_KEYS_DIR",
        "SHENGSHI_ALIPAY_PUBLIC_KEY_FILE",
        "SHENGSHI_ALIPAY_APP_PRIVATE_KEY_FILE",
    ]
    assert "is not a PEM private key" in err.value.problems[-1]


def test_prod_refuses_the_sandbox(tmp_path):
    with pytest.raises(SettingsError) as err:
        build_channels(load_settings({**PROD, "SHENGSHI_DATA_DIR": str(tmp_path)}), time.time)  # the default
    assert err.value.problems == [
        "SHENGSHI_PAYMENT_CHANNELS names sandbox: anyone could 'pay' through it; not in prod"
    ]
    s = load_settings(
        {**PROD, "SHENGSHI_DATA_DIR": str(tmp_path), "SHENGSHI_PAYMENT_CHANNELS": "wechatpay,alipay"}
        | _pem_files(tmp_path)
    )
    assert list(build_channels(s, time.time)) == ["wechatpay", "alipay"]
