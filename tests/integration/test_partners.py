"""The partner registry (replacing the PARTNERS/PARTNER_IPS settings, which seed it) and the
verdict per tenant domain — SPF include missing, present, over the lookup limit; DKIM selector
missing; all right — against DNS answers on loopback, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from postbote.api import create_api
from postbote.domain_service import add
from postbote.domains import add_partner, list_partners, remove_partner
from postbote.tenants import add_tenant, create_key
from tests.conftest import MX1
from tests.integration.test_cli import cli_env, postbote

SIGNIT = {"name": "SignIt", "ips": ["198.51.100.5"], "hosts": ["out.signit.test"], "spf_include": "_spf.signit.test",
          "dkim_domain": "signit.test", "dkim_selector": "signit"}


@pytest.fixture
def setup(make_app, zone):
    app = make_app()
    acme = add_tenant(app.engine, "acme", "ACME GmbH")
    zone.mail_domain("acme.test", (10, "mx.acme.test", MX1))
    zone.add("_spf.signit.test", "TXT", '"v=spf1 ip4:198.51.100.5 -all"')
    zone.add("out.signit.test", "A", "198.51.100.5")
    zone.add("signit._domainkey.signit.test", "TXT", '"v=DKIM1; k=rsa; p=MIIB"')
    for i in range(1, 12):  # a chain of includes, 11 deep
        zone.add(f"l{i}.acme.test", "TXT", f'"v=spf1 include:l{i + 1}.acme.test -all"' if i < 11 else '"v=spf1 -all"')
    add(app, acme.id, "acme.test")
    add_partner(app.engine, app.settings, SIGNIT)
    client = TestClient(create_api(app))
    client.headers["Authorization"] = f"Bearer {create_key(app.engine, acme)}"
    return app, client


@pytest.mark.parametrize("spf, cname, spf_status, dkim_status, passes, fix_part", [
    ("v=spf1 mx -all", True, "include_missing", "ok", True, "add include:_spf.signit.test to the SPF record of acme.test"),
    (None, True, "missing", "ok", True, 'publish one SPF record at acme.test: "v=spf1 include:_spf.signit.test ~all"'),
    ("v=spf1 include:_spf.signit.test -all", False, "ok", "missing", True,
     "publish signit._domainkey.acme.test CNAME signit._domainkey.signit.test"),
    ("v=spf1 include:_spf.signit.test include:l1.acme.test -all", False, "over_lookup_limit", "missing", False,
     "over the limit of 10"),
    ("v=spf1 include:_spf.signit.test -all", True, "ok", "ok", True, None),
])
def test_partner_verdict_per_domain(setup, zone, spf, cname, spf_status, dkim_status, passes, fix_part):
    app, client = setup
    if spf:
        zone.add("acme.test", "TXT", f'"{spf}"')
    if cname:
        zone.add("signit._domainkey.acme.test", "CNAME", "signit._domainkey.signit.test.")
    [partner] = client.get("/v1/domains/acme.test/check").json()["partners"]
    assert (partner["name"], partner["spf"], partner["dkim"], partner["passes_dmarc"]) == \
        ("SignIt", spf_status, dkim_status, passes)
    if fix_part is None:
        assert partner["fix"] is None and partner["verdict"] == "SignIt's mail as acme.test will pass DMARC"
    else:
        assert fix_part in partner["fix"] and fix_part in partner["verdict"]


def test_the_old_settings_seed_the_registry_once(make_app):
    app = make_app(PARTNERS=[{"name": "SignIt", "ips": ["198.51.100.5"], "spf_include": "_spf.signit.test",
                              "dkim_selector": "signit"}], PARTNER_IPS=["198.51.100.5", "203.0.113.9"])
    assert [(p.name, p.ips) for p in list_partners(app.engine, app.settings)] == \
        [("Partners (PARTNER_IPS)", ["203.0.113.9"]), ("SignIt", ["198.51.100.5"])]
    remove_partner(app.engine, app.settings, "SignIt")
    assert [p.name for p in list_partners(app.engine, app.settings)] == ["Partners (PARTNER_IPS)"]  # not re-seeded


def test_registry_is_read_by_the_api_and_the_allowlist_kit(setup):
    app, client = setup
    assert [p["name"] for p in client.get("/v1/partners").json()["partners"]] == ["SignIt"]
    kit = client.get("/v1/allowlist?format=json").json()
    [signit] = [s for s in kit["senders"] if s["name"] == "SignIt"]
    assert signit["spf_include"] == "_spf.signit.test" and signit["hosts"][0]["addresses"] == ["198.51.100.5"]
    with pytest.raises(Exception) as caught:
        add_partner(app.engine, app.settings, SIGNIT)
    assert caught.value.code == "partner_exists"
    with pytest.raises(Exception) as caught:
        add_partner(app.engine, app.settings, {**SIGNIT, "name": "Bad", "ips": ["not-an-ip"]})
    assert caught.value.code == "partner_invalid"


def test_partner_cli_and_domain_check(make_app, zone, tmp_path):
    app = make_app()
    env = cli_env(app)
    acme = add_tenant(app.engine, "acme", "ACME GmbH")
    zone.mail_domain("acme.test", (10, "mx.acme.test", MX1))
    add(app, acme.id, "acme.test")
    postbote(env, tmp_path, "partner", "add", "SignIt", "--ip", "198.51.100.5", "--spf-include", "_spf.signit.test",
             "--dkim-selector", "signit", "--dkim-domain", "signit.test")
    assert [p["name"] for p in json.loads(postbote(env, tmp_path, "partner", "list", "--json").stdout)] == ["SignIt"]
    text = postbote(env, tmp_path, "domain", "check", "acme.test").stdout
    assert "SignIt's mail as acme.test will fail DMARC" in text
    refused = postbote(env, tmp_path, "partner", "add", "SignIt", check=False)
    assert refused.returncode == 2 and "error[partner_exists]" in refused.stderr  # bad input: exit 2, as the README says
    postbote(env, tmp_path, "partner", "remove", "SignIt")
    assert json.loads(postbote(env, tmp_path, "partner", "list", "--json").stdout) == []
