"""A database outage in the middle of delivering: PostgreSQL made unreachable for 30 seconds for
this test's processes only (through a TCP proxy of its own), while `postbote worker` or
`postbote serve` delivers. Delivery resumes by itself within seconds, nothing is lost, nothing
is sent twice — also the message accepted while the store was away."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from postbote.compose import Draft, compose
from postbote.db import deliveries
from postbote.queue import Outgoing, enqueue_in
from postbote.tenants import add_tenant
from postbote.testing import Receiver, Script
from postbote.testing.smtp_receiver import Stall
from tests.conftest import MX1, free_port
from tests.integration.test_cli import cli_env
from tests.support.proxy import TcpProxy

MESSAGES = 300
OUTAGE = 30.0


class Steady(Script):
    """A receiver a little slow per message, so that delivery is under way when the store goes."""

    def data(self, peer_ip, mail_from, recipients):
        return Stall(0.02, "250 2.0.0 OK: queued")


def enqueue(app, tenant, first, count):
    batch = [Outgoing.plain(compose(Draft("hr@acme.test", [f"u{n}@d{n % 3}.test"], f"Nachricht {n}", "Hallo"),
                                    id_domain="p.test"))
             for n in range(first, first + count)]
    with app.engine.begin() as conn:
        enqueue_in(conn, tenant.id, batch, lifetime=3600)


def states(app) -> dict:
    with app.engine.connect() as conn:
        return dict(conn.execute(select(deliveries.c.state, func.count()).group_by(deliveries.c.state)).all())


@pytest.mark.slow
@pytest.mark.parametrize("command", ["worker", "serve"])
def test_a_30_second_database_outage_is_waited_out(make_app, zone, smtp_port, store_url, tmp_path, command):
    if not store_url.startswith("postgresql"):
        pytest.skip("an outage of the database server: PostgreSQL only (SQLite is a file in the process)")
    for i in range(3):
        zone.mail_domain(f"d{i}.test", (10, f"mx.d{i}.test", MX1))
    app = make_app()
    tenant = add_tenant(app.engine, "acme")
    enqueue(app, tenant, 0, MESSAGES)
    url = make_url(store_url)
    with TcpProxy(url.host, url.port or 5432) as proxy, Receiver(MX1, smtp_port, Steady()) as mx:
        env = cli_env(app) | {
            "POSTBOTE_DATABASE_URL": url.set(port=proxy.port).render_as_string(hide_password=False),
            "POSTBOTE_API_LISTEN": f"127.0.0.1:{free_port('127.0.0.1')}",
            "POSTBOTE_LOG_LEVEL": "WARNING",
        }
        process = subprocess.Popen([sys.executable, "-m", "postbote", command], env=env, cwd=tmp_path,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 60
            while len(mx.messages) < MESSAGES // 4 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert len(mx.messages) < MESSAGES, "too fast to cut in the middle"
            proxy.cut()
            enqueue(app, tenant, MESSAGES, 1)  # accepted while the worker's store is away
            time.sleep(OUTAGE)
            assert process.poll() is None, "the process gave up during the outage"
            proxy.restore()
            restored = time.monotonic()
            while time.monotonic() < restored + 30 and states(app).get("delivered", 0) < MESSAGES + 1:
                time.sleep(0.1)
            resumed_in = time.monotonic() - restored
        finally:
            process.send_signal(signal.SIGTERM)
            _, err = process.communicate(timeout=60)
    received = Counter(m.message_id for m in mx.messages)
    assert states(app) == {"delivered": MESSAGES + 1}, err[-3000:]
    assert len(received) == MESSAGES + 1  # nothing lost
    assert max(received.values()) == 1  # nothing sent twice
    assert resumed_in < 15, resumed_in
    assert "the store is unreachable" in err and "the store is back" in err
    assert "was not restarted" not in err and "ended by itself" not in err  # no part of it gave up
    if command == "worker":
        assert "Traceback" not in err  # an outage is waited out, not reported as a crash
