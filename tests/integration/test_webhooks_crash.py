"""A kill -9 of ``postbote worker`` while its webhook calls are in flight loses no event: the
calls it had leased are made again by the next worker once their lease has run out, under the
same event ids, so the receiver gets every event at least once. Real processes, a real receiver
on loopback, SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from postbote.api import create_api
from postbote.db.schema import webhook_calls
from postbote.testing import Receiver, WebhookReceiver
from postbote.tenants import add_tenant, create_key
from tests.conftest import MX1, run_worker
from tests.integration.test_cli import cli_env

MESSAGES = 4


def _worker(env, cwd) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "postbote", "worker"], env=env, cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.mark.slow
def test_a_worker_killed_during_webhook_calls_loses_no_event(make_app, zone, smtp_port, tmp_path):
    zone.mail_domain("kunde.test", (10, "mx.kunde.test", MX1))
    app = make_app(ALLOW_PRIVATE_WEBHOOKS=True)
    client = TestClient(create_api(app))
    key = {"Authorization": f"Bearer {create_key(app.engine, add_tenant(app.engine, 'acme'))}"}
    env = {**cli_env(app), "POSTBOTE_ALLOW_PRIVATE_WEBHOOKS": "true", "POSTBOTE_WEBHOOK_TIMEOUT": "2",
           "POSTBOTE_WEBHOOK_RETRY_SCHEDULE": "1s"}  # a lease of 2 × 2 s + 5 s
    with WebhookReceiver() as hooks:
        hooks.behaviour.pause = 1.5  # each call stays in flight for a while
        made = client.post("/v1/webhooks", json={"url": hooks.url(), "events": ["message.*"]}, headers=key)
        assert made.status_code == 201, made.text
        for n in range(MESSAGES):
            sent = client.post("/v1/messages", json={"from": "HR <hr@platform.test>", "to": [f"p{n}@kunde.test"],
                                                     "subject": "Hallo", "text": "x"}, headers=key)
            assert sent.status_code == 202
        with Receiver(MX1, smtp_port):
            run_worker(app)  # delivered: four queued and four delivered events in the log
        first = _worker(env, tmp_path)
        try:
            hooks.wait_for(1, timeout=30)  # calls are in flight now
            os.kill(first.pid, signal.SIGKILL)
            first.wait(timeout=10)
        finally:
            if first.poll() is None:
                first.kill()
        with app.engine.connect() as conn:
            calls = conn.execute(select(webhook_calls.c.event_id, webhook_calls.c.state)).all()
        assert len(calls) == 2 * MESSAGES and any(state == "pending" for _, state in calls)  # killed mid-way
        second = _worker(env, tmp_path)
        try:
            deadline = time.monotonic() + 60
            wanted = {event_id for event_id, _ in calls}
            while {r.headers["webhook-id"] for r in list(hooks.received)} != wanted:
                assert time.monotonic() < deadline, "not every event arrived after the kill"
                assert second.poll() is None, "the second worker exited"
                time.sleep(0.2)
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(timeout=20)
    got = [json.loads(r.body)["id"] for r in hooks.received]
    assert set(got) == wanted and len(got) >= len(wanted)
    with app.engine.connect() as conn:
        assert {s for (s,) in conn.execute(select(webhook_calls.c.state))} == {"delivered"}
