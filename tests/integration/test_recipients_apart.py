"""Nobody sees another recipient unless the caller asked for it: one copy per recipient, each with
only its own address in To: and signed on its own; a shared To/Cc only when asked; Bcc never in
any header — checked by parsing what a real receiver got, on SQLite and PostgreSQL."""

from __future__ import annotations

import email
import email.policy
from email.utils import getaddresses

import pytest
from fastapi.testclient import TestClient

from postbote.api import create_api
from postbote.tenants import add_tenant, create_key
from postbote.testing import Receiver
from tests.conftest import MX1, MX2, run_worker
from tests.support.mail import dkim_verifies, publish_to_zone

CANDIDATES = [f"kandidat{i}@bewerber.test" for i in range(1, 5)] + ["lea@anderswo.test", "max@anderswo.test"]


@pytest.fixture
def api(make_app, zone):
    zone.mail_domain("bewerber.test", (10, "mx.bewerber.test", MX1))
    zone.mail_domain("anderswo.test", (10, "mx.anderswo.test", MX2))
    app = make_app()
    key = create_key(app.engine, add_tenant(app.engine, "acme", "ACME GmbH"))
    client = TestClient(create_api(app))
    client.app_ref, client.headers = app, {"Authorization": f"Bearer {key}"}
    return client


def _deliver(api, smtp_port):
    with Receiver(MX1, smtp_port) as one, Receiver(MX2, smtp_port) as two:
        run_worker(api.app_ref)
    return one.messages + two.messages


def _shown(parsed, name):
    return {a.lower() for _, a in getaddresses(parsed.get_all(name, []))}


def test_six_candidates_each_get_a_copy_that_names_only_them(api, zone, smtp_port, dns_server):
    body = {"from": "ACME Recruiting <jobs@acme.test>", "to": CANDIDATES, "subject": "Ihre Bewerbung",
            "text": "Vielen Dank für Ihre Bewerbung."}
    accepted = api.post("/v1/messages", json=body, headers=api.headers)
    assert accepted.status_code == 202 and len(accepted.json()["recipients"]) == 6
    publish_to_zone(zone, api.app_ref)  # the platform's keys exist once it has sent
    received = _deliver(api, smtp_port)
    assert sorted(r for m in received for r in m.recipients) == sorted(CANDIDATES)
    host, port = dns_server.address.split(":")
    for message in received:
        assert len(message.recipients) == 1  # its own SMTP transaction
        own = message.recipients[0]
        parsed = email.message_from_bytes(message.data, policy=email.policy.default)
        assert _shown(parsed, "To") == {own} and not parsed.get_all("Cc") and not parsed.get_all("Bcc")
        others = [c for c in CANDIDATES if c != own]
        assert not any(other.encode() in message.data for other in others), own  # nowhere in the bytes
        assert parsed["Subject"] == "Ihre Bewerbung" and "Vielen Dank" in parsed.get_content()
        assert dkim_verifies(message.data, host, int(port))  # each copy signed on its own
    assert len({email.message_from_bytes(m.data)["Message-ID"] for m in received}) == 1  # one message, six copies
    status = api.get(f"/v1/messages/{accepted.json()['id']}", headers=api.headers).json()
    assert sorted(r["address"] for r in status["recipients"] if r["state"] == "delivered") == sorted(CANDIDATES)


def test_a_shared_copy_shows_to_and_cc_and_never_bcc(api, smtp_port):
    body = {"from": "hr@acme.test", "to": ["kandidat1@bewerber.test"], "cc": ["lea@anderswo.test"],
            "bcc": ["max@anderswo.test", "kandidat2@bewerber.test"], "shared": True, "subject": "Termin", "text": "Am Montag."}
    assert api.post("/v1/messages", json=body, headers=api.headers).status_code == 202
    received = _deliver(api, smtp_port)
    assert sorted(r for m in received for r in m.recipients) == sorted(
        ["kandidat1@bewerber.test", "lea@anderswo.test", "max@anderswo.test", "kandidat2@bewerber.test"])
    for message in received:
        parsed = email.message_from_bytes(message.data, policy=email.policy.default)
        assert _shown(parsed, "To") == {"kandidat1@bewerber.test"} and _shown(parsed, "Cc") == {"lea@anderswo.test"}
        assert b"max@anderswo.test" not in message.data and b"kandidat2@bewerber.test" not in message.data
        assert not parsed.get_all("Bcc")


def test_bcc_only_and_cc_without_shared_get_copies_of_their_own(api, smtp_port):
    body = {"from": "hr@acme.test", "cc": ["lea@anderswo.test"], "bcc": ["max@anderswo.test"], "subject": "Info",
            "text": "Hallo"}
    assert api.post("/v1/messages", json=body, headers=api.headers).status_code == 202
    received = _deliver(api, smtp_port)
    assert len(received) == 2
    for message in received:
        parsed = email.message_from_bytes(message.data, policy=email.policy.default)
        own = message.recipients[0]
        assert _shown(parsed, "To") == {own} and not parsed.get_all("Cc") and not parsed.get_all("Bcc")
    lone = {"from": "hr@acme.test", "bcc": ["max@anderswo.test", "lea@anderswo.test"], "shared": True,
            "subject": "Info", "text": "Hallo"}
    assert api.post("/v1/messages", json=lone, headers=api.headers).status_code == 202
    for message in _deliver(api, smtp_port):
        assert b"max@anderswo.test" not in message.data and b"lea@anderswo.test" not in message.data
        assert email.message_from_bytes(message.data)["To"] == "undisclosed-recipients:;"


def test_recipient_lists_are_size_limited(api):
    body = {"from": "hr@acme.test", "bcc": [f"p{i}@bewerber.test" for i in range(1001)], "subject": "s", "text": "t"}
    response = api.post("/v1/messages", json=body, headers=api.headers)
    assert response.status_code == 422 and response.json()["error"]["code"] == "request_invalid"
    spread = {"from": "hr@acme.test", "to": [f"t{i}@bewerber.test" for i in range(600)],
              "cc": [f"c{i}@bewerber.test" for i in range(600)], "subject": "s", "text": "t"}
    response = api.post("/v1/messages", json=spread, headers=api.headers)
    assert response.status_code == 422 and response.json()["error"]["code"] == "too_many_recipients"
