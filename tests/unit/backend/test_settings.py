import json
import os
import stat

import pytest

from backend.settings import SettingsError, load_settings, new_key

PROD_OK = {
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
    "SHENGSHI_PAYMENT_CHANNELS": "wechatpay,alipay",
}


def test_every_bad_value_is_named_at_once(tmp_path):
    env = {
        "SHENGSHI_DATA_DIR": str(tmp_path),
        "SHENGSHI_MAX_BODY_BYTES": "lots",
        "SHENGSHI_ENV": "staging",
        "SHENGSHI_LOG_JSON": "maybe",
    }
    with pytest.raises(SettingsError) as err:
        load_settings(env)
    text = str(err.value)
    for var in ("SHENGSHI_MAX_BODY_BYTES", "SHENGSHI_ENV", "SHENGSHI_LOG_JSON"):
        assert var in text
    assert len(err.value.problems) == 3


def test_values_are_converted_from_strings(tmp_path):
    s = load_settings(
        {"SHENGSHI_DATA_DIR": str(tmp_path), "SHENGSHI_MAX_BODY_BYTES": "2048", "SHENGSHI_LOG_JSON": "false"}
    )
    assert s.max_body_bytes == 2048
    assert s.log_json is False
    assert s.sqlite_path == str(tmp_path / "shengshitong.sqlite3")


def test_prod_without_secrets_names_each_missing_one():
    env = {k: v for k, v in PROD_OK.items() if k not in ("SHENGSHI_SECRET_KEY", "SHENGSHI_PII_KEYS")}
    with pytest.raises(SettingsError) as err:
        load_settings(env)
    text = str(err.value)
    assert "SHENGSHI_SECRET_KEY is required in prod" in text
    assert "SHENGSHI_PII_KEYS is required in prod" in text
    assert "SHENGSHI_KEY_ENCRYPTION_KEY" not in text


def test_prod_refuses_development_components():
    env = {
        **PROD_OK,
        "SHENGSHI_REDIS_URL": "",
        "SHENGSHI_DATABASE_URL": "",
        "SHENGSHI_SMS_GATEWAY": "dev",
        "SHENGSHI_REALNAME_PROVIDER": "development",
        "SHENGSHI_PRIVACY_NUMBER_PROVIDER": "development",
    }
    with pytest.raises(SettingsError) as err:
        load_settings(env)
    text = str(err.value)
    assert "SHENGSHI_PRIVACY_NUMBER_PROVIDER=development is the development provider" in text
    assert "SHENGSHI_REDIS_URL is required in prod" in text
    assert "PostgreSQL in prod" in text
    assert "SHENGSHI_SMS_GATEWAY=dev" in text
    assert "SHENGSHI_REALNAME_PROVIDER=development is the development provider" in text


def test_prod_refuses_the_development_real_name_provider_by_default():
    env = {k: v for k, v in PROD_OK.items() if not k.startswith("SHENGSHI_REALNAME_")}
    with pytest.raises(SettingsError) as err:
        load_settings(env)
    assert err.value.problems == [
        "SHENGSHI_REALNAME_PROVIDER=development is the development provider; prod needs 'http'"
    ]


def test_the_http_real_name_provider_needs_its_settings_and_hides_its_secret():
    env = {**PROD_OK, "SHENGSHI_REALNAME_HTTP_URL": "", "SHENGSHI_REALNAME_HTTP_SECRET": "short"}
    with pytest.raises(SettingsError) as err:
        load_settings(env)
    text = str(err.value)
    assert "SHENGSHI_REALNAME_HTTP_URL is required when SHENGSHI_REALNAME_PROVIDER=http" in text
    assert "SHENGSHI_REALNAME_HTTP_SECRET: must be at least 16 characters" in text
    assert "'short'" not in text
    s = load_settings(PROD_OK)
    assert PROD_OK["SHENGSHI_REALNAME_HTTP_SECRET"] not in repr(s)
    assert "realname_http_secret=<hidden>" in repr(s)


