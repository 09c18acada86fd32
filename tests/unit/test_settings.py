import re
from pathlib import Path

import pytest

from postbote.errors import ConfigError
from postbote.settings import Settings, load_settings, parse_host_port

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_setting_is_documented_in_the_readme_with_a_description():
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", README.read_text(encoding="utf-8"), re.MULTILINE))
    assert documented == set(Settings.model_fields)
    assert all(field.description for field in Settings.model_fields.values())


def test_environment_lists_and_durations(monkeypatch):
    monkeypatch.setenv("POSTBOTE_SOURCE_IPS", "192.0.2.1, 192.0.2.2")
    monkeypatch.setenv("POSTBOTE_DNS_NAMESERVERS", "127.0.0.1:5353,[::1]:53")
    monkeypatch.setenv("POSTBOTE_RETRY_SCHEDULE", "30s,2m")
    monkeypatch.setenv("POSTBOTE_MAX_LIFETIME", "5d")
    settings = load_settings()
    assert settings.SOURCE_IPS == ["192.0.2.1", "192.0.2.2"]
    assert settings.nameservers == [("127.0.0.1", 5353), ("::1", 53)]
    assert settings.retry_steps == (30, 120)
    assert settings.max_lifetime_seconds == 5 * 86400
    assert settings.default_sender == "notification@postbote.localhost"


def test_toml_file_is_read_and_environment_wins(monkeypatch, tmp_path):
    config = tmp_path / "postbote.toml"
    config.write_text('SMTP_PORT = 2525\nPLATFORM_DOMAIN = "hr.example.test"\nSOURCE_IPS = ["192.0.2.9"]\n')
    monkeypatch.setenv("POSTBOTE_CONFIG", str(config))
    monkeypatch.setenv("POSTBOTE_SMTP_PORT", "2626")
    settings = load_settings()
    assert (settings.SMTP_PORT, settings.PLATFORM_DOMAIN, settings.SOURCE_IPS) == (2626, "hr.example.test", ["192.0.2.9"])


@pytest.mark.parametrize("name, value", [("SOURCE_IPS", "not-an-ip"), ("RETRY_SCHEDULE", "5 weeks"),
                                         ("TLS_MODE", "maybe"), ("API_LISTEN", "host:99999"), ("SMTP_PORT", "0")])
def test_bad_values_name_the_setting(monkeypatch, name, value):
    monkeypatch.setenv(f"POSTBOTE_{name}", value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert name in caught.value.message and caught.value.code == "config_invalid"


def test_host_port_forms():
    assert parse_host_port("127.0.0.1", default_port=53) == ("127.0.0.1", 53)
    assert parse_host_port("[2001:db8::1]:5353", default_port=53) == ("2001:db8::1", 5353)
    assert parse_host_port("2001:db8::1", default_port=53) == ("2001:db8::1", 53)
