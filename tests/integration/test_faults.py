"""The fault matrix: receivers that stall, answer oddly or refuse; DNS that fails in every way;
two workers on one slow session — each numbered item of the engine's fault list, on SQLite and
PostgreSQL, with real receivers and a real DNS server on loopback."""

from __future__ import annotations

import asyncio
import threading

from sqlalchemy import func, select

from postbote.compose import Draft
from postbote.db import deliveries
from postbote.queue import message_status
from postbote.recipients import suppression
from postbote.sending import send
from postbote.tenants import add_tenant
from postbote.testing import Receiver, Script
from postbote.testing.smtp_receiver import Stall
from tests.conftest import MX1, MX2, run_worker
from tests.integration.test_delivery import queue_unchecked


def queue(app, *recipients, tenant=None):
    tenant = tenant or add_tenant(app.engine, "acme", "ACME GmbH")
    return send(app.engine, app.settings, tenant, Draft("hr@acme.test", list(recipients), "Willkommen", "Hallo!"))


def recipient(app, message_id, n=0):
    return message_status(app.engine, message_id).recipients[n]


# 2. Leases are renewed while a session is alive.

def test_a_slow_session_keeps_its_lease_so_a_second_worker_never_sends_it_again(make_app, zone, smtp_port):
    class SlowToAnswer(Script):
        def data(self, peer_ip, mail_from, recipients):
            return Stall(3.0, "250 2.0.0 OK: queued")  # three leases long

    zone.mail_domain("beispiel.test", (10, "mx1.beispiel.test", MX1))
    app = make_app(LEASE_DURATION="1s")
    accepted = queue(app, "anna@beispiel.test")

    async def two_workers():
        await asyncio.gather(app.worker().run(until_done=True, timeout=12),
                             app.worker().run(until_done=True, timeout=12))

    with Receiver(MX1, smtp_port, SlowToAnswer()) as mx:
        asyncio.run(two_workers())
    assert len(mx.messages) == 1
    r = recipient(app, accepted.id)
    assert r.state == "delivered" and r.attempts == 1


# 3. The store knows how a message went before the next one goes on the same connection.

def test_each_outcome_is_stored_before_the_next_message_on_the_connection(make_app, zone, smtp_port):
    app = make_app(MAX_CONNECTIONS_PER_DOMAIN=1)

    class Auditor(Script):
        """At each message's end of data, counts what the store has recorded as delivered."""

        def __init__(self):
            self.accepted = 0
            self.behind: list[tuple[int, int]] = []
            self.lock = threading.Lock()

        def data(self, peer_ip, mail_from, rcpts):
            with app.engine.connect() as conn:
                stored = conn.execute(select(func.count()).select_from(deliveries)
                                      .where(deliveries.c.state == "delivered")).scalar_one()
            with self.lock:
                if stored < self.accepted:
                    self.behind.append((self.accepted, stored))
                self.accepted += 1
            return "250 2.0.0 OK: queued"

    zone.mail_domain("beispiel.test", (10, "mx1.beispiel.test", MX1))
    tenant = add_tenant(app.engine, "acme")
    for n in range(12):
        queue(app, f"u{n}@beispiel.test", tenant=tenant)
    auditor = Auditor()
    with Receiver(MX1, smtp_port, auditor) as mx:
        run_worker(app)
    assert len(mx.messages) == 12 and len(mx.connections) == 1
    assert auditor.behind == []  # never a message on the wire while an accepted one was unrecorded


# 4. A DNS blip is no bounce, and nothing is suppressed for a missing domain.

def test_a_single_nxdomain_during_delivery_bounces_nothing_and_suppresses_nothing(make_app, zone, smtp_port):
    zone.mail_domain("beispiel.test", (10, "mx1.beispiel.test", MX1))
    app = make_app()
    accepted = queue(app, "anna@beispiel.test")
    zone.fail("beispiel.test", "MX", "NXDOMAIN", times=2)  # the first lookup and its fresh re-ask
    with Receiver(MX1, smtp_port) as mx:
        run_worker(app)
    r = recipient(app, accepted.id)
    assert r.state == "delivered" and len(mx.messages) == 1
    first, second = r.history
    assert first.outcome == "temporary" and "NXDOMAIN" in first.reply and "asking again" in first.reply
    assert suppression.search(app.engine, message_status(app.engine, accepted.id).tenant_id) == []


def test_a_domain_gone_for_good_bounces_on_the_second_answer_and_is_not_suppressed(make_app, zone, smtp_port):
    app = make_app()
    accepted = queue_unchecked(app, "anna@gmial.test")
    run_worker(app)
    r = message_status(app.engine, accepted.id).recipients[0]
    assert r.state == "bounced" and r.attempts == 2
    assert [h.outcome for h in r.history] == ["temporary", "permanent"]
    assert "also when asked again" in r.last_reply
    assert suppression.search(app.engine, message_status(app.engine, accepted.id).tenant_id) == []


