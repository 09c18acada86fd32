"""STARTTLS towards receivers, per TLS_MODE, with a real TLS handshake on loopback."""

from __future__ import annotations

import ssl

import pytest
import trustme

from postbote.compose import Draft
from postbote.queue import message_status
from postbote.sending import send
from postbote.tenants import add_tenant
from postbote.testing import Receiver
from tests.conftest import MX1, run_worker


@pytest.fixture(scope="module")
def server_tls() -> ssl.SSLContext:
    # A certificate from a private CA that the sender does not know, as on most MX hosts.
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("mx.elsewhere.test").configure_cert(context)
    return context


def deliver_one(app, smtp_port, tls_context):
    tenant = add_tenant(app.engine, "acme")
    accepted = send(app.engine, app.settings, tenant, Draft("hr@acme.test", ["anna@beispiel.test"], "s", "t"))
    with Receiver(MX1, smtp_port, tls_context=tls_context) as mx:
        run_worker(app, until_done=False, timeout=1.5)
    return message_status(app.engine, accepted.id).recipients[0], mx


@pytest.mark.parametrize("mode, offered, state, tls", [
    ("opportunistic", True, "delivered", True),
    ("opportunistic", False, "delivered", False),
    ("off", True, "delivered", False),
    ("required", True, "delivered", True),
    ("required", False, "deferred", False),
])
def test_tls_modes(make_app, zone, smtp_port, server_tls, mode, offered, state, tls):
    zone.mail_domain("beispiel.test", (10, "mx1.beispiel.test", MX1))
    app = make_app(TLS_MODE=mode)
    recipient, mx = deliver_one(app, smtp_port, server_tls if offered else None)
    assert recipient.state == state
    attempt = recipient.history[0]
    assert attempt.tls is tls
    if state == "deferred":
        assert "does not offer STARTTLS" in attempt.reply and mx.messages == []
    if tls:
        assert "* TLS established" in attempt.transcript


@pytest.fixture(scope="module")
def known_ca(tmp_path_factory):
    """A CA the sender is told to trust (TLS_CA_FILE), as a public CA is trusted in production."""
    ca = trustme.CA()
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return ca, str(path)


def _server_context(ca, name: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(name).configure_cert(context)
    return context


@pytest.mark.parametrize("certificate, state", [
    ("valid for the MX host", "delivered"),
    ("for another host", "deferred"),
    ("from an unknown CA", "deferred"),
    ("none: STARTTLS not offered", "deferred"),
])
def test_tls_mode_verify_checks_the_certificate(make_app, zone, smtp_port, server_tls, known_ca, certificate, state):
    ca, ca_file = known_ca
    zone.mail_domain("beispiel.test", (10, "mx1.beispiel.test", MX1))
    app = make_app(TLS_MODE="verify", TLS_CA_FILE=ca_file)
    server = {"valid for the MX host": _server_context(ca, "mx1.beispiel.test"),
              "for another host": _server_context(ca, "mx.elsewhere.test"),
              "from an unknown CA": server_tls,
              "none: STARTTLS not offered": None}[certificate]
    recipient, mx = deliver_one(app, smtp_port, server)
    assert recipient.state == state
    attempt = recipient.history[0]
    if state == "delivered":
        assert attempt.tls is True and "* TLS established" in attempt.transcript and len(mx.messages) == 1
        return
    assert mx.messages == [] and attempt.outcome == "temporary"  # never sent in clear or to an impostor
    if server is None:
        assert "does not offer STARTTLS and TLS_MODE is verify" in attempt.reply
    else:
        assert "certificate verify failed" in attempt.reply and attempt.category == "policy"
