"""Configuration (DESIGN.md "Configuration"): environment ``MAILKITE_*`` over ``mailkite.toml`` over
defaults, typed, read once, failing with a one-line reason that names the key."""

from __future__ import annotations

import os

import pytest

from mailkite.config import ConfigError, HostPort, load_settings


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for key in list(os.environ):
        if key.startswith("MAILKITE_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def test_defaults(clean_env, tmp_path):
    s = load_settings()
    assert s.mx_listen == "0.0.0.0:25" and s.imap_listen == "0.0.0.0:993" and s.web_listen == "127.0.0.1:8000"
    assert s.max_message_bytes == 10 * 1024 * 1024 and s.max_recipients == 50 and s.webhook_timeout_s == 15
    assert s.retry_schedule == (0, 5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
    assert sum(s.retry_schedule) / 3600 == pytest.approx(75.6, abs=0.1)  # "about 75 hours"
    assert s.attachment_url_ttl_s == 3600
    assert s.resolved_database_url == f"sqlite:///{(tmp_path / 'var' / 'mailkite.db').resolve()}"
    assert s.resolved_blob_url == (tmp_path / "var" / "blobs").resolve().as_uri()
    assert s.redis_url is None and s.spam_url is None and s.nameservers == []


def test_toml_file_then_environment(clean_env, tmp_path):
    (tmp_path / "mailkite.toml").write_text(
        'MAX_RECIPIENTS = 10\nhostname = "mx.example.com"\ndns_nameservers = "127.0.0.1:5353,[::1]:53"\n'
        'database_url = "postgresql://u@db.internal/mailkite"\n')
    s = load_settings()
    assert s.max_recipients == 10 and s.hostname == "mx.example.com"
    assert s.nameservers == [HostPort("127.0.0.1", 5353), HostPort("::1", 53)]
    assert s.resolved_database_url == "postgresql+psycopg://u@db.internal/mailkite"
    clean_env.setenv("MAILKITE_MAX_RECIPIENTS", "20")
    assert load_settings().max_recipients == 20  # the environment wins


def test_config_file_named_by_environment(clean_env, tmp_path):
    other = tmp_path / "etc" / "mk.toml"
    other.parent.mkdir()
    other.write_text('web_listen = "127.0.0.1:9090"\n')
    clean_env.setenv("MAILKITE_CONFIG", str(other))
    s = load_settings()
    assert s.web_listen == "127.0.0.1:9090" and s.web_base_url == "http://127.0.0.1:9090"


@pytest.mark.parametrize("key,value,fragment", [
    ("MAILKITE_MX_LISTEN", "25", "MAILKITE_MX_LISTEN"),
    ("MAILKITE_MAX_RECIPIENTS", "0", "MAILKITE_MAX_RECIPIENTS"),
    ("MAILKITE_WEBHOOK_RETRY_SCHEDULE_S", "5,-1", "MAILKITE_WEBHOOK_RETRY_SCHEDULE_S"),
    ("MAILKITE_WEBHOOK_TIMEOUT_S", "soon", "MAILKITE_WEBHOOK_TIMEOUT_S"),
])
def test_bad_values_name_the_key(clean_env, key, value, fragment):
    clean_env.setenv(key, value)
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert str(err.value).startswith(fragment) and "\n" not in str(err.value)


def test_secret_key_is_generated_once_and_never_printed(clean_env, tmp_path):
    s = load_settings()
    key = s.secret_key_bytes()
    assert len(key) >= 32 and load_settings().secret_key_bytes() == key
    assert ((tmp_path / "var" / "secret.key").stat().st_mode & 0o777) == 0o600
    clean_env.setenv("MAILKITE_SECRET_KEY", "explicit-secret-value-0123456789abcdef")
    s = load_settings()
    assert s.secret_key_bytes() == b"explicit-secret-value-0123456789abcdef"
    assert "explicit-secret" not in repr(s) and "explicit-secret" not in str(s.model_dump())
