"""Recipient checks over a table of addresses people really type, against a loopback DNS server
that answers for the big providers' domains (their MX pointing at loopback)."""

from __future__ import annotations

import asyncio

import pytest

from postbote.recipients import check_addresses
from tests.conftest import MX1

PROVIDERS = ["gmail.com", "googlemail.com", "outlook.com", "outlook.de", "hotmail.com", "hotmail.de", "live.com",
             "yahoo.com", "yahoo.de", "icloud.com", "gmx.de", "gmx.net", "gmx.at", "gmx.ch", "web.de", "t-online.de",
             "freenet.de", "posteo.de", "mailbox.org", "arcor.de", "online.de", "bluewin.ch", "telefonica.net",
             "movistar.es", "mail.de", "email.de", "beispiel.test", "acme.test"]

# address → (ok, reason, normalized, suggestion)
TABLE = [
    # valid, as typed (normalisation: domain lower case, IDN to A-labels)
    ("anna.schmidt@gmail.com", True, None, "anna.schmidt@gmail.com", None),
    ("Anna.Schmidt@GMAIL.COM", True, None, "Anna.Schmidt@gmail.com", None),
    ("anna+bewerbung@googlemail.com", True, None, "anna+bewerbung@googlemail.com", None),
    ("max.mustermann@gmx.de", True, None, "max.mustermann@gmx.de", None),
    ("max@gmx.net", True, None, "max@gmx.net", None),
    ("max@gmx.at", True, None, "max@gmx.at", None),
    ("max@gmx.ch", True, None, "max@gmx.ch", None),
    ("erika@web.de", True, None, "erika@web.de", None),
    ("erika@t-online.de", True, None, "erika@t-online.de", None),
    ("jan@outlook.de", True, None, "jan@outlook.de", None),
    ("jan@hotmail.com", True, None, "jan@hotmail.com", None),
    ("jan@live.com", True, None, "jan@live.com", None),
    ("lea@yahoo.de", True, None, "lea@yahoo.de", None),
    ("lea@icloud.com", True, None, "lea@icloud.com", None),
    ("tom@freenet.de", True, None, "tom@freenet.de", None),
    ("tom@posteo.de", True, None, "tom@posteo.de", None),
    ("tom@mailbox.org", True, None, "tom@mailbox.org", None),
    ("tom@arcor.de", True, None, "tom@arcor.de", None),
    ("tom@online.de", True, None, "tom@online.de", None),
    ("urs@bluewin.ch", True, None, "urs@bluewin.ch", None),
    ("ana@telefonica.net", True, None, "ana@telefonica.net", None),
    ("ana@movistar.es", True, None, "ana@movistar.es", None),
    ("o'brien@gmail.com", True, None, "o'brien@gmail.com", None),
    ("x_y-z@web.de", True, None, "x_y-z@web.de", None),
    ("info@beispiel.test", True, None, "info@beispiel.test", None),
    ("hr@acme.test", True, None, "hr@acme.test", None),
    ("info@münchen.test", True, None, "info@xn--mnchen-3ya.test", None),
    ("büro@implicit.test", False, "smtputf8_not_supported", "büro@implicit.test", None),
    ("post@implicit.test", True, None, "post@implicit.test", None),
    # lookalikes of providers that are real: never "corrected"
    ("anna@mail.de", True, None, "anna@mail.de", None),
    ("anna@email.de", True, None, "anna@email.de", None),
    # typos of the providers: refused where the domain does not exist, with the likely address
    ("anna.schmidt@gmial.com", False, "domain_not_found", "anna.schmidt@gmial.com", "anna.schmidt@gmail.com"),
    ("anna@gmal.com", False, "domain_not_found", "anna@gmal.com", "anna@gmail.com"),
    ("anna@gmail.con", False, "domain_not_found", "anna@gmail.con", "anna@gmail.com"),
    ("anna@gmail.de.de", False, "domain_not_found", "anna@gmail.de.de", "anna@gmail.de"),
    ("anna@gmx.de.de", False, "domain_not_found", "anna@gmx.de.de", "anna@gmx.de"),
    ("anna@gmx.dee", False, "domain_not_found", "anna@gmx.dee", "anna@gmx.de"),
    ("anna@gxm.de", False, "domain_not_found", "anna@gxm.de", "anna@gmx.de"),
    ("anna@wbe.de", False, "domain_not_found", "anna@wbe.de", "anna@web.de"),
    ("anna@web.dee", False, "domain_not_found", "anna@web.dee", "anna@web.de"),
    ("anna@t-onlne.de", False, "domain_not_found", "anna@t-onlne.de", "anna@t-online.de"),
    ("anna@tonline.de", False, "domain_not_found", "anna@tonline.de", "anna@t-online.de"),
    ("anna@hotmial.com", False, "domain_not_found", "anna@hotmial.com", "anna@hotmail.com"),
    ("anna@outlok.de", False, "domain_not_found", "anna@outlok.de", "anna@outlook.de"),
    ("anna@yaho.de", False, "domain_not_found", "anna@yaho.de", "anna@yahoo.de"),
    ("anna@iclod.com", False, "domain_not_found", "anna@iclod.com", "anna@icloud.com"),
    ("anna@freenett.de", False, "domain_not_found", "anna@freenett.de", "anna@freenet.de"),
    ("anna@postoe.de", False, "domain_not_found", "anna@postoe.de", "anna@posteo.de"),
    ("anna@blewin.ch", False, "domain_not_found", "anna@blewin.ch", "anna@bluewin.ch"),
    ("ana@movistar.ess", False, "domain_not_found", "ana@movistar.ess", "ana@movistar.es"),
    ("hr@acme.con", False, "domain_not_found", "hr@acme.con", "hr@acme.com"),
    # domains that exist but take no mail, or have no server
    ("anna@nomail.test", False, "domain_accepts_no_mail", "anna@nomail.test", None),
    ("anna@nothing.test", False, "domain_has_no_mail_server", "anna@nothing.test", None),
    # not addresses at all
    ("anna", False, "syntax_invalid", None, None),
    ("anna@", False, "syntax_invalid", None, None),
    ("@gmail.com", False, "syntax_invalid", None, None),
    ("anna..schmidt@gmail.com", False, "syntax_invalid", None, None),
    ("anna schmidt@gmail.com", False, "syntax_invalid", None, None),
    ("anna@gmail", False, "syntax_invalid", None, None),
    ("anna@localhost", False, "syntax_invalid", None, None),
    ("anna@example.invalid", False, "syntax_invalid", None, None),  # special-use: only .test is allowed
    ("anna@-gmail.com", False, "syntax_invalid", None, "anna@gmail.com"),
    (".anna@gmail.com", False, "syntax_invalid", None, None),
    ("anna@gmail..com", False, "syntax_invalid", None, "anna@gmail.com"),
]


