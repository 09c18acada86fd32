"""kill -9 a worker in the middle of delivering, several times: nothing may be lost, and the only
duplicates allowed are deliveries that were in flight at a kill."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
from sqlalchemy import func, select

from postbote.compose import Draft, compose
from postbote.db import deliveries
from postbote.queue import Outgoing, enqueue_in
from postbote.tenants import add_tenant
from postbote.testing import Receiver
from tests.conftest import MX1, SOURCE_IPS

MESSAGES = 3000
KILL_AT = (0.15, 0.4, 0.65)  # fractions of the messages received when each kill happens


def worker_env(app) -> dict:
    s = app.settings
    env = dict(os.environ)
    env.update({
        "POSTBOTE_DATABASE_URL": s.DATABASE_URL,
        "POSTBOTE_DNS_NAMESERVERS": ",".join(s.DNS_NAMESERVERS),
        "POSTBOTE_SMTP_PORT": str(s.SMTP_PORT),
        "POSTBOTE_SOURCE_IPS": ",".join(SOURCE_IPS),
        "POSTBOTE_HELO_NAME": s.HELO_NAME,
        "POSTBOTE_RETRY_SCHEDULE": "1s",
        "POSTBOTE_LEASE_DURATION": "2s",
        "POSTBOTE_MAX_INFLIGHT": "300",
        "POSTBOTE_LOG_LEVEL": "WARNING",
        "POSTBOTE_ALLOW_PRIVATE_MX": "true",
    })
    return env


def start_worker(env) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "postbote", "worker", "--until-done", "--timeout", "120"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def in_flight(app, pid: int) -> int:
    """Deliveries the dead worker held: claimed under its lease (host:pid:nonce) and not finished."""
    with app.engine.connect() as conn:
        return conn.execute(
            select(func.count()).select_from(deliveries).where(
                deliveries.c.lease_owner.like(f"%:{pid}:%"), deliveries.c.state.in_(["queued", "deferred"]))
        ).scalar_one()


@pytest.mark.slow
def test_sigkill_loses_nothing(make_app, zone, smtp_port):
    for i in range(5):
        zone.mail_domain(f"d{i}.test", (10, f"mx.d{i}.test", MX1))
    app = make_app()
    tenant = add_tenant(app.engine, "acme")
    batch = [Outgoing.plain(compose(Draft("hr@acme.test", [f"u{n}@d{n % 5}.test"], f"Nachricht {n}", "Hallo " * 50),
                                    id_domain="p.test"))
             for n in range(MESSAGES)]
    with app.engine.begin() as conn:
        enqueue_in(conn, tenant.id, batch, lifetime=3600)
    env = worker_env(app)
    allowed = 0
    kills = 0
    with Receiver(MX1, smtp_port) as mx:
        for fraction in KILL_AT:
            worker = start_worker(env)
            deadline = time.monotonic() + 60
            while len(mx.messages) < fraction * MESSAGES and worker.poll() is None and time.monotonic() < deadline:
                time.sleep(0.005)
            assert worker.poll() is None, worker.stderr.read().decode()[-2000:]
            worker.send_signal(signal.SIGKILL)
            worker.wait()
            kills += 1
            allowed += in_flight(app, worker.pid)
        worker = start_worker(env)
        assert worker.wait(timeout=150) == 0, worker.stderr.read().decode()[-2000:]
        received = Counter((m.message_id, m.recipients) for m in mx.messages)

    with app.engine.connect() as conn:
        by_state = dict(conn.execute(select(deliveries.c.state, func.count()).group_by(deliveries.c.state)).all())
    assert kills == 3
    assert by_state == {"delivered": MESSAGES}
    assert len(received) == MESSAGES  # every message arrived
    duplicates = sum(n - 1 for n in received.values())
    assert duplicates <= allowed, (duplicates, allowed)
    print(f"\ncrash test: {kills} kills, {duplicates} duplicates, {allowed} deliveries in flight at the kills")
