import pytest

from postbote.delivery.shaping import load_rules, parse_rules
from postbote.errors import ConfigError


def test_workspace_domains_roll_up_to_one_provider_site():
    rules = load_rules("")
    a = rules.site_of(["aspmx.l.google.com.", "alt1.aspmx.l.google.com"])
    b = rules.site_of(["ALT2.ASPMX.L.GOOGLE.COM"])
    assert a.name == b.name == "google"
    assert a.limits.tls_required and a.source.startswith("Google")
    assert rules.site_of(["mx00.gmx.net"]).name == rules.site_of(["mx-ha01.web.de"]).name == "united-internet"
    assert rules.site_of(["acme-com.mail.protection.outlook.com"]).name == "microsoft"


def test_unknown_mx_set_is_its_own_site_with_default_limits():
    rules = load_rules("")
    site = rules.site_of(["mx2.example.net", "mx1.example.net"])
    assert site.name == "mx:mx1.example.net,mx2.example.net"
    assert site.limits == rules.default and site.source == "default"


def test_a_supplied_rules_file_matches_test_mx_names(tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text('[default]\nconnections = 2\nmessages_per_connection = 5\nmessages_per_minute = 60\n'
                    'tls_required = false\n[[provider]]\nname = "gmail-test"\nmx = ["*.google-test.localhost"]\n'
                    'messages_per_minute = 30\nsource = "test"\n')
    rules = load_rules(str(path))
    site = rules.site_of(["mx1.google-test.localhost"])
    assert site.name == "gmail-test" and site.limits.messages_per_minute == 30
    assert site.limits.connections == 2  # unset keys come from [default]


@pytest.mark.parametrize("text", ["not toml [", "[default]\nconnections = 0\n",
                                  '[default]\nconnections=1\nmessages_per_connection=1\nmessages_per_minute=1\n'
                                  'tls_required=false\n[[provider]]\nname="x"\n'])
def test_bad_rules_are_a_config_error(text):
    with pytest.raises(ConfigError):
        parse_rules(text)
