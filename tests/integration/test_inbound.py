"""The bounce receiver as receivers reach it: SMTP on loopback, only return-path addresses, on
SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import os
import smtplib
import time

import pytest
from sqlalchemy import select

from postbote.compose import Draft
from postbote.db import events
from postbote.domains.returnpath import return_path
from postbote.inbound import start_inbound
from postbote.queue import message_status
from postbote.recipients.suppression import find
from postbote.sending import send
from postbote.tenants import add_tenant
from postbote.testing import Receiver
from tests.conftest import MX1, MX3, run_worker
from tests.support.reports import arf, dsn, out_of_office, prose_bounce


@pytest.fixture
def inbound(make_app, zone, smtp_port):
    zone.mail_domain("kunde.test", (10, "mx.kunde.test", MX1))
    app = make_app(INBOUND_MAX_SIZE=5_000_000)
    tenant = add_tenant(app.engine, "acme", "ACME GmbH")
    accepted = send(app.engine, app.settings, tenant,
                    Draft("hr@acme.test", ["anna@kunde.test", "lea@kunde.test", "tom@kunde.test"], "Willkommen", "Hallo"))
    with Receiver(MX1, smtp_port):
        run_worker(app)
    controller = start_inbound(app.settings, app.engine, f"{MX3}:{smtp_port}")
    yield app, tenant, accepted, (MX3, smtp_port)
    controller.stop()


def rp(app, accepted, host: str = "rp.platform.test") -> str:
    """The return path the message was sent with, built by the function sending uses."""
    return return_path(app.settings.SECRET_KEY, accepted.id, host, valid_days=app.settings.return_path_days)


def deliver(where, rcpt: str, raw: bytes):
    with smtplib.SMTP(*where, timeout=10) as client:
        client.ehlo("mx.kunde.test")
        return client.sendmail("", [rcpt], raw)


def test_a_dsn_after_a_250_turns_delivered_into_bounced_and_suppresses(inbound):
    app, tenant, accepted, where = inbound
    assert all(r.state == "delivered" for r in message_status(app.engine, accepted.id).recipients)
    return_path = rp(app, accepted)
    assert deliver(where, return_path, dsn("anna@kunde.test")) == {}
    view = {r.address: r for r in message_status(app.engine, accepted.id).recipients}
    assert view["anna@kunde.test"].state == "bounced"
    assert "5.1.1" in view["anna@kunde.test"].last_reply and view["anna@kunde.test"].category == "invalid_recipient"
    assert view["lea@kunde.test"].state == "delivered"
    assert find(app.engine, tenant.id, "anna@kunde.test").reason == "hard_bounce"
    deliver(where, return_path, prose_bounce("tom@kunde.test"))  # qmail style, no report structure
    assert {r.address: r.state for r in message_status(app.engine, accepted.id).recipients}["tom@kunde.test"] == "bounced"


def test_an_arf_complaint_suppresses_and_is_recorded(inbound):
    app, tenant, accepted, where = inbound
    deliver(where, rp(app, accepted), arf("lea@kunde.test"))
    assert find(app.engine, tenant.id, "lea@kunde.test").reason == "complaint"
    with app.engine.connect() as conn:
        kinds = [row.kind for row in conn.execute(select(events).where(events.c.message_id == accepted.id))]
    assert "complained" in kinds
    assert {r.address: r.state for r in message_status(app.engine, accepted.id).recipients}["lea@kunde.test"] == "delivered"


@pytest.mark.parametrize("rcpt", ["anna@kunde.test", "postmaster@elsewhere.test", "{elsewhere}",
                                  "bounces+000000000000deadbeefdeadbeef@rp.platform.test", "someone@rp.platform.test"])
def test_it_never_relays_and_takes_only_return_paths(inbound, rcpt):
    app, _, accepted, where = inbound
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        deliver(where, rcpt.format(elsewhere=rp(app, accepted, "elsewhere.test")), b"Subject: relay?\r\n\r\nplease forward\r\n")
    [(code, _)] = refused.value.recipients.values()
    assert 500 <= code < 600


def test_garbage_and_a_20_mb_message_do_not_take_it_down(inbound):
    app, _, accepted, where = inbound
    return_path = rp(app, accepted)
    garbage = b"\r\n".join(os.urandom(60).replace(b"\r", b"").replace(b"\n", b"") for _ in range(300))
    assert deliver(where, return_path, garbage) == {}  # accepted, recorded as unreadable
    with pytest.raises((smtplib.SMTPDataError, smtplib.SMTPSenderRefused, smtplib.SMTPServerDisconnected)) as big:
        deliver(where, return_path, b"Subject: big\r\n\r\n" + (b"y" * 998 + b"\r\n") * 20_500)  # 20 MB
    if isinstance(big.value, (smtplib.SMTPDataError, smtplib.SMTPSenderRefused)):
        assert big.value.smtp_code == 552
    # Still there, still working.
    assert deliver(where, return_path, dsn("tom@kunde.test")) == {}
    assert {r.address: r.state for r in message_status(app.engine, accepted.id).recipients}["tom@kunde.test"] == "bounced"


def test_an_out_of_office_reply_is_recorded_and_is_no_bounce(inbound):
    app, tenant, accepted, where = inbound
    deliver(where, rp(app, accepted), out_of_office("anna@kunde.test"))
    assert {r.address: r.state for r in message_status(app.engine, accepted.id).recipients}["anna@kunde.test"] == "delivered"
    assert find(app.engine, tenant.id, "anna@kunde.test") is None
    with app.engine.connect() as conn:
        data = [row.data for row in conn.execute(select(events).where(events.c.message_id == accepted.id,
                                                                      events.c.kind == "report"))]
    assert {"recipient": "anna@kunde.test", "action": "auto-replied"}.items() <= data[-1].items()


def test_a_hostile_multi_megabyte_bounce_is_read_in_linear_time(inbound):
    """A run of address characters once cost the square of its length (164 KB: 12 s with the
    whole process frozen). SMTP lines are short, but a base64 body decodes into one long line:
    here 400 KB of it, in a 4 MB message, accepted and recorded at once."""
    app, _, accepted, where = inbound
    line = base64.encodebytes(b"a" * 400_000).replace(b"\n", b"\r\n")
    hostile = (b"From: MAILER-DAEMON@mx.kunde.test\r\nSubject: Undelivered Mail Returned to Sender\r\n"
               b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n" + line
               + (b"a" * 900 + b"\r\n") * 3000)
    started = time.monotonic()
    assert deliver(where, rp(app, accepted), hostile) == {}
    assert time.monotonic() - started < 10
    assert deliver(where, rp(app, accepted), dsn("lea@kunde.test")) == {}
    assert {r.address: r.state for r in message_status(app.engine, accepted.id).recipients}["lea@kunde.test"] == "bounced"
