"""Security guarantees (the attack on a running Postbote): each test names the hole it closes and
fails when the fix is taken out. Through the API, the CLI's services and real receivers on
loopback, on SQLite and PostgreSQL."""

from __future__ import annotations

import email
from email import policy

import pytest
from fastapi.testclient import TestClient

from postbote.api import create_api
from postbote.queue import message_status
from postbote.tenants import add_tenant, create_key
from postbote.testing import Receiver
from tests.conftest import MX1, run_worker


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
