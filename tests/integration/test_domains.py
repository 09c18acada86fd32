"""Sender domains on a loopback DNS server: tenant isolation, the sender choice, held mail, the
health check's verdicts, and key rotation — on SQLite and PostgreSQL."""

from __future__ import annotations

import email

import pytest
from fastapi.testclient import TestClient

from postbote.domains.returnpath import return_path
from postbote.api import create_api
from postbote.compose import Draft
from postbote.db import dkim_keys
from postbote.domain_service import add, check, domain_json, rotate, verify
from postbote.domains import get_domain
from postbote.sending import send
from postbote.tenants import add_tenant, create_key, set_sender_policy
from postbote.testing import Receiver
from tests.conftest import MX1, run_worker
from tests.support.mail import dkim_verifies, it_team_publishes, publish_to_zone

PARTNER = {"name": "SignIt", "ips": ["198.51.100.5"], "spf_include": "_spf.signit.test", "dkim_selector": "signit"}


@pytest.fixture
def tenants(make_app, zone):
    app = make_app(PARTNERS=[PARTNER])
    acme, globex = add_tenant(app.engine, "acme", "ACME GmbH"), add_tenant(app.engine, "globex", "Globex AG")
    zone.mail_domain("acme.test", (10, "mx.acme.test", MX1))
    zone.mail_domain("kunde.test", (10, "mx.kunde.test", MX1))
    return app, acme, globex


def verified_domain(app, zone, tenant, name="acme.test", *, skip=()):
    records = add(app, tenant.id, name)["records"]
    publish_to_zone(zone, app)
    it_team_publishes(zone, records, skip=skip)
    return verify(app, name, tenant.id)


def test_tenant_b_cannot_add_verify_or_send_as_tenant_a(tenants, zone, smtp_port):
    app, acme, globex = tenants
    assert verified_domain(app, zone, acme)["state"] == "verified"
    client = TestClient(create_api(app))
    b = {"Authorization": f"Bearer {create_key(app.engine, globex)}"}

    taken = client.post("/v1/domains", headers=b, json={"domain": "ACME.test"})
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "domain_taken"
    assert "acme" not in taken.json()["error"]["message"].replace("acme.test", "")  # the owner is not named
    for method, path in (("post", "/v1/domains/acme.test/verify"), ("get", "/v1/domains/acme.test"),
                         ("get", "/v1/domains/acme.test/check")):
        answer = getattr(client, method)(path, headers=b)
        assert answer.status_code == 404 and answer.json()["error"]["code"] == "domain_not_found"
    assert client.get("/v1/domains", headers=b).json()["domains"] == []

    sent = client.post("/v1/messages", headers=b, json={"from": "ceo@acme.test", "to": ["anna@kunde.test"],
                                                         "subject": "Rechnung", "text": "Bitte zahlen"}).json()
    assert sent["sender"]["used"] == "Globex AG via Postbote <notification@platform.test>"
    assert sent["sender"]["note"].startswith("acme.test is not a verified sender domain of this tenant")
    with Receiver(MX1, smtp_port) as mx:
        run_worker(app)
    raw = mx.messages[0].data
    assert b"d=acme.test" not in raw and b"d=platform.test" in raw
    assert email.message_from_bytes(raw)["From"] == "Globex AG via Postbote <notification@platform.test>"
    assert mx.messages[0].mail_from.endswith("@rp.platform.test")


def test_verified_domain_signs_as_the_tenant(tenants, zone, smtp_port, dns_server):
    app, acme, _ = tenants
    verified_domain(app, zone, acme)
    accepted = send(app.engine, app.settings, acme, Draft("Personal <hr@acme.test>", ["anna@kunde.test"], "Hallo", "Text"))
    assert accepted.sender_note is None and accepted.sender == "Personal <hr@acme.test>"
    with Receiver(MX1, smtp_port) as mx:
        run_worker(app)
    received = mx.messages[0]
    assert received.mail_from == return_path(app.settings.SECRET_KEY, accepted.id, "pbmail.acme.test",
                                             valid_days=app.settings.return_path_days)
    host, port = dns_server.address.split(":")
    assert dkim_verifies(received.data, host, int(port))
    tampered = received.data.replace(b"Subject: Hallo", b"Subject: Hallo!")
    assert not dkim_verifies(tampered, host, int(port))


def test_hold_policy_keeps_the_message(tenants, zone):
    app, acme, _ = tenants
    add(app, acme.id, "acme.test")  # added, never published: pending
    set_sender_policy(app.engine, acme, "hold")
    held = send(app.engine, app.settings, get_tenant_fresh(app, "acme"), Draft("hr@acme.test", ["anna@kunde.test"], "s", "t"))
    assert [s.value for _, s in held.recipients] == ["held"]
    assert "held by the tenant's policy" in held.sender_note and "pending" in held.sender_note
    stats = run_worker(app, timeout=3)
    assert stats.claimed == 0  # held mail is never claimed


def get_tenant_fresh(app, name):
    from postbote.tenants import get_tenant

    return get_tenant(app.engine, name)


def test_private_keys_are_encrypted_at_rest(tenants):
    app, acme, _ = tenants
    add(app, acme.id, "acme.test")
    with app.engine.connect() as conn:
        stored = [row.private_key for row in conn.execute(dkim_keys.select())]
    assert len(stored) == 2
    for sealed in stored:
        assert "PRIVATE" not in sealed and not sealed.startswith("MII")  # neither PEM nor bare DER


