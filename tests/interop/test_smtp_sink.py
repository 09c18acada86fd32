"""Against Postfix's own smtp-sink: the engine's SMTP is understood by a real Postfix component,
and Postfix-formatted rejections are read right. Needs Debian's postfix package."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from postbote.compose import Draft
from postbote.db import attempts, deliveries
from postbote.queue import message_status
from postbote.sending import send
from postbote.tenants import add_tenant
from postbote.testing.sink import SmtpSink, smtp_sink_path
from tests.conftest import IN_CI, MX1, MX2, run_worker


@pytest.fixture(autouse=True)
def _needs_smtp_sink():
    if smtp_sink_path() is None:
        reason = "smtp-sink is missing: Debian package postfix (scripts/install-system-deps)"
        pytest.fail(reason) if IN_CI else pytest.skip(reason)


def test_many_messages_over_reused_connections(make_app, zone, smtp_port):
    for i in range(3):
        zone.mail_domain(f"d{i}.test", (10, f"mx.d{i}.test", MX1))
    app = make_app(MAX_CONNECTIONS_PER_DOMAIN=2)
    tenant = add_tenant(app.engine, "acme")
    for n in range(300):
        send(app.engine, app.settings, tenant, Draft("hr@acme.test", [f"u{n}@d{n % 3}.test"], f"n{n}", "Hallo"))
    with SmtpSink(MX1, smtp_port):
        run_worker(app)
    with app.engine.connect() as conn:
        states = dict(conn.execute(select(deliveries.c.state, func.count()).group_by(deliveries.c.state)).all())
        reused = conn.execute(select(func.count()).where(attempts.c.connection_reused.is_(True))).scalar_one()
        replies = {r for (r,) in conn.execute(select(attempts.c.reply_text).limit(5))}
    assert states == {"delivered": 300}
    assert reused >= 300 - 3 * 2  # at most one fresh connection per sender task
    assert all(r.startswith("2.0.0 Ok") for r in replies)


def test_postfix_soft_and_hard_rejections(make_app, zone, smtp_port):
    zone.mail_domain("soft.test", (10, "mx.soft.test", MX1))
    zone.mail_domain("hard.test", (10, "mx.hard.test", MX2))
    app = make_app()
    tenant = add_tenant(app.engine, "acme")
    soft = send(app.engine, app.settings, tenant, Draft("hr@acme.test", ["a@soft.test"], "s", "t"))
    hard = send(app.engine, app.settings, tenant, Draft("hr@acme.test", ["a@hard.test"], "s", "t"))
    with SmtpSink(MX1, smtp_port, "-r", "RCPT"), SmtpSink(MX2, smtp_port, "-f", "RCPT", "-B", "550 5.1.1 User unknown"):
        run_worker(app, until_done=False, timeout=0.8)
    soft_view = message_status(app.engine, soft.id).recipients[0]
    hard_view = message_status(app.engine, hard.id).recipients[0]
    assert soft_view.state == "deferred" and soft_view.history[0].reply_code == 450
    assert hard_view.state == "bounced" and hard_view.history[0].enhanced_code == "5.1.1"
