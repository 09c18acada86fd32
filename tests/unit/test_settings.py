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


def test_a_toml_syntax_error_is_config_invalid_with_file_and_line(monkeypatch, tmp_path):
    config = tmp_path / "postbote.toml"
    config.write_text('SMTP_PORT = 2525\nPLATFORM_DOMAIN = "hr.example.test\nSOURCE_IPS = ["192.0.2.9"]\n')
    monkeypatch.setenv("POSTBOTE_CONFIG", str(config))
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert caught.value.code == "config_invalid"
    assert f"{config}, line 2:" in caught.value.message and "TOML" in caught.value.message
    assert caught.value.hint


@pytest.mark.parametrize("written, meant, line", [("SMTP_PROT", "SMTP_PORT", 3), ("source_ip", "SOURCE_IPS", 3),
                                                  ("MAX_LIFETIM", "MAX_LIFETIME", 3)])
def test_a_misspelt_key_names_the_setting_probably_meant(monkeypatch, tmp_path, written, meant, line):
    config = tmp_path / "postbote.toml"
    config.write_text(f'# settings\nLANGUAGE = "de"\n{written} = "25"\n')
    monkeypatch.setenv("POSTBOTE_CONFIG", str(config))
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert caught.value.message == f"{config}, line {line}: {written} is not a setting. Did you mean {meant}?"


def test_a_key_like_no_setting_is_refused_without_a_guess(monkeypatch, tmp_path):
    config = tmp_path / "postbote.toml"
    config.write_text('COLOUR_OF_THE_SKY = "blue"\n')
    monkeypatch.setenv("POSTBOTE_CONFIG", str(config))
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert caught.value.message.endswith("line 1: COLOUR_OF_THE_SKY is not a setting.")


def test_a_bad_value_in_the_file_names_its_line(monkeypatch, tmp_path):
    config = tmp_path / "postbote.toml"
    config.write_text('LANGUAGE = "de"\n\nTLS_MODE = "maybe"\n')
    monkeypatch.setenv("POSTBOTE_CONFIG", str(config))
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "TLS_MODE" in caught.value.message and f"({config}, line 3)" in caught.value.message


def test_a_missing_file_named_by_postbote_config_is_an_error(monkeypatch, tmp_path):
    monkeypatch.setenv("POSTBOTE_CONFIG", str(tmp_path / "postbtoe.toml"))
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert caught.value.code == "config_invalid" and "postbtoe.toml" in caught.value.message
    assert "POSTBOTE_CONFIG" in caught.value.message and "postbote init" in caught.value.hint
    assert load_settings(config_may_be_missing=True).SMTP_PORT == 25  # what init, which writes it, asks


def test_the_default_file_may_be_absent(monkeypatch, tmp_path):
    monkeypatch.delenv("POSTBOTE_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    assert load_settings().SMTP_PORT == 25
