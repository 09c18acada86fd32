"""The delivery engine against real SMTP receivers and a real DNS server on loopback, on SQLite
and PostgreSQL."""

from __future__ import annotations

import threading

import pytest

from postbote.domains.returnpath import return_path
from postbote.compose import Draft, compose
from postbote.queue import Outgoing, enqueue
from postbote.queue import message_status
from postbote.sending import send
from postbote.tenants import add_tenant
from postbote.testing import Receiver, Script
from postbote.testing.smtp_receiver import DROP, Greylister
from tests.conftest import MX1, MX2, SOURCE_IPS, run_worker


def queue_message(app, *recipients, sender="ACME GmbH <hr@acme.test>", subject="Willkommen bei ACME"):
    tenant = add_tenant(app.engine, "acme", "ACME GmbH")
    return send(app.engine, app.settings, tenant, Draft(sender, list(recipients), subject, "Hallo!"))


def queue_unchecked(app, *recipients):
    """Straight into the queue, past the checks at acceptance: as if the domain's DNS changed
    between acceptance and delivery, which the engine must handle on its own."""
    tenant = add_tenant(app.engine, "acme", "ACME GmbH")
    message = compose(Draft("hr@acme.test", list(recipients), "Willkommen", "Hallo!"), id_domain="platform.test")
    enqueue(app.engine, tenant.id, Outgoing.plain(message), lifetime=app.settings.max_lifetime_seconds)
    return message


def states(app, message_id):
    return {r.address: r.state for r in message_status(app.engine, message_id).recipients}


class FirstTimes(Script):
    """Misbehaves on the first ``n`` connections or transactions, then works."""

    def __init__(self, greeting_failures=0, drops=0):
        self.greeting_failures, self.drops = greeting_failures, drops
        self.lock = threading.Lock()

    def greeting(self, peer_ip):
        with self.lock:
            if self.greeting_failures:
                self.greeting_failures -= 1
                return "421 4.3.2 mx.acme.test Service not available, too busy"
        return None

    def data(self, peer_ip, mail_from, recipients):
        with self.lock:
            if self.drops:
                self.drops -= 1
                return DROP
        return "250 2.0.0 OK: queued as 4711"


