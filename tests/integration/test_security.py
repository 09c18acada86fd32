"""Security guarantees (the attack on a running Postbote): each test names the hole it closes and
fails when the fix is taken out. Through the API, the CLI's services and real receivers on
loopback, on SQLite and PostgreSQL."""

from __future__ import annotations

import email
import smtplib
import time
from email import policy

import pytest
from fastapi.testclient import TestClient

from postbote.api import create_api
from postbote.domains.returnpath import return_path
from postbote.inbound.apply import refused_reports
from postbote.recipients.suppression import find
from postbote.queue import message_status
from postbote.tenants import add_tenant, create_key
from postbote.testing import Receiver
from tests.conftest import MX1, MX3, run_worker
from tests.support.reports import arf, dsn


@pytest.fixture
def two_tenants(make_app, zone):
    for domain in ("kunde.test", "acme.test", "globex.test", "xn--bcher-kva.test"):
        zone.mail_domain(domain, (10, f"mx.{domain}", MX1))
    app = make_app()
    acme, globex = add_tenant(app.engine, "acme", "ACME GmbH"), add_tenant(app.engine, "globex", "Globex AG")
    client = TestClient(create_api(app))
    client.headers_of = {t.name: {"Authorization": f"Bearer {create_key(app.engine, t)}"} for t in (acme, globex)}
    client.app_ref = app
    return app, acme, globex, client


def _message(to: str, sender: str = "hr@acme.test") -> dict:
    return {"from": sender, "to": [to], "subject": "Einladung", "text": "Hallo"}


# Item 5: impersonation through the default sender.

@pytest.mark.parametrize("asked", ['"ACME GmbH via Postbote" <notification@platform.test>',
                                   "Sparkasse Sicherheit <notification@platform.test>"])
def test_the_default_senders_display_name_is_the_tenants_registered_name(two_tenants, smtp_port, asked):
    app, _, globex, client = two_tenants
    sent = client.post("/v1/messages", headers=client.headers_of["globex"], json=_message("anna@kunde.test", asked))
    assert sent.status_code == 202
    assert sent.json()["sender"]["used"] == "Globex AG via Postbote <notification@platform.test>"
    assert "registered name" in sent.json()["sender"]["note"]
    with Receiver(MX1, smtp_port) as mx:
        run_worker(app)
    mail = email.message_from_bytes(mx.messages[0].data, policy=policy.default)
    assert [a.display_name for a in mail["From"].addresses] == ["Globex AG via Postbote"]


# Item 7: suppression entries that do not suppress.

@pytest.mark.parametrize("stored, sent", [
    ("Lea <Lea@Kunde.test>", "lea@kunde.test"),
    ("  lea@kunde.test  ", "Lea Berg <LEA@kunde.test>"),
    ("jörg@bücher.test".replace("jörg", "joerg"), "joerg@xn--bcher-kva.test"),
    ("joerg@xn--bcher-kva.test", "Jörg <JOERG@BÜCHER.test>"),
])
def test_suppression_entries_are_normalised_like_sending(two_tenants, stored, sent):
    app, _, _, client = two_tenants
    a = client.headers_of["acme"]
    added = client.post("/v1/suppressions", headers=a, json={"address": stored, "reason": "manual"})
    assert added.status_code == 201
    refused = client.post("/v1/messages", headers=a, json=_message(sent))
    assert refused.status_code == 422 and refused.json()["error"]["details"][0]["reason"] == "suppressed"
    [entry] = client.get("/v1/suppressions", headers=a).json()
    assert entry["address"] == entry["address"].strip().lower() and "<" not in entry["address"]


@pytest.mark.parametrize("junk", ["not an address", "x" * 5_000_000, "lea@", "Lea <lea@kunde.test> <b@c.test>x"])
def test_what_is_not_an_address_is_refused_from_the_list(two_tenants, junk):
    app, _, _, client = two_tenants
    answer = client.post("/v1/suppressions", headers=client.headers_of["acme"], json={"address": junk, "reason": "manual"})
    assert answer.status_code == 422
    assert answer.json()["error"]["code"] in ("address_invalid", "request_invalid") and answer.json()["error"]["hint"]
    assert client.get("/v1/suppressions", headers=client.headers_of["acme"]).json() == []


