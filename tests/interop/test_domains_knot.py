"""The CNAME scheme against a real authoritative server: the platform zone is published into Knot
with RFC 2136 (TSIG), the tenant's IT team adds its CNAMEs there, and Postbote verifies, signs,
notices a broken record and falls back — on SQLite and PostgreSQL."""

from __future__ import annotations

import email

import pytest
from sqlalchemy import select

from postbote.domains.returnpath import return_path
from postbote.compose import Draft
from postbote.db import domain_events
from postbote.domain_service import add, publish_zone, verify
from postbote.queue import message_status
from postbote.sending import send
from postbote.tenants import add_tenant
from postbote.testing import Receiver
from postbote.testing.knot import KnotServer, knotd_path
from tests.conftest import IN_CI, MX1, run_worker
from tests.support.mail import dkim_verifies, knot_update, spf_passes


@pytest.fixture
def knot():
    if knotd_path() is None:
        reason = "knotd is missing: Debian package knot (scripts/install-system-deps)"
        pytest.fail(reason) if IN_CI else pytest.skip(reason)
    with KnotServer(["platform.test", "acme.test"]) as server:
        yield server


def test_publish_verify_sign_break_and_fall_back(make_app, knot, smtp_port):
    app = make_app(DNS_NAMESERVERS=[knot.address], DNS_UPDATE_SERVER=knot.address,
                   DNS_UPDATE_TSIG_NAME=knot.TSIG_NAME, DNS_UPDATE_TSIG_SECRET=knot.tsig_secret)
    tenant = add_tenant(app.engine, "acme", "ACME GmbH")
    records = add(app, tenant.id, "acme.test")["records"]
    assert [(r["name"], r["type"]) for r in records] == [
        ("pb1._domainkey.acme.test", "CNAME"), ("pb2._domainkey.acme.test", "CNAME"),
        ("pbmail.acme.test", "CNAME"), ("_dmarc.acme.test", "TXT")]
    assert verify(app, "acme.test")["state"] == "pending"

    assert publish_zone(app) >= 4  # two tenant keys, two platform keys, return-path MX and SPF
    knot_update(knot, "acme.test", add=[(r["name"], "CNAME", r["value"] + ".") for r in records if r["type"] == "CNAME"]
                + [("acme.test", "MX", "10 mx.acme.test."), ("mx.acme.test", "A", MX1)])
    verified = verify(app, "acme.test")
    assert verified["state"] == "verified", verified["records"]

    with Receiver(MX1, smtp_port) as mx:
        first = send(app.engine, app.settings, tenant, Draft("ACME HR <hr@acme.test>", ["anna@acme.test"], "Willkommen", "Hallo"))
        assert first.sender_note is None
        run_worker(app)
        received = mx.messages[-1]
        assert email.message_from_bytes(received.data)["From"] == "ACME HR <hr@acme.test>"
        assert b"d=acme.test; s=pb1;" in received.data
        assert dkim_verifies(received.data, knot.host, knot.port)
        assert received.mail_from == return_path(app.settings.SECRET_KEY, first.id, "pbmail.acme.test",
                                                 valid_days=app.settings.return_path_days)
        assert spf_passes(app, received.peer_ip, received.mail_from) == "pass"

        knot_update(knot, "acme.test", delete=[("pb1._domainkey.acme.test", "CNAME")])
        broken = verify(app, "acme.test")
        assert broken["state"] == "broken"
        assert {r["name"]: r["status"] for r in broken["records"]}["pb1._domainkey.acme.test"] == "missing"

        second = send(app.engine, app.settings, tenant, Draft("ACME HR <hr@acme.test>", ["anna@acme.test"], "Erinnerung", "Hallo"))
        run_worker(app)
        fallback = mx.messages[-1]
    assert "acme.test is not verified (broken)" in second.sender_note
    parsed = email.message_from_bytes(fallback.data)
    assert parsed["From"] == "ACME GmbH via Postbote <notification@platform.test>"
    assert parsed["Reply-To"] == "ACME HR <hr@acme.test>"
    assert b"d=platform.test; s=pb1;" in fallback.data and dkim_verifies(fallback.data, knot.host, knot.port)
    assert spf_passes(app, fallback.peer_ip, fallback.mail_from) == "pass"
    status = message_status(app.engine, second.id)
    assert status.sender_note == second.sender_note and status.requested_from == "ACME HR <hr@acme.test>"

    with app.engine.connect() as conn:
        changes = conn.execute(select(domain_events.c.old_state, domain_events.c.new_state)
                               .where(domain_events.c.kind == "state_changed").order_by(domain_events.c.id)).all()
    assert [tuple(c) for c in changes] == [("pending", "verified"), ("verified", "broken")]

    # Removing the domain withdraws its keys from the platform zone on the real server.
    import dns.message
    import dns.query

    from postbote.domain_service import remove

    def txt_at(name: str) -> list:
        answer = dns.query.tcp(dns.message.make_query(name, "TXT"), knot.host, port=knot.port, timeout=5)
        return [rrset for rrset in answer.answer if rrset.rdtype == 16]

    keys_at = [r["value"] for r in records if r["name"].endswith("._domainkey.acme.test")]
    assert all(txt_at(name) for name in keys_at)
    removed = remove(app, "acme.test", tenant.id)
    assert removed["withdrawn_by_update"] and sorted(removed["withdrawn"]) == sorted(keys_at)
    assert not any(txt_at(name) for name in keys_at)
    assert txt_at(f"pb1._domainkey.{app.settings.PLATFORM_DOMAIN}")  # the platform's own keys stay