# 5. "452 too many recipients" splits the transaction; nothing waits, nothing else pauses.

def test_452_too_many_recipients_sends_the_rest_in_the_next_transaction_at_once(make_app, zone, smtp_port):
    class TwoPerTransaction(Script):
        max_recipients = 2

    zone.mail_domain("firma.test", (10, "mx.firma.test", MX1))
    app = make_app(MAX_CONNECTIONS_PER_DOMAIN=1)
    tenant = add_tenant(app.engine, "acme")
    many = send(app.engine, app.settings, tenant,
                Draft("hr@acme.test", [f"p{n}@firma.test" for n in range(5)], "Rundschreiben", "Hallo!"))
    other = queue(app, "chef@firma.test", tenant=tenant)
    with Receiver(MX1, smtp_port, TwoPerTransaction()) as mx:
        run_worker(app, timeout=10)
    view = message_status(app.engine, many.id).recipients
    assert {r.state for r in view} == {"delivered"} and {r.attempts for r in view} == {1}
    assert recipient(app, other.id).state == "delivered"
    assert len(mx.connections) == 1
    assert sorted(len(m.recipients) for m in mx.messages if m.message_id == many.message_id_header) \
        in ([1, 2, 2], [1, 1, 1, 1, 1])


# 6. What resolved is used: a failing AAAA beside a working A.

def test_a_failing_aaaa_lookup_does_not_stop_delivery_over_ipv4(make_app, zone, smtp_port):
    zone.mail_domain("beispiel.test", (10, "mx1.beispiel.test", MX1))
    zone.fail("mx1.beispiel.test", "AAAA", "SERVFAIL")
    app = make_app()
    accepted = queue(app, "anna@beispiel.test")
    with Receiver(MX1, smtp_port) as mx:
        run_worker(app, timeout=8)
    r = recipient(app, accepted.id)
    assert r.state == "delivered" and r.attempts == 1 and len(mx.messages) == 1


def test_a_failing_a_and_aaaa_lookup_defers(make_app, zone, smtp_port):
    zone.mail_domain("beispiel.test", (10, "mx1.beispiel.test", MX1))
    zone.fail("mx1.beispiel.test", "A", "SERVFAIL")
    zone.fail("mx1.beispiel.test", "AAAA", "SERVFAIL")
    app = make_app()
    accepted = queue(app, "anna@beispiel.test")
    run_worker(app, until_done=False, timeout=2)
    r = recipient(app, accepted.id)
    assert r.state == "deferred" and "failed" in r.last_reply


# 7. Per-stage timeouts; after end-of-data the long one, and "possibly delivered" when it runs out.

STAGES = dict(SMTP_TIMEOUT=0, SMTP_CONNECT_TIMEOUT="2s", SMTP_GREETING_TIMEOUT="2s", SMTP_COMMAND_TIMEOUT="2s",
              SMTP_DATA_TIMEOUT="2s", SMTP_DATA_BLOCK_TIMEOUT="2s")


class SilentAfterData(Script):
    def __init__(self, seconds):
        self.seconds = seconds

    def data(self, peer_ip, mail_from, recipients):
        return Stall(self.seconds, "250 2.0.0 OK: queued")


def test_a_slow_reply_after_end_of_data_is_waited_for_and_sent_once(make_app, zone, smtp_port):
    zone.mail_domain("beispiel.test", (10, "mx1.beispiel.test", MX1))
    app = make_app(**STAGES, SMTP_DATA_END_TIMEOUT="8s")  # longer than any other stage
    accepted = queue(app, "anna@beispiel.test")
    with Receiver(MX1, smtp_port, SilentAfterData(3.5)) as mx:
        run_worker(app)
    r = recipient(app, accepted.id)
    assert r.state == "delivered" and r.attempts == 1 and len(mx.messages) == 1


def test_no_reply_after_end_of_data_is_recorded_as_possibly_delivered(make_app, zone, smtp_port):
    zone.mail_domain("beispiel.test", (10, "mx1.beispiel.test", MX1))
    app = make_app(**STAGES, SMTP_DATA_END_TIMEOUT="1s")
    accepted = queue(app, "anna@beispiel.test")
    with Receiver(MX1, smtp_port, SilentAfterData(2.0)):
        run_worker(app, until_done=False, timeout=1.8)
    first = recipient(app, accepted.id).history[0]
    assert first.outcome == "temporary" and "possibly delivered" in first.reply
    assert "no reply within 1 s after the end of the message" in first.transcript