@pytest.fixture
def checker(make_app, zone):
    for domain in PROVIDERS:
        zone.mail_domain(domain, (10, f"mx.{domain}", MX1))
    zone.mail_domain("xn--mnchen-3ya.test", (10, "mx.xn--mnchen-3ya.test", MX1))
    zone.add("implicit.test", "A", MX1)  # no MX: its address is the implicit MX (RFC 5321 §5.1)
    zone.add("nomail.test", "MX", "0 .")
    zone.add("nothing.test", "TXT", '"v=spf1 -all"')  # exists, but neither MX nor address
    app = make_app()
    return lambda addresses: asyncio.run(check_addresses(addresses, app.settings, app.resolver))


def test_the_table(checker):
    assert len(TABLE) >= 60
    results = checker([row[0] for row in TABLE])
    for (address, ok, reason, normalized, suggestion), result in zip(TABLE, results):
        assert result.address == address
        assert (result.ok, result.reason, result.normalized, result.suggestion) == (ok, reason, normalized, suggestion), address
        if not ok:
            assert result.message and result.hint


def test_a_dns_failure_is_no_reason_to_refuse(make_app):
    app = make_app(DNS_NAMESERVERS=["127.0.0.1:9"], DNS_TIMEOUT=0.5)  # nothing answers there
    [result] = asyncio.run(check_addresses(["anna@gmail.com"], app.settings, app.resolver))
    assert result.ok and not result.dns_checked