def test_prod_refuses_development_secrets(tmp_path):
    dev = load_settings({"SHENGSHI_DATA_DIR": str(tmp_path)})
    env = {**PROD_OK, "SHENGSHI_DATA_DIR": str(tmp_path), "SHENGSHI_SECRET_KEY": dev.secret_key}
    with pytest.raises(SettingsError) as err:
        load_settings(env)
    assert "SHENGSHI_SECRET_KEY is a development secret" in str(err.value)


def test_prod_with_everything_set_starts():
    s = load_settings(PROD_OK)
    assert s.env == "prod" and s.uses_postgres and s.uses_redis


def test_short_or_malformed_secrets_are_refused():
    env = {**PROD_OK, "SHENGSHI_SECRET_KEY": "c2hvcnQ", "SHENGSHI_PII_KEYS": "nokid"}
    with pytest.raises(SettingsError) as err:
        load_settings(env)
    assert "SHENGSHI_SECRET_KEY: must decode to at least 32 bytes" in str(err.value)
    assert "SHENGSHI_PII_KEYS" in str(err.value)


def test_dev_generates_secrets_once_and_keeps_them_private(tmp_path):
    first = load_settings({"SHENGSHI_DATA_DIR": str(tmp_path)})
    second = load_settings({"SHENGSHI_DATA_DIR": str(tmp_path)})
    assert first.secret_key == second.secret_key
    path = tmp_path / "dev-secrets.json"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert set(json.loads(path.read_text())) == {"secret_key", "key_encryption_key", "pii_keys"}


def test_secret_values_are_not_echoed_in_errors():
    env = {**PROD_OK, "SHENGSHI_SMS_HTTP_TOKEN": "x"}
    s = load_settings(env)
    assert s.sms_http_token == "x"
    with pytest.raises(SettingsError) as err:
        load_settings({**PROD_OK, "SHENGSHI_ACCESS_TOKEN_TTL": "super-secret-value"})
    assert "super-secret-value" not in str(err.value)


def test_dashboard_and_shutdown_timings_are_checked(tmp_path):
    env = {
        "SHENGSHI_DATA_DIR": str(tmp_path),
        "SHENGSHI_DASHBOARD_FLUSH_INTERVAL": "0",
        "SHENGSHI_DASHBOARD_PUSH_INTERVAL": "3600",
        "SHENGSHI_SHUTDOWN_GRACE": "0",
    }
    with pytest.raises(SettingsError) as err:
        load_settings(env)
    text = str(err.value)
    for var in ("DASHBOARD_FLUSH_INTERVAL", "DASHBOARD_PUSH_INTERVAL", "SHUTDOWN_GRACE"):
        assert f"SHENGSHI_{var}" in text
    ok = load_settings({"SHENGSHI_DATA_DIR": str(tmp_path), "SHENGSHI_SHUTDOWN_GRACE": "2.5"})
    assert ok.shutdown_grace == 2.5 and ok.dashboard_push_interval == 2.0


def test_database_timeouts_are_checked(tmp_path):
    env = {
        "SHENGSHI_DATA_DIR": str(tmp_path),
        "SHENGSHI_DB_COMMAND_TIMEOUT": "0",
        "SHENGSHI_DB_ACQUIRE_TIMEOUT": "-1",
    }
    with pytest.raises(SettingsError) as err:
        load_settings(env)
    assert "SHENGSHI_DB_COMMAND_TIMEOUT" in str(err.value) and "SHENGSHI_DB_ACQUIRE_TIMEOUT" in str(err.value)
    ok = load_settings({"SHENGSHI_DATA_DIR": str(tmp_path), "SHENGSHI_DB_COMMAND_TIMEOUT": "2.5"})
    assert ok.db_command_timeout == 2.5 and ok.db_acquire_timeout == 5.0