@pytest.mark.parametrize("setup, passes, verdict_part, finding, finding_ok", [
    ("everything", True, "will pass DMARC", "dkim", True),
    ("no_spf", True, "will pass DMARC", "spf", False),
    ("spf_without_platform", True, "will pass DMARC", "spf", False),
    ("spf_over_limit", True, "will pass DMARC", "spf", False),
    ("reject_without_cnames", False, "will be rejected: publish pb1._domainkey.acme.test CNAME", "dkim", False),
])
def test_health_check_verdicts(tenants, zone, setup, passes, verdict_part, finding, finding_ok):
    app, acme, _ = tenants
    skip = ("pb1.", "pb2.", "pbmail.") if setup == "reject_without_cnames" else ("pbmail.",) if setup == "spf_without_platform" else ()
    verified_domain(app, zone, acme, skip=skip)
    if setup != "no_spf":
        spf = {"spf_without_platform": "v=spf1 include:_spf.signit.test -all",
               "spf_over_limit": "v=spf1 include:l1.acme.test -all"}.get(setup, "v=spf1 include:_spf.signit.test -all")
        zone.add("acme.test", "TXT", f'"{spf}"')
    zone.add("_spf.signit.test", "TXT", '"v=spf1 ip4:198.51.100.5 -all"')
    for i in range(1, 12):  # a chain of includes, 11 deep
        zone.add(f"l{i}.acme.test", "TXT", f'"v=spf1 include:l{i + 1}.acme.test -all"' if i < 11 else '"v=spf1 -all"')
    policy = "reject" if setup == "reject_without_cnames" else "quarantine"
    zone.add("_dmarc.acme.test", "TXT", f'"v=DMARC1; p={policy}; rua=mailto:dmarc@acme.test"')
    report = check(app, "acme.test")
    assert report["passes_dmarc"] is passes and verdict_part in report["verdict"], report["verdict"]
    assert report[finding]["ok"] is finding_ok, report[finding]
    if setup == "spf_over_limit":
        assert report["spf"]["details"]["lookups"] > 10 and "limit is 10" in report["spf"]["summary"]
    if setup == "spf_without_platform":
        assert "pbmail.acme.test CNAME rp.platform.test" in report["spf"]["fix"]
    assert report["dmarc"]["details"]["policy"] == policy
    [partner] = report["partners"]
    if setup in ("everything", "spf_without_platform", "reject_without_cnames"):
        assert partner["spf_pass"] is True
    else:
        assert partner["spf_pass"] is False and "include:_spf.signit.test" in partner["fix"]
    assert partner["dkim_published"] is False and "signit._domainkey.acme.test" in partner["fix"]


def test_key_rotation_switches_only_once_the_next_key_resolves(tenants, zone, smtp_port, dns_server):
    app, acme, _ = tenants
    records = verified_domain(app, zone, acme)["records"]
    next_key = next(r["expected"] for r in records if r["name"] == "pb2._domainkey.acme.test")
    zone.remove(next_key, "TXT")  # the next key is not in DNS: rotation must refuse
    from postbote.errors import ConflictError

    with pytest.raises(ConflictError) as refused:
        rotate(app, "acme.test", wait=0.5)
    assert refused.value.code == "rotation_waiting"
    publish_to_zone(zone, app)
    assert rotate(app, "acme.test", wait=2) == {"domain": "acme.test", "active": "pb2", "retired": "pb1"}
    accepted = send(app.engine, app.settings, acme, Draft("hr@acme.test", ["anna@kunde.test"], "Nach der Rotation", "x"))
    with Receiver(MX1, smtp_port) as mx:
        run_worker(app)
    assert b"d=acme.test; s=pb2;" in mx.messages[0].data
    host, port = dns_server.address.split(":")
    assert dkim_verifies(mx.messages[0].data, host, int(port)) and accepted.sender_note is None
    with pytest.raises(ConflictError) as again:
        rotate(app, "acme.test", wait=0.5)
    assert again.value.code == "rotation_too_soon"
    assert domain_json(app, get_domain(app.engine, "acme.test"))["state"] == "verified"


def test_an_authentication_failure_names_the_missing_records(tenants, zone, smtp_port):
    from postbote.explaining import message_story
    from postbote.testing import Script

    class RejectsUnauthenticated(Script):
        def data(self, peer_ip, mail_from, recipients):
            return ("550-5.7.26 This mail has been blocked because the sender is unauthenticated.\r\n"
                    "550 5.7.26 DKIM = did not pass - gsmtp")

    app, acme, _ = tenants
    records = verified_domain(app, zone, acme)["records"]
    signing = next(r["expected"] for r in records if r["name"] == "pb1._domainkey.acme.test")
    accepted = send(app.engine, app.settings, acme, Draft("hr@acme.test", ["anna@kunde.test"], "Hallo", "x"))
    with Receiver(MX1, smtp_port, RejectsUnauthenticated()):
        run_worker(app)
    zone.remove("pb1._domainkey.acme.test", "CNAME")  # what the receiver saw: the key is gone
    assert verify(app, "acme.test")["state"] == "broken"
    _, explanations = message_story(app.engine, app.settings, accepted.id, lang="de")
    explained = explanations["anna@kunde.test"]
    assert explained["category"] == "auth_failure"
    assert f"pb1._domainkey.acme.test CNAME {signing}" in explained["fix"]
    assert "pb2._domainkey" not in explained["fix"]  # only what is missing


def test_the_scheduled_recheck_notices_a_broken_domain(tenants, zone):
    import asyncio

    from postbote.domain_service import recheck_all

    app, acme, globex = tenants
    verified_domain(app, zone, acme)
    add(app, globex.id, "globex.test")
    zone.remove("pbmail.acme.test", "CNAME")
    changes = asyncio.run(recheck_all(app))
    assert sorted(changes) == [("acme.test", "verified", "broken"), ("globex.test", "pending", "pending")]