def test_plain_delivery(make_app, zone, smtp_port):
    zone.mail_domain("beispiel.test", (10, "mx1.beispiel.test", MX1))
    app = make_app()
    with Receiver(MX1, smtp_port) as mx:
        accepted = queue_message(app, "Anna Schmidt <anna@beispiel.test>")
        assert states(app, accepted.id) == {"anna@beispiel.test": "queued"}
        run_worker(app)
    assert states(app, accepted.id) == {"anna@beispiel.test": "delivered"}
    [received] = mx.messages
    assert received.recipients == ("anna@beispiel.test",)
    # acme.test is no verified domain of the tenant: the default sender, the platform's return path.
    assert received.mail_from == return_path(app.settings.SECRET_KEY, accepted.id, "rp.platform.test",
                                             valid_days=app.settings.return_path_days)
    assert b"From: ACME GmbH via Postbote <notification@platform.test>" in received.data
    assert b"Reply-To: ACME GmbH <hr@acme.test>" in received.data
    assert received.data.startswith(b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=platform.test; s=pb1;")
    assert received.message_id == accepted.message_id_header
    assert received.peer_ip in SOURCE_IPS
    [attempt] = message_status(app.engine, accepted.id).recipients[0].history
    assert (attempt.mx_host, attempt.mx_ip, attempt.source_ip, attempt.reply_code) == (
        "mx1.beispiel.test", MX1, received.peer_ip, 250)
    assert "> RCPT TO:<anna@beispiel.test>" in attempt.transcript
    assert "< 250 2.0.0 OK: queued" in attempt.transcript


def test_greylisting_is_retried_from_the_same_source_ip(make_app, zone, smtp_port):
    zone.mail_domain("gmx.test", (10, "mx.gmx.test", MX1))
    app = make_app()
    with Receiver(MX1, smtp_port, Greylister()) as mx:
        accepted = queue_message(app, "lena@gmx.test")
        run_worker(app)
    recipient = message_status(app.engine, accepted.id).recipients[0]
    assert recipient.state == "delivered"
    first, second = recipient.history
    assert first.outcome == "temporary" and first.reply_code == 450 and "Greylisted" in first.reply
    assert second.outcome == "delivered"
    assert first.source_ip == second.source_ip
    # One connection or two (the retry may come while the first still lingers), from one address.
    assert set(mx.connections) == {first.source_ip} and len(mx.connections) in (1, 2)
    assert (second.started_at - first.started_at).total_seconds() >= 0.9  # RETRY_SCHEDULE=1s


def test_unknown_user_bounces_without_retry(make_app, zone, smtp_port):
    class UnknownUser(Script):
        def rcpt(self, peer_ip, mail_from, recipient):
            return f"550 5.1.1 <{recipient}>: Recipient address rejected: User unknown in virtual mailbox table"

    zone.mail_domain("beispiel.test", (10, "mx1.beispiel.test", MX1))
    app = make_app()
    with Receiver(MX1, smtp_port, UnknownUser()) as mx:
        accepted = queue_message(app, "nobody@beispiel.test")
        run_worker(app)
    recipient = message_status(app.engine, accepted.id).recipients[0]
    assert recipient.state == "bounced" and recipient.attempts == 1
    assert recipient.history[0].enhanced_code == "5.1.1"
    assert mx.messages == [] and len(mx.connections) == 1


@pytest.mark.parametrize("trouble", [{"greeting_failures": 1}, {"drops": 1}], ids=["421-greeting", "drop-in-data"])
def test_temporary_trouble_defers_then_delivers(make_app, zone, smtp_port, trouble):
    script = FirstTimes(**trouble)
    zone.mail_domain("beispiel.test", (10, "mx1.beispiel.test", MX1))
    app = make_app()
    with Receiver(MX1, smtp_port, script) as mx:
        accepted = queue_message(app, "anna@beispiel.test")
        run_worker(app)
    recipient = message_status(app.engine, accepted.id).recipients[0]
    first, second = recipient.history
    assert first.outcome == "temporary" and second.outcome == "delivered"
    assert recipient.state == "delivered"
    if "greeting_failures" in trouble:
        assert first.reply_code == 421 and "too busy" in first.reply
        assert len(mx.messages) == 1
    else:
        assert first.reply_code is None and "connection lost during DATA" in first.reply
        assert len(mx.messages) == 1  # the dropped transaction never counted as received
    assert mx.messages[0].recipients == ("anna@beispiel.test",)


def test_second_mx_is_used_when_the_first_refuses_connections(make_app, zone, smtp_port):
    zone.mail_domain("beispiel.test", (10, "mx1.beispiel.test", MX1), (20, "mx2.beispiel.test", MX2))
    app = make_app()
    with Receiver(MX2, smtp_port) as backup:  # nothing listens on MX1
        accepted = queue_message(app, "anna@beispiel.test")
        run_worker(app)
    recipient = message_status(app.engine, accepted.id).recipients[0]
    assert recipient.state == "delivered" and recipient.attempts == 1
    attempt = recipient.history[0]
    assert (attempt.mx_host, attempt.mx_ip) == ("mx2.beispiel.test", MX2)
    assert "cannot connect to mx1.beispiel.test [127.0.0.10]: connection refused" in attempt.transcript
    assert len(backup.messages) == 1


def test_null_mx_bounces_without_a_connection(make_app, zone, smtp_port):
    zone.add("nomail.test", "MX", "0 .")
    zone.add("nomail.test", "A", MX1)  # an address must not tempt the engine into an implicit MX
    app = make_app()
    with Receiver(MX1, smtp_port) as mx:
        accepted = queue_unchecked(app, "anna@nomail.test")
        run_worker(app)
    recipient = message_status(app.engine, accepted.id).recipients[0]
    assert recipient.state == "bounced"
    attempt = recipient.history[0]
    assert attempt.mx_host is None and attempt.enhanced_code == "5.1.10" and "null MX" in attempt.reply
    assert mx.connections == []


def test_implicit_mx_when_the_domain_has_only_an_address(make_app, zone, smtp_port):
    zone.add("small.test", "A", MX1)
    app = make_app()
    with Receiver(MX1, smtp_port) as mx:
        accepted = queue_message(app, "info@small.test")
        run_worker(app)
    assert states(app, accepted.id) == {"info@small.test": "delivered"}
    assert message_status(app.engine, accepted.id).recipients[0].history[0].mx_host == "small.test"
    assert len(mx.messages) == 1


def test_domain_that_does_not_exist_bounces(make_app, zone, smtp_port):
    app = make_app()
    accepted = queue_unchecked(app, "anna@gmial.test")
    run_worker(app)
    recipient = message_status(app.engine, accepted.id).recipients[0]
    assert recipient.state == "bounced" and "does not exist" in recipient.last_reply


def test_recipients_at_one_host_get_their_own_outcomes(make_app, zone, smtp_port):
    class Mixed(Greylister):
        def rcpt(self, peer_ip, mail_from, recipient):
            if recipient.startswith("bob@"):
                return f"550 5.1.1 <{recipient}>: Recipient address rejected: User unknown"
            if recipient.startswith("carol@"):
                return super().rcpt(peer_ip, mail_from, recipient)
            return "250 2.1.5 OK"

    zone.mail_domain("firma.test", (10, "mx.firma.test", MX1))
    app = make_app()
    with Receiver(MX1, smtp_port, Mixed()) as mx:
        accepted = queue_message(app, "anna@firma.test", "bob@firma.test", "carol@firma.test")
        run_worker(app)
    view = {r.address: r for r in message_status(app.engine, accepted.id).recipients}
    assert {a: r.state for a, r in view.items()} == {
        "anna@firma.test": "delivered", "bob@firma.test": "bounced", "carol@firma.test": "delivered"}
    assert [h.outcome for h in view["carol@firma.test"].history] == ["temporary", "delivered"]
    assert view["anna@firma.test"].attempts == 1 and view["bob@firma.test"].attempts == 1
    # One transaction carried anna (and refused bob); the retry carried carol alone.
    assert [m.recipients for m in mx.messages] == [("anna@firma.test",), ("carol@firma.test",)]


def test_one_connection_carries_many_messages(make_app, zone, smtp_port):
    zone.mail_domain("beispiel.test", (10, "mx1.beispiel.test", MX1))
    app = make_app(MAX_CONNECTIONS_PER_DOMAIN=1)
    tenant = add_tenant(app.engine, "acme")
    ids = [send(app.engine, app.settings, tenant, Draft("hr@acme.test", [f"u{i}@beispiel.test"], f"n{i}", "x")).id
           for i in range(6)]
    with Receiver(MX1, smtp_port) as mx:
        run_worker(app)
    assert all(states(app, i) == {f"u{n}@beispiel.test": "delivered"} for n, i in enumerate(ids))
    assert len(mx.messages) == 6 and len(mx.connections) == 1


def test_expires_after_max_lifetime_with_the_last_reply(make_app, zone, smtp_port):
    class AlwaysBusy(Script):
        def rcpt(self, peer_ip, mail_from, recipient):
            return "451 4.7.1 Service busy, please try later"

    zone.mail_domain("beispiel.test", (10, "mx1.beispiel.test", MX1))
    app = make_app(MAX_LIFETIME="3s")
    with Receiver(MX1, smtp_port, AlwaysBusy()):
        accepted = queue_message(app, "anna@beispiel.test")
        run_worker(app)
    recipient = message_status(app.engine, accepted.id).recipients[0]
    assert recipient.state == "expired"
    assert 2 <= recipient.attempts <= 4
    assert recipient.last_reply == "451 4.7.1 Service busy, please try later"


def test_a_wait_named_in_the_reply_is_honoured(make_app, zone, smtp_port):
    class SlowDown(Script):
        def __init__(self):
            self.calls = 0

        def rcpt(self, peer_ip, mail_from, recipient):
            self.calls += 1
            return "451 4.7.1 Too many connections, try again in 3 seconds" if self.calls == 1 else "250 OK"

    zone.mail_domain("beispiel.test", (10, "mx1.beispiel.test", MX1))
    app = make_app()  # the schedule alone would retry after 1 s
    with Receiver(MX1, smtp_port, SlowDown()):
        accepted = queue_message(app, "anna@beispiel.test")
        run_worker(app)
    first, second = message_status(app.engine, accepted.id).recipients[0].history
    assert (second.started_at - first.started_at).total_seconds() >= 2.9


def test_a_rate_limit_pauses_the_destination_instead_of_asking_again(make_app, zone, smtp_port):
    class Throttling(Script):
        def __init__(self):
            self.rcpts = 0

        def rcpt(self, peer_ip, mail_from, recipient):
            self.rcpts += 1
            return "450 4.7.1 Too many messages from you, slow down"

    zone.mail_domain("busy.test", (10, "mx.busy.test", MX1))
    app = make_app(MAX_CONNECTIONS_PER_DOMAIN=1)
    tenant = add_tenant(app.engine, "acme")
    ids = [send(app.engine, app.settings, tenant, Draft("hr@acme.test", [f"u{i}@busy.test"], f"n{i}", "x")).id
           for i in range(5)]
    script = Throttling()
    with Receiver(MX1, smtp_port, script) as mx:
        run_worker(app, until_done=False, timeout=2)
    assert script.rcpts == 1 and len(mx.connections) == 1  # asked once, then left alone
    views = [message_status(app.engine, i).recipients[0] for i in ids]
    assert all(v.state == "deferred" and v.category == "rate_limited" for v in views)
    waited = sorted((v.next_attempt_at - v.history[-1].started_at).total_seconds() for v in views)
    assert waited[0] >= 890  # the category's minimum of 15 minutes, for all of them
    assert sum("not attempted: busy.test asked to slow down" in v.last_reply for v in views) == 4