def test_an_entry_with_a_slash_can_be_removed_through_the_api(two_tenants):
    app, _, _, client = two_tenants
    a = client.headers_of["acme"]
    assert client.post("/v1/suppressions", headers=a, json={"address": "a/b@kunde.test", "reason": "manual"}).status_code == 201
    removed = client.delete("/v1/suppressions/a%2Fb@kunde.test", params={"reason": "confirmed"}, headers=a)
    assert removed.status_code == 200 and removed.json() == {"address": "a/b@kunde.test", "removed": True}
    assert client.get("/v1/suppressions", headers=a).json() == []
    assert client.post("/v1/messages", headers=a, json=_message("a/b@kunde.test")).status_code == 202


# Item 2: forged bounces and complaints.

@pytest.fixture
def delivered(make_app, zone, smtp_port):
    """A message delivered to anna and lea, and the bounce receiver on MX3."""
    from postbote.compose import Draft
    from postbote.inbound import start_inbound
    from postbote.sending import send

    zone.mail_domain("kunde.test", (10, "mx.kunde.test", MX1))
    app = make_app()
    tenant = add_tenant(app.engine, "acme", "ACME GmbH")
    accepted = send(app.engine, app.settings, tenant, Draft("hr@acme.test", ["anna@kunde.test", "lea@kunde.test"], "Hallo", "x"))
    with Receiver(MX1, smtp_port) as mx:
        run_worker(app)
    controller = start_inbound(app.settings, app.engine, f"{MX3}:{smtp_port}")
    yield app, tenant, accepted, mx.messages[0].mail_from, (MX3, smtp_port)
    controller.stop()


def _rcpt_reply(where, rcpt: str) -> tuple[int, bytes]:
    with smtplib.SMTP(*where, timeout=10) as client:
        client.ehlo("mx.kunde.test")
        client.mail("")
        return client.rcpt(rcpt)


def _send_report(where, rcpt: str, raw: bytes) -> None:
    with smtplib.SMTP(*where, timeout=10) as client:
        client.ehlo("mx.kunde.test")
        client.sendmail("", [rcpt], raw)


def test_the_return_path_carries_a_mac_and_forged_ones_all_get_the_same_answer(delivered):
    app, _, accepted, real, where = delivered
    local, _, host = real.partition("@")
    assert local.startswith(f"bounces+{accepted.id}.") and len(local) <= 64  # RFC 5321 §4.5.3.1.1
    assert _rcpt_reply(where, real)[0] == 250
    expired = return_path(app.settings.SECRET_KEY, accepted.id, host, valid_days=30, now=time.time() - 31 * 86400)
    other_key = return_path("another-secret-key-of-someone-else", accepted.id, host, valid_days=30)
    day = local.split(".")[1]
    forged = [
        f"bounces+{accepted.id}@{host}",  # the bare id every recipient sees
        f"bounces+{accepted.id}.{day}.{'0' * 20}@{host}",
        f"bounces+{accepted.id}.{int(day) + 400}.{local.split('.')[2]}@{host}",  # the day moved, the MAC kept
        f"bounces+{'0' * 12}{'ab' * 8}.{day}.{local.split('.')[2]}@{host}",  # an unknown id
        expired, other_key,
    ]
    answers = {_rcpt_reply(where, address) for address in forged}
    assert len(answers) == 1 and next(iter(answers))[0] == 550
    assert accepted.id.encode() not in next(iter(answers))[1]
    # Nothing a forged report says reaches the message.
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        _send_report(where, forged[0], arf("anna@kunde.test"))
    assert find(app.engine, 1, "anna@kunde.test") is None


def test_a_report_changes_only_recipients_of_its_message_and_refusals_stay_visible(delivered):
    app, tenant, accepted, real, where = delivered
    _send_report(where, real, arf("ceo@kunde.test"))  # a complaint naming someone the message never went to
    _send_report(where, real, dsn("bob@kunde.test"))
    assert find(app.engine, tenant.id, "ceo@kunde.test") is None and find(app.engine, tenant.id, "bob@kunde.test") is None
    assert {r.state for r in message_status(app.engine, accepted.id).recipients} == {"delivered"}
    refused = refused_reports(app.engine, since_seconds=3600)
    assert {(r["recipient"], r["kind"], r["tenant"], r["message_id"]) for r in refused} == {
        ("ceo@kunde.test", "complaint", "acme", accepted.id), ("bob@kunde.test", "dsn", "acme", accepted.id)}
    # A real report about a real recipient still works.
    _send_report(where, real, dsn("lea@kunde.test"))
    assert {r.address: r.state for r in message_status(app.engine, accepted.id).recipients}["lea@kunde.test"] == "bounced"