def test_suppression_at_entry_and_after_a_hard_bounce(make_app, zone, smtp_port):
    from fastapi.testclient import TestClient

    from postbote.api import create_api
    from postbote.tenants import add_tenant, create_key
    from postbote.testing import Receiver, Script
    from tests.conftest import run_worker

    class UnknownUser(Script):
        def rcpt(self, peer_ip, mail_from, recipient):
            if recipient.startswith("gone@"):
                return f"550 5.1.1 <{recipient}>: Recipient address rejected: User unknown in virtual mailbox table"
            return "250 OK"

    zone.mail_domain("kunde.test", (10, "mx.kunde.test", MX1))
    app = make_app()
    client = TestClient(create_api(app))
    acme = {"Authorization": f"Bearer {create_key(app.engine, add_tenant(app.engine, 'acme'))}"}
    globex = {"Authorization": f"Bearer {create_key(app.engine, add_tenant(app.engine, 'globex'))}"}
    message = {"from": "hr@acme.test", "to": ["gone@kunde.test", "anna@kunde.test"], "subject": "Hallo", "text": "x"}

    first = client.post("/v1/messages", headers=acme, json=message).json()
    assert first["refused"] == []
    with Receiver(MX1, smtp_port, UnknownUser()):
        run_worker(app)
    [entry] = client.get("/v1/suppressions", headers=acme).json()["suppressions"]
    assert (entry["address"], entry["reason"], entry["source_message_id"]) == ("gone@kunde.test", "hard_bounce", first["id"])
    assert entry["expires_at"] is None and "5.1.1" in entry["detail"]

    second = client.post("/v1/messages", headers=acme, json=message).json()
    assert [r["address"] for r in second["recipients"]] == ["anna@kunde.test"]
    [refused] = second["refused"]
    assert refused["reason"] == "suppressed" and "(hard_bounce)" in refused["message"]
    only = client.post("/v1/messages", headers=acme, json={**message, "to": ["gone@kunde.test"]})
    assert only.status_code == 422 and only.json()["error"]["details"][0]["reason"] == "suppressed"
    # Another tenant's list is its own.
    assert client.post("/v1/messages", headers=globex, json=message).json()["refused"] == []
    assert client.get("/v1/suppressions", headers=globex).json()["suppressions"] == []

    assert client.delete("/v1/suppressions/gone@kunde.test", headers=acme).status_code == 422  # a reason is required
    removed = client.delete("/v1/suppressions/gone@kunde.test?reason=confirmed%20by%20phone", headers=acme)
    assert removed.status_code == 200
    assert client.post("/v1/messages", headers=acme, json=message).json()["refused"] == []
    assert client.post("/v1/suppressions", headers=acme, json={"address": "Lea@Kunde.test", "reason": "unsubscribed"}).status_code == 201
    assert client.get("/v1/suppressions?search=lea", headers=acme).json()["suppressions"][0]["reason"] == "unsubscribed"
    csv = client.get("/v1/suppressions/export", headers=acme).text
    assert csv.splitlines()[0].startswith("address,reason") and "lea@kunde.test,unsubscribed" in csv
    checked = client.post("/v1/addresses/check", headers=acme, json={"addresses": ["lea@kunde.test", "anna@kunde.tset"]}).json()
    assert [(c["ok"], c["reason"]) for c in checked] == [(False, "suppressed"), (False, "domain_not_found")]