def test_a_stall_before_end_of_data_times_out_at_its_own_stage(make_app, zone, smtp_port):
    class SlowRcpt(Script):
        def rcpt(self, peer_ip, mail_from, recipient):
            return Stall(3.0, "250 2.1.5 OK")

    zone.mail_domain("beispiel.test", (10, "mx1.beispiel.test", MX1))
    app = make_app(**STAGES, SMTP_DATA_END_TIMEOUT="8s")
    accepted = queue(app, "anna@beispiel.test")
    with Receiver(MX1, smtp_port, SlowRcpt()) as mx:
        run_worker(app, until_done=False, timeout=2.8)
    r = recipient(app, accepted.id)
    assert r.history[0].outcome == "temporary" and "timed out during RCPT TO" in r.history[0].reply
    assert mx.messages == []


# 8. The last attempt comes at the end of the lifetime.

def test_the_last_attempt_is_made_when_the_lifetime_ends(make_app, zone, smtp_port):
    class AlwaysBusy(Script):
        def rcpt(self, peer_ip, mail_from, recipient):
            return "451 4.3.0 Temporary local problem"

    zone.mail_domain("beispiel.test", (10, "mx1.beispiel.test", MX1))
    app = make_app(MAX_LIFETIME="3s", RETRY_SCHEDULE=["2s"])
    accepted = queue(app, "anna@beispiel.test")
    with Receiver(MX1, smtp_port, AlwaysBusy()):
        run_worker(app)
    view = message_status(app.engine, accepted.id)
    r = view.recipients[0]
    assert r.state == "expired" and r.attempts == 3  # at 0 s, 2 s — and at 3 s, the end
    assert (r.history[-1].started_at - view.expires_at).total_seconds() >= 0


# 9. A reply without a code is a protocol error; a 554 greeting is skipped like Postfix does.

def test_a_reply_without_a_code_is_a_protocol_error_and_retried(make_app, zone, smtp_port):
    class Garbled(Script):
        def __init__(self):
            self.calls = 0

        def rcpt(self, peer_ip, mail_from, recipient):
            self.calls += 1
            return "hello there, this is no SMTP" if self.calls == 1 else "250 2.1.5 OK"

    zone.mail_domain("beispiel.test", (10, "mx1.beispiel.test", MX1))
    app = make_app()
    accepted = queue(app, "anna@beispiel.test")
    with Receiver(MX1, smtp_port, Garbled()) as mx:
        run_worker(app)
    r = recipient(app, accepted.id)
    first = r.history[0]
    assert first.outcome == "temporary" and first.reply.startswith("protocol error:")
    assert "no SMTP reply (no code): 'hello there, this is no SMTP'" in first.reply
    assert "connection lost" not in first.reply
    assert r.state == "delivered" and len(mx.messages) == 1


class Refusing(Script):
    def greeting(self, peer_ip):
        return "554 5.7.1 mx1.beispiel.test ESMTP not accepting messages"


def test_a_554_greeting_at_the_only_mx_defers_rather_than_bounces(make_app, zone, smtp_port):
    zone.mail_domain("beispiel.test", (10, "mx1.beispiel.test", MX1))
    app = make_app()
    accepted = queue(app, "anna@beispiel.test")
    with Receiver(MX1, smtp_port, Refusing()):
        run_worker(app, until_done=False, timeout=1.5)
    r = recipient(app, accepted.id)
    assert r.state == "deferred" and r.history[0].outcome == "temporary"
    assert "refused the session at its greeting: 554 5.7.1" in r.last_reply
    assert suppression.search(app.engine, message_status(app.engine, accepted.id).tenant_id) == []


def test_a_554_greeting_moves_on_to_the_next_mx(make_app, zone, smtp_port):
    zone.mail_domain("beispiel.test", (10, "mx1.beispiel.test", MX1), (20, "mx2.beispiel.test", MX2))
    app = make_app()
    accepted = queue(app, "anna@beispiel.test")
    with Receiver(MX1, smtp_port, Refusing()), Receiver(MX2, smtp_port) as backup:
        run_worker(app)
    r = recipient(app, accepted.id)
    assert r.state == "delivered" and r.attempts == 1 and r.history[0].mx_host == "mx2.beispiel.test"
    assert len(backup.messages) == 1


# Issue 9, item 12: no connections into private networks unless allowed.

def test_an_mx_in_a_private_network_is_never_connected_to(make_app, zone, smtp_port):
    zone.mail_domain("beispiel.test", (10, "mx1.beispiel.test", MX1))
    zone.add("mx1.beispiel.test", "AAAA", "fe80::1")
    app = make_app(ALLOW_PRIVATE_MX=False)
    accepted = queue(app, "anna@beispiel.test")
    with Receiver(MX1, smtp_port) as mx:
        run_worker(app, until_done=False, timeout=1.5)
    r = recipient(app, accepted.id)
    assert mx.connections == [] and r.state == "deferred"
    transcript = r.history[0].transcript
    assert f"not connecting to mx1.beispiel.test [{MX1}]: the address is not public" in transcript
    assert "not connecting to mx1.beispiel.test [fe80::1]" in transcript
    assert "< 220" not in transcript and "mx.127.0.0.10" not in transcript  # no internal banner
